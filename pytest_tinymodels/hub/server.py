"""A loopback HTTP server that speaks the Hugging Face Hub's read endpoints.

It serves repositories from local directories to the real ``huggingface_hub`` client (and so to
``transformers``, ``snapshot_download``, ``hf download``...) so that tests and air-gapped machines
can use Hub-style ids without the network. Standard library only.

Endpoints (``{t}`` is ``models`` or ``datasets``)::

    GET       /api/{t}/{repo_id}                               repo info (JSON, like model_info)
    GET       /api/{t}/{repo_id}/revision/{revision}           repo info at a revision
    GET       /api/{t}/{repo_id}/tree/{revision}[/{path}]      tree listing (?recursive=true)
    HEAD/GET  /{repo_id}/resolve/{revision}/{filename}          a model file
    HEAD/GET  /datasets/{repo_id}/resolve/{revision}/{filename} a dataset file

Errors carry the ``X-Error-Code`` header that ``huggingface_hub.utils.hf_raise_for_status`` maps
to its exceptions: ``RepoNotFound`` -> ``RepositoryNotFoundError`` (status 401 without an
``Authorization`` header, 404 with one, like the real Hub), ``RevisionNotFound`` ->
``RevisionNotFoundError``, ``EntryNotFound`` -> ``RemoteEntryNotFoundError``, ``GatedRepo`` ->
``GatedRepoError``.

Each repo has a single branch, ``main``; its commit sha is a deterministic hash of the repo's
file names and contents. A revision is ``main``, that sha, or a name (or commit) that the optional
``revision_names`` callback allows for the repo; anything else is ``RevisionNotFound``.
File ETags follow the Hub: the sha256 of the content for LFS-like files (weights, archives, files
of 10 MiB or more; also sent as ``X-Linked-Etag``/``X-Linked-Size``), else the git blob sha1.

Request paths are never joined to the file system: a file is served only if its decoded,
validated relative path is a key of the listing made by walking the repo directory (``..``, ``.``,
empty, absolute, backslash and NUL components are refused, also when percent-encoded), so a
request can never read outside a repo. Symlinked *files* placed in a repo by its owner are
followed (an ``HF_HUB_CACHE`` snapshot is a folder of symlinks); symlinked directories are not.
The server only binds loopback addresses.
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import json
import os
import socket
import sys
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from .snapshots import FileEntry, HashCache, Snapshot, build_snapshot, serve_directory

__all__ = ["HubServer", "RepoUnavailable", "hub_environment", "serve_directory"]

DEFAULT_REVISION = "main"
_REPO_URL_PREFIXES = {"model": "", "dataset": "datasets/"}
_API_TYPES = {"models": "model", "datasets": "dataset"}
_CHUNK = 256 * 1024

RepoProvider = Mapping[str, Path] | Callable[[], Mapping[str, Path]]
RepoTypeOf = Mapping[str, str] | Callable[[str], str | None]
#: ``resolve(repo_type, repo_id) -> Path | None``: repos made on demand (see :class:`HubServer`).
RepoResolver = Callable[[str, str], "Path | None"]
#: ``revision_names(repo_type, repo_id) -> (extra revision names, any 40-hex commit resolves)``.
RevisionNames = Callable[[str, str], "tuple[Collection[str], bool]"]


class RepoUnavailable(Exception):
    """Raised by a :data:`RepoResolver` for a repo it knows but cannot provide (answered as not found,
    with the message in ``X-Error-Message``)."""


# --------------------------------------------------------------------------- path parsing


class _BadPath(ValueError):
    pass


def _decode_parts(raw_segments: list[str]) -> list[str]:
    """Percent-decode URL segments into validated path components (encoded slashes split too)."""
    parts: list[str] = []
    for raw in raw_segments:
        decoded = unquote(raw, errors="strict")
        for part in decoded.split("/"):
            if part in ("", ".", "..") or "\\" in part or "\0" in part:
                raise _BadPath(f"invalid path component {part!r}")
            parts.append(part)
    return parts


def _decode_segment(raw: str) -> str | None:
    """A single URL segment (repo name, revision); None when it is not a plain name."""
    try:
        value = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        return None
    if value in ("", ".", "..") or any(c in value for c in "/\\\0"):
        return None
    return value


def _decode_revision(raw: str) -> str | None:
    """A revision from one URL segment: huggingface_hub quotes ``refs/pr/14`` as ``refs%2Fpr%2F14``."""
    try:
        value = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        return None
    parts = value.split("/")
    if any(p in ("", ".", "..") for p in parts) or any(c in value for c in "\\\0"):
        return None
    return value


def _is_commit_sha(value: str) -> bool:
    return len(value) == 40 and all(c in "0123456789abcdef" for c in value)


def _is_true(values: list[str] | None) -> bool:
    return bool(values) and values[-1].strip().lower() in ("1", "true", "yes", "on")


class _HTTPError(Exception):
    def __init__(
        self, status: int, message: str, code: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})


# --------------------------------------------------------------------------- server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx pools connections
    server_version = "pytest-tinymodels-hub/1"
    timeout = 30  # an idle keep-alive connection is dropped after this many seconds
    hub: HubServer  # set on the per-server subclass

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        if self.hub.verbose:
            sys.stderr.write(f"[hubserver] {self.address_string()} {format % args}\n")

    def setup(self) -> None:
        super().setup()
        try:  # headers and body go out in separate writes: without this, Nagle + delayed ACK stall ~40 ms each
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.hub._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.hub._track(self.connection, add=False)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def _not_allowed(self) -> None:
        self.close_connection = True  # the request body is not read
        self._send_error(_HTTPError(405, "Method not allowed: this server is read-only."), head=False)

    do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed

    # -- plumbing

    def send_response(self, code: int, message: str | None = None) -> None:
        self.hub._record(self.command, self.path, code)  # before any byte reaches the client
        super().send_response(code, message)

    def _dispatch(self, *, head: bool) -> None:
        try:
            self.hub._handle(self, head=head)
        except _HTTPError as err:
            self._send_error(err, head=head)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as err:  # pragma: no cover - a bug: answer instead of hanging the client
            if self.hub.verbose:
                import traceback

                traceback.print_exc()
            self._send_error(_HTTPError(500, f"internal error: {type(err).__name__}: {err}"), head=head)

    def _send_json(self, payload: object, *, head: bool, status: int = 200, headers: Mapping[str, str] = {}) -> int:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)
        return status

    def _send_error(self, err: _HTTPError, *, head: bool) -> None:
        headers = dict(err.headers)
        if err.code:
            headers["X-Error-Code"] = err.code
        headers["X-Error-Message"] = err.message.encode("ascii", "replace").decode()
        try:
            self._send_json({"error": err.message}, head=head, status=err.status, headers=headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class _LoopbackHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class _LoopbackHTTPServer6(_LoopbackHTTPServer):
    address_family = socket.AF_INET6


class HubServer:
    """Serve local repo directories over the Hub's HTTP API on a loopback port.

    ``repos`` maps keys to repo directories, or is a callable returning such a mapping (called on
    every request, so repos can appear while the server runs). A key is a repo id (``org/name``)
    or a repo id prefixed with ``datasets/`` for a dataset repo; ``repo_type_of`` (a mapping or
    callable, key -> ``"model"``/``"dataset"``) overrides that rule. ``gated`` keys require an
    ``Authorization: Bearer <token>`` header with one of ``tokens`` (``GatedRepo`` otherwise).

    Use as a context manager or with :meth:`start`/:meth:`stop`; :attr:`endpoint` is the URL to
    put into ``HF_ENDPOINT`` (or pass as ``endpoint=``). ``requests`` records
    ``(method, path, status)`` of recent requests.

    ``resolve(repo_type, repo_id)`` (optional) is asked for repos that ``repos`` does not list: it
    returns a directory (made on demand, e.g. built) or ``None`` (not found); it may raise
    :class:`RepoUnavailable`. Calls for the same repo are serialized; it runs in the request thread.

    ``revision_names(repo_type, repo_id)`` (optional) returns ``(names, any_commit)``: more revision names
    that resolve to a repo's content (``v2.0.0``, ``refs/pr/14``), and whether any 40-hex commit sha does.
    """

    def __init__(
        self,
        repos: RepoProvider,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        repo_type_of: RepoTypeOf | None = None,
        gated: Collection[str] = (),
        tokens: Collection[str] = (),
        verbose: bool = False,
        resolve: RepoResolver | None = None,
        revision_names: RevisionNames | None = None,
    ) -> None:
        if host == "localhost":
            host = "127.0.0.1"
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"HubServer only listens on loopback addresses (127.0.0.1, ::1); got host={host!r}")
        self.host = host
        self.port = int(port)
        self._repos = repos
        self._repo_type_of = repo_type_of
        self._resolver = resolve
        self._revision_names = revision_names
        self._resolve_locks: dict[tuple[str, str], threading.Lock] = {}
        self._gated = frozenset(gated)
        self._tokens = frozenset(tokens)
        self.verbose = verbose
        self.requests: collections.deque[tuple[str, str, int]] = collections.deque(maxlen=10_000)
        self._hashes = HashCache()
        self._httpd: _LoopbackHTTPServer | None = None
        self._bound = False
        self._loop_thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    # -- lifecycle

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` of the server (still answers after :meth:`stop`)."""
        if not self._bound:
            raise RuntimeError("HubServer is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _bind(self) -> _LoopbackHTTPServer:
        if self._httpd is not None:
            raise RuntimeError("HubServer is already started")
        handler = type("HubHandler", (_Handler,), {"hub": self})
        cls = _LoopbackHTTPServer6 if ":" in self.host else _LoopbackHTTPServer
        httpd = cls((self.host, self.port), handler)
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._bound = True
        return httpd

    def start(self) -> HubServer:
        """Bind and serve in a daemon thread; returns self."""
        httpd = self._bind()
        self._loop_thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name=f"HubServer:{self.port}", daemon=True
        )
        self._loop_thread.start()
        return self

    def serve_forever(self, *, ready: Callable[[str], object] | None = None) -> None:
        """Serve in the calling thread until :meth:`stop` (from another thread) or Ctrl-C.

        For the CLI ``serve`` command; ``ready(endpoint)`` is called once the port is bound.
        """
        httpd = self._bind()
        self._loop_thread = threading.current_thread()
        if ready is not None:
            ready(self.endpoint)
        try:
            httpd.serve_forever(poll_interval=0.25)
        except KeyboardInterrupt:
            pass
        finally:
            self._loop_thread = None
            self.stop()

    def stop(self) -> None:
        """Stop serving, close the listening socket and drop open keep-alive connections."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        loop, self._loop_thread = self._loop_thread, None
        if loop is not None and loop is not threading.current_thread():
            httpd.shutdown()  # returns once the serve_forever loop has exited
            if loop.daemon:
                loop.join(timeout=5)
        httpd.server_close()
        with self._conns_lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> HubServer:
        return self.start()

    def environment(self, *, cache_dir: str | Path | None = None, offline: bool | None = None):
        """:func:`hub_environment` pointing huggingface_hub at this server."""
        return hub_environment(endpoint=self.endpoint, cache_dir=cache_dir, offline=offline)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._conns_lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def _record(self, method: str, path: str, status: int) -> None:
        self.requests.append((method, path, status))

    # -- repos

    def _type_of(self, key: str) -> tuple[str, str]:
        rtype: str | None = None
        if self._repo_type_of is not None:
            rtype = self._repo_type_of(key) if callable(self._repo_type_of) else self._repo_type_of.get(key)
        repo_id = key
        for prefix, kind in (("datasets/", "dataset"), ("models/", "model")):
            if key.startswith(prefix):
                repo_id = key[len(prefix):]
                rtype = rtype or kind
        rtype = rtype or "model"
        if rtype not in _REPO_URL_PREFIXES:
            raise ValueError(f"HubServer: unsupported repo type {rtype!r} for {key!r} (model or dataset)")
        return rtype, repo_id

    def _index(self) -> dict[tuple[str, str], tuple[str, Path]]:
        repos = self._repos() if callable(self._repos) else self._repos
        out: dict[tuple[str, str], tuple[str, Path]] = {}
        for key, path in repos.items():
            out[self._type_of(key)] = (key, Path(path))
        return out

    @staticmethod
    def _split_repo(
        index: Mapping[tuple[str, str], object], rtype: str, segs: list[str], markers: Collection[str]
    ) -> tuple[str, list[str]]:
        """Split API URL segments into (repo_id, rest): ``org/name`` unless ``segs[1]`` is a marker."""
        if not segs:
            raise _HTTPError(404, "Repository not found", "RepoNotFound")
        first = _decode_segment(segs[0])
        if first is None:
            raise _HTTPError(400, "Invalid repo id in URL")
        if len(segs) >= 2:
            second = _decode_segment(segs[1])
            if second is not None and (segs[1] not in markers or (rtype, f"{first}/{second}") in index):
                return f"{first}/{second}", segs[2:]
            if second is None and segs[1] not in markers:
                raise _HTTPError(400, "Invalid repo id in URL")
        return first, segs[1:]

    def _snapshot(self, request: _Handler, rtype: str, repo_id: str) -> Snapshot:
        index = self._index()
        found = index.get((rtype, repo_id))
        if found is None and self._resolver is not None:
            found = self._resolved(rtype, repo_id)
        if found is None or not found[1].is_dir():
            authed = request.headers.get("Authorization") is not None
            raise _HTTPError(
                404 if authed else 401,
                f"Repository not found: {_REPO_URL_PREFIXES[rtype]}{repo_id}",
                "RepoNotFound",
            )
        key, path = found
        if key in self._gated:
            auth = request.headers.get("Authorization") or ""
            token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
            if token is None or token not in self._tokens:
                raise _HTTPError(
                    401 if token is None else 403,
                    f"Access to {rtype} {repo_id} is restricted. You must have access to it and be authenticated"
                    " to access it. Please log in.",
                    "GatedRepo",
                )
        return build_snapshot(rtype, repo_id, path.resolve(), self._hashes)

    def _resolved(self, rtype: str, repo_id: str) -> tuple[str, Path] | None:
        assert self._resolver is not None
        with self._conns_lock:
            lock = self._resolve_locks.setdefault((rtype, repo_id), threading.Lock())
        with lock:
            try:
                path = self._resolver(rtype, repo_id)
            except RepoUnavailable as err:
                raise _HTTPError(404, f"Repository not available: {_REPO_URL_PREFIXES[rtype]}{repo_id}: {err}",
                                 "RepoNotFound") from None
        if path is None:
            return None
        return (_REPO_URL_PREFIXES[rtype] + repo_id, Path(path))

    def _check_revision(self, snap: Snapshot, raw: str) -> str:
        """The commit sha to report for revision ``raw`` of ``snap``, or RevisionNotFound.

        ``main`` and the snapshot's sha always resolve; ``revision_names(repo_type, repo_id)`` (see
        :class:`HubServer`) adds names (``v2.0.0``, ``refs/pr/14``) and, when it says so, any 40-hex
        commit sha, which is then reported as the commit (a suite pinning a commit gets that commit)."""
        rev = _decode_revision(raw)
        if rev in (DEFAULT_REVISION, snap.sha):
            return snap.sha
        if rev is not None and self._revision_names is not None:
            names, any_commit = self._revision_names(snap.repo_type, snap.repo_id)
            if rev in names:
                return rev if _is_commit_sha(rev) else snap.sha
            if any_commit and _is_commit_sha(rev):
                return rev
        raise _HTTPError(404, f"Invalid rev id: {rev if rev is not None else raw}", "RevisionNotFound")

    # -- routing

    def _handle(self, request: _Handler, *, head: bool) -> int:
        url = urlsplit(request.path)
        query = parse_qs(url.query)
        segs = url.path.split("/")[1:]
        if segs and segs[-1] == "" and len(segs) > 1:
            segs = segs[:-1]
        if len(segs) >= 2 and segs[0] == "api" and segs[1] in _API_TYPES:
            return self._api(request, _API_TYPES[segs[1]], segs[2:], query, head=head)
        if segs and segs[0] == "datasets":
            return self._resolve(request, "dataset", segs[1:], head=head)
        if segs and segs[0] not in ("api", "spaces", "kernels", ""):
            return self._resolve(request, "model", segs, head=head)
        raise _HTTPError(404, f"Not found: {url.path} (this server implements the Hub's read-only repo endpoints)")

    def _api(self, request: _Handler, rtype: str, segs: list[str], query: dict, *, head: bool) -> int:
        repo_id, rest = self._split_repo(self._index(), rtype, segs, ("revision", "tree"))
        snap = self._snapshot(request, rtype, repo_id)
        if not rest:
            return request._send_json(self._info(snap, blobs=_is_true(query.get("blobs"))), head=head)
        if rest[0] == "revision" and len(rest) == 2:
            commit = self._check_revision(snap, rest[1])
            return request._send_json(self._info(snap, blobs=_is_true(query.get("blobs")), sha=commit), head=head)
        if rest[0] == "tree" and len(rest) >= 2:
            commit = self._check_revision(snap, rest[1])
            return request._send_json(
                self._tree(snap, rest[2:], recursive=_is_true(query.get("recursive"))),
                head=head,
                headers={"X-Repo-Commit": commit},
            )
        raise _HTTPError(404, f"Not found: this server does not implement /{'/'.join(rest)} for repos")

    def _info(self, snap: Snapshot, *, blobs: bool, sha: str | None = None) -> dict:
        siblings = []
        for e in snap.files.values():
            sib: dict = {"rfilename": e.path, "size": e.size}
            if blobs:
                sib["blobId"] = e.blob_id
                if e.is_lfs:
                    sib["lfs"] = {"sha256": e.sha256, "size": e.size, "pointerSize": len(e.lfs_pointer())}
            siblings.append(sib)
        info: dict = {
            "_id": snap.sha[:24],  # the repo's id does not change with the revision
            "id": snap.repo_id,
            "author": snap.repo_id.split("/")[0] if "/" in snap.repo_id else None,
            "sha": sha or snap.sha,
            "lastModified": snap.last_modified,
            "createdAt": snap.last_modified,
            "private": False,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": sum(e.size for e in snap.files.values()),
        }
        if snap.repo_type == "model":
            info["modelId"] = snap.repo_id
            config = self._config_summary(snap)
            if config:
                info["config"] = config
        return info

    @staticmethod
    def _config_summary(snap: Snapshot) -> dict | None:
        entry = snap.files.get("config.json")
        if entry is None or entry.size > 4 * 1024 * 1024:
            return None
        try:
            with open(entry.abspath, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        return {k: data[k] for k in ("architectures", "model_type") if k in data}

    def _tree(self, snap: Snapshot, raw_path: list[str], *, recursive: bool) -> list[dict]:
        try:
            base = "/".join(_decode_parts(raw_path))
        except (_BadPath, UnicodeDecodeError) as err:
            raise _HTTPError(404, f"Invalid path in repo: {err}", "EntryNotFound") from None
        dirs = snap.dirs()
        if base and base not in dirs:
            raise _HTTPError(404, f"Entry not found: {base} is not a folder of the repo", "EntryNotFound")
        prefix = base + "/" if base else ""
        entries: list[tuple[str, dict]] = []
        for d in dirs:
            if d.startswith(prefix) and (recursive or "/" not in d[len(prefix):]):
                entries.append((d, {"type": "directory", "oid": snap.tree_id(d), "size": 0, "path": d}))
        for p, e in snap.files.items():
            if p.startswith(prefix) and (recursive or "/" not in p[len(prefix):]):
                item: dict = {"type": "file", "oid": e.blob_id, "size": e.size, "path": p}
                if e.is_lfs:
                    item["lfs"] = {"oid": e.sha256, "size": e.size, "pointerSize": len(e.lfs_pointer())}
                entries.append((p, item))
        return [item for _, item in sorted(entries, key=lambda t: t[0])]

    def _resolve(self, request: _Handler, rtype: str, segs: list[str], *, head: bool) -> int:
        if len(segs) >= 3 and segs[2] == "resolve" and segs[1] != "resolve":
            repo_segs, rest = segs[:2], segs[3:]
        elif len(segs) >= 2 and segs[1] == "resolve":
            repo_segs, rest = segs[:1], segs[2:]
        else:
            raise _HTTPError(404, "Not found: expected /{repo_id}/resolve/{revision}/{filename}")
        names = [_decode_segment(s) for s in repo_segs]
        if any(n is None for n in names):
            raise _HTTPError(400, "Invalid repo id in URL")
        snap = self._snapshot(request, rtype, "/".join(names))  # type: ignore[arg-type]
        if not rest:
            raise _HTTPError(404, "Not found: missing revision", "RevisionNotFound")
        sha = self._check_revision(snap, rest[0])
        commit = {"X-Repo-Commit": sha}
        try:
            filename = "/".join(_decode_parts(rest[1:])) if len(rest) > 1 else ""
        except (_BadPath, UnicodeDecodeError) as err:
            raise _HTTPError(404, f"Invalid path in repo: {err}", "EntryNotFound", commit) from None
        entry = snap.files.get(filename)
        if entry is None:
            raise _HTTPError(404, f"Entry not found: {filename!r}", "EntryNotFound", commit)
        return self._send_file(request, snap, entry, head=head, sha=sha)

    @staticmethod
    def _send_file(request: _Handler, snap: Snapshot, entry: FileEntry, *, head: bool, sha: str | None = None) -> int:
        start, end = 0, entry.size - 1
        status = 200
        headers = {
            "X-Repo-Commit": sha or snap.sha,
            "ETag": f'"{entry.etag}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'inline; filename="{entry.path.rsplit("/", 1)[-1]}"'.encode(
                "ascii", "replace"
            ).decode(),
            "Cache-Control": "no-cache",
        }
        if entry.is_lfs:
            headers["X-Linked-Etag"] = f'"{entry.sha256}"'
            headers["X-Linked-Size"] = str(entry.size)
        rng = request.headers.get("Range")
        if rng:
            parsed = _parse_range(rng, entry.size)
            if parsed is None:
                unsatisfiable = {"Content-Range": f"bytes */{entry.size}"}
                raise _HTTPError(416, f"Range not satisfiable: {rng}", headers=unsatisfiable)
            start, end = parsed
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{entry.size}"
        length = max(0, end - start + 1)
        request.send_response(status)
        for k, v in headers.items():
            request.send_header(k, v)
        request.send_header("Content-Length", str(length))
        request.end_headers()
        if head or length == 0:
            return status
        with open(entry.abspath, "rb") as f:
            f.seek(start)
            remaining = length
            while remaining > 0:
                chunk = f.read(min(_CHUNK, remaining))
                if not chunk:  # file shrank while serving: drop the connection rather than lie
                    request.close_connection = True
                    break
                request.wfile.write(chunk)
                remaining -= len(chunk)
        return status


def _parse_range(value: str, size: int) -> tuple[int, int] | None:
    """A single ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` range -> inclusive (start, end), None if unsatisfiable."""
    value = value.strip()
    if not value.lower().startswith("bytes=") or "," in value:
        return None
    first, _, last = value[6:].strip().partition("-")
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                return None
            return max(0, size - n), size - 1
        start = int(first)
        end = int(last) if last.strip() else size - 1
    except ValueError:
        return None
    if start < 0 or start >= size or end < start:
        return None
    return start, min(end, size - 1)




_UNSET = object()


@contextlib.contextmanager
def hub_environment(
    *,
    endpoint: str | None = None,
    cache_dir: str | Path | None = None,
    offline: bool | None = None,
    timeout: int | None = None,
    datasets_cache: str | Path | None = None,
) -> Iterator[None]:
    """Point huggingface_hub (and so transformers) at ``endpoint``/``cache_dir``/offline mode, then restore.

    huggingface_hub 2.x reads ``HF_ENDPOINT``, ``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE`` into
    ``huggingface_hub.constants`` once, at import; ``hf_hub_download`` builds URLs from
    ``constants.HUGGINGFACE_CO_URL_TEMPLATE`` and the module-level helpers
    (``huggingface_hub.model_info``, ``list_repo_files``...) are bound to an ``HfApi`` created at
    import. Setting environment variables alone therefore does not reach an already imported
    client: this sets both the variables and those attributes (``None`` leaves a setting alone),
    and the copies in ``datasets.config`` when ``datasets`` is already imported (imported inside
    the block, it reads the variables). ``timeout`` (seconds) sets ``HF_HUB_ETAG_TIMEOUT`` and
    ``HF_HUB_DOWNLOAD_TIMEOUT``, e.g. for a server that builds repos on the first request;
    ``datasets_cache`` sets ``HF_DATASETS_CACHE`` (datasets' prepared Arrow files), so that
    ``load_dataset`` cannot answer from an older session's copy.
    Not thread-safe; meant for tests and the CLI.
    """
    from huggingface_hub import constants, hf_api

    datasets_config = sys.modules.get("datasets.config")  # copies of the same settings, if imported
    env: dict[str, str | None] = {}
    attrs: list[tuple[object, str, object]] = []
    if endpoint is not None:
        endpoint = endpoint.rstrip("/")
        env["HF_ENDPOINT"] = endpoint
        attrs += [
            (constants, "ENDPOINT", endpoint),
            (constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}"),
        ]
        if isinstance(getattr(hf_api, "api", None), hf_api.HfApi):
            attrs.append((hf_api.api, "endpoint", endpoint))
        env["HF_UPDATE_DOWNLOAD_COUNTS"] = "0"  # datasets would ping a download counter outside the endpoint
        if datasets_config is not None:
            attrs += [
                (datasets_config, "HF_UPDATE_DOWNLOAD_COUNTS", False),
                (datasets_config, "HF_ENDPOINT", endpoint),
                (datasets_config, "HUB_DATASETS_URL", endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}"),
            ]
    if cache_dir is not None:
        cache = os.fspath(cache_dir)
        env["HF_HUB_CACHE"] = cache
        attrs.append((constants, "HF_HUB_CACHE", cache))
    if offline is not None:
        env["HF_HUB_OFFLINE"] = "1" if offline else "0"
        env["TRANSFORMERS_OFFLINE"] = None
        env["HF_DATASETS_OFFLINE"] = None
        attrs.append((constants, "HF_HUB_OFFLINE", bool(offline)))
        if datasets_config is not None:
            attrs += [(datasets_config, n, bool(offline)) for n in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")]

    if timeout is not None:
        env["HF_HUB_ETAG_TIMEOUT"] = env["HF_HUB_DOWNLOAD_TIMEOUT"] = str(int(timeout))
        attrs += [(constants, name, int(timeout)) for name in ("HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT")]

    if datasets_cache is not None:
        dcache = Path(datasets_cache)
        env["HF_DATASETS_CACHE"] = os.fspath(dcache)
        env["HF_DATASETS_DOWNLOADED_DATASETS_PATH"] = None
        env["HF_DATASETS_EXTRACTED_DATASETS_PATH"] = None
        if datasets_config is not None:
            attrs += [
                (datasets_config, "HF_DATASETS_CACHE", dcache),
                (datasets_config, "DOWNLOADED_DATASETS_PATH", dcache / "downloads"),
                (datasets_config, "EXTRACTED_DATASETS_PATH", dcache / "downloads" / "extracted"),
            ]

    saved_env = {k: os.environ.get(k) for k in env}
    saved_attrs = [(obj, name, getattr(obj, name, _UNSET)) for obj, name, _ in attrs]
    try:
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for obj, name, value in attrs:
            setattr(obj, name, value)
        yield
    finally:
        for obj, name, value in reversed(saved_attrs):
            if value is _UNSET:
                delattr(obj, name)
            else:
                setattr(obj, name, value)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
