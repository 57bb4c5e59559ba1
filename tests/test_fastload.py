"""The warm load path (issue 17): gc.freeze() before the first load, and the fast loader against from_pretrained."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: get_fixture in a fresh interpreter (the freeze is once per process); prints the freeze count before and after.
FREEZE_CHILD = """
import gc, json, sys
before = gc.get_freeze_count()
from pytest_tinymodels import get_fixture
triple = get_fixture("tiny_llama", cache_dir=sys.argv[1])
print(json.dumps({"before": before, "after": gc.get_freeze_count(), "model": type(triple.model).__name__}))
"""


def _freeze_counts(cache: Path, env_value: str | None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), HF_HUB_OFFLINE="1")
    env.pop("PYTEST_TINYMODELS_GC_FREEZE", None)
    if env_value is not None:
        env["PYTEST_TINYMODELS_GC_FREEZE"] = env_value
    proc = subprocess.run([sys.executable, "-c", FREEZE_CHILD, str(cache)], capture_output=True, text=True, env=env,
                          cwd=str(ROOT), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_first_load_freezes_the_import_objects(shared_cache: Path) -> None:
    counts = _freeze_counts(shared_cache, None)
    assert counts["model"] == "LlamaForCausalLM"
    assert counts["before"] == 0
    # torch + transformers + datasets leave several hundred thousand objects: all of them are frozen
    assert counts["after"] > 100_000


def test_gc_freeze_opt_out(shared_cache: Path) -> None:
    counts = _freeze_counts(shared_cache, "0")
    assert counts["model"] == "LlamaForCausalLM"
    assert counts["after"] == 0


def test_freeze_runs_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from pytest_tinymodels import loader

    calls = []
    monkeypatch.setattr(loader, "_gc_frozen", False)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append(1))
    monkeypatch.delenv(loader.GC_FREEZE_ENV, raising=False)
    assert loader.freeze_import_garbage() is True
    assert loader.freeze_import_garbage() is False
    assert calls == [1]
