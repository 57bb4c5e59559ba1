"""Lock files (issue 12.2): ``python -m pytest_tinymodels lock`` records entry digests and library versions;
``--tiny-lock-check`` fails the tests whose entry changed, naming the fixture and the libraries that changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_tinymodels import lockfile
from pytest_tinymodels.cache import write_marker

KEY = "0123456789abcdef01234567"
LIBS = {"transformers": "5.25.0", "tokenizers": "0.23.3", "torch": "2.13.0"}
BUILDER = {"code": "c0de", "corpus": "c0rpus"}
SPEC = {"model_type": "gpt2", "dtype": "float32", "config": {}}


def fake_entry(root: Path, *, weights: bytes = b"w" * 64, version: str = "5.25.0", seconds: float = 0.1) -> Path:
    entry = root / "entry"
    (entry / "repo").mkdir(parents=True, exist_ok=True)
    (entry / "repo" / "model.safetensors").write_bytes(weights)
    (entry / "repo" / "config.json").write_text(json.dumps({"n_embd": 8, "transformers_version": version}, indent=2))
    (entry / "recipe.json").write_text(json.dumps({"timings": {"total": seconds}}))
    (entry / "COMPLETE.json").unlink(missing_ok=True)
    write_marker(entry, KEY)
    return entry


def test_digest_ignores_timings_and_version_stamps_but_not_content(tmp_path: Path) -> None:
    first = lockfile.entry_state(KEY, fake_entry(tmp_path), SPEC)
    assert set(first.files) == {"repo/model.safetensors", "repo/config.json"}, "recipe.json and the marker are left out"
    again = lockfile.entry_state(KEY, fake_entry(tmp_path, seconds=9.9, version="5.26.0.dev0"), SPEC)
    assert again.digest == first.digest, "build timings and transformers' own version stamp change no model"
    changed = lockfile.entry_state(KEY, fake_entry(tmp_path, weights=b"x" * 64), SPEC)
    assert changed.digest != first.digest and changed.files["repo/config.json"] == first.files["repo/config.json"]


def test_lock_file_is_sorted_stable_json(tmp_path: Path) -> None:
    state = lockfile.entry_state(KEY, fake_entry(tmp_path), SPEC)
    path = tmp_path / "tinymodels.lock"
    lockfile.write_lock(path, {"tiny_b": state, "tiny_a": state}, LIBS, BUILDER)
    text = path.read_text()
    lockfile.write_lock(path, {"tiny_a": state, "tiny_b": state}, dict(reversed(LIBS.items())), BUILDER)
    assert path.read_text() == text
    data = json.loads(text)
    assert list(data["entries"]) == ["tiny_a", "tiny_b"] and data["libraries"] == LIBS
    assert data["entries"]["tiny_a"]["digest"] == state.digest
    lock = lockfile.read_lock(path)
    assert lock.libraries == LIBS and lockfile.is_locked(lock, "tiny_a") and not lockfile.is_locked(lock, "tiny_c")


def test_check_explains_what_changed(tmp_path: Path) -> None:
    path = tmp_path / "tinymodels.lock"
    lockfile.write_lock(path, {"tiny_x": lockfile.entry_state(KEY, fake_entry(tmp_path), SPEC)}, LIBS, BUILDER)
    lock = lockfile.read_lock(path)
    same = lockfile.entry_state(KEY, fake_entry(tmp_path), SPEC)
    upgraded = dict(LIBS, transformers="5.26.0")
    assert lockfile.check_entry(lock, "tiny_x", same, upgraded, BUILDER) is None, "same bytes: no failure"
    assert lockfile.check_entry(lock, "tiny_other", same, LIBS, BUILDER) is None, "not locked: not checked"

    new_weights = lockfile.entry_state(KEY, fake_entry(tmp_path, weights=b"y" * 64), SPEC)
    message = lockfile.check_entry(lock, "tiny_x", new_weights, upgraded, BUILDER)
    assert message is not None
    assert "tiny fixture tiny_x" in message and "repo/model.safetensors" in message and "repo/config.json" not in message
    assert "transformers 5.25.0 -> 5.26.0" in message and "tokenizers" not in message
    assert str(path) in message and "python -m pytest_tinymodels lock" in message

    new_spec = lockfile.entry_state(KEY, fake_entry(tmp_path, weights=b"y" * 64), dict(SPEC, dtype="bfloat16"))
    message = lockfile.check_entry(lock, "tiny_x", new_spec, LIBS, BUILDER)
    assert message is not None and 'its spec changed: dtype "float32" -> "bfloat16"' in message
    message = lockfile.check_entry(lock, "tiny_x", new_weights, LIBS, dict(BUILDER, code="other"))
    assert message is not None and "builder's code changed" in message
    message = lockfile.check_entry(lock, "tiny_x", new_weights, LIBS, BUILDER)
    assert message is not None and "not reproducible" in message


def test_unusable_lock_files_name_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(lockfile.LockFileError, match=r"not found; create it with: python -m pytest_tinymodels lock"):
        lockfile.read_lock(tmp_path / "missing.lock")
    bad = tmp_path / "bad.lock"
    bad.write_text("{not json")
    with pytest.raises(lockfile.LockFileError, match="cannot be read"):
        lockfile.read_lock(bad)
    bad.write_text(json.dumps({"format": 99, "entries": {}}))
    with pytest.raises(lockfile.LockFileError, match="not a pytest-tinymodels lock file"):
        lockfile.read_lock(bad)


MANIFEST = """
[fixtures.lock_gpt2]
model_type = "gpt2"
dataset = { rows = 4 }

[fixtures.lock_lm]
task = "causal-lm"
architectures = ["gpt2", "llama"]
dataset = { rows = 4 }
"""

TESTS = """
def test_gpt2(lock_gpt2):
    assert lock_gpt2.model is not None

def test_lm(lock_lm):
    pass
"""


def test_lock_command_then_check_in_pytest(pytester: pytest.Pytester, cache_env: Path, preloaded_libraries: None,
                                           capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_tinymodels.cli import main

    manifest = pytester.makefile(".toml", fixtures=MANIFEST)
    pytester.makepyfile(test_locked=TESTS)
    monkeypatch.chdir(pytester.path)
    # no names: every non-parametrized fixture (the built-ins too); a parametrized one only when named
    assert main(["lock"]) == 0
    lock_path = pytester.path / "tinymodels.lock"
    assert list(json.loads(lock_path.read_text())["entries"]) == ["lock_gpt2", "tiny_bert", "tiny_gpt2", "tiny_llama",
                                                                  "tiny_llama_trained", "tiny_t5"]
    lock_path.unlink()
    assert main(["lock", "lock_gpt2"]) == 0
    assert list(json.loads(lock_path.read_text())["entries"]) == ["lock_gpt2"]
    assert main(["lock", "lock_lm", "--arch", "gpt2"]) == 0
    out = capsys.readouterr().out
    assert "locked 2 entries in" in out
    data = json.loads(lock_path.read_text())
    assert list(data["entries"]) == ["lock_gpt2", "lock_lm[gpt2]"], "entries already locked are kept"
    assert data["libraries"]["transformers"]

    passed = pytester.runpytest("-p", "no:cacheprovider", "--tiny-lock-check")
    passed.assert_outcomes(passed=3)
    passed.stdout.fnmatch_lines(["*tiny lock*", "*tinymodels.lock: 2 entries match, 0 differ",
                                 "not in the lock, not checked: lock_lm[[]llama[]]*"])

    # as if the lock had been written by an older transformers that built other weights
    data["libraries"]["transformers"] = "4.0.0"
    data["entries"]["lock_gpt2"]["digest"] = "0" * 64
    data["entries"]["lock_gpt2"]["files"]["repo/model.safetensors"] = "0" * 16
    lock_path.write_text(json.dumps(data))
    failed = pytester.runpytest("-p", "no:cacheprovider", "--tiny-lock-check")
    failed.assert_outcomes(passed=2, errors=1)
    text = failed.stdout.str()
    assert "tiny fixture lock_gpt2: the built entry differs from the lock file" in text
    assert "changed: repo/model.safetensors" in text
    from pytest_tinymodels.cache import library_versions

    assert f"transformers 4.0.0 -> {library_versions()['transformers']}" in text
    failed.stdout.fnmatch_lines(["*1 entries match, 1 differ (lock_gpt2)"])

    # the same lock through the ini file, and a missing lock file is a usage error
    pytester.makeini("[pytest]\ntiny_lock = tinymodels.lock\n")
    pytester.runpytest("-p", "no:cacheprovider", "-k", "test_gpt2").assert_outcomes(errors=1)
    pytester.makeini("[pytest]\ntiny_lock = elsewhere.lock\n")
    missing = pytester.runpytest("-p", "no:cacheprovider")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
    assert "elsewhere.lock not found; create it with: python -m pytest_tinymodels lock" in missing.stderr.str()
    assert manifest.exists()
