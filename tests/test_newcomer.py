"""A newcomer's first hour (issue 12): the README's two commands are what CI runs, and a text fixture
needs no image library."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Runs in a fresh interpreter where the path finder cannot see PIL: as in a virtual environment
#: without pillow, ``import PIL`` fails and ``importlib.util.find_spec("PIL")`` is None.
_WITHOUT_PIL = """
import importlib.machinery, sys
_find = importlib.machinery.PathFinder.find_spec.__func__
def find_spec(cls, name, path=None, target=None):
    if name == "PIL" or name.startswith("PIL."):
        return None
    return _find(cls, name, path, target)
importlib.machinery.PathFinder.find_spec = classmethod(find_spec)
"""


def readme_commands() -> list[str]:
    """The README's two commands: the first two command lines of its first shell block."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"^```(?:bash|sh|console)\n(.*?)^```", text, re.S | re.M)
    assert block, "README.md has no shell code block"
    lines = [line.strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line and not line.startswith("#")][:2]


def test_ci_runs_the_readme_commands_literally_in_order_in_a_fresh_venv() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = readme_commands()
    assert len(commands) == 2
    positions = []
    for command in commands:
        assert command in ci, f"README command not run verbatim by .ci/run: {command}"
        positions.append(ci.index(command))
    assert positions[0] < positions[1], "command 1 must run before the test extra is installed"
    venv = ci.index("-m venv")
    activate = ci.index("/bin/activate")
    assert venv < activate < positions[0], ".ci/run must activate a fresh virtual environment first"
    before = ci[:positions[0]]
    assert "pip install" not in before.replace("\\\n", " "), "nothing may be installed before README command 1"


def test_readme_says_how_long_the_test_command_takes() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Two commands"):text.index("## Built-in fixtures")]
    assert re.search(r"\d+ min", section), "the two-commands section must say how long command 2 takes"


@pytest.mark.slow
def test_text_fixtures_build_and_run_without_pil(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    code = _WITHOUT_PIL + """
from pytest_tinymodels import get_fixture
for name in ("tiny_llama", "tiny_gpt2", "tiny_bert", "tiny_t5"):
    model, tokenizer, dataset = get_fixture(name)
    batch = tokenizer(dataset[0]["text"], return_tensors="pt")
    if model.config.is_encoder_decoder:
        batch["decoder_input_ids"] = batch["input_ids"][:, :2]
    model(**batch)
assert "PIL" not in sys.modules
print("ok")
"""
    env = {"PYTEST_TINYMODELS_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={**_base_env(), **env}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


def test_image_fixture_without_pil_says_what_to_install(tmp_path: Path) -> None:
    """Without pillow, an image fixture fails with an error naming the library, not a cut-off hint."""
    pytest.importorskip("torch")
    manifest = tmp_path / "fixtures.toml"
    manifest.write_text('[fixtures.tiny_vit]\nmodel_type = "vit"\ntask = "image-classification"\n')
    code = _WITHOUT_PIL + f"""
from pytest_tinymodels import get_fixture
from pytest_tinymodels.errors import TinyModelsError
try:
    get_fixture("tiny_vit", manifest={str(manifest)!r})
except TinyModelsError as exc:
    print("ERROR", exc)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={**_base_env(), "PYTEST_TINYMODELS_CACHE": str(tmp_path / "cache")}, timeout=600)
    assert "ERROR" in proc.stdout, proc.stderr[-2000:]
    assert "pillow" in proc.stdout.lower()


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTEST_TINYMODELS_CACHE"}
