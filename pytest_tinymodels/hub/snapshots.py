"""What a served repo is: its files with the Hub's hashes, its commit sha, found on disk.

A snapshot of a repo directory lists its regular files with the ETags the Hub would report (the
sha256 of the content for LFS-like files, else the git blob sha1) and a deterministic commit sha
over names and contents. The HTTP server (:mod:`.server`) answers from snapshots, and the offline
mode (:func:`.repos.materialize`) writes the same files, shas and ETags into a huggingface_hub
cache, so both modes agree. Standard library only.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FileEntry", "HashCache", "Snapshot", "build_snapshot", "serve_directory", "LFS_SUFFIXES", "LFS_SIZE_THRESHOLD"]

#: Files with these suffixes are reported as LFS files (ETag = sha256), like on the Hub.
LFS_SUFFIXES = frozenset(
    {
        ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".gguf",
        ".pkl", ".pickle", ".npy", ".npz", ".model", ".arrow", ".parquet", ".zip", ".gz",
        ".tar", ".tgz", ".zst", ".wav", ".mp3", ".flac", ".png", ".jpg", ".jpeg",
    }
)
#: Files at least this large are reported as LFS files regardless of suffix.
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
_SKIPPED_DIRS = frozenset({".git", ".cache"})  # git internals, huggingface_hub local_dir metadata


@dataclass(frozen=True)
class FileEntry:
    path: str  # posix path relative to the repo root
    abspath: str
    size: int
    git_sha1: str  # git blob id of the content
    sha256: str | None  # set for LFS-like files
    mtime: float

    @property
    def is_lfs(self) -> bool:
        return self.sha256 is not None

    @property
    def etag(self) -> str:
        return self.sha256 if self.sha256 is not None else self.git_sha1

    def lfs_pointer(self) -> bytes:
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {self.size}\n".encode()

    @property
    def blob_id(self) -> str:
        """The git oid of what git stores: the LFS pointer for LFS files, else the content."""
        return _git_blob_sha1(self.lfs_pointer()) if self.is_lfs else self.git_sha1


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _is_lfs(path: str, size: int) -> bool:
    return size >= LFS_SIZE_THRESHOLD or os.path.splitext(path)[1].lower() in LFS_SUFFIXES


class HashCache:
    """(path, size, mtime_ns, inode) -> (git_sha1, sha256|None): files are hashed once per change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[tuple, tuple[str, str | None]] = {}

    def hashes(self, abspath: str, st: os.stat_result, lfs: bool) -> tuple[str, str | None]:
        key = (abspath, st.st_size, st.st_mtime_ns, st.st_ino, lfs)
        with self._lock:
            hit = self._data.get(key)
        if hit is not None:
            return hit
        git = hashlib.sha1(b"blob %d\0" % st.st_size)
        sha = hashlib.sha256() if lfs else None
        with open(abspath, "rb") as f:
            while chunk := f.read(1 << 20):
                git.update(chunk)
                if sha is not None:
                    sha.update(chunk)
        value = (git.hexdigest(), sha.hexdigest() if sha is not None else None)
        with self._lock:
            if len(self._data) > 100_000:
                self._data.clear()
            self._data[key] = value
        return value


@dataclass(frozen=True)
class Snapshot:
    repo_type: str
    repo_id: str
    files: dict[str, FileEntry]
    sha: str
    last_modified: str

    def dirs(self) -> set[str]:
        out: set[str] = set()
        for p in self.files:
            parts = p.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                out.add("/".join(parts[:i]))
        return out

    def tree_id(self, directory: str) -> str:
        prefix = directory + "/"
        h = hashlib.sha1(b"tree\0")
        for p, e in self.files.items():
            if p.startswith(prefix):
                h.update(f"{p[len(prefix):]}\0{e.blob_id}\n".encode())
        return h.hexdigest()


def _iter_repo_files(root: str) -> Iterator[tuple[str, str, os.stat_result]]:
    """(relative posix path, absolute path, stat) of the regular files of a repo directory."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED_DIRS)
        for name in sorted(filenames):
            abspath = os.path.join(dirpath, name)
            try:
                st = os.stat(abspath)  # follows a symlinked file placed by the repo owner
            except OSError:
                continue  # dangling symlink
            if not stat.S_ISREG(st.st_mode):
                continue
            rel = os.path.relpath(abspath, root).replace(os.sep, "/")
            yield rel, abspath, st


def build_snapshot(repo_type: str, repo_id: str, root: Path, hashes: HashCache) -> Snapshot:
    files: dict[str, FileEntry] = {}
    commit = hashlib.sha1(f"pytest-tinymodels\0{repo_type}\0{repo_id}\0".encode())
    newest = 0.0
    for rel, abspath, st in _iter_repo_files(str(root)):
        lfs = _is_lfs(rel, st.st_size)
        git_sha1, sha256 = hashes.hashes(abspath, st, lfs)
        files[rel] = FileEntry(rel, abspath, st.st_size, git_sha1, sha256, st.st_mtime)
        commit.update(f"{rel}\0{git_sha1}\n".encode())
        newest = max(newest, st.st_mtime)
    when = _dt.datetime.fromtimestamp(newest or 0, tz=_dt.timezone.utc)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    return Snapshot(repo_type, repo_id, files, commit.hexdigest(), stamp)


def serve_directory(root: Path | str) -> dict[str, Path]:
    """Repos found under ``root``, as ``{key: path}`` for :class:`HubServer`.

    Layout: ``root/<org>/<name>/...`` (model ``org/name``), ``root/<name>/...`` holding files
    directly (legacy model id ``name``), and the same below ``root/datasets/`` for datasets
    (keys ``datasets/org/name``). Hidden directories are skipped. Call it again (or pass
    ``lambda: serve_directory(root)`` to the server) to pick up repos added later.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"serve_directory: {root} is not a directory")
    repos: dict[str, Path] = {}

    def scan(base: Path, prefix: str) -> None:
        for first in sorted(base.iterdir()):
            if first.name.startswith(".") or not first.is_dir() or (prefix == "" and first.name == "datasets"):
                continue
            if any(child.is_file() for child in first.iterdir()):
                repos[prefix + first.name] = first
                continue
            for second in sorted(first.iterdir()):
                if second.is_dir() and not second.name.startswith("."):
                    repos[f"{prefix}{first.name}/{second.name}"] = second

    scan(root, "")
    if (root / "datasets").is_dir():
        scan(root / "datasets", "datasets/")
    return repos
