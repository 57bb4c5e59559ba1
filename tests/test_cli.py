"""``python -m pytest_tinymodels list|build|show|clean`` against a real cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_tinymodels.cli import main


def run_cli(*args: str) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "pytest_tinymodels", *args], capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def test_build_list_show_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = str(tmp_path / "cache")
    manifest = tmp_path / "fixtures.toml"
    manifest.write_text('[fixtures.cli_gpt2]\nmodel_type = "gpt2"\ndataset = { rows = 4 }\n')
    common = ["--cache-dir", cache, "--manifest", str(manifest)]

    assert main(["list", *common, "--json"]) == 0
    rows = {r["fixture"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["cli_gpt2"]["cached"] is False and "tiny_llama" in rows

    assert main(["build", *common, "cli_gpt2"]) == 0
    out = capsys.readouterr().out
    assert "cli_gpt2" in out and "built in" in out

    assert main(["build", *common, "cli_gpt2"]) == 0
    assert "cached" in capsys.readouterr().out

    assert main(["show", *common, "cli_gpt2"]) == 0
    shown = capsys.readouterr().out
    recipe = json.loads(shown.split("\n", 1)[1])
    assert recipe["architecture"] == "GPT2LMHeadModel"
    assert recipe["spec"]["dataset"]["rows"] == 4
    assert set(recipe["versions"]) >= {"transformers", "tokenizers", "datasets", "torch"}

    assert main(["list", *common, "--json"]) == 0
    rows = {r["fixture"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["cli_gpt2"]["cached"] is True and rows["cli_gpt2"]["size"] > 0

    assert main(["clean", *common, "cli_gpt2"]) == 0
    assert "removed 1" in capsys.readouterr().out
    assert main(["show", *common, "cli_gpt2"]) == 1
    assert "not built yet" in capsys.readouterr().err


def test_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    manifest = tmp_path / "fixtures.toml"
    manifest.write_text("[fixtures.x]\nmodel_typ = 'llama'\n")
    code, _, err = run_cli("list", "--manifest", str(manifest), "--cache-dir", str(tmp_path / "c"))
    assert code == 2
    assert "fixtures.toml" in err and "'model_typ'" in err and "Traceback" not in err
    code, _, err = run_cli("show", "no_such_fixture", "--cache-dir", str(tmp_path / "c"))
    assert code == 2 and "no tiny fixture named 'no_such_fixture'" in err


def test_failed_build_exit_code_and_traceback(tmp_path: Path) -> None:
    manifest = tmp_path / "fixtures.toml"
    manifest.write_text('[fixtures.bad]\nmodel_type = "llama"\nconfig = { hidden_act = "no_such_activation" }\n')
    code, _, err = run_cli("build", "bad", "--manifest", str(manifest), "--cache-dir", str(tmp_path / "c"), "--traceback")
    assert code == 1
    assert "FAILED bad" in err and "no_such_activation" in err and "Traceback" in err
