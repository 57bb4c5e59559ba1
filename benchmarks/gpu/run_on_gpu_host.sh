#!/usr/bin/env bash
# What produced the GPU numbers in benchmarks/RESULTS.md, run from the repo root on the GPU host
# (no internet there: the wheels and test data were carried in .gpuwhl/, a git-excluded folder).
set -u
t0=$(date +%s)
python3 -m pip install -q --no-index --no-deps .gpuwhl/*.whl
python3 -m pip install -q --no-index --no-build-isolation --no-deps -e .
export PYTHONPATH=$PWD/.gpuwhl/site TINY_TESTDATA_DIR=$PWD/.gpuwhl/testdata
OUT=${OUT:-/tmp/gpu-results}; mkdir -p "$OUT"
for dt in bfloat16 float32; do
  for phase in cold warm; do
    s=$(date +%s)
    PYTEST_TINYMODELS_CACHE=/tmp/tcf_$dt python3 -m pytest benchmarks/gpu --tiny-manifest benchmarks/gpu/fixtures.toml \
      --tiny-device cuda --tiny-dtype $dt -n 8 -q -rfEsxX -p no:randomly > "$OUT/sweep_${dt}_${phase}.txt" 2>&1
    echo "sweep $dt $phase -n 8: $(( $(date +%s) - s )) s: $(tail -1 "$OUT/sweep_${dt}_${phase}.txt")"
  done
done
python3 -m pytest tests/test_device_dtype.py -q -rs -p no:randomly | tail -1
python3 -m pytest tests -n 12 -q -p no:randomly -rfE > "$OUT/suite.txt" 2>&1; tail -1 "$OUT/suite.txt"
python3 benchmarks/bench.py --only warm --reps 7 > "$OUT/bench_warm.txt" 2>&1
echo "total $(( $(date +%s) - t0 )) s"
