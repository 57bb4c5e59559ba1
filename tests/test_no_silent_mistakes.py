"""Issue 12.3, "no silent mistakes" of the command line: clean leaves no lock files, coverage writes
nowhere it was not asked to, serve stops cleanly on a SIGTERM sent during its start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from filelock import FileLock

from pytest_tinymodels.cache import Cache

KEY = "0123456789abcdef01234567"
OTHER = "89abcdef0123456789abcdef"
BUSY = "aaaaaaaaaaaaaaaaaaaaaaaa"


def _build(dest: Path) -> None:
    (dest / "repo").mkdir()
    (dest / "repo" / "model.safetensors").write_bytes(b"w" * 100)


def test_clean_removes_lock_files_but_not_a_held_one(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    cache.get_or_build(KEY, _build)
    cache.get_or_build(OTHER, _build)
    locks = cache.root / "locks"
    assert {p.name for p in locks.iterdir()} == {f"{KEY}.lock", f"{OTHER}.lock"}
    holder = FileLock(str(cache.lock_path(BUSY)))  # a live builder of another entry
    holder.acquire()
    try:
        (locks / f"{BUSY}.owner").write_text('{"pid": 1, "host": "h"}')
        assert cache.clean() == 2
        assert {p.name for p in locks.iterdir()} == {f"{BUSY}.lock", f"{BUSY}.owner"}, "only the held lock stays"
    finally:
        holder.release()
    assert cache.clean_locks() == [] and list(locks.iterdir()) == []
    # a lock file removed under a waiter: the next build takes a fresh lock file and works
    cache.get_or_build(KEY, _build)
    assert cache.lock_path(KEY).exists()


def test_cli_clean_names_leave_no_lock_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_tinymodels.cli import main

    cache = Cache(tmp_path / "cache")
    cache.get_or_build(KEY, _build)
    assert cache.remove(KEY)
    assert not cache.lock_path(KEY).exists()
    cache.get_or_build(KEY, _build)
    assert main(["clean", "--cache-dir", str(cache.root)]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert list((cache.root / "locks").iterdir()) == []


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_tinymodels", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def test_coverage_writes_to_a_temporary_dir_not_the_working_dir(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    proc = run_cli("coverage", "--task", "causal-lm", "--include", "gpt2", "-q", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert list(work.iterdir()) == [], "coverage must not write into the working directory"
    wrote = proc.stdout.strip().splitlines()[-1]
    assert wrote.startswith("wrote ")
    out = Path(wrote.split()[1]).parent
    try:
        assert (out / "COVERAGE.md").is_file() and (out / "coverage.json").is_file()
        assert "GPT2LMHeadModel" in (out / "COVERAGE.md").read_text() or "gpt2" in (out / "COVERAGE.md").read_text()
    finally:
        import shutil

        shutil.rmtree(out, ignore_errors=True)


def test_coverage_pattern_matching_nothing_is_an_error(tmp_path: Path) -> None:
    proc = run_cli("coverage", "--task", "causal-lm", "--include", "lama", "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "--include 'lama' matches no architecture of task causal-lm" in proc.stderr and "llama" in proc.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("size", "message"), [("hiden=8", "did you mean 'hidden'"), ("hidden", "is not KIND=N"),
                                             ("hidden=0", "positive integer")])
def test_coverage_mistyped_size_is_an_error(tmp_path: Path, size: str, message: str) -> None:
    proc = run_cli("coverage", "--task", "causal-lm", "--size", size, "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert proc.returncode == 2 and "--size" in proc.stderr and message in proc.stderr, proc.stderr
    assert not (tmp_path / "o").exists()


def test_coverage_at_a_size(tmp_path: Path) -> None:
    proc = run_cli("coverage", "--task", "causal-lm", "--include", "llama", "--size", "hidden=8", "-q", "--out",
                   str(tmp_path / "o"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = __import__("json").loads((tmp_path / "o" / "coverage.json").read_text())
    assert report["meta"]["size"] == {"hidden": 8}
    row = next(r for r in report["results"] if r["class_name"] == "LlamaForCausalLM")
    assert row["forward"] and row["params"] < 40_000, row  # 8 wide: ~35k parameters against ~160k at 64


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_serve_stops_cleanly_on_sigterm_during_its_start(tmp_path: Path) -> None:
    """A SIGTERM sent right after start (while the manifest is read and transformers imported) stops
    ``serve`` with status 0 and removes its temporary files, instead of killing it (status 143)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(TMPDIR=str(tmp), PYTEST_TINYMODELS_CACHE=str(tmp_path / "cache"))
    server = subprocess.Popen([sys.executable, "-m", "pytest_tinymodels", "serve", "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        first = server.stderr.readline()
        assert "starting the tiny hub" in first, first
        start = time.perf_counter()
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 0, (server.returncode, err)
    assert "stopped" in err and "Traceback" not in err, err
    assert "serving the tiny hub" not in out, "the SIGTERM came during the start, before the port was bound"
    assert time.perf_counter() - start < 30
    assert list(tmp.iterdir()) == [], "temporary files left behind"
