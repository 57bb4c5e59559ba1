"""The on-disk, content-addressed, file-locked cache of tiny entries.

Layout of a cache root::

    entries/<key>/              a published entry; COMPLETE.json inside is written last
    locks/<key>.lock            one FileLock per key (kernel-released if its holder dies)
    locks/<key>.owner           pid/host of the current holder, for "waiting for ..." messages
    tmp/<key>.<pid>.<rand>.incomplete/   a build in progress (same filesystem => atomic rename)
    trash/                      replaced entries, removed lazily (a reader may still hold files)
    runs/<run-id>/<key>         "already rebuilt in this run" markers for --tiny-rebuild

Building happens in a temporary directory under the key's lock, the completion marker (with the
size and sha256 of every file) is written last, and the directory is published with one
``os.rename``.  Readers never see a partial entry; a crashed build leaves only a temp dir that
the next holder of the lock removes.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from .errors import CacheError

logger = logging.getLogger("pytest_tinymodels.cache")

#: Bump when the entry layout or the builder's output changes incompatibly.
FORMAT_VERSION = 1
MARKER = "COMPLETE.json"
RECIPE = "recipe.json"
#: Libraries whose versions are part of every key: an upgrade gives a new entry, never a stale one.
KEY_LIBRARIES = ("pytest-tinymodels", "transformers", "tokenizers", "datasets", "torch", "safetensors", "huggingface_hub")


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that shape an entry (``importlib.metadata``, no imports)."""
    versions: dict[str, str | None] = {}
    for name in KEY_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cache_key(key_fields: Mapping[str, Any], versions: Mapping[str, str | None] | None = None) -> str:
    """Content hash of a normalized spec plus library versions and the format version."""
    payload = {"format": FORMAT_VERSION, "spec": key_fields, "versions": dict(versions or library_versions())}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


@dataclass
class CacheResult:
    """What :meth:`Cache.get_or_build` did for one entry."""

    key: str
    path: Path
    built: bool
    seconds: float = 0.0  # build time when built
    waited: float = 0.0  # time spent waiting for another process's lock
    size: int = 0
    repaired: str | None = None  # why an existing entry was rebuilt (corruption), if it was
    label: str = ""


@dataclass
class EntryInfo:
    key: str
    path: Path
    size: int
    created: float
    recipe: dict[str, Any] = field(default_factory=dict)


class Cache:
    """A cache root directory; safe to share between processes, sessions and xdist workers."""

    def __init__(
        self,
        root: Path | str,
        *,
        lock_timeout: float = 900.0,
        wait_log_interval: float = 10.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.root = Path(root).expanduser()
        self.lock_timeout = lock_timeout
        self.wait_log_interval = wait_log_interval
        self._log = log or logger.warning

    # -- paths ------------------------------------------------------------------------
    @property
    def entries_dir(self) -> Path:
        return self.root / "entries"

    def entry_dir(self, key: str) -> Path:
        """Directory of the entry for ``key`` (it may not exist)."""
        _check_key(key)
        return self.entries_dir / key

    def _find_entry(self, key: str) -> Path | None:
        path = self.entry_dir(key)
        return path if path.is_dir() else None

    def lock_path(self, key: str) -> Path:
        return self.root / "locks" / f"{key}.lock"

    # -- public API ------------------------------------------------------------------------
    def ensure_writable(self) -> None:
        """Create the cache root; raise :class:`CacheError` if it cannot be written."""
        try:
            for sub in ("entries", "locks", "tmp"):
                _mkdir(self.root / sub)
            probe = self.root / "tmp" / f".probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise CacheError(
                f"tiny-model cache {self.root} is not writable ({exc.strerror or exc}); "
                "set --tiny-cache-dir, PYTEST_TINYMODELS_CACHE or ini tiny_cache_dir to a writable directory"
            ) from None

    def lookup(self, key: str) -> Path | None:
        """The published entry for ``key`` if it is complete and intact, else None (no lock taken)."""
        path = self._find_entry(key)
        if path is None:
            return None
        return path if verify_entry(path) is None else None

    def get_or_build(
        self,
        key: str,
        build: Callable[[Path], Any],
        *,
        label: str = "",
        rebuild: bool = False,
        run_id: str | None = None,
    ) -> CacheResult:
        """Return the entry for ``key``, building it with ``build(tmp_dir)`` exactly once if needed.

        ``rebuild`` forces a fresh build, at most once per ``run_id`` across all processes that
        share the id (xdist workers), so the first worker rebuilds and the others reuse it.
        """
        _check_key(key)
        if not rebuild:
            path = self._find_entry(key)
            if path is not None and verify_entry(path) is None:
                return CacheResult(key, path, built=False, size=entry_size(path), label=label)
        self.ensure_writable()
        with self._locked(key, label) as waited:
            path = self._find_entry(key)
            problem = verify_entry(path) if path is not None else "missing"
            rebuilt_marker = self.root / "runs" / run_id / key if (rebuild and run_id) else None
            must_rebuild = rebuild and not (rebuilt_marker is not None and rebuilt_marker.exists())
            if problem is None and not must_rebuild:
                return CacheResult(key, path, built=False, waited=waited, size=entry_size(path), label=label)
            repaired = None
            if path is not None and problem not in (None, "missing"):
                repaired = problem
                self._log(f"tiny-model cache entry {path.name} is damaged ({problem}); rebuilding it")
            self._remove_stale_tmp(key)
            start = time.perf_counter()
            target = self._publish(key, build)
            seconds = time.perf_counter() - start
            if rebuilt_marker is not None:
                _mkdir(rebuilt_marker.parent)
                rebuilt_marker.touch()
            return CacheResult(key, target, built=True, seconds=seconds, waited=waited,
                               size=entry_size(target), repaired=repaired, label=label)

    def entries(self) -> list[EntryInfo]:
        """Every complete entry in the cache."""
        infos = []
        if not self.entries_dir.is_dir():
            return infos
        for child in sorted(self.entries_dir.iterdir()):
            marker = child / MARKER
            if not marker.is_file():
                continue
            try:
                data = json.loads(marker.read_text())
                recipe = json.loads((child / RECIPE).read_text()) if (child / RECIPE).is_file() else {}
            except (OSError, ValueError):
                continue
            infos.append(EntryInfo(data.get("key", child.name), child, entry_size(child), data.get("created", 0.0), recipe))
        return infos

    def remove(self, key: str) -> bool:
        """Delete one entry (under its lock). Returns whether something was removed."""
        with self._locked(key, ""):
            path = self._find_entry(key)
            if path is None:
                return False
            self._retire(path)
            return True

    def clean(self) -> int:
        """Delete every entry, leftover temp dir, trash and run marker; return entries removed."""
        removed = 0
        for info in self.entries():
            removed += self.remove(info.key)
        for sub in ("tmp", "trash", "runs"):
            self._rmtree_quiet(self.root / sub, only_children=True)
        return removed

    # -- internals ------------------------------------------------------------------------
    def _publish(self, key: str, build: Callable[[Path], Any]) -> Path:
        tmp_root = self.root / "tmp"
        _mkdir(tmp_root)
        tmp = Path(tempfile.mkdtemp(prefix=f"{key}.{os.getpid()}.", suffix=".incomplete", dir=tmp_root))
        try:
            _chmod_shared(tmp, directory=True)
            build(tmp)
            write_marker(tmp, key)
            _chmod_tree_shared(tmp)
            target = self.entry_dir(key)
            old = self._find_entry(key)
            if old is not None:
                self._retire(old)
            _mkdir(target.parent)
            os.rename(tmp, target)
            return target
        except BaseException:
            self._rmtree_quiet(tmp)
            raise

    def _retire(self, path: Path) -> None:
        """Move an entry to trash (atomic), then try to delete it."""
        trash = self.root / "trash"
        _mkdir(trash)
        dest = trash / f"{path.name}.{uuid.uuid4().hex[:8]}"
        os.rename(path, dest)
        self._rmtree_quiet(dest)

    def _remove_stale_tmp(self, key: str) -> None:
        """Remove temp dirs of ``key`` left by crashed builders (we hold the key's lock)."""
        tmp_root = self.root / "tmp"
        if not tmp_root.is_dir():
            return
        for child in tmp_root.glob(f"{key}.*.incomplete"):
            self._rmtree_quiet(child)

    @staticmethod
    def _rmtree_quiet(path: Path, only_children: bool = False) -> None:
        if only_children:
            if path.is_dir():
                for child in path.iterdir():
                    shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
            return
        shutil.rmtree(path, ignore_errors=True)

    def _locked(self, key: str, label: str) -> "_KeyLock":
        return _KeyLock(self, key, label)


class _KeyLock:
    """FileLock on one key that logs while it waits and gives up after ``lock_timeout``."""

    def __init__(self, cache: Cache, key: str, label: str) -> None:
        self.cache, self.key, self.label = cache, key, label
        self.lock_file = cache.lock_path(key)
        self.owner_file = self.lock_file.with_suffix(".owner")
        self._lock: Any = None

    def __enter__(self) -> float:
        from filelock import FileLock, Timeout

        _mkdir(self.lock_file.parent)
        self._lock = FileLock(str(self.lock_file), mode=0o666)
        start = time.monotonic()
        deadline = start + self.cache.lock_timeout
        while True:
            step = min(self.cache.wait_log_interval, max(0.0, deadline - time.monotonic()))
            try:
                self._lock.acquire(timeout=step, poll_interval=0.02)
                break
            except Timeout:
                waited = time.monotonic() - start
                owner = self._owner()
                if time.monotonic() >= deadline:
                    raise CacheError(
                        f"gave up after {waited:.0f}s waiting for the lock on tiny-model entry "
                        f"{self.label or self.key} ({self.lock_file}), held by {owner}; "
                        "if that process is stuck, stop it; raise the limit with --tiny-lock-timeout"
                    ) from None
                self.cache._log(
                    f"waiting for {owner} to finish building tiny-model entry {self.label or self.key} "
                    f"({waited:.0f}s so far, lock {self.lock_file})"
                )
        try:
            self.owner_file.write_text(f"pid {os.getpid()} on {socket.gethostname()}")
        except OSError:
            pass
        return time.monotonic() - start

    def _owner(self) -> str:
        try:
            return self.owner_file.read_text().strip() or "another process"
        except OSError:
            return "another process"

    def __exit__(self, *exc: object) -> None:
        try:
            self.owner_file.unlink(missing_ok=True)
        except OSError:
            pass
        self._lock.release()


# -- completion marker and verification ------------------------------------------------------
def _iter_files(root: Path) -> Iterator[Path]:
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            yield Path(dirpath) / name


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def write_marker(entry: Path, key: str) -> None:
    """Record size and sha256 of every file, then write the marker (last, atomically)."""
    files = {}
    for path in sorted(_iter_files(entry)):
        rel = path.relative_to(entry).as_posix()
        if rel == MARKER:
            continue
        files[rel] = {"size": path.stat().st_size, "sha256": _sha256(path)}
    data = {"key": key, "format": FORMAT_VERSION, "created": time.time(), "files": files}
    tmp = entry / (MARKER + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, entry / MARKER)


def verify_entry(entry: Path, *, hashes: bool = True) -> str | None:
    """None if ``entry`` is complete and intact, else a short reason.

    Sizes are always checked; with ``hashes`` (the default; entries are tiny) every file's sha256 too.
    """
    marker = entry / MARKER
    try:
        data = json.loads(marker.read_text())
        files = data["files"]
    except FileNotFoundError:
        return "incomplete (no completion marker)"
    except (OSError, ValueError, KeyError, TypeError):
        return "unreadable completion marker"
    for rel, meta in files.items():
        path = entry / rel
        try:
            size = path.stat().st_size
        except OSError:
            return f"missing file {rel}"
        if size != meta.get("size"):
            return f"{rel} has {size} bytes, expected {meta.get('size')}"
        if hashes and _sha256(path) != meta.get("sha256"):
            return f"{rel} was modified (sha256 mismatch)"
    return None


def entry_size(entry: Path) -> int:
    total = 0
    for path in _iter_files(entry):
        try:
            total += path.stat().st_size
        except OSError:
            pass
    return total


def _check_key(key: str) -> None:
    if not re.fullmatch(r"[0-9a-f]{8,64}", key):
        raise ValueError(f"invalid cache key {key!r}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        if not path.is_dir():
            raise
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC):
            raise
        raise


def _chmod_shared(path: Path, directory: bool) -> None:
    """Give ``path`` the permissions a normal create would (tempfile makes 0700/0600)."""
    mode = (0o777 if directory else 0o666) & ~_umask()
    try:
        os.chmod(path, mode)
    except OSError:
        pass


def _chmod_tree_shared(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            _chmod_shared(Path(dirpath) / d, True)
        for f in filenames:
            _chmod_shared(Path(dirpath) / f, False)
