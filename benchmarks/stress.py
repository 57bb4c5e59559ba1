"""Reliability stress test of the pytest-tinymodels cache: races, SIGKILLed builds, corruption.

Usage (from the repository root)::

    python benchmarks/stress.py all                 # everything below with the default counts
    python benchmarks/stress.py race --reps 50      # 8 processes race get_or_build (fake builds)
    python benchmarks/stress.py real-race --reps 2  # 8 processes race the real builder (tiny_llama)
    python benchmarks/stress.py kill --trials 30    # SIGKILL fake builds at random points
    python benchmarks/stress.py real-kill --trials 6  # SIGKILL real builds (random + inside safetensors/marker/publish)
    python benchmarks/stress.py pytest-race         # two `pytest -n 4` sessions over one cold cache
    python benchmarks/stress.py verify              # cost of verify_entry on a tiny_llama entry

Each scenario prints its counts and timings and exits non-zero when an invariant breaks:
every entry built exactly once, every reader sees byte-identical files, no error, no partial
entry after a crash, no leftover temp dir after the next build, a dead holder's lock free at once.

``worker`` is the internal entry point of the racing/killed processes (tests/test_reliability.py
uses it too).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # after PYTHONPATH: workers import the snapshot (see snapshot_source)

from pytest_tinymodels.cache import Cache, verify_entry  # noqa: E402

FAKE_KEY_LEN = 24


# ----------------------------------------------------------------------------- helpers
def snapshot_source(base: Path) -> Path:
    """Copy the package and point the child processes' PYTHONPATH at the copy.

    Cache keys include a fingerprint of the builder's sources; other people editing the tree
    during a long run would otherwise give two processes of one race two different keys.
    """
    import shutil

    src = base / "src"
    shutil.copytree(ROOT / "pytest_tinymodels", src / "pytest_tinymodels",
                    ignore=shutil.ignore_patterns("__pycache__"))
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), os.environ.get("PYTHONPATH", "")) if p)
    return src


def digest_tree(path: Path) -> str:
    """sha256 over (relative path, content) of every file under ``path``, in sorted order."""
    h = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(file.relative_to(path).as_posix().encode() + b"\0")
        h.update(file.read_bytes())
    return h.hexdigest()


def fake_key(i: int | str) -> str:
    return hashlib.sha256(f"fake-{i}".encode()).hexdigest()[:FAKE_KEY_LEN]


def fake_build(dest: Path, key: str, count_file: Path, seconds: float, nfiles: int = 6) -> None:
    """A cheap deterministic "build": appends to ``count_file`` (O_APPEND), writes ``nfiles`` files slowly."""
    with open(count_file, "a") as fh:
        fh.write(f"{os.getpid()} {key}\n")
    rng = random.Random(key)
    for i in range(nfiles):
        sub = dest / ("repo" if i % 2 else "dataset")
        sub.mkdir(exist_ok=True)
        with open(sub / f"part{i}.safetensors", "wb") as fh:
            for _ in range(4):
                fh.write(rng.randbytes(16384))
                fh.flush()
                time.sleep(seconds / nfiles / 4)


def count_builds(count_file: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    if count_file.exists():
        for line in count_file.read_text().splitlines():
            _pid, key = line.split()
            counts[key] = counts.get(key, 0) + 1
    return counts


def wait_until(start_at: float | str) -> None:
    """Start line: a time, or a barrier directory (touch ``ready/<pid>``, then wait for ``go``)."""
    if isinstance(start_at, str):
        barrier = Path(start_at)
        (barrier / "ready").mkdir(parents=True, exist_ok=True)
        (barrier / "ready" / str(os.getpid())).touch()
        deadline = time.time() + 600
        while not (barrier / "go").exists() and time.time() < deadline:
            time.sleep(0.005)
        return
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)


def release_barrier(barrier: Path, procs: list[subprocess.Popen], timeout: float = 600.0) -> None:
    """Wait until every process reached the start line (or died), then let them all go at once."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        ready = len(list((barrier / "ready").iterdir())) if (barrier / "ready").is_dir() else 0
        if ready >= sum(p.poll() is None for p in procs) or ready >= len(procs):
            break
        time.sleep(0.01)
    (barrier / "go").touch()


def leftovers(root: Path) -> list[str]:
    tmp = root / "tmp"
    return sorted(p.name for p in tmp.iterdir() if p.name.endswith(".incomplete")) if tmp.is_dir() else []


def worker_cmd(mode: str, **kwargs: Any) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "worker", mode, json.dumps(kwargs)]


# ----------------------------------------------------------------------------- worker side
def worker(mode: str, args: dict[str, Any]) -> None:
    """One racing / killed process. Prints one JSON line (``RESULT {...}``) on success."""
    root = Path(args["root"])
    count_file = Path(args.get("count_file", root.parent / "builds.txt"))
    logs: list[str] = []
    cache = Cache(root, lock_timeout=args.get("lock_timeout", 120.0),
                  wait_log_interval=args.get("wait_log_interval", 10.0), log=logs.append)
    _install_die_point(args.get("die_at"))
    if mode == "fake":
        keys = args["keys"]
        wait_until(args.get("start_at", 0))
        out = []
        for key in keys:
            t0 = time.perf_counter()
            res = cache.get_or_build(
                key, lambda d, k=key: (print("BUILDING", flush=True),
                                       fake_build(d, k, count_file, args.get("seconds", 0.05))),
                label=f"fake-{key[:6]}",
            )
            out.append({"key": key, "built": res.built, "waited": res.waited, "seconds": time.perf_counter() - t0,
                        "digest": digest_tree(res.path), "verify": verify_entry(res.path)})
        print("RESULT " + json.dumps({"pid": os.getpid(), "entries": out, "logs": logs}), flush=True)
        time.sleep(args.get("linger", 0.0))  # kill trials: still alive when the signal comes, done or not
    elif mode == "real":
        import torch  # noqa: F401  (imports before the start line: the race is about building)
        import transformers  # noqa: F401

        from pytest_tinymodels import build as builder
        from pytest_tinymodels.manifest import load_manifest
        from pytest_tinymodels.session import TinySession

        real_build = builder.build_entry

        def counted_build(spec: Any, dest: Path, **kw: Any) -> Any:
            with open(count_file, "a") as fh:
                fh.write(f"{os.getpid()} {spec.name}\n")
            print("BUILDING", flush=True)
            return real_build(spec, dest, **kw)

        builder.build_entry = counted_build
        session = TinySession(load_manifest(), cache)
        variant = session.variants(args.get("fixture", "tiny_llama"))[0]
        session.key(variant.spec)  # warm the key computation (hashes builder code) before the start line
        wait_until(args.get("start_at", 0))
        t0 = time.perf_counter()
        res = session.ensure(variant)
        triple = session.load(variant).fresh()
        ids = triple.tokenizer("hello world", return_tensors="pt").input_ids
        logits = triple.model(ids).logits
        print("RESULT " + json.dumps({
            "pid": os.getpid(), "built": res.built, "waited": res.waited, "seconds": time.perf_counter() - t0,
            "digest": digest_tree(res.path), "verify": verify_entry(res.path), "logits": list(logits.shape),
            "logs": logs,
        }), flush=True)
    elif mode == "hold":
        key, label = args["key"], args.get("label", "")
        with cache._locked(key, label):
            print("LOCKED", flush=True)
            time.sleep(args.get("seconds", 3600.0))
        print("RESULT " + json.dumps({"pid": os.getpid(), "released": True}), flush=True)
    else:
        raise SystemExit(f"unknown worker mode {mode!r}")


def _install_die_point(die_at: str | None) -> None:
    """Make this process SIGKILL itself at a precise point of the build."""
    if not die_at:
        return

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    if die_at == "safetensors":  # half-way through writing model.safetensors
        import transformers.modeling_utils as mu
        from safetensors.torch import save as save_bytes

        def half_write(tensors: Any, filename: str, metadata: Any = None) -> None:
            data = save_bytes(tensors, metadata=metadata)
            with open(filename, "wb") as fh:
                fh.write(data[: len(data) // 2])
                fh.flush()
            die()

        mu.safe_save_file = half_write
    elif die_at == "marker":  # half-way through writing COMPLETE.json
        from pytest_tinymodels import cache as cache_mod

        def half_marker(entry: Path, key: str) -> None:
            (entry / (cache_mod.MARKER + ".tmp")).write_text('{"key": "' + key + '", "files": {')
            die()

        cache_mod.write_marker = half_marker
    elif die_at == "publish":  # complete marker written, just before the rename that publishes
        real_rename = os.rename

        def rename(src: Any, dst: Any, *a: Any, **kw: Any) -> None:
            if str(src).endswith(".incomplete"):
                die()
            real_rename(src, dst, *a, **kw)

        os.rename = rename  # type: ignore[assignment]
    else:
        raise SystemExit(f"unknown die point {die_at!r}")


# ----------------------------------------------------------------------------- parent side
def run_workers(cmds: list[list[str]], timeout: float = 600.0, env: dict[str, str] | None = None,
                barrier: Path | None = None) -> list[dict[str, Any]]:
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for c in cmds]
    if barrier is not None:
        release_barrier(barrier, procs)
    results = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        line = next((l for l in out.splitlines() if l.startswith("RESULT ")), None)
        if p.returncode != 0 or line is None:
            raise RuntimeError(f"worker failed (rc={p.returncode}):\n{out[-3000:]}\n{err[-3000:]}")
        results.append(json.loads(line[len("RESULT "):]))
    return results


def race_fake(base: Path, *, procs: int = 8, nkeys: int = 3, seconds: float = 0.05, rep: int = 0) -> dict[str, Any]:
    """``procs`` processes each get_or_build the same ``nkeys`` cold keys (in a different order)."""
    root, count_file = base / f"race{rep}" / "cache", base / f"race{rep}" / "builds.txt"
    root.parent.mkdir(parents=True)
    keys = [fake_key(f"{rep}-{i}") for i in range(nkeys)]
    barrier = root.parent / "barrier"
    cmds = []
    for i in range(procs):
        order = keys[i % nkeys:] + keys[: i % nkeys]
        cmds.append(worker_cmd("fake", root=str(root), count_file=str(count_file), keys=order,
                               start_at=str(barrier), seconds=seconds))
    t0 = time.perf_counter()
    results = run_workers(cmds, barrier=barrier)
    wall = time.perf_counter() - t0
    counts = count_builds(count_file)
    per_key: dict[str, set[str]] = {}
    built_flags: dict[str, int] = {}
    waits = []
    for r in results:
        for e in r["entries"]:
            per_key.setdefault(e["key"], set()).add(e["digest"])
            built_flags[e["key"]] = built_flags.get(e["key"], 0) + int(e["built"])
            waits.append(e["waited"])
            assert e["verify"] is None, e
    ok = (all(counts.get(k) == 1 for k in keys) and all(len(per_key[k]) == 1 for k in keys)
          and all(built_flags[k] == 1 for k in keys) and not leftovers(root))
    return {"ok": ok, "builds": counts, "distinct_digests": {k: len(v) for k, v in per_key.items()},
            "built_flags": built_flags, "max_wait": max(waits), "wall": wall, "leftovers": leftovers(root)}


def race_real(base: Path, *, procs: int = 8, rep: int = 0, fixture: str = "tiny_llama") -> dict[str, Any]:
    root, count_file = base / f"real{rep}" / "cache", base / f"real{rep}" / "builds.txt"
    root.parent.mkdir(parents=True)
    barrier = root.parent / "barrier"  # released once every process has imported torch/transformers
    cmds = [worker_cmd("real", root=str(root), count_file=str(count_file), start_at=str(barrier), fixture=fixture)
            for _ in range(procs)]
    t0 = time.perf_counter()
    results = run_workers(cmds, barrier=barrier)
    wall = time.perf_counter() - t0
    builds = sum(count_builds(count_file).values())
    digests = {r["digest"] for r in results}
    ok = (builds == 1 and len(digests) == 1 and sum(r["built"] for r in results) == 1
          and all(r["verify"] is None for r in results) and not leftovers(root))
    return {"ok": ok, "builds": builds, "distinct_digests": len(digests), "wall": wall,
            "max_seconds": max(r["seconds"] for r in results),
            "build_seconds": next(r["seconds"] for r in results if r["built"])}


def kill_trial(base: Path, *, trial: int, real: bool = False, die_at: str | None = None,
               max_delay: float = 0.4, seconds: float = 0.3) -> dict[str, Any]:
    """Start a build, SIGKILL it (at a random moment, or at ``die_at``), then check and rebuild."""
    root, count_file = base / f"kill{trial}" / "cache", base / f"kill{trial}" / "builds.txt"
    root.parent.mkdir(parents=True)
    key = fake_key(f"kill-{trial}")
    if real:
        cmd = worker_cmd("real", root=str(root), count_file=str(count_file), die_at=die_at)
    else:
        cmd = worker_cmd("fake", root=str(root), count_file=str(count_file), keys=[key], seconds=seconds, die_at=die_at,
                         linger=0 if die_at else 60)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    delay = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("BUILDING"):
            break
    if die_at is None:
        delay = random.uniform(0.0, max_delay)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=120)
    killed = proc.returncode == -signal.SIGKILL
    stderr_tail = proc.stderr.read()[-2000:] if proc.stderr is not None else ""
    entries = list((root / "entries").iterdir()) if (root / "entries").is_dir() else []
    partial = [e.name for e in entries if verify_entry(e) is not None]
    left_before = leftovers(root)
    # the dead builder's lock (the lock files it created: the key it was building) must be free at once
    probe = Cache(root, lock_timeout=5.0)
    held = sorted(p.stem for p in (root / "locks").glob("*.lock"))
    assert held, f"the killed builder took no lock in {root}"
    t0 = time.perf_counter()
    for held_key in held:
        with probe._locked(held_key, "probe"):
            pass
    lock_wait = time.perf_counter() - t0
    if real:
        res = run_workers([worker_cmd("real", root=str(root), count_file=str(count_file))])[0]
        rebuilt, digest_ok = res["built"], res["verify"] is None
    else:
        logs: list[str] = []
        cache = Cache(root, log=logs.append)
        r = cache.get_or_build(key, lambda d: fake_build(d, key, count_file, 0.0), label="fake")
        rebuilt, digest_ok = r.built, verify_entry(r.path) is None
    left_after = leftovers(root)
    keys_after = sorted(p.name for p in (root / "entries").iterdir())
    ok = killed and not partial and digest_ok and not left_after and lock_wait < 1.0
    return {"ok": ok, "killed": killed, "delay": delay, "die_at": die_at, "partial": partial,
            "published_before_kill": bool(entries), "leftover_before": len(left_before), "leftover_after": len(left_after),
            "rebuilt": rebuilt, "entries_after": len(keys_after), "lock_wait": lock_wait, **({"stderr": stderr_tail} if not ok else {})}


def pytest_race(base: Path, *, workers: int = 4, fixtures: tuple[str, ...] = ("tiny_llama", "tiny_gpt2")) -> dict[str, Any]:
    """Two concurrent ``pytest -n N`` sessions over one cold cache: each entry built once in total."""
    project = base / "project"
    project.mkdir(parents=True)
    cache = base / "cache"
    tests = "\n".join(
        f"def test_{i}({', '.join(fixtures)}):\n    assert {fixtures[0]}.model is not None\n" for i in range(2 * workers)
    )
    (project / "test_race.py").write_text(tests)
    env = dict(os.environ, PYTEST_TINYMODELS_CACHE=str(cache))
    cmd = [sys.executable, "-m", "pytest", "-n", str(workers), "-p", "no:cacheprovider", "-p", "no:randomly", "-q",
           "-o", "console_output_style=classic", str(project)]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    wall = time.perf_counter() - t0
    return summarize_pytest_race(outs, [p.returncode for p in procs], cache, len(fixtures)) | {"wall": wall}


def summarize_pytest_race(outs: list[str], codes: list[int], cache: Path, nfixtures: int) -> dict[str, Any]:
    built = reused = 0
    for out in outs:
        m = re.search(r"^(\d+) built \([\d.]+s\), (\d+) reused$", out, re.M)
        if m is None:
            raise RuntimeError(f"no tiny models summary in:\n{out[-4000:]}")
        built += int(m.group(1))
        reused += int(m.group(2))
    entries = sorted(p.name for p in (cache / "entries").iterdir())
    ok = (all(c == 0 for c in codes) and built == nfixtures and reused == nfixtures and len(entries) == nfixtures
          and not leftovers(cache) and all(verify_entry(cache / "entries" / e) is None for e in entries))
    return {"ok": ok, "codes": codes, "built_total": built, "reused_total": reused, "entries": len(entries)}


def verify_cost(base: Path) -> dict[str, Any]:
    from pytest_tinymodels.cache import entry_size
    from pytest_tinymodels.manifest import load_manifest
    from pytest_tinymodels.session import TinySession

    session = TinySession(load_manifest(), Cache(base / "cache"))
    res = session.ensure(session.variants("tiny_llama")[0])
    timings = {}
    for name, hashes in (("sizes+sha256", True), ("sizes only", False)):
        runs = []
        for _ in range(200):
            t0 = time.perf_counter()
            assert verify_entry(res.path, hashes=hashes) is None
            runs.append(time.perf_counter() - t0)
        timings[name] = {"median_ms": statistics.median(runs) * 1e3, "max_ms": max(runs) * 1e3}
    nfiles = sum(1 for p in res.path.rglob("*") if p.is_file())
    return {"ok": True, "entry_bytes": entry_size(res.path), "files": nfiles, **timings}


# ----------------------------------------------------------------------------- CLI
def _print(name: str, rows: list[dict[str, Any]]) -> bool:
    ok = all(r["ok"] for r in rows)
    print(f"== {name}: {len(rows)} run(s), {'all invariants held' if ok else 'FAILURES'}")
    for i, r in enumerate(rows):
        if not r["ok"] or len(rows) <= 3:
            print(f"   #{i}: {json.dumps(r, default=str)}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("worker")
    w.add_argument("mode")
    w.add_argument("args")
    for name in ("race", "real-race", "kill", "real-kill", "pytest-race", "verify", "all"):
        p = sub.add_parser(name)
        p.add_argument("--procs", type=int, default=8)
        p.add_argument("--reps", type=int, default=50 if name in ("race", "all") else 2)
        p.add_argument("--real-reps", type=int, default=2)
        p.add_argument("--trials", type=int, default=30 if name in ("kill", "all") else 6)
        p.add_argument("--real-trials", type=int, default=6)
        p.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    if args.cmd == "worker":
        worker(args.mode, json.loads(args.args))
        return 0
    ok = True
    with tempfile.TemporaryDirectory(prefix="tiny-stress-") as tmp:
        base = Path(tmp)
        src = snapshot_source(base)
        print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, python {sys.version.split()[0]}, "
              f"package snapshot {src}")
        if args.cmd in ("race", "all"):
            rows = [race_fake(base, procs=args.procs, rep=i) for i in range(args.reps)]
            ok &= _print(f"race: {args.procs} processes x 3 cold keys, fake builds", rows)
            walls = [r["wall"] for r in rows]
            builds = sum(sum(r["builds"].values()) for r in rows)
            print(f"   builds {builds} for {3 * args.reps} entries ({args.procs * 3 * args.reps} get_or_build calls); "
                  f"wall per race median {statistics.median(walls):.2f}s, max {max(walls):.2f}s; "
                  f"max lock wait {max(r['max_wait'] for r in rows):.2f}s")
        if args.cmd in ("real-race", "all"):
            reps = args.reps if args.cmd == "real-race" else args.real_reps
            rows = [race_real(base, procs=args.procs, rep=i) for i in range(reps)]
            ok &= _print(f"real-race: {args.procs} processes x tiny_llama through TinySession", rows)
        if args.cmd in ("kill", "all"):
            rows = [kill_trial(base, trial=i) for i in range(args.trials)]
            ok &= _print("kill: fake builds SIGKILLed at a random moment", rows)
            print(f"   killed {sum(r['killed'] for r in rows)}/{len(rows)} "
                  f"({sum(not r['published_before_kill'] for r in rows)} before publishing), partial entries seen "
                  f"{sum(len(r['partial']) for r in rows)}, temp dirs left by the kill {sum(r['leftover_before'] for r in rows)}, "
                  f"after the next build {sum(r['leftover_after'] for r in rows)}; "
                  f"dead holder's lock taken in max {max(r['lock_wait'] for r in rows) * 1e3:.1f} ms")
        if args.cmd in ("real-kill", "all"):
            trials = args.trials if args.cmd == "real-kill" else args.real_trials
            points: list[str | None] = ["safetensors", "marker", "publish"]
            rows = [kill_trial(base, trial=1000 + i, real=True, die_at=(points[i] if i < len(points) else None),
                               max_delay=2.0) for i in range(trials)]
            ok &= _print("real-kill: real tiny_llama builds SIGKILLed (safetensors/marker/publish, then random)", rows)
            for r in rows:
                delay = f"{r['delay']:.2f}s" if r["delay"] is not None else None
                print(f"   die_at={r['die_at']} delay={delay} killed={r['killed']} "
                      f"published_before_kill={r['published_before_kill']} partial={r['partial']} "
                      f"leftover {r['leftover_before']}->{r['leftover_after']} rebuilt={r['rebuilt']} "
                      f"entries_after={r['entries_after']} "
                      f"lock {r['lock_wait'] * 1e3:.1f} ms")
        if args.cmd in ("pytest-race", "all"):
            rows = [pytest_race(base / f"pyrace{i}", workers=args.workers) for i in range(1 if args.cmd == "all" else args.reps)]
            ok &= _print(f"pytest-race: two `pytest -n {args.workers}` sessions, one cold cache", rows)
        if args.cmd in ("verify", "all"):
            ok &= _print("verify: verify_entry on tiny_llama", [verify_cost(base)])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
