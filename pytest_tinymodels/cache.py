"""The on-disk, content-addressed, file-locked cache of tiny entries.

Layout of a cache root::

    entries/<key>/              a published entry; COMPLETE.json inside is written last
    locks/<key>.lock            one flock per key (the kernel releases it when its holder dies)
    locks/<key>.owner           pid/host of the current holder, for "waiting for ..." messages
    tmp/<key>.<pid>.<rand>.incomplete/   a build in progress (same filesystem => atomic rename)
    trash/                      replaced entries, removed lazily (a reader may still hold files)
    runs/<run-id>/<key>         "already rebuilt in this run" markers for --tiny-rebuild

Building happens in a temporary directory under the key's lock, the completion marker (with the
size and sha256 of every file) is written last, and the directory is published with one
``os.rename`` (an atomic exchange where an old entry is replaced, on Linux).  Readers never see a
partial entry; a crashed build leaves only a temp dir, which the next builder removes once it can
take that key's lock (proof that its builder is gone).

Keys are hashes (``[0-9a-f]{24}``): nothing a manifest says ever becomes a path.  If the cache root
cannot be written for lack of permission (read-only mount, another user's directory), entries
that must be built go to a private temporary cache instead (:meth:`Cache.prepare`); entries
already complete in the read-only cache are still used.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import stat
import sys
import tempfile
import time
import uuid
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, NamedTuple

from .errors import CacheError

logger = logging.getLogger("pytest_tinymodels.cache")

#: Bump when the entry layout or the builder's output changes incompatibly.
FORMAT_VERSION = 1
MARKER = "COMPLETE.json"
RECIPE = "recipe.json"
#: Libraries whose versions are part of every key: an upgrade gives a new entry, never a stale one.
KEY_LIBRARIES = ("pytest-tinymodels", "transformers", "tokenizers", "sentencepiece", "datasets", "torch", "safetensors",
                 "huggingface_hub")
#: Pickle-based (code-executing on load) weight files: never part of an entry.
UNSAFE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz", ".h5", ".msgpack")
#: OS errors for which an unwritable cache root falls back to a temporary cache.
FALLBACK_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
#: OS errors that mean "the disk is full".
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: Run markers (``runs/<run-id>``) older than this are removed by the housekeeping sweep.
RUN_MARKER_MAX_AGE = 7 * 24 * 3600.0

_HEX = frozenset("0123456789abcdef")
_TMP_PATTERN = r"(?P<key>[0-9a-f]{8,64})\.(?P<pid>\d+)\..*\.incomplete"


def _is_key(name: object) -> bool:
    """8 to 64 lowercase hex digits (what :func:`cache_key` makes; never a path)."""
    return isinstance(name, str) and 8 <= len(name) <= 64 and _HEX.issuperset(name)


def library_versions(memo_dir: Path | None = None) -> dict[str, str | None]:
    """Installed versions of the libraries that shape an entry (``importlib.metadata``, no imports).

    Read once per process; a copy is returned.  With ``memo_dir`` (a cache root), remembered there
    while the ``sys.path`` directories keep their stat signatures (installing or removing a package
    renames entries in them, which moves their mtimes): see :func:`stat_memo`.
    """
    return dict(_library_versions(memo_dir))


@lru_cache(maxsize=None)
def _library_versions(memo_dir: Path | None) -> dict[str, str | None]:
    if memo_dir is None:
        return _read_library_versions()
    dirs = [Path(entry or ".").absolute() for entry in sys.path]
    where = hashlib.sha256("\0".join(map(str, dirs)).encode()).hexdigest()[:16]
    return stat_memo(memo_dir / "memo" / f"library-versions-{where}.json", dirs, _read_library_versions)


def _read_library_versions() -> dict[str, str | None]:
    found = _dist_info_versions(KEY_LIBRARIES)
    versions: dict[str, str | None] = {}
    for name in KEY_LIBRARIES:
        try:
            versions[name] = found.get(name) or _installed_version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _dist_info_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Versions of ``names`` read from ``<name>-<version>.dist-info`` directory names on ``sys.path``.

    The name of that directory carries the normalized name and version (the packaging spec for
    installed projects); one directory listing per ``sys.path`` entry replaces importlib.metadata's
    per-name search (about 0.3 ms each in a fresh process).  Like ``metadata.version``, the first
    entry of ``sys.path`` that has a project wins; names not found here are left to importlib.metadata.
    """
    wanted = {_project_key(n): n for n in names}
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            listing = os.listdir(entry or ".")
        except OSError:
            continue
        for item in listing:
            if not item.endswith(".dist-info"):
                continue
            project, _, version = item[: -len(".dist-info")].partition("-")
            name = wanted.get(_project_key(project))
            if name is not None and version and name not in found:
                found[name] = version
        if len(found) == len(wanted):
            break
    return found


def _project_key(name: str) -> str:
    """A project name normalized as in dist-info directory names (runs of ``-_.`` -> ``_``, lowercase)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _installed_version(name: str) -> str:
    """``metadata.version(name)`` without parsing the whole METADATA file as email (3x faster:
    transformers' METADATA carries its whole README); the Version header is in the first block."""
    dist = metadata.distribution(name)
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    for line in text.splitlines():
        if not line.strip():
            break
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return dist.version


def cache_key(key_fields: Mapping[str, Any], versions: Mapping[str, str | None] | None = None, *,
              memo_dir: Path | None = None) -> str:
    """Content hash of a normalized spec plus library versions and the format version."""
    payload = {"format": FORMAT_VERSION, "spec": key_fields, "versions": dict(versions or library_versions(memo_dir))}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


class CacheResult(NamedTuple):
    """What :meth:`Cache.get_or_build` did for one entry."""

    key: str
    path: Path
    built: bool
    seconds: float = 0.0  # build time when built
    waited: float = 0.0  # time spent waiting for another process's lock
    size: int = 0
    repaired: str | None = None  # why an existing entry was rebuilt (corruption), if it was
    label: str = ""


class EntryInfo(NamedTuple):
    """One complete entry, as :meth:`Cache.entries` lists it."""

    key: str
    path: Path
    size: int
    created: float
    recipe: dict[str, Any]


class Cache:
    """A cache root directory; safe to share between processes, sessions and xdist workers.

    ``lock_timeout`` bounds the wait for another process's build of the same entry (then
    :class:`CacheError`); while waiting, ``log`` gets a line after ``first_wait_log`` seconds, then
    every ``wait_log_interval`` seconds.
    ``fallback`` allows building into a private temporary cache when the root is not writable for
    lack of permission; ``fallback_root`` chooses that directory (default: see :func:`fallback_dir`).
    """

    def __init__(
        self,
        root: Path | str,
        *,
        lock_timeout: float = 900.0,
        wait_log_interval: float = 10.0,
        first_wait_log: float = 2.0,
        log: Callable[[str], None] | None = None,
        fallback: bool = True,
        fallback_root: Path | str | None = None,
    ) -> None:
        self.root = Path(root).expanduser()
        self.lock_timeout = lock_timeout
        self.wait_log_interval = wait_log_interval
        self.first_wait_log = first_wait_log
        self._log = log or logger.warning
        self.allow_fallback = fallback
        self._fallback_root = Path(fallback_root) if fallback_root is not None else None
        self.fallback: Cache | None = None  # the temporary cache in use, once the root proved unwritable
        self.fallback_reason: str | None = None
        self._swept = False

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
        _check_key(key)
        return self.root / "locks" / f"{key}.lock"

    # -- public API ------------------------------------------------------------------------
    def ensure_writable(self) -> None:
        """Create the cache root; raise :class:`CacheError` (with ``errno``) if it cannot be written."""
        try:
            for sub in ("entries", "locks", "tmp"):
                _mkdir(self.root / sub)
                if not os.access(self.root / sub, os.W_OK | os.X_OK):  # e.g. another user's dir, umask 022
                    code = errno.EROFS if _read_only_fs(self.root / sub) else errno.EACCES
                    raise PermissionError(code, os.strerror(code), str(self.root / sub))
            probe = self.root / "tmp" / f".probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            try:
                probe.write_bytes(b"ok")
            finally:
                probe.unlink(missing_ok=True)
        except OSError as exc:
            raise CacheError(
                f"tiny-model cache {self.root} is not writable ({_why(exc)}); "
                "set --tiny-cache-dir, PYTEST_TINYMODELS_CACHE or ini tiny_cache_dir to a writable directory",
                path=self.root, errno=exc.errno,
            ) from None

    def prepare(self) -> str | None:
        """Check the root can be written, once, before any build; returns a warning for the user or None.

        A permission problem (read-only file system, directory of another user) switches builds to a
        private temporary cache (complete entries of the root are still used) and the warning says
        so.  Other problems (disk full, a file where the directory should be) are reported in the
        warning and again, as :class:`CacheError`, by any build that needs the root.
        """
        if self.fallback is not None:
            return None
        try:
            if self.root.exists():
                self.ensure_writable()
            else:  # create nothing yet (a run may use no tiny fixture): ask about the nearest ancestor
                self._check_creatable()
        except CacheError as exc:
            if exc.errno in FALLBACK_ERRNOS and self.allow_fallback:
                try:
                    return self._activate_fallback(exc)
                except CacheError as final:
                    exc = final
            return f"{exc}; tiny entries that are not cached yet cannot be built"
        return None

    def _check_creatable(self) -> None:
        parent = self.root.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise CacheError(f"tiny-model cache {self.root} cannot be created: {parent} is not a directory",
                             path=self.root, errno=errno.ENOTDIR)
        if not os.access(parent, os.W_OK | os.X_OK):
            code = errno.EROFS if _read_only_fs(parent) else errno.EACCES
            raise CacheError(f"tiny-model cache {self.root} cannot be created in {parent} ({os.strerror(code)})",
                             path=self.root, errno=code)

    def lookup(self, key: str) -> Path | None:
        """The published entry for ``key`` if it is complete and intact, else None (no lock taken)."""
        path = self._find_entry(key)
        if path is not None and verify_entry(path) is None:
            return path
        if self.fallback is not None:
            return self.fallback.lookup(key)
        return None

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
        A damaged entry (see :func:`verify_entry`) is rebuilt and reported in ``repaired``.
        """
        _check_key(key)
        if not rebuild:
            path = self._find_entry(key)
            if path is not None:
                problem, size = _check_entry(path, None)
                if problem is None:
                    return CacheResult(key, path, built=False, size=size, label=label)
        if self.fallback is None:
            try:
                return self._build_here(key, build, label=label, rebuild=rebuild, run_id=run_id)
            except CacheError as exc:
                if exc.errno not in FALLBACK_ERRNOS or not self.allow_fallback:
                    raise
                self._log(self._activate_fallback(exc))
        assert self.fallback is not None
        return self.fallback.get_or_build(key, build, label=label, rebuild=rebuild, run_id=run_id)

    def _build_here(self, key: str, build: Callable[[Path], Any], *, label: str, rebuild: bool,
                    run_id: str | None) -> CacheResult:
        """get_or_build in this root; a permission problem is a CacheError with ``errno`` set."""
        self.ensure_writable()
        with self._locked(key, label) as waited:
            path = self._find_entry(key)
            problem, size = _check_entry(path, None) if path is not None else ("missing", 0)
            rebuilt_marker = self.root / "runs" / run_id / key if (rebuild and run_id) else None
            must_rebuild = rebuild and not (rebuilt_marker is not None and rebuilt_marker.exists())
            if problem is None and not must_rebuild:
                assert path is not None
                return CacheResult(key, path, built=False, waited=waited, size=size, label=label)
            repaired = None
            if path is not None and problem not in (None, "missing"):
                repaired = problem
                self._log(f"tiny-model cache entry {label or key} ({path}) is damaged ({problem}); rebuilding it")
            self._sweep(key)
            start = time.perf_counter()
            target = self._publish(key, build, label)
            seconds = time.perf_counter() - start
            if rebuilt_marker is not None:
                try:
                    _mkdir(rebuilt_marker.parent)
                    rebuilt_marker.touch()
                except OSError as exc:  # only costs a second rebuild by another worker
                    logger.debug("cannot write run marker %s: %s", rebuilt_marker, exc)
            return CacheResult(key, target, built=True, seconds=seconds, waited=waited,
                               size=entry_size(target), repaired=repaired, label=label)

    def entries(self) -> list[EntryInfo]:
        """Every complete entry in the cache."""
        infos: list[EntryInfo] = []
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
            if not isinstance(data, dict):
                continue
            infos.append(EntryInfo(str(data.get("key", child.name)), child, entry_size(child),
                                   float(data.get("created", 0.0) or 0.0), recipe if isinstance(recipe, dict) else {}))
        return infos

    def verify_all(self) -> dict[str, str | None]:
        """Every entry's key -> None if a full check (sha256 of every file) passes, else the reason."""
        if not self.entries_dir.is_dir():
            return {}
        return {child.name: verify_entry(child, hashes=True)
                for child in sorted(self.entries_dir.iterdir()) if _is_key(child.name)}

    def remove(self, key: str) -> bool:
        """Delete one entry (under its lock, whose file goes too). Returns whether something was removed."""
        with self._locked(key, "", drop_lock_file=True):
            path = self._find_entry(key)
            if path is None:
                return False
            self._retire(path)
            return True

    def clean(self) -> int:
        """Delete every entry, leftover temp dir, trash, run marker, memo and free lock file; return
        entries removed.  A lock held by a live builder (and its temp dir) stays: see :meth:`clean_locks`."""
        removed = 0
        if self.entries_dir.is_dir():
            for child in sorted(self.entries_dir.iterdir()):
                if _is_key(child.name):
                    removed += self.remove(child.name)
        self._sweep(None)
        for sub in ("trash", "runs", "memo"):
            self._rmtree_quiet(self.root / sub, only_children=True)
        self.clean_locks()
        return removed

    def clean_locks(self) -> list[Path]:
        """Delete every lock file that no process holds; return the lock files kept (held right now).

        A lock file is unlinked while this process holds its flock, so no one can own it meanwhile;
        a waiter that had opened the old file gets the lock on an unlinked inode, sees that
        (``st_nlink == 0``, filelock >= 3.12 checks it) and opens the new file instead.
        """
        kept: list[Path] = []
        locks = self.root / "locks"
        if not locks.is_dir():
            return kept
        for child in sorted(locks.iterdir()):
            if child.name.endswith(".owner") or ".owner." in child.name:  # owner notes (and their temp files)
                key = child.name.split(".", 1)[0]
                if not _is_key(key) or not (locks / f"{key}.lock").exists():
                    child.unlink(missing_ok=True)
                continue
            key = child.name[: -len(".lock")] if child.name.endswith(".lock") else ""
            if not _is_key(key):
                continue
            if not self._try_lock(key, lambda c=child: _unlink_quiet(c)):
                kept.append(child)
        return kept

    # -- internals ------------------------------------------------------------------------
    def _activate_fallback(self, exc: CacheError) -> str:
        root = self._fallback_root or fallback_dir()
        fallback = Cache(root, lock_timeout=self.lock_timeout, wait_log_interval=self.wait_log_interval,
                         first_wait_log=self.first_wait_log, log=self._log, fallback=False)
        try:
            fallback.ensure_writable()
        except CacheError as second:  # nowhere left to build
            raise CacheError(f"{exc}; the temporary cache {root} is not usable either ({second})",
                             path=self.root, errno=None) from None
        self.fallback = fallback
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        self.fallback_reason = (
            f"tiny-model cache {self.root} is not writable ({why}); building missing entries in the "
            f"temporary cache {root} instead (set --tiny-cache-dir or PYTEST_TINYMODELS_CACHE to a writable dir)"
        )
        return self.fallback_reason

    def _publish(self, key: str, build: Callable[[Path], Any], label: str) -> Path:
        tmp_root = self.root / "tmp"
        tmp: Path | None = None
        try:
            _mkdir(tmp_root)
            tmp = Path(tempfile.mkdtemp(prefix=f"{key}.{os.getpid()}.", suffix=".incomplete", dir=tmp_root))
            _chmod_shared(tmp, directory=True)
            build(tmp)
            write_marker(tmp, key)
            _chmod_tree_shared(tmp)
            target = self.entry_dir(key)
            _mkdir(target.parent)
            if target.is_dir() and _exchange(tmp, target):
                # ``tmp`` now holds the old entry: readers saw the old entry, then the new one, never none
                self._retire(tmp)
            else:
                old = self._find_entry(key)
                if old is not None:
                    self._retire(old)
                os.rename(tmp, target)
            return target
        except BaseException as exc:
            if tmp is not None:
                self._rmtree_quiet(tmp)
            os_error = _os_error_in(exc)
            if os_error is not None and os_error.errno in FULL_ERRNOS:
                raise CacheError(
                    f"no space left on the device of the tiny-model cache {self.root} while building entry "
                    f"{label or key} ({_why(os_error)}); free some space (python -m pytest_tinymodels clean) "
                    "or point --tiny-cache-dir / PYTEST_TINYMODELS_CACHE at a larger disk",
                    path=self.root, errno=os_error.errno,
                ) from exc
            if os_error is not None and os_error.errno in FALLBACK_ERRNOS and isinstance(exc, OSError):
                raise CacheError(
                    f"cannot write tiny-model entry {label or key} into {self.root} ({_why(os_error)}); "
                    "set --tiny-cache-dir or PYTEST_TINYMODELS_CACHE to a writable directory",
                    path=self.root, errno=os_error.errno,
                ) from exc
            raise

    def _retire(self, path: Path) -> None:
        """Move an entry to trash (atomic), then try to delete it."""
        trash = self.root / "trash"
        _mkdir(trash)
        dest = trash / f"{path.name}.{uuid.uuid4().hex[:8]}"
        os.rename(path, dest)
        self._rmtree_quiet(dest)

    def _sweep(self, current_key: str | None) -> None:
        """Remove what crashed builders left behind (called with ``current_key``'s lock held).

        A temp dir ``tmp/<key>.<pid>.*.incomplete`` is stale when its key's lock can be taken at
        once: its builder held that lock for as long as it was building.  Also empties ``trash/``,
        drops old ``runs/`` markers and probe files.  Runs fully once per :class:`Cache` object.
        """
        tmp_root = self.root / "tmp"
        if current_key is not None and tmp_root.is_dir():
            for child in tmp_root.glob(f"{current_key}.*.incomplete"):
                self._rmtree_quiet(child)
        if self._swept and current_key is not None:
            return
        self._swept = True
        try:
            self._sweep_all(current_key)
        except OSError as exc:  # housekeeping never fails a build
            logger.debug("cache sweep of %s stopped: %s", self.root, exc)

    def _sweep_all(self, current_key: str | None) -> None:
        tmp_root = self.root / "tmp"
        now = time.time()
        if tmp_root.is_dir():
            for child in list(tmp_root.iterdir()):
                match = re.fullmatch(_TMP_PATTERN, child.name)
                if match is None:
                    if child.name.startswith(".probe-") and _age(child, now) > 60:
                        child.unlink(missing_ok=True)
                    continue
                key = match.group("key")
                if key == current_key:
                    continue
                if self._try_lock(key, lambda c=child: self._rmtree_quiet(c)):
                    logger.debug("removed stale build dir %s", child)
        self._rmtree_quiet(self.root / "trash", only_children=True)
        runs = self.root / "runs"
        if runs.is_dir():
            for child in list(runs.iterdir()):
                if _age(child, now) > RUN_MARKER_MAX_AGE:
                    self._rmtree_quiet(child)

    def _try_lock(self, key: str, action: Callable[[], None]) -> bool:
        """Run ``action`` under ``key``'s lock if it is free right now; return whether it ran."""
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.lock_path(key)), mode=_file_mode())
        try:
            lock.acquire(timeout=0)
        except (Timeout, OSError):
            return False
        try:
            action()
        finally:
            lock.release()
        return True

    @staticmethod
    def _rmtree_quiet(path: Path, only_children: bool = False) -> None:
        if only_children:
            if path.is_dir():
                for child in list(path.iterdir()):
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        try:
                            child.unlink(missing_ok=True)
                        except OSError:
                            pass
            return
        shutil.rmtree(path, ignore_errors=True)

    def _locked(self, key: str, label: str, *, drop_lock_file: bool = False) -> "_KeyLock":
        return _KeyLock(self, key, label, drop_lock_file=drop_lock_file)


class _KeyLock:
    """An exclusive lock on one key that logs while it waits and gives up after ``lock_timeout``.

    It is an ``flock`` (through :mod:`filelock`): the kernel drops it when the holding process
    exits or is killed, so a dead builder never blocks anyone.
    """

    def __init__(self, cache: Cache, key: str, label: str, *, drop_lock_file: bool = False) -> None:
        self.cache, self.key, self.label = cache, key, label
        self.lock_file = cache.lock_path(key)
        self.owner_file = self.lock_file.with_suffix(".owner")
        self.drop_lock_file = drop_lock_file  # unlink the lock file (while held) on exit: see Cache.clean_locks
        self._lock: Any = None

    def __enter__(self) -> float:
        from filelock import FileLock, Timeout

        what = f"tiny-model entry {self.label or self.key}" + (f" (key {self.key})" if self.label else "")
        try:
            _mkdir(self.lock_file.parent)
        except OSError as exc:
            raise CacheError(f"cannot lock {what}: {self.lock_file.parent}: {_why(exc)}",
                             path=self.lock_file, errno=exc.errno) from None
        self._lock = FileLock(str(self.lock_file), mode=_file_mode())
        start = time.monotonic()
        deadline = start + max(0.0, self.cache.lock_timeout)
        interval = min(self.cache.first_wait_log, self.cache.wait_log_interval)
        while True:
            step = max(0.0, min(interval, deadline - time.monotonic()))
            interval = self.cache.wait_log_interval
            try:
                self._lock.acquire(timeout=step, poll_interval=0.02)
                break
            except Timeout:
                waited = time.monotonic() - start
                owner = self._owner()
                if time.monotonic() >= deadline:
                    raise CacheError(
                        f"gave up after {waited:.1f}s waiting for the lock on {what}: lock file {self.lock_file} "
                        f"is held by {owner}; if that process is stuck, stop it; "
                        "or raise the limit with --tiny-lock-timeout / ini tiny_lock_timeout",
                        path=self.lock_file,
                    ) from None
                self.cache._log(
                    f"waiting for {owner} to finish building {what} ({waited:.0f}s so far, lock {self.lock_file})"
                )
            except OSError as exc:
                raise CacheError(f"cannot lock {what}: {self.lock_file}: {_why(exc)}",
                                 path=self.lock_file, errno=exc.errno) from None
        self._write_owner()
        return time.monotonic() - start

    def _write_owner(self) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "label": self.label}
        tmp = self.owner_file.with_name(f"{self.owner_file.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(info))
            os.replace(tmp, self.owner_file)
        except OSError:  # only costs a less precise "waiting for ..." message
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass

    def _owner(self) -> str:
        """``pid N on HOST (for Ns)`` of the current holder, as far as its owner file tells."""
        try:
            info = json.loads(self.owner_file.read_text())
            pid, host = int(info["pid"]), str(info["host"])
            since = float(info.get("since", 0.0))
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"
        text = f"pid {pid} on {host}"
        if since:
            text += f" (holding it for {max(0.0, time.time() - since):.0f}s)"
        if host == socket.gethostname() and not _pid_alive(pid):
            text += " [that process is gone: its lock should have been released; is the cache on a file system without flock?]"
        return text

    def __exit__(self, *exc: object) -> None:
        _unlink_quiet(self.owner_file)
        if self.drop_lock_file:
            _unlink_quiet(self.lock_file)
        self._lock.release()


# -- completion marker and verification ------------------------------------------------------
#: A file must be this much older than a stat memo for its stat signature to stand for its content.
MEMO_SETTLE_NS = 2 * 10**9


def stat_memo(memo: Path, files: list[Path], compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``compute()``, or its value remembered in ``memo`` while ``files`` keep their stat signatures.

    A signature is (size, mtime, inode) per file or directory.  It stands for the content only for
    files that were already :data:`MEMO_SETTLE_NS` old when the memo was taken: a write in the same
    clock tick as a stat need not move the mtime, so a recently edited file is read again on every
    use until it settles.  ``memo`` (``<cache root>/memo/<name>``) is written atomically, and only where the
    cache root exists: a run that builds nothing creates nothing.  A cache that cannot be written, or
    a value JSON cannot hold, only loses the memo.
    """
    taken = time.time_ns()
    signature = [_stat_signature(path) for path in files]
    try:
        data = json.loads(memo.read_bytes())
        if data["signature"] == signature and all(s is None or s[2] < data["taken"] - MEMO_SETTLE_NS
                                                  for s in signature):  # None: a path that does not exist
            return dict(data["value"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    value = compute()
    if memo.parent.parent.is_dir() and [_stat_signature(path) for path in files] == signature:
        try:  # (nothing moved while computing)
            text = json.dumps({"signature": signature, "taken": taken, "value": value})
            _mkdir(memo.parent)
            tmp = memo.with_name(f"{memo.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
            tmp.write_text(text)
            os.replace(tmp, memo)
        except (OSError, TypeError, ValueError, RecursionError) as exc:
            logger.debug("cannot write memo %s: %s", memo, exc)
    return value


def _stat_signature(path: Path) -> list[Any] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [str(path), st.st_size, st.st_mtime_ns, st.st_ino]


def _iter_files(root: Path) -> Iterator[Path]:
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            yield Path(dirpath) / name


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def write_marker(entry: Path, key: str) -> None:
    """Record size, sha256 and stat signature of every file, then write the marker (last, atomically)."""
    files = {}
    for path in sorted(_iter_files(entry)):
        rel = path.relative_to(entry).as_posix()
        if rel == MARKER:
            continue
        if path.is_symlink():
            raise CacheError(f"refusing to publish {entry}: {rel} is a symbolic link (entries hold real files)",
                             path=path)
        if path.suffix.lower() in UNSAFE_SUFFIXES:
            raise CacheError(f"refusing to publish {entry}: {rel} is a pickle-based file (only safetensors "
                             "weights are allowed in the cache)", path=path)
        st = path.stat()
        files[rel] = {"size": st.st_size, "sha256": _sha256(path), "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}
    data = {"key": key, "format": FORMAT_VERSION, "created": time.time(), "files": files}
    tmp = entry / (MARKER + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, entry / MARKER)


def verify_entry(entry: Path, *, hashes: bool | None = None) -> str | None:
    """None if ``entry`` is complete and intact, else a short reason.

    Checks the marker, then that every recorded file exists with its recorded size and sha256, and
    that the entry holds no other file, no pickle-based file and no symbolic link.

    ``hashes``: True hashes every file; False checks sizes only; None (the default, the warm path)
    hashes only the files whose stat signature (size, mtime, inode) differs from the one recorded at
    publish time, or was recorded in the same clock tick as the marker (a write in that tick would
    not move the mtime: git's "racy clean" rule).  Any write through the file system moves the mtime;
    ``python -m pytest_tinymodels verify`` hashes everything (bit rot, edits that restore mtimes).
    """
    return _check_entry(entry, hashes)[0]


def _check_entry(entry: Path, hashes: bool | None) -> tuple[str | None, int]:
    """(:func:`verify_entry`'s answer, the entry's size in bytes from its marker)."""
    marker = entry / MARKER
    try:
        with open(marker, "rb") as fh:
            marker_mtime = os.fstat(fh.fileno()).st_mtime_ns
            data = json.loads(fh.read())
        files = data["files"]
        if not isinstance(files, dict):
            raise TypeError
    except FileNotFoundError:
        return "incomplete (no completion marker)", 0
    except (OSError, ValueError, KeyError, TypeError):
        return "unreadable completion marker", 0
    size = 0
    for rel, meta in files.items():
        if (not isinstance(rel, str) or not isinstance(meta, dict) or not rel or "\x00" in rel
                or rel.startswith("/") or ".." in rel.split("/")):
            return "unreadable completion marker", 0
        path = entry / rel
        try:
            st = path.lstat()
        except (OSError, ValueError):
            return f"missing file {rel}", 0
        if not stat.S_ISREG(st.st_mode):
            return f"{rel} is not a regular file", 0
        if st.st_size != meta.get("size"):
            return f"{rel} has {st.st_size} bytes, expected {meta.get('size')}", 0
        size += st.st_size
        if hashes is False:
            continue
        unchanged = (hashes is None and st.st_mtime_ns == meta.get("mtime_ns") and st.st_ino == meta.get("ino")
                     and st.st_mtime_ns < marker_mtime)
        if not unchanged and _sha256(path) != meta.get("sha256"):
            return f"{rel} was modified (sha256 mismatch)", 0
    for dirpath, dirnames, filenames in os.walk(entry):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = Path(full).relative_to(entry).as_posix()
            if os.path.islink(full):
                return f"unexpected symbolic link {rel}", 0
            if name.lower().endswith(UNSAFE_SUFFIXES):
                return f"unexpected pickle-based file {rel} (only safetensors are allowed)", 0
            if name in filenames and rel not in files and rel != MARKER:
                return f"unexpected file {rel} (written into the entry after it was published)", 0
    return None, size + marker.stat().st_size


def entry_size(entry: Path) -> int:
    total = 0
    for path in _iter_files(entry):
        try:
            total += path.stat().st_size
        except OSError:
            pass
    return total


def fallback_dir() -> Path:
    """The private temporary cache used when the configured one is not writable.

    ``<tmp>/pytest-tinymodels-<uid>/cache``, shared by this user's processes (xdist workers, later
    runs); if that directory belongs to someone else or is a symlink, a fresh ``mkdtemp`` instead.
    """
    base = Path(tempfile.gettempdir()) / f"pytest-tinymodels-{_uid()}"
    try:
        base.mkdir(mode=0o700, exist_ok=True)
        st = base.lstat()
        if stat.S_ISDIR(st.st_mode) and (not hasattr(os, "getuid") or st.st_uid == os.getuid()):
            return base / "cache"
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix="pytest-tinymodels-")) / "cache"


def _check_key(key: str) -> None:
    if not _is_key(key):
        raise ValueError(f"invalid cache key {key!r}")


def _uid() -> str:
    return str(os.getuid()) if hasattr(os, "getuid") else (os.environ.get("USERNAME") or "user")


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _os_error_in(exc: BaseException) -> OSError | None:
    """The first OSError with an errno in ``exc``'s chain (builders wrap them in BuildError)."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 10:
        if isinstance(current, OSError) and current.errno is not None:
            return current
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def _unlink_quiet(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def _age(path: Path, now: float) -> float:
    try:
        return now - path.lstat().st_mtime
    except OSError:
        return 0.0


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate it there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: exists, belongs to someone else
        return True
    return True


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _umask() -> int:
    """The process umask, read without changing it where possible (``os.umask`` is process-wide:
    setting it to 0 for a moment would let a file created by another thread meanwhile be 0666)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _file_mode() -> int:
    """0666 minus the umask: what a plain ``open()`` would create (filelock applies modes verbatim)."""
    return 0o666 & ~_umask()


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        if not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "exists and is not a directory", str(path)) from None


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
