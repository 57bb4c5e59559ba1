"""Benchmarks of pytest-tinymodels: a command, never timed tests.

    python benchmarks/bench.py                      # everything but the sweep (a few minutes)
    python benchmarks/bench.py --only sweep         # the causal-LM sweep (tens of minutes)
    python benchmarks/bench.py --only train         # trained fixtures: time, loss, generation, same bytes
    python benchmarks/bench.py --only overhead,warm --quick
    python benchmarks/bench.py --write benchmarks/RESULTS.md

Every measurement runs in fresh subprocesses (medians over repetitions) with its own cache
directory, so "cold" is really cold and "warm" only reuses what this script built.  Library
imports (torch, transformers, tokenizers, datasets) happen before the clock starts wherever the
brief says "excluding imports"; each child prints one JSON line that this script collects.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
#: Where children import pytest_tinymodels from: a snapshot of the source taken at start (see
#: :func:`snapshot_source`), so edits to the tree during a long run change no cache key mid-run.
SRC: Path = ROOT
SECTIONS = ("overhead", "warm", "fresh", "cold", "sizes", "sweep", "train")
DEFAULT_SECTIONS = ("overhead", "warm", "fresh", "cold", "sizes")
BUILTINS = ("tiny_llama", "tiny_gpt2", "tiny_bert", "tiny_t5")
#: The tiny mT5 of the well-known "make tiny models" write-up (stas00's mt5-small shrink): 3.34 MB.
REFERENCE_TINY_MT5_BYTES = 3.34e6

#: Imports done before any clock starts in the children ("excluding the library imports").
PRELUDE = """
import json, sys, time
import torch, transformers, tokenizers, datasets
from transformers import AutoModelForCausalLM, AutoTokenizer
"""


@dataclass
class Row:
    """One line of the results table."""

    section: str
    what: str
    value: str
    target: str = ""
    verdict: str = ""
    note: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    def add(self, *args: Any, **kwargs: Any) -> None:
        row = Row(*args, **kwargs)
        self.rows.append(row)
        print(f"  {row.section:<9} {row.what:<58} {row.value:>14} {row.target:>10} {row.verdict}", flush=True)


def with_prelude(body: str) -> str:
    """Child code: the imports, then ``body`` (dedented)."""
    return PRELUDE + textwrap.dedent(body)


def snapshot_source(work: Path) -> Path:
    """Copy the package to ``work/src``: the code fingerprint is part of every cache key, and
    other people editing the builder modules during a run would otherwise turn warm into cold."""
    dest = work / "src"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(ROOT / "pytest_tinymodels", dest / "pytest_tinymodels",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    compileall.compile_dir(str(dest), quiet=1)  # no first-run bytecode compilation inside a timing
    return dest


# -- helpers -----------------------------------------------------------------------------------
def child_env(cache: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    env["HF_HUB_OFFLINE"] = "1"
    env["TOKENIZERS_PARALLELISM"] = "false"
    if cache is not None:
        env["PYTEST_TINYMODELS_CACHE"] = str(cache)
    return env


def run_child(code: str, *args: str, cache: Path | None = None, timeout: float = 900) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last stdout line."""
    proc = subprocess.run([sys.executable, "-c", code if code.startswith(PRELUDE) else textwrap.dedent(code), *args],
                          capture_output=True, text=True, env=child_env(cache), cwd=str(SRC), timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def timed_run(cmd: list[str], *, cwd: Path, cache: Path, timeout: float = 3600) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(cwd), env=child_env(cache), timeout=timeout)
    return time.perf_counter() - start, proc


def median(values: list[float]) -> float:
    return statistics.median(values)


def fmt_s(seconds: float) -> str:
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


def fmt_bytes(n: float) -> str:
    return f"{n / 1e6:.3f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def build_entry_in(cache: Path, fixture: str) -> dict[str, Any]:
    """Build (or reuse) ``fixture`` in ``cache`` in a child; returns paths and whether it was built."""
    return run_child(with_prelude("""
        from pytest_tinymodels.cache import Cache
        from pytest_tinymodels.manifest import load_manifest
        from pytest_tinymodels.session import TinySession
        session = TinySession(load_manifest(None), Cache(sys.argv[1]))
        variant = session.variants(sys.argv[2])[0]
        start = time.perf_counter()
        result = session.ensure(variant)
        seconds = time.perf_counter() - start
        recipe = json.loads((result.path / "recipe.json").read_text())
        print(json.dumps({"entry": str(result.path), "built": result.built, "seconds": seconds,
                          "timings": recipe.get("timings", {}), "size": result.size}))
    """), str(cache), fixture)


# -- 1. plugin overhead ------------------------------------------------------------------------
def make_plain_suite(dest: Path, n_tests: int = 200, per_file: int = 20) -> None:
    """``n_tests`` trivial tests in files of ``per_file`` that request no tiny fixture."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "pytest.ini").write_text("[pytest]\n")
    for f in range(n_tests // per_file):
        lines = ["import pytest", ""]
        for t in range(per_file):
            lines += [f"def test_{f}_{t}(tmp_path_factory):", f"    assert {t} + {f} >= 0", ""]
        (dest / f"test_plain_{f:02d}.py").write_text("\n".join(lines))


def bench_overhead(report: Report, work: Path, reps: int) -> None:
    suite = work / "plain_suite"
    make_plain_suite(suite)
    cache = work / "cache-overhead"
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    variants = {"with plugin": base, "-p no:tinymodels": base + ["-p", "no:tinymodels"]}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for name, cmd in variants.items():  # warm-up: .pyc files, OS caches
        _, proc = timed_run(cmd, cwd=suite, cache=cache)
        if "200 passed" not in proc.stdout:
            raise RuntimeError(f"plain suite failed ({name}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    for _ in range(reps):  # interleaved, so load drift hits both alike
        for name, cmd in variants.items():
            seconds, _ = timed_run(cmd, cwd=suite, cache=cache)
            times[name].append(seconds)
    with_p, without = median(times["with plugin"]), median(times["-p no:tinymodels"])
    ratio = with_p / without
    report.add("overhead", "200 plain tests, pytest wall time, with plugin", fmt_s(with_p), note=_spread(times["with plugin"]))
    report.add("overhead", "200 plain tests, pytest wall time, -p no:tinymodels", fmt_s(without),
               note=_spread(times["-p no:tinymodels"]))
    report.add("overhead", "ratio with / without", f"{ratio:.3f}x", "<= 1.05", verdict(ratio <= 1.05))
    inproc = run_child("""
        import contextlib, io, json, os, statistics, sys, time
        import pytest
        os.chdir(sys.argv[1])
        args = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
        runs = {"with": [], "without": []}
        for i in range(int(sys.argv[2]) + 2):
            for key, extra in (("with", []), ("without", ["-p", "no:tinymodels"])):
                start = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()):
                    pytest.main(args + extra)
                if i >= 2:  # the first runs import everything
                    runs[key].append(time.perf_counter() - start)
        print(json.dumps({k: statistics.median(v) for k, v in runs.items()}))
    """, str(suite), str(reps), cache=cache)
    report.add("overhead", "same suite in one process (imports paid once): per-session cost of the plugin",
               f"{(inproc['with'] - inproc['without']) * 1000:.1f} ms",
               note=f"median pytest.main() {inproc['with']:.3f} s with, {inproc['without']:.3f} s without")
    imports = run_child("""
        import json, subprocess, sys
        out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import pytest; import pytest_tinymodels.plugin"],
                             capture_output=True, text=True)
        line = [l for l in out.stderr.splitlines() if l.rstrip().endswith("| pytest_tinymodels.plugin")][-1]
        print(json.dumps({"us": int(line.split("|")[1])}))
    """, cache=cache)
    report.add("overhead", "import of pytest_tinymodels.plugin (python -X importtime)", f"{imports['us'] / 1000:.1f} ms")
    heavy = run_child("""
        import json, subprocess, sys
        out = subprocess.run([sys.executable, "-X", "importtime", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              "--collect-only"], capture_output=True, text=True, cwd=sys.argv[1])
        heavy = sorted({l.split("|")[-1].strip().split(".")[0] for l in out.stderr.splitlines() if "|" in l}
                       & {"torch", "transformers", "tokenizers", "datasets", "huggingface_hub"})
        print(json.dumps({"heavy": heavy}))
    """, str(suite), cache=cache)
    report.add("overhead", "heavy libraries imported by a plain run", ", ".join(heavy["heavy"]) or "none", "none",
               verdict(not heavy["heavy"]))


def _spread(values: list[float]) -> str:
    return f"n={len(values)}, min {min(values):.3f}, max {max(values):.3f}"


# -- 2. warm fixture setup ---------------------------------------------------------------------
#: Children's GC probe: full (generation-2) collections inside the timed window, counted and timed through
#: gc.callbacks.  A full collection walks every object the imports left (~400k with torch + transformers +
#: datasets) and lands wherever allocation counts cross CPython's threshold: the one-time cost issue 17 found.
GC_PROBE = """
import gc
_gc = {"on": False, "n": 0, "ms": 0.0, "t": 0.0}
def _gc_callback(phase, info):
    if not _gc["on"] or info.get("generation") != 2:
        return
    if phase == "start":
        _gc["t"] = time.perf_counter()
    else:
        _gc["n"] += 1
        _gc["ms"] += (time.perf_counter() - _gc["t"]) * 1000
gc.callbacks.append(_gc_callback)
"""

WARM_PLUGIN = PRELUDE + GC_PROBE + """
from transformers import LlamaForCausalLM
_gc["on"] = True
start, cpu = time.perf_counter(), time.process_time()
from pytest_tinymodels import get_fixture
triple = get_fixture("tiny_llama", cache_dir=sys.argv[1])
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
_gc["on"] = False
assert type(triple.model).__name__ == "LlamaForCausalLM"
print(json.dumps({"seconds": seconds, "cpu": cpu, "gc_full": _gc["n"], "gc_ms": _gc["ms"],
                  "fast": (triple.recipe.get("fast_load") or {}).get("model")}))
"""

WARM_HAND = PRELUDE + GC_PROBE + """
from transformers import LlamaForCausalLM
from datasets import load_from_disk
entry = sys.argv[1]
_gc["on"] = True
start, cpu = time.perf_counter(), time.process_time()
model = AutoModelForCausalLM.from_pretrained(entry + "/repo")
tokenizer = AutoTokenizer.from_pretrained(entry + "/repo")
dataset = load_from_disk(entry + "/dataset")
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
_gc["on"] = False
print(json.dumps({"seconds": seconds, "cpu": cpu, "gc_full": _gc["n"], "gc_ms": _gc["ms"]}))
"""

WARM_PYTEST_TEST = """
import torch, transformers, datasets  # imported at collection: not part of the fixture setup
from transformers import LlamaForCausalLM

def test_first(tiny_llama):
    assert tiny_llama.model is not None

def test_second(tiny_llama):
    assert tiny_llama.model is not None
"""

#: Both warm suites' conftest: with BENCH_GC_FREEZE=1, move every object alive after the imports out
#: of the cyclic GC's reach.  A full collection walks torch's and transformers' millions of objects
#: (about 0.2 s on the 16-core machine) and lands wherever allocation counts cross the threshold:
#: often inside the first fixture setup, for the plugin and the hand-written fixture alike.
GC_FREEZE_CONFTEST = """
import gc, os
import torch, transformers, datasets
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM
import json, time
import pytest
if os.environ.get("BENCH_GC_FREEZE"):
    gc.collect()
    gc.freeze()
""" + GC_PROBE + """

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    _gc.update(on=item.name == "test_first", n=0, ms=0.0)
    start, cpu = time.perf_counter(), time.process_time()
    yield
    _gc["on"] = False
    if item.name == "test_first":
        with open(os.environ["BENCH_SETUP_OUT"], "w") as fh:
            json.dump({"setup": time.perf_counter() - start, "cpu": time.process_time() - cpu,
                       "gc_full": _gc["n"], "gc_ms": _gc["ms"]}, fh)
"""

#: The same load written by hand as a conftest fixture (what a test suite without the plugin does).
HAND_PYTEST_TEST = """
import os
import pytest
import torch, transformers, datasets
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

@pytest.fixture
def hand_llama():
    entry = os.environ["BENCH_ENTRY"]
    model = AutoModelForCausalLM.from_pretrained(entry + "/repo")
    tokenizer = AutoTokenizer.from_pretrained(entry + "/repo")
    dataset = datasets.load_from_disk(entry + "/dataset")
    return model, tokenizer, dataset

def test_first(hand_llama):
    assert hand_llama[0] is not None
"""


#: Where the warm-path time goes once transformers' one-time setup is paid (repeated loads in one process).
WARM_PARTS = PRELUDE + """
import statistics
from transformers import LlamaForCausalLM
from pytest_tinymodels import loader
from pytest_tinymodels.cache import Cache, verify_entry
from pytest_tinymodels.manifest import load_manifest
from pytest_tinymodels.session import TinySession
cache, entry = sys.argv[1], sys.argv[2]
session = TinySession(load_manifest(None), Cache(cache))
variant = session.variants("tiny_llama")[0]
def by_hand():
    AutoModelForCausalLM.from_pretrained(entry + "/repo")
    AutoTokenizer.from_pretrained(entry + "/repo")
    datasets.load_from_disk(entry + "/dataset")
def loader_load():
    loader.LoadedEntry("tiny_llama", entry).load()
def loader_load_and_copy():
    loader.LoadedEntry("tiny_llama", entry).fresh()
def session_path():
    fresh = TinySession(session.manifest, Cache(cache))
    fresh._variants = session._variants  # architecture resolution: measured apart
    fresh.load(variant).fresh()
def resolve_architecture():
    TinySession(session.manifest, Cache(cache)).variants("tiny_llama")
def verify():
    verify_entry(Path(entry))
def verify_hashes():
    verify_entry(Path(entry), hashes=True)
from pathlib import Path
parts = [by_hand, loader_load, loader_load_and_copy, session_path, resolve_architecture, verify, verify_hashes]
for f in parts:
    f()
samples = {f.__name__: [] for f in parts}
for _ in range(int(sys.argv[3])):
    for f in parts:
        start = time.perf_counter()
        f()
        samples[f.__name__].append(time.perf_counter() - start)
print(json.dumps({k: statistics.median(v) for k, v in samples.items()}))
"""


#: The first use in a fresh process, step by step (what get_fixture does, in order).
WARM_STEPS = PRELUDE + """
from transformers import LlamaForCausalLM
laps, last = {}, time.perf_counter()
def lap(name):
    global last
    now = time.perf_counter()
    laps[name] = now - last
    last = now
import pytest_tinymodels.session, pytest_tinymodels.loader
lap("import pytest_tinymodels (session, loader, builder, cache, manifest)")
from pytest_tinymodels.cache import Cache
from pytest_tinymodels.manifest import load_manifest
from pathlib import Path
manifest = load_manifest(None, memo_dir=Path(sys.argv[1]))
session = pytest_tinymodels.session.TinySession(manifest, Cache(sys.argv[1]))
lap("read the manifest, make the session")
variant = session.variants("tiny_llama")[0]
lap("architecture resolution")
session.key(variant.spec)
lap("first cache key (library versions, code fingerprint, corpus hash)")
result = session.ensure(variant)
lap("cache lookup + verify_entry")
loaded = session.load(variant)
triple = loaded.load()
lap("load: from_pretrained + AutoTokenizer + load_from_disk")
loaded.fresh()
lap("first fresh copy (each pytest test; get_fixture makes none)")
print(json.dumps(laps))
"""


def _gc_note(runs: list[dict[str, Any]]) -> str:
    hit = [r for r in runs if r.get("gc_full")]
    text = f"full GC in the window: {len(hit)}/{len(runs)} runs"
    if hit:
        text += f" (median {median([r['gc_ms'] for r in hit]):.0f} ms)"
    return text


def _compare(report: Report, what: str, plugin: list[dict[str, Any]], hand: list[dict[str, Any]], key: str,
             target: float, label: str) -> None:
    """Rows for one interleaved plugin-vs-hand timing: both medians (wall, CPU, GC), the median ratio against
    ``target``, the ratio of the fastest runs and of the CPU medians, and the load average."""
    pw, hw = [r[key] for r in plugin], [r[key] for r in hand]
    pc, hc = median([r["cpu"] for r in plugin]), median([r["cpu"] for r in hand])
    p, h = median(pw), median(hw)
    report.add("warm", f"{what}, {label}", fmt_s(p), note=f"{_spread(pw)}; CPU median {pc:.3f} s; {_gc_note(plugin)}")
    report.add("warm", f"{what}, by hand", fmt_s(h), note=f"{_spread(hw)}; CPU median {hc:.3f} s; {_gc_note(hand)}")
    report.add("warm", f"{what}: ratio {label} / by hand (medians)", f"{p / h:.3f}x", f"<= {target}",
               verdict(p / h <= target), note=f"load average {loadavg()}")
    report.add("warm", f"{what}: ratio of the fastest runs", f"{min(pw) / min(hw):.3f}x")
    report.add("warm", f"{what}: ratio of the CPU-time medians", f"{pc / hc:.3f}x")


def bench_warm(report: Report, work: Path, reps: int) -> None:
    cache = work / "cache-warm"
    built = build_entry_in(cache, "tiny_llama")
    entry = built["entry"]
    plugin, hand = [], []
    for _ in range(reps):  # interleaved: a burst of load from elsewhere hits both paths alike
        plugin.append(run_child(WARM_PLUGIN, str(cache)))
        hand.append(run_child(WARM_HAND, entry))
    report.add("warm", "tiny_llama get_fixture(), warm cache, fresh process", fmt_s(median([r["seconds"] for r in plugin])),
               "< 0.3 s", verdict(median([r["seconds"] for r in plugin]) < 0.3),
               note=f"fast path: {plugin[0].get('fast')}; includes importing pytest_tinymodels and resolving the architecture")
    _compare(report, "fresh process: get_fixture vs from_pretrained x2 + load_from_disk", plugin, hand, "seconds", 1.0,
             "get_fixture")
    # inside pytest: the setup phase of the first test, plugin fixture vs a hand-written conftest fixture
    suites = {}
    for kind, text in (("plugin", WARM_PYTEST_TEST), ("hand", HAND_PYTEST_TEST)):
        suite = work / f"warm_suite_{kind}"
        suite.mkdir(exist_ok=True)
        (suite / "pytest.ini").write_text("[pytest]\n")
        (suite / "test_warm.py").write_text(text)
        (suite / "conftest.py").write_text(GC_FREEZE_CONFTEST)
        suites[kind] = suite
    for freeze in (False, True):
        setups: dict[str, list[dict[str, Any]]] = {"plugin": [], "hand": []}
        for _ in range(reps):
            for kind, suite in suites.items():
                os.environ["BENCH_ENTRY"] = entry
                os.environ["BENCH_GC_FREEZE"] = "1" if freeze else ""
                os.environ["BENCH_SETUP_OUT"] = str(work / "setup.json")
                (work / "setup.json").unlink(missing_ok=True)
                try:
                    _, proc = timed_run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
                                         "no:randomly"], cwd=suite, cache=cache)
                finally:
                    os.environ.pop("BENCH_ENTRY", None)
                    os.environ.pop("BENCH_GC_FREEZE", None)
                    os.environ.pop("BENCH_SETUP_OUT", None)
                if not (work / "setup.json").is_file():
                    raise RuntimeError(f"no setup duration recorded ({kind}):\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
                setups[kind].append(json.loads((work / "setup.json").read_text()))
        how = "gc.freeze() after imports in conftest" if freeze else "default gc"
        _compare(report, f"in pytest ({how}): setup of the first test", setups["plugin"], setups["hand"], "setup",
                 1.0, "tiny_llama fixture")
    steps: dict[str, list[float]] = {}
    for _ in range(reps):
        for key, value in run_child(WARM_STEPS, str(cache)).items():
            steps.setdefault(key, []).append(value)
    for key, values in steps.items():
        report.add("warm", f"first use in a fresh process, step: {key}", f"{median(values) * 1000:.1f} ms")
    parts = run_child(WARM_PARTS, str(cache), entry, str(max(10, reps * 3)))
    labels = {
        "by_hand": "by hand (from_pretrained x2 + load_from_disk)",
        "loader_load": "LoadedEntry.load() (same three loads, quiet logs)",
        "loader_load_and_copy": "LoadedEntry.fresh() (load + first copy)",
        "session_path": "TinySession.load().fresh() (+ cache key, verify)",
        "resolve_architecture": "architecture resolution (collection time in pytest)",
        "verify": "verify_entry (stat signatures; sha256 only of changed files)",
        "verify_hashes": "verify_entry(hashes=True) (sha256 of every file: the verify command)",
    }
    for key, label in labels.items():
        report.add("warm", f"steady state, repeated in one process: {label}", f"{parts[key] * 1000:.1f} ms")
    ratio = parts["loader_load"] / parts["by_hand"]
    report.add("warm", "steady state: ratio LoadedEntry.load() / by hand", f"{ratio:.3f}x", "<= 0.7",
               verdict(ratio <= 0.7), note=f"load average {loadavg()}")


# -- 3. per-test cost after the first ----------------------------------------------------------
FRESH = PRELUDE + """
import statistics
from pytest_tinymodels.cache import Cache
from pytest_tinymodels.manifest import load_manifest
from pytest_tinymodels.session import TinySession
session = TinySession(load_manifest(None), Cache(sys.argv[1]))
out = {}
for name in sys.argv[2].split(","):
    variant = session.variants(name)[0]
    loaded = session.load(variant)
    loaded.fresh()  # the first test: loads from disk
    samples = []
    for _ in range(int(sys.argv[3])):
        start = time.perf_counter()
        session.load(variant, device=None).fresh()  # what the plugin does per test
        samples.append(time.perf_counter() - start)
    out[name] = {"median": statistics.median(samples), "min": min(samples)}
print(json.dumps(out))
"""


def bench_fresh(report: Report, work: Path, reps: int) -> None:
    cache = work / "cache-warm"
    for name in BUILTINS:
        build_entry_in(cache, name)
    result = run_child(FRESH, str(cache), ",".join(BUILTINS), str(max(50, reps * 20)))
    for name in BUILTINS:
        ms = result[name]["median"] * 1000
        target = "<= 5 ms" if name == "tiny_llama" else ""
        report.add("fresh", f"{name}: per-test cost after the first (fresh copy)", f"{ms:.2f} ms", target,
                   verdict(ms <= 5) if target else "", note=f"min {result[name]['min'] * 1000:.2f} ms")


# -- 4. cold build -----------------------------------------------------------------------------
COLD = PRELUDE + """
import transformers as _t
from pytest_tinymodels.cache import Cache
from pytest_tinymodels.manifest import load_manifest
from pytest_tinymodels.session import TinySession
session = TinySession(load_manifest(None), Cache(sys.argv[1]))
variant = session.variants(sys.argv[2])[0]
getattr(_t, variant.spec.architecture)  # the model module's import is a library import too
start = time.perf_counter()
result = session.ensure(variant)
seconds = time.perf_counter() - start
recipe = json.loads((result.path / "recipe.json").read_text())
assert result.built
print(json.dumps({"seconds": seconds, "timings": recipe.get("timings", {})}))
"""


def bench_cold(report: Report, work: Path, reps: int) -> None:
    for name in BUILTINS:
        samples, stages = [], []
        for i in range(reps):
            cache = work / f"cache-cold-{name}-{i}"
            shutil.rmtree(cache, ignore_errors=True)
            result = run_child(COLD, str(cache), name)
            samples.append(result["seconds"])
            stages.append(result["timings"])
        s = median(samples)
        best = stages[samples.index(min(samples))]
        note = _spread(samples) + "; stages of the fastest: " + ", ".join(f"{k} {v:.2f}" for k, v in best.items())
        if name == "tiny_llama":
            report.add("cold", f"{name}: build (config+model+tokenizer+dataset)", fmt_s(s), "<= 2 s", verdict(s <= 2.0),
                       note=note)
        else:
            report.add("cold", f"{name}: build", fmt_s(s), "< 3 s", verdict(s < 3.0), note=note)


# -- 6. sizes ----------------------------------------------------------------------------------
def bench_sizes(report: Report, work: Path, reps: int) -> None:
    cache = work / "cache-warm"
    for name in BUILTINS:
        entry = Path(build_entry_in(cache, name)["entry"])
        weights = sum(p.stat().st_size for p in (entry / "repo").glob("*.safetensors"))
        total = sum(p.stat().st_size for p in entry.rglob("*") if p.is_file())
        report.add("sizes", f"{name}: model.safetensors", fmt_bytes(weights),
                   note=f"{REFERENCE_TINY_MT5_BYTES / weights:.0f}x smaller than the 3.34 MB tiny mT5")
        report.add("sizes", f"{name}: whole entry on disk (repo+tokenizer+dataset+recipe)", fmt_bytes(total),
                   note=f"{REFERENCE_TINY_MT5_BYTES / total:.1f}x smaller than the 3.34 MB tiny mT5")
    for dtype in ("float16", "bfloat16"):
        size = run_child(with_prelude("""
            from dataclasses import replace
            from pytest_tinymodels.cache import Cache
            from pytest_tinymodels.manifest import load_manifest
            from pytest_tinymodels.session import TinySession
            session = TinySession(load_manifest(None), Cache(sys.argv[1]), dtype=sys.argv[2])
            result = session.ensure(session.variants("tiny_llama")[0])
            print(json.dumps({"bytes": sum(p.stat().st_size for p in (result.path / "repo").glob("*.safetensors"))}))
        """), str(cache), dtype)["bytes"]
        report.add("sizes", f"tiny_llama --tiny-dtype {dtype}: model.safetensors", fmt_bytes(size))


# -- 5. the causal-LM sweep --------------------------------------------------------------------
SWEEP_MANIFEST = """
[fixtures.tiny_causal]
task = "causal-lm"
architectures = "*"
"""

SWEEP_TEST = """
import torch

from pytest_tinymodels.build import inputs as smoke


def test_forward(tiny_causal):
    model, processor, dataset = tiny_causal
    # the inputs the fixture build verified (codebooks, image tokens, a draft model's hidden states) ...
    inputs = smoke.dummy_inputs(model, model.config, processor)
    tokenizer = getattr(processor, "tokenizer", processor)
    if (set(inputs) <= {"input_ids", "attention_mask"} and inputs["input_ids"].shape[0] == 2
            and callable(getattr(tokenizer, "batch_decode", None))):
        # ... and real text through the tokenizer where one row of ids per text is all a model takes
        # (not MusicGen's row per codebook)
        batch = tokenizer(dataset["text"][:2], padding=True, truncation=True, max_length=16, return_tensors="pt")
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with torch.no_grad():
        out = model(**inputs)
    assert torch.isfinite(out.logits).all()
"""


def causal_model_types() -> list[str]:
    return run_child("""
        import json
        from pytest_tinymodels.build import architectures
        print(json.dumps(sorted({i.model_type for i in architectures.expand("causal-lm", "*", [])})))
    """)


def bench_sweep(report: Report, work: Path, quick: bool, sizes_arg: str | None, skip_cold_n1: bool = False) -> None:
    suite = work / "sweep_suite"
    suite.mkdir(exist_ok=True)
    (suite / "pytest.ini").write_text("[pytest]\n")
    (suite / "fixtures.toml").write_text(SWEEP_MANIFEST)
    (suite / "test_sweep.py").write_text(SWEEP_TEST)
    types = causal_model_types()
    counts = [int(c) for c in sizes_arg.split(",")] if sizes_arg else ([10] if quick else [10, 50, len(types)])
    phases = [("cold", 1), ("cold", 2), ("warm", 1), ("warm", 2)]
    if skip_cold_n1:
        phases.remove(("cold", 1))
    for count in counts:
        chosen = types[:count] if count < len(types) else types
        arch = ["--tiny-arch", ",".join(chosen)] if count < len(types) else []
        caches = {1: work / f"cache-sweep-{count}-n1", 2: work / f"cache-sweep-{count}-n2"}
        for cache in caches.values():
            shutil.rmtree(cache, ignore_errors=True)
        for phase, workers in phases:
            cache = caches[workers] if phase == "cold" else caches[2]
            cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                   "-n", str(workers), *arch]
            seconds, proc = timed_run(cmd, cwd=suite, cache=cache)
            summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
            built = _built_count(proc.stdout)
            report.add("sweep", f"{len(chosen)} model types, {phase}, -n {workers}", fmt_s(seconds),
                       note=f"{summary}; {built}")
            report.details.append(f"sweep {len(chosen)} {phase} -n {workers}: {seconds:.1f} s; {summary}; {built}")
        report.details.extend(_skip_reasons(suite, caches[2], arch))
        for cache in caches.values():
            shutil.rmtree(cache, ignore_errors=True)


def _built_count(stdout: str) -> str:
    for line in stdout.splitlines():
        if " built (" in line and "reused" in line:
            return line.strip()
    return ""


def _skip_reasons(suite: Path, cache: Path, arch: list[str]) -> list[str]:
    """Why architectures were skipped (could not be built) or failed the forward test, for the details."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfs", "--tb=no", "-n", "2", *arch]
    _, proc = timed_run(cmd, cwd=suite, cache=cache)
    return ["  " + line[:400] for line in proc.stdout.splitlines() if line.startswith(("SKIPPED", "FAILED"))][:120]


# -- 7. trained fixtures (issue 16) ----------------------------------------------------------------
#: The trained fixtures measured: the built-in, the hub's sshleifer/tiny-gpt2 stand-in, a seq2seq one.
TRAIN_MANIFEST = """
[fixtures.gpt2_trained]
architecture = "GPT2LMHeadModel"
dataset = { max_chars = 120 }
train = true

[fixtures.t5_trained]
architecture = "T5ForConditionalGeneration"
dataset = { max_chars = 120 }
train = true
"""
TRAINED = ("tiny_llama_trained", "gpt2_trained", "t5_trained")

TRAIN_CHILD = PRELUDE + """
import hashlib, random, resource
from pathlib import Path
from pytest_tinymodels.build.corpus import corpus_lines
from pytest_tinymodels.build.train import continuation_stats
from pytest_tinymodels.cache import Cache
from pytest_tinymodels.manifest import load_manifest
from pytest_tinymodels.session import TinySession

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

session = TinySession(load_manifest(sys.argv[2]), Cache(sys.argv[1]))
variant = session.variants(sys.argv[3])[0]
getattr(transformers, variant.spec.architecture)  # the model module's import is a library import too
start, cpu0 = time.perf_counter(), cpu()
result = session.ensure(variant)
seconds, cpu_seconds = time.perf_counter() - start, cpu() - cpu0
assert result.built
recipe = json.loads((result.path / "recipe.json").read_text())
digests = {}
for path in sorted(p for p in result.path.rglob("*") if p.is_file() and p.name != "COMPLETE.json"):
    data = path.read_bytes()
    if path.name == "recipe.json":
        data = json.dumps({k: v for k, v in json.loads(data).items()
                           if k not in ("timings", "build_seconds", "built_at")}, sort_keys=True).encode()
    digests[path.relative_to(result.path).as_posix()] = hashlib.sha256(data).hexdigest()
out = {"seconds": seconds, "cpu_seconds": cpu_seconds, "timings": recipe["timings"], "train": recipe["train"],
       "digests": digests}
if sys.argv[4] == "1":
    model, tokenizer, dataset = session.load(variant).load()
    texts = dataset["text"][:20]
    out["rows"] = continuation_stats(model, tokenizer, texts)
    lines = [line for line in corpus_lines() if len(line.split()) >= 6]
    out["lines"] = continuation_stats(model, tokenizer, random.Random(1).sample(lines, 20))
print(json.dumps(out))
"""


def bench_train(report: Report, work: Path, reps: int) -> None:
    """Each trained fixture built ``reps`` times (at least 2), each in a fresh process and an empty cache: the
    train stage's time, the final loss against 40 % of ln(vocab), the generation figures, and whether every
    build gave the same bytes (every file; recipe.json without its timings)."""
    manifest = work / "train-fixtures.toml"
    manifest.write_text(TRAIN_MANIFEST)
    for name in TRAINED:
        runs = []
        for i in range(max(2, reps)):
            cache = work / f"cache-train-{name}-{i}"
            shutil.rmtree(cache, ignore_errors=True)
            runs.append(run_child(TRAIN_CHILD, str(cache), str(manifest), name, "1" if i == 0 else "0",
                                  timeout=1800))
            shutil.rmtree(cache, ignore_errors=True)
        train = runs[0]["train"]
        stage = median([r["timings"]["train"] for r in runs])
        target = "<= 20 s" if name == "tiny_llama_trained" else ""
        report.add("train", f"{name}: train stage ({train['steps']} steps x {train['batch_size']} x {train['seq_len']})",
                   fmt_s(stage), target, verdict(stage <= 20) if target else "",
                   note=f"whole build {fmt_s(median([r['seconds'] for r in runs]))} wall, "
                        f"{fmt_s(median([r['cpu_seconds'] for r in runs]))} CPU; {_spread([r['timings']['train'] for r in runs])}")
        report.add("train", f"{name}: final loss (target 40 % of ln {train['vocab_size']})", f"{train['final_loss']:.4f}",
                   f"<= {train['loss_target']:.3f}", verdict(train["final_loss"] <= train["loss_target"]),
                   note=f"first {train['first_loss']}, curve " + " ".join(f"{s}:{v}" for s, v in train["curve"]))
        rows, lines = runs[0]["rows"], runs[0]["lines"]
        kind = "sources" if train["task"] == "seq2seq-lm" else "first 3 words of its rows"
        report.add("train", f"{name}: greedy generate from the {kind}: corpus words", f"{rows['word_share']:.2f}",
                   ">= 0.80", verdict((rows["word_share"] or 0) >= 0.8),
                   note=f"{rows['corpus_words']}/{rows['words']} words; e.g. {rows['examples'][0]}")
        report.add("train", f"{name}: ... EOS within 64 new tokens", f"{rows['eos']}/{rows['prompts']}", ">= 16/20",
                   verdict(rows["eos"] >= 0.8 * rows["prompts"]))
        report.add("train", f"{name}: from 20 unseen corpus lines: corpus words, EOS",
                   f"{lines['word_share']:.2f}, {lines['eos']}/{lines['prompts']}",
                   note=f"not trained on them; e.g. {lines['examples'][0]}")
        same = all(r["digests"] == runs[0]["digests"] for r in runs)
        report.add("train", f"{name}: {len(runs)} builds in empty caches, same bytes", "yes" if same else "NO",
                   "same", verdict(same), note=f"{len(runs[0]['digests'])} files")
        report.details.append(f"train {name}: {json.dumps(train)}")


# -- output ------------------------------------------------------------------------------------
def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, Python {platform.python_version()}"


def versions() -> str:
    from importlib import metadata

    out = []
    for name in ("torch", "transformers", "tokenizers", "datasets", "pytest", "pytest-xdist"):
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(out)


def render(report: Report, command: str, started: str, load: tuple[str, str], elapsed: float) -> str:
    lines = [
        f"- command: `{command}`",
        f"- date: {started} (took {elapsed:.0f} s)",
        f"- machine: {machine()}; load average at start {load[0]}, at end {load[1]}",
        f"- versions: {versions()}",
        "",
        "| section | measurement | value | target | | notes |",
        "|---|---|---:|---:|---|---|",
    ]
    for r in report.rows:
        lines.append(f"| {r.section} | {r.what} | {r.value} | {r.target} | {r.verdict} | {r.note} |")
    if report.details:
        lines += ["", "<details><summary>details</summary>", "", "```", *report.details, "```", "", "</details>"]
    return "\n".join(lines) + "\n"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(DEFAULT_SECTIONS),
                        help=f"comma-separated sections of {', '.join(SECTIONS)} (default: all but sweep and train)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, the sweep over 10 types only")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per timing (default 7, --quick 3)")
    parser.add_argument("--sweep-sizes", default=None, help="numbers of model types for the sweep, e.g. 10,50,196")
    parser.add_argument("--sweep-skip-cold-n1", action="store_true", help="skip the cold single-worker sweep run")
    parser.add_argument("--workdir", default=None, help="keep work files (suites, caches) here instead of a temp dir")
    parser.add_argument("--write", default=None, metavar="PATH", help="append a markdown section with the results here")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    reps = args.reps or (3 if args.quick else 7)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="tinybench-"))
    work.mkdir(parents=True, exist_ok=True)
    global SRC
    SRC = snapshot_source(work)
    started, load_start, t0 = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), loadavg(), time.perf_counter()
    print(f"pytest-tinymodels benchmarks: {', '.join(sections)}; reps {reps}; work dir {work}\n{machine()}", flush=True)
    report = Report()
    runners: dict[str, Callable[[], None]] = {
        "overhead": lambda: bench_overhead(report, work, max(reps, 15) if not args.quick else reps),
        "warm": lambda: bench_warm(report, work, reps),
        "fresh": lambda: bench_fresh(report, work, reps),
        "cold": lambda: bench_cold(report, work, max(3, reps // 2) if not args.quick else 1),
        "sizes": lambda: bench_sizes(report, work, reps),
        "sweep": lambda: bench_sweep(report, work, args.quick, args.sweep_sizes, args.sweep_skip_cold_n1),
        "train": lambda: bench_train(report, work, 2 if args.quick else 3),
    }
    try:
        for section in sections:
            runners[section]()
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    command = "python benchmarks/bench.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = render(report, command.strip(), started, (load_start, loadavg()), time.perf_counter() - t0)
    print("\n" + text)
    if args.write:
        path = Path(args.write)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"\n## {', '.join(sections)} — {started}\n\n" + text)
    missed = [r for r in report.rows if r.verdict == "MISSED"]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
