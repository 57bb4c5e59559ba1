"""The package's layout: no import cycle, no heavy library at module top level, every module importable
first in a fresh interpreter (so no module depends on another having been imported before it)."""

from __future__ import annotations

import json
import subprocess
import sys

import layoutcheck

HEAVY_RUNTIME = ("torch", "transformers", "tokenizers", "datasets", "huggingface_hub", "PIL", "safetensors")


def test_no_import_cycle() -> None:
    edges, _ = layoutcheck.graph()
    assert layoutcheck.cycles(edges) == []


def test_no_heavy_library_at_module_top_level() -> None:
    _, heavy = layoutcheck.graph()
    assert heavy == []


def test_the_checker_finds_a_cycle_and_a_heavy_import(tmp_path, monkeypatch) -> None:
    pkg = tmp_path / layoutcheck.PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\nimport torch\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n    from . import a\n")
    monkeypatch.setattr(layoutcheck, "ROOT", pkg)
    edges, heavy = layoutcheck.graph()
    assert layoutcheck.cycles(edges) == [[f"{layoutcheck.PACKAGE}.a", f"{layoutcheck.PACKAGE}.sub.b"]]
    assert len(heavy) == 1 and "a.py:2: imports torch" in heavy[0]
    assert edges[f"{layoutcheck.PACKAGE}.c"] == set()  # TYPE_CHECKING imports never run


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    names = sorted(layoutcheck.modules())
    script = f"""
import importlib, json, subprocess, sys
names = {names!r}
heavy = {HEAVY_RUNTIME!r}
out = {{}}
for first in names:
    code = ("import importlib, json, sys\\n"
            f"importlib.import_module({{first!r}})\\n"
            f"loaded = [h for h in {{heavy!r}} if h in sys.modules]\\n"
            f"for name in reversed({{names!r}}): importlib.import_module(name)\\n"
            "print(json.dumps(loaded))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    out[first] = proc.stdout.strip() if proc.returncode == 0 else "ERROR " + proc.stderr.strip()[-400:]
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    results = json.loads(proc.stdout)
    errors = {k: v for k, v in results.items() if v.startswith("ERROR")}
    assert errors == {}
    heavy = {k: json.loads(v) for k, v in results.items() if json.loads(v)}
    assert heavy == {}, "importing these modules loads a heavy library"
