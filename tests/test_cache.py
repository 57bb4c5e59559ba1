"""Unit tests of the cache (in-process, cheap fake builds): keys, publish, corruption, cleanup,
disk-full and read-only handling, permissions."""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from pytest_tinymodels import cache as cache_mod
from pytest_tinymodels.cache import MARKER, Cache, cache_key, fallback_dir, verify_entry, write_marker
from pytest_tinymodels.errors import BuildError, CacheError

KEY = "0123456789abcdef01234567"
OTHER = "fedcba9876543210fedcba98"


def fake_build(calls: list[Path] | None = None, payload: bytes = b"weights" * 100):
    """A deterministic build writing a hub-like layout; records each call in ``calls``."""

    def build(dest: Path) -> None:
        if calls is not None:
            calls.append(dest)
        (dest / "repo").mkdir()
        (dest / "repo" / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 16}))
        (dest / "repo" / "model.safetensors").write_bytes(payload)
        (dest / "dataset").mkdir()
        (dest / "dataset" / "data-00000-of-00001.arrow").write_bytes(b"arrow" * 50)
        (dest / "recipe.json").write_text("{}")

    return build


@pytest.fixture
def logs() -> list[str]:
    return []


@pytest.fixture
def cache(tmp_path: Path, logs: list[str]) -> Cache:
    return Cache(tmp_path / "cache", log=logs.append, fallback_root=tmp_path / "fallback")


# -- keys and paths ------------------------------------------------------------------------------
def test_stat_memo_reuses_only_settled_unchanged_files(tmp_path: Path) -> None:
    calls: list[str] = []
    source, absent = tmp_path / "source.py", tmp_path / "absent.py"
    source.write_text("one")
    memo = tmp_path / "cache" / "memo" / "m.json"
    memo.parent.parent.mkdir()  # memos live in an existing cache root

    def compute() -> dict[str, str]:
        calls.append(source.read_text())
        return {"digest": source.read_text()}

    def settle(path: Path, seconds_ago: float = 60.0) -> None:
        past = time.time_ns() - int(seconds_ago * 1e9)
        os.utime(path, ns=(past, past))

    assert cache_mod.stat_memo(memo, [source, absent], compute) == {"digest": "one"}
    assert cache_mod.stat_memo(memo, [source, absent], compute) == {"digest": "one"}
    assert calls == ["one", "one"]  # just written: not settled, so not trusted
    settle(source)
    cache_mod.stat_memo(memo, [source, absent], compute)
    assert cache_mod.stat_memo(memo, [source, absent], compute) == {"digest": "one"} and len(calls) == 3
    source.write_text("two")  # an edit moves the mtime
    assert cache_mod.stat_memo(memo, [source, absent], compute) == {"digest": "two"}
    settle(source)
    cache_mod.stat_memo(memo, [source, absent], compute)
    absent.write_text("")  # a file that appears changes the signature too
    assert cache_mod.stat_memo(memo, [source, absent], compute) == {"digest": "two"} and len(calls) == 6
    memo.write_text("{not json")
    assert cache_mod.stat_memo(memo, [source, absent], compute) == {"digest": "two"} and len(calls) == 7
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")  # a cache where the memo cannot be written only loses the memo
    assert cache_mod.stat_memo(blocker / "memo" / "m.json", [source], compute) == {"digest": "two"}
    assert len(calls) == 8


def test_library_versions_memo_follows_installs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    (site / "foo-1.0.dist-info").mkdir(parents=True)
    monkeypatch.setattr(cache_mod, "KEY_LIBRARIES", ("foo",))
    monkeypatch.setattr("sys.path", [str(site)])
    monkeypatch.setattr(cache_mod, "MEMO_SETTLE_NS", 0)
    cache_mod._library_versions.cache_clear()
    assert cache_mod.library_versions(tmp_path / "cache") == {"foo": "1.0"}
    (site / "foo-1.0.dist-info").rename(site / "foo-2.0.dist-info")  # an upgrade renames the entry
    os.utime(site, ns=(1, 1))  # even where the new mtime is not newer: the signature differs
    cache_mod._library_versions.cache_clear()
    assert cache_mod.library_versions(tmp_path / "cache") == {"foo": "2.0"}
    cache_mod._library_versions.cache_clear()


def test_library_versions_from_dist_info_names_match_importlib_metadata(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    first, second = tmp_path / "first", tmp_path / "second"
    for root, project, version in ((first, "Foo_Bar", "1.2.3"), (second, "foo_bar", "9.9"), (second, "baz", "2.0rc1")):
        info = root / f"{project}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n\nbody\n")
    monkeypatch.setattr("sys.path", [str(tmp_path / "missing"), str(first), str(second)])
    found = cache_mod._dist_info_versions(("foo-bar", "baz", "absent"))
    assert found == {"foo-bar": "1.2.3", "baz": "2.0rc1"}  # the first path entry wins, as for importlib
    assert found == {n: metadata.version(n) for n in ("foo-bar", "baz")}
    # the installed libraries, both ways
    monkeypatch.undo()
    real = cache_mod._dist_info_versions(cache_mod.KEY_LIBRARIES)
    assert {n: v for n, v in real.items() if n != "pytest-tinymodels"} == {
        n: metadata.version(n) for n in real if n != "pytest-tinymodels"}
    assert {"torch", "transformers", "tokenizers"} <= set(real)


def test_keys_are_hashes_and_never_paths(cache: Cache) -> None:
    key = cache_key({"model_type": "llama", "name": "../../etc"}, versions={"x": "1"})
    assert len(key) == 24 and set(key) <= set("0123456789abcdef")
    assert key == cache_key({"name": "../../etc", "model_type": "llama"}, versions={"x": "1"})  # order-free
    assert key != cache_key({"model_type": "llama", "name": "../../etc"}, versions={"x": "2"})
    assert cache.entry_dir(key).parent == cache.root / "entries"
    for bad in ("../x", "a/b", "", "ABCDEF0123456789", "0123456789abcdef/..", "..", "0" * 65, "0123456789abcdef\n"):
        with pytest.raises(ValueError, match="invalid cache key"):
            cache.entry_dir(bad)
        with pytest.raises(ValueError):
            cache.get_or_build(bad, fake_build())
    assert not cache.root.exists()


# -- build once, reuse, failure ------------------------------------------------------------------
def test_build_once_then_reuse(cache: Cache) -> None:
    calls: list[Path] = []
    first = cache.get_or_build(KEY, fake_build(calls), label="tiny")
    assert first.built and first.path == cache.entry_dir(KEY) and first.size > 0 and first.repaired is None
    assert verify_entry(first.path) is None
    second = cache.get_or_build(KEY, fake_build(calls), label="tiny")
    assert not second.built and second.path == first.path
    assert len(calls) == 1
    assert calls[0].parent == cache.root / "tmp" and calls[0].name.endswith(".incomplete")
    assert list((cache.root / "tmp").iterdir()) == []
    marker = json.loads((first.path / MARKER).read_text())
    assert marker["key"] == KEY and set(marker["files"]) == {
        "repo/config.json", "repo/model.safetensors", "dataset/data-00000-of-00001.arrow", "recipe.json"}


def test_failed_build_leaves_nothing(cache: Cache) -> None:
    def broken(dest: Path) -> None:
        (dest / "half.safetensors").write_bytes(b"x" * 10)
        raise BuildError("boom", fixture="tiny", stage="model")

    with pytest.raises(BuildError, match="boom"):
        cache.get_or_build(KEY, broken)
    assert not cache.entry_dir(KEY).exists()
    assert list((cache.root / "tmp").iterdir()) == []
    assert cache.get_or_build(KEY, fake_build()).built


def test_rebuild_once_per_run(cache: Cache) -> None:
    calls: list[Path] = []
    cache.get_or_build(KEY, fake_build(calls))
    assert cache.get_or_build(KEY, fake_build(calls), rebuild=True, run_id="run1").built
    assert not cache.get_or_build(KEY, fake_build(calls), rebuild=True, run_id="run1").built
    assert cache.get_or_build(KEY, fake_build(calls), rebuild=True, run_id="run2").built
    assert len(calls) == 3
    assert list((cache.root / "entries").iterdir()) == [cache.entry_dir(KEY)]
    assert not any((cache.root / "trash").iterdir())


# -- corruption ----------------------------------------------------------------------------------
def _truncate(entry: Path) -> None:
    path = entry / "repo" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:10])


def _delete(entry: Path) -> None:
    (entry / "dataset" / "data-00000-of-00001.arrow").unlink()


def _flip_byte(entry: Path) -> None:  # same size: only the hash can tell
    path = entry / "repo" / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[5] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_config(entry: Path) -> None:
    path = entry / "repo" / "config.json"
    config = json.loads(path.read_text())
    config["hidden_size"] = 99  # same length as 16
    path.write_text(json.dumps(config))


def _break_marker(entry: Path) -> None:
    (entry / MARKER).write_text("{not json")


def _drop_marker(entry: Path) -> None:
    (entry / MARKER).unlink()


def _marker_escapes(entry: Path) -> None:
    data = json.loads((entry / MARKER).read_text())
    data["files"]["../../../etc/passwd"] = {"size": 1, "sha256": "0"}
    (entry / MARKER).write_text(json.dumps(data))


def _add_pickle(entry: Path) -> None:
    (entry / "repo" / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")


def _add_file(entry: Path) -> None:
    (entry / "repo" / "adapter_config.json").write_text("{}")


def _add_symlink(entry: Path) -> None:
    (entry / "repo" / "tokenizer.json").symlink_to("/etc/hostname")


def _replace_by_symlink(entry: Path) -> None:
    path = entry / "repo" / "config.json"
    target = entry.parent.parent / "elsewhere.json"
    target.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(target)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_truncate, "model.safetensors has 10 bytes"),
        (_delete, "missing file dataset/data-00000-of-00001.arrow"),
        (_flip_byte, "repo/model.safetensors was modified"),
        (_edit_config, "repo/config.json was modified"),
        (_break_marker, "unreadable completion marker"),
        (_drop_marker, "no completion marker"),
        (_marker_escapes, "unreadable completion marker"),
        (_add_pickle, "unexpected pickle-based file repo/pytorch_model.bin"),
        (_add_file, "unexpected file repo/adapter_config.json"),
        (_add_symlink, "unexpected symbolic link repo/tokenizer.json"),
        (_replace_by_symlink, "repo/config.json is not a regular file"),
    ],
)
def test_damaged_entry_is_detected_and_rebuilt(cache: Cache, logs: list[str], damage, reason: str) -> None:
    entry = cache.get_or_build(KEY, fake_build(), label="tiny_x").path
    damage(entry)
    problem = verify_entry(entry)
    assert problem is not None and reason in problem
    assert cache.lookup(KEY) is None
    result = cache.get_or_build(KEY, fake_build(), label="tiny_x")
    assert result.built and result.repaired is not None and reason in result.repaired
    assert verify_entry(result.path) is None
    assert len(logs) == 1 and "tiny_x" in logs[0] and "damaged" in logs[0] and reason in logs[0]
    assert not cache.get_or_build(KEY, fake_build()).built


def _settled_build(dest: Path) -> None:
    """fake_build, with every file's mtime a minute old: the marker, written next, is newer (no racy files)."""
    fake_build()(dest)
    past = time.time_ns() - 60 * 10**9
    for path in dest.rglob("*"):
        os.utime(path, ns=(past, past))


def _flip_keeping_mtime(path: Path) -> None:
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_warm_verify_hashes_only_changed_or_racy_files(cache: Cache, monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[str] = []
    real = cache_mod._sha256
    monkeypatch.setattr(cache_mod, "_sha256", lambda p: hashed.append(Path(p).name) or real(p))
    settled = cache.get_or_build(KEY, _settled_build).path
    hashed.clear()
    assert verify_entry(settled) is None and hashed == []  # stat signatures match: nothing read
    assert verify_entry(settled, hashes=True) is None and len(hashed) == 4
    hashed.clear()
    os.utime(settled / "repo" / "config.json")  # touched, content the same: hashed, still intact
    assert verify_entry(settled) is None and hashed == ["config.json"]
    # files written in the marker's clock tick are hashed every time (a later write may not move the mtime)
    racy = cache.get_or_build(OTHER, fake_build()).path
    marker_mtime = (racy / MARKER).stat().st_mtime_ns
    for path in (p for p in racy.rglob("*") if p.name != MARKER):
        os.utime(path, ns=(marker_mtime, marker_mtime))
    hashed.clear()
    assert verify_entry(racy) is None and len(hashed) == 4


def test_edit_that_restores_the_mtime_is_caught_by_full_verification(cache: Cache, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_tinymodels.cli import main

    entry = cache.get_or_build(KEY, _settled_build).path
    cache.get_or_build(OTHER, _settled_build)
    _flip_keeping_mtime(entry / "repo" / "model.safetensors")
    assert verify_entry(entry) is None  # the documented limit of the warm path's stat check
    assert "model.safetensors was modified" in (verify_entry(entry, hashes=True) or "")
    assert cache.verify_all() == {KEY: "repo/model.safetensors was modified (sha256 mismatch)", OTHER: None}
    # an edit that moves the mtime is caught by the warm path too
    (entry / "repo" / "config.json").write_text(json.dumps({"model_type": "llamb", "hidden_size": 16}))
    assert "config.json was modified" in (verify_entry(entry) or "")
    manifest = tmp_path / "empty.toml"
    manifest.write_text("")
    argv = ["verify", "--cache-dir", str(cache.root), "--manifest", str(manifest)]
    assert main(argv) == 1
    out = capsys.readouterr()
    assert f"DAMAGED {KEY}: repo/" in out.out and "1 of 2 entries intact" in out.out and "--remove" in out.err
    assert main(argv + ["--remove"]) == 1 and "(removed)" in capsys.readouterr().out
    assert main(argv) == 0 and "1 of 1 entries intact" in capsys.readouterr().out
    assert not cache.entry_dir(KEY).exists() and cache.lookup(OTHER) is not None


def test_write_marker_refuses_pickles_and_symlinks(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "model.pt").write_bytes(b"x")
    with pytest.raises(CacheError, match="pickle"):
        write_marker(tmp_path / "a", KEY)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "link.json").symlink_to(tmp_path / "a" / "model.pt")
    with pytest.raises(CacheError, match="symbolic link"):
        write_marker(tmp_path / "b", KEY)
    assert not (tmp_path / "a" / MARKER).exists() and not (tmp_path / "b" / MARKER).exists()


# -- leftovers of crashed builders --------------------------------------------------------------
def test_stale_temp_dirs_are_swept_unless_their_lock_is_held(cache: Cache) -> None:
    from filelock import FileLock

    cache.ensure_writable()
    stale_same = cache.root / "tmp" / f"{KEY}.99999.abc.incomplete"
    stale_other = cache.root / "tmp" / f"{OTHER}.99999.abc.incomplete"
    busy_key = "aaaaaaaaaaaaaaaaaaaaaaaa"
    busy = cache.root / "tmp" / f"{busy_key}.12345.abc.incomplete"
    for d in (stale_same, stale_other, busy):
        (d / "repo").mkdir(parents=True)
        (d / "repo" / "model.safetensors").write_bytes(b"half")
    (cache.root / "trash").mkdir()
    (cache.root / "trash" / f"{OTHER}.1234").mkdir()
    unrelated = cache.root / "tmp" / "notes.txt"
    unrelated.write_text("not ours")
    cache.lock_path(busy_key).parent.mkdir(parents=True, exist_ok=True)
    holder = FileLock(str(cache.lock_path(busy_key)))  # another open file description: flock excludes us
    holder.acquire()
    try:
        cache.get_or_build(KEY, fake_build())
    finally:
        holder.release()
    assert not stale_same.exists() and not stale_other.exists()
    assert busy.exists(), "a temp dir whose builder still holds the lock must stay"
    assert unrelated.exists()
    assert list((cache.root / "trash").iterdir()) == []
    # the next sweep (new Cache object: new session) removes it once its lock is free
    Cache(cache.root).get_or_build(OTHER, fake_build())
    assert not busy.exists()


def test_clean_removes_everything(cache: Cache) -> None:
    cache.get_or_build(KEY, fake_build())
    cache.get_or_build(OTHER, fake_build(), rebuild=True, run_id="r")
    (cache.root / "tmp" / f"{KEY}.1.x.incomplete").mkdir()
    cache_mod.library_versions(cache.root)  # leaves a memo
    assert list((cache.root / "memo").iterdir())
    assert cache.clean() == 2
    assert list((cache.root / "entries").iterdir()) == []
    assert list((cache.root / "tmp").iterdir()) == []
    assert list((cache.root / "runs").iterdir()) == []
    assert list((cache.root / "memo").iterdir()) == []


# -- readers during a rebuild --------------------------------------------------------------------
def test_readers_never_see_a_missing_or_partial_entry_during_rebuilds(cache: Cache) -> None:
    cache.get_or_build(KEY, fake_build())
    stop = threading.Event()
    seen: dict[str, int] = {"reads": 0, "missing": 0, "built": 0, "errors": 0}

    def reader() -> None:
        reader_cache = Cache(cache.root)
        while not stop.is_set():
            seen["reads"] += 1
            if not reader_cache.entry_dir(KEY).is_dir():
                seen["missing"] += 1
            try:
                res = reader_cache.get_or_build(KEY, fake_build())
                seen["built"] += res.built
                if verify_entry(res.path, hashes=False) is not None and not res.path.is_dir():
                    seen["missing"] += 1
            except Exception:  # noqa: BLE001 - counted, asserted below
                seen["errors"] += 1

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(25):
            assert cache.get_or_build(KEY, fake_build(), rebuild=True, run_id=f"r{i}").built
    finally:
        stop.set()
        thread.join()
    assert seen["reads"] > 0
    assert seen == {"reads": seen["reads"], "missing": 0, "built": 0, "errors": 0}


# -- disk full -----------------------------------------------------------------------------------
def test_disk_full_during_build_is_a_clear_cache_error(cache: Cache) -> None:
    def full(dest: Path) -> None:
        (dest / "model.safetensors").write_bytes(b"x" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(CacheError) as info:
        cache.get_or_build(KEY, full, label="tiny_llama")
    message = str(info.value)
    assert "no space left" in message and str(cache.root) in message and "tiny_llama" in message
    assert "--tiny-cache-dir" in message and info.value.errno == errno.ENOSPC
    assert not cache.entry_dir(KEY).exists() and list((cache.root / "tmp").iterdir()) == []


def test_disk_full_wrapped_by_the_builder_or_in_the_marker(cache: Cache, monkeypatch: pytest.MonkeyPatch) -> None:
    def wrapped(dest: Path) -> None:
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        except OSError as exc:
            raise BuildError("OSError: Disk quota exceeded", stage="save") from exc

    with pytest.raises(CacheError, match="no space left"):
        cache.get_or_build(KEY, wrapped)

    def marker_full(entry: Path, key: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_mod, "write_marker", marker_full)
    with pytest.raises(CacheError, match="no space left"):
        cache.get_or_build(KEY, fake_build())
    assert not cache.entry_dir(KEY).exists() and list((cache.root / "tmp").iterdir()) == []


# -- read-only cache dir (simulated; tests/test_reliability.py uses a real read-only mount) ------
def _deny_writes_under(monkeypatch: pytest.MonkeyPatch, root: Path, code: int = errno.EROFS) -> None:
    real_mkdir = cache_mod._mkdir

    def mkdir(path: Path) -> None:
        if Path(path).is_relative_to(root):
            raise OSError(code, os.strerror(code), str(path))
        real_mkdir(path)

    monkeypatch.setattr(cache_mod, "_mkdir", mkdir)


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.EPERM])
def test_unwritable_cache_falls_back_to_a_temporary_cache(cache: Cache, logs: list[str], monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path, code: int) -> None:
    _deny_writes_under(monkeypatch, cache.root, code)
    calls: list[Path] = []
    result = cache.get_or_build(KEY, fake_build(calls), label="tiny_llama")
    assert result.built and result.path == tmp_path / "fallback" / "entries" / KEY
    assert len(logs) == 1 and str(cache.root) in logs[0] and str(tmp_path / "fallback") in logs[0]
    assert os.strerror(code) in logs[0]
    assert not cache.get_or_build(KEY, fake_build(calls)).built and len(calls) == 1
    assert cache.lookup(KEY) == result.path
    assert len(logs) == 1, "the fallback is announced once"


def test_complete_entries_of_a_read_only_cache_are_still_used(cache: Cache, logs: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    path = cache.get_or_build(KEY, fake_build()).path
    _deny_writes_under(monkeypatch, cache.root)
    result = cache.get_or_build(KEY, fake_build())
    assert not result.built and result.path == path
    assert cache.fallback is None and logs == []


def test_prepare_announces_the_fallback_and_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parent = tmp_path / "readonly"
    parent.mkdir()
    real_access = os.access
    monkeypatch.setattr(cache_mod.os, "access", lambda p, mode: False if Path(p) == parent else real_access(p, mode))
    cache = Cache(parent / "sub" / "cache", fallback_root=tmp_path / "fb")
    warning = cache.prepare()
    assert warning is not None and str(parent / "sub" / "cache") in warning and str(tmp_path / "fb") in warning
    assert list(parent.iterdir()) == []
    assert cache.get_or_build(KEY, fake_build()).path.is_relative_to(tmp_path / "fb")
    assert cache.prepare() is None  # already announced


def test_cache_path_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cache"
    path.write_text("oops")
    cache = Cache(path, fallback_root=tmp_path / "fb")
    warning = cache.prepare()
    assert warning is not None and "not writable" in warning and str(path) in warning
    with pytest.raises(CacheError) as info:
        cache.get_or_build(KEY, fake_build())
    assert str(path) in str(info.value) and "--tiny-cache-dir" in str(info.value)
    assert path.read_text() == "oops"


def test_no_fallback_when_disabled(cache: Cache, monkeypatch: pytest.MonkeyPatch) -> None:
    cache.allow_fallback = False
    _deny_writes_under(monkeypatch, cache.root)
    with pytest.raises(CacheError, match="not writable"):
        cache.get_or_build(KEY, fake_build())


def test_fallback_dir_is_private_and_never_follows_a_planted_symlink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    path = fallback_dir()
    assert path == tmp_path / f"pytest-tinymodels-{os.getuid()}" / "cache"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    path.parent.rmdir()
    elsewhere = tmp_path / "attacker"
    elsewhere.mkdir()
    path.parent.symlink_to(elsewhere)
    other = fallback_dir()
    assert not other.is_relative_to(path.parent) and other.parent.is_dir()
    assert stat.S_IMODE(other.parent.stat().st_mode) == 0o700


# -- permissions ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("umask", "dir_mode", "file_mode"), [(0o002, 0o775, 0o664), (0o022, 0o755, 0o644)])
def test_entries_and_locks_respect_the_umask(tmp_path: Path, umask: int, dir_mode: int, file_mode: int) -> None:
    old = os.umask(umask)
    try:
        cache = Cache(tmp_path / "cache")
        path = cache.get_or_build(KEY, fake_build()).path
        cache.get_or_build(KEY, fake_build(), rebuild=True, run_id="r")
    finally:
        os.umask(old)
    dirs = [path, path / "repo", path / "dataset", cache.root / "entries", cache.root / "locks", cache.root / "tmp",
            cache.root / "runs", cache.root / "runs" / "r"]
    files = [p for p in path.rglob("*") if p.is_file()] + [cache.lock_path(KEY), cache.root / "runs" / "r" / KEY]
    assert len(files) >= 6
    for d in dirs:
        assert stat.S_IMODE(d.stat().st_mode) == dir_mode, d
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == file_mode, f


def test_lock_timeout_message_names_entry_lock_and_holder(cache: Cache, logs: list[str]) -> None:
    """In-process holder (another open file description); the cross-process case is in test_reliability."""
    cache.lock_timeout, cache.wait_log_interval = 0.6, 0.2
    with cache._locked(KEY, "LlamaForCausalLM"):
        with pytest.raises(CacheError) as info:
            cache.get_or_build(KEY, fake_build(), label="LlamaForCausalLM")
    message = str(info.value)
    assert "LlamaForCausalLM" in message and KEY in message and str(cache.lock_path(KEY)) in message
    assert f"pid {os.getpid()}" in message and "--tiny-lock-timeout" in message
    assert logs and all(f"waiting for pid {os.getpid()}" in line for line in logs)
    assert cache.get_or_build(KEY, fake_build()).built  # free again once released


def test_shared_cache_with_a_foreign_locks_dir_falls_back(cache: Cache, logs: list[str], monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    """Another user's ``locks/`` (umask 022): os.access says no (root passes it, so it is patched here)."""
    cache.ensure_writable()
    locks = cache.root / "locks"
    real_access = os.access
    monkeypatch.setattr(cache_mod.os, "access", lambda p, mode: False if Path(p) == locks else real_access(p, mode))
    result = cache.get_or_build(KEY, fake_build())
    assert result.built and result.path.is_relative_to(tmp_path / "fallback")
    assert len(logs) == 1 and "Permission denied" in logs[0]


def test_lock_that_cannot_be_opened_falls_back(cache: Cache, logs: list[str], monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    from filelock import FileLock

    real_acquire = FileLock.acquire

    def acquire(self, *args, **kwargs):
        if Path(self.lock_file).parent == cache.root / "locks":
            raise PermissionError(errno.EACCES, "Permission denied", self.lock_file)
        return real_acquire(self, *args, **kwargs)

    monkeypatch.setattr(FileLock, "acquire", acquire)
    result = cache.get_or_build(KEY, fake_build(), label="tiny_bert")
    assert result.built and result.path.is_relative_to(tmp_path / "fallback")
    assert len(logs) == 1 and str(cache.root) in logs[0]


def test_unusable_fallback_is_reported_not_raised_by_prepare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "fb-is-a-file"
    blocker.write_text("x")
    cache = Cache(tmp_path / "cache", fallback_root=blocker / "cache")
    _deny_writes_under(monkeypatch, cache.root)
    cache.root.mkdir()
    warning = cache.prepare()
    assert warning is not None and str(cache.root) in warning and str(blocker / "cache") in warning
    assert cache.fallback is None
    with pytest.raises(CacheError, match="not usable either"):
        cache.get_or_build(KEY, fake_build())


# -- fuzzing verification ------------------------------------------------------------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=30), inner, max_size=4),
                     max_leaves=15)
_markers = st.one_of(
    _json,
    st.fixed_dictionaries({"key": st.just(KEY), "files": st.dictionaries(
        st.one_of(st.sampled_from(["repo/config.json", "../x", "/etc/passwd", "repo/../../x", "", "repo"]), st.text(max_size=20)),
        st.one_of(_json, st.fixed_dictionaries({"size": st.integers(-5, 10**6), "sha256": st.text(max_size=64)})),
        max_size=4)}),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(marker=_markers)
def test_fuzz_marker_contents_never_crash_verification(tmp_path: Path, marker: object) -> None:
    entry = tmp_path / "entries" / KEY
    if not entry.exists():
        entry.mkdir(parents=True)
        (entry / "repo").mkdir()
        (entry / "repo" / "config.json").write_text("{}")
    (entry / MARKER).write_text(json.dumps(marker))
    result = verify_entry(entry)
    assert result is None or isinstance(result, str)
    if result is None:  # accepted: only when it truly describes the entry
        assert isinstance(marker, dict) and isinstance(marker.get("files"), dict)
        for rel, meta in marker["files"].items():
            assert (entry / rel).resolve().is_relative_to(entry.resolve())
            assert meta["size"] == (entry / rel).stat().st_size
        on_disk = {p.relative_to(entry).as_posix() for p in entry.rglob("*") if p.is_file() and p.name != MARKER}
        assert set(marker["files"]) == on_disk


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_any_truncation_or_byte_flip_is_detected(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    cache = Cache(tmp_path_factory.mktemp("fuzz") / "cache")
    entry = cache.get_or_build(KEY, fake_build(payload=bytes(range(256)) * 8)).path
    files = sorted(p for p in entry.rglob("*") if p.is_file() and p.name != MARKER)
    target = data.draw(st.sampled_from(files))
    content = target.read_bytes()
    if data.draw(st.booleans()) or not content:
        cut = data.draw(st.integers(0, max(0, len(content) - 1)))
        target.write_bytes(content[:cut])
    else:
        pos = data.draw(st.integers(0, len(content) - 1))
        flip = data.draw(st.integers(1, 255))
        target.write_bytes(content[:pos] + bytes([content[pos] ^ flip]) + content[pos + 1:])
    assert verify_entry(entry) is not None
    assert cache.get_or_build(KEY, fake_build(payload=bytes(range(256)) * 8)).repaired is not None


def test_full_disk_at_startup_is_a_warning_then_clear_errors(cache: Cache, monkeypatch: pytest.MonkeyPatch) -> None:
    path = cache.get_or_build(KEY, fake_build()).path  # cached before the disk filled up
    _deny_writes_under(monkeypatch, cache.root, errno.ENOSPC)
    warning = cache.prepare()
    assert warning is not None and "No space left on device" in warning and "cannot be built" in warning
    assert cache.fallback is None
    assert cache.get_or_build(KEY, fake_build()).path == path  # cached entries still work
    with pytest.raises(CacheError, match="No space left on device") as info:
        cache.get_or_build(OTHER, fake_build())
    assert info.value.errno == errno.ENOSPC and str(cache.root) in str(info.value)
