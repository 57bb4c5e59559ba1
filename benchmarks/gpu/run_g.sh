set -u
t0=$(date +%s)
python3 -m pip install -q --no-index --no-deps .gpuwhl/*.whl 2>&1 | tail -2
python3 -m pip install -q --no-index --no-build-isolation --no-deps -e . 2>&1 | tail -2
export PYTHONPATH=$PWD/.gpuwhl/site TINY_TESTDATA_DIR=$PWD/.gpuwhl/testdata
for dt in bfloat16 float32; do
  for phase in cold warm; do
    s=$(date +%s)
    PYTEST_TINYMODELS_CACHE=/tmp/tcg_$dt timeout 110 python3 -m pytest benchmarks/gpu --tiny-manifest benchmarks/gpu/fixtures.toml --tiny-device cuda --tiny-dtype $dt -n 8 -q -rfEsxX -p no:randomly > $OUT/sweep_${dt}_${phase}.txt 2>&1
    echo "sweep $dt $phase -n 8: $(( $(date +%s) - s )) s: $(tail -1 $OUT/sweep_${dt}_${phase}.txt)"
  done
done
timeout 60 python3 -m pytest tests/test_device_dtype.py -q -rs -p no:randomly 2>&1 | tail -1
sleep 15; uptime
s=$(date +%s)
timeout 330 python3 benchmarks/bench.py --only warm --reps 6 > $OUT/bench_warm.txt 2>&1
echo "bench $(( $(date +%s) - s )) s"; uptime
echo "total $(( $(date +%s) - t0 )) s"
