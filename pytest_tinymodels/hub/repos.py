"""Tiny entries published under Hub repo ids, so unmodified code that calls
``from_pretrained("org/name")``, ``hf_hub_download``, ``snapshot_download`` or
``datasets.load_dataset("org/name")`` gets a tiny model/tokenizer/dataset with no network.

Which ids exist is the registry's business (:mod:`.registry`). How they are served
(:class:`TinyHub`; :mod:`.serve` for other processes):

* ``serve`` (default): an in-process loopback :class:`~pytest_tinymodels.hub.server.HubServer`
  whose repos are built on their first request (reused from the cache afterwards), with
  ``HF_ENDPOINT`` pointed at it, ``HF_HUB_OFFLINE=0`` and a fresh ``HF_HUB_CACHE``. Every
  declared *and* rule-derived id works, subprocesses inherit the endpoint, and an unknown id
  gets the Hub's own "repository not found" answer (and a hint in the summary).
* ``offline``: every *declared* id is built at session start and written into a standard
  huggingface_hub cache (``models--org--name/{refs/main,snapshots/<sha>/,blobs/}``), with
  ``HF_HUB_OFFLINE=1``. No socket at all; rule-derived ids work only when declared.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ..errors import ManifestError, TinyModelsError
from .registry import BUILTIN_RULES, HubRegistry, HubTarget, miss_hint

__all__ = ["HubRepos", "TinyHub", "materialize", "summary_lines"]

MODES = ("serve", "offline")
#: Seconds huggingface_hub waits for an answer in serve mode (a first request may build the repo).
DEFAULT_TIMEOUT = 300
DATASET_FILE = "data/train-00000-of-00001.parquet"
#: Set to 1 to log every request of the in-process server to stderr.
VERBOSE_ENV = "PYTEST_TINYMODELS_HUB_VERBOSE"



# --------------------------------------------------------------------------- repos on disk


class HubRepos:
    """Builds (or reuses) the entry behind a hub id and returns a repo directory for it.

    Model repos are the cache entry's ``repo/`` directory itself; dataset repos are a parquet
    export of the entry's dataset, written under ``workdir``. Used as a
    :class:`~pytest_tinymodels.hub.server.HubServer` ``resolve`` callback; records what it served,
    what it could not build and which ids nobody declared.
    """

    def __init__(self, session: Any, registry: HubRegistry, workdir: Path,
                 log: Callable[[str], None] | None = None) -> None:
        self.session = session
        self.registry = registry
        self.workdir = Path(workdir)
        self.log = log
        self.served: dict[tuple[str, str], dict[str, Any]] = {}
        self.failures: dict[tuple[str, str], str] = {}
        self.misses: dict[tuple[str, str], int] = {}
        #: dataset id -> config names asked for it while it was not served (for the summary's hint)
        self.missed_configs: dict[str, list[str]] = {}
        self._lock = threading.RLock()
        self._paths: dict[tuple[str, str], Path] = {}

    def __call__(self, repo_type: str, repo_id: str) -> Path | None:
        """:class:`HubServer` ``resolve`` callback: a directory, None (unknown id) or RepoUnavailable."""
        from .server import RepoUnavailable

        key = (repo_type, repo_id)
        with self._lock:
            if key in self._paths:
                return self._paths[key]
            if key in self.failures:
                raise RepoUnavailable(self.failures[key])
        try:
            target = self.registry.resolve(repo_type, repo_id)
        except TinyModelsError as exc:
            self._fail(key, str(exc))
            raise RepoUnavailable(str(exc)) from None
        if target is None:
            self.note_miss(repo_type, repo_id)
            return None
        try:
            return self.path(target)
        except TinyModelsError as exc:
            message = _one_line(exc)
            self._fail(key, message)
            raise RepoUnavailable(message) from None

    def note_miss(self, repo_type: str, repo_id: str, config: str | None = None, *, count: bool = True) -> None:
        """Record a request for an id nobody serves (``config``: a dataset config name asked for it)."""
        with self._lock:
            if count:
                self.misses[(repo_type, repo_id)] = self.misses.get((repo_type, repo_id), 0) + 1
            if config:
                names = self.missed_configs.setdefault(repo_id, [])
                if config not in names:
                    names.append(config)

    def _fail(self, key: tuple[str, str], message: str) -> None:
        with self._lock:
            self.failures[key] = message
        if self.log is not None:
            self.log(f"hub: {key[0]} {key[1]} cannot be served: {message}")

    def variant(self, target: HubTarget) -> Any:
        """The session :class:`~pytest_tinymodels.session.Variant` behind ``target``."""
        from ..session import Variant

        if target.fixture is not None:
            variants = self.session.variants(target.fixture)
            if len(variants) != 1 or variants[0].id:
                raise ManifestError("a parametrized fixture cannot be published under one hub id",
                                    fixture=target.fixture, field="hub_id")
            return variants[0]
        spec = target.spec
        assert spec is not None
        if getattr(self.session, "dtype", None) and self.session.dtype != spec.dtype:
            spec = spec._replace(dtype=self.session.dtype)
        if spec.download or spec.source:
            return Variant("", spec)
        from ..build import architectures

        try:
            arch = architectures.resolve(spec.model_type, spec.architecture, spec.task)
        except architectures.ArchitectureError as exc:
            raise ManifestError(str(getattr(exc, "message", exc)), path=spec.manifest,
                                field=f"hub id {target.repo_id}") from None
        # normalized like TinySession does, so the same model shares one cache entry with fixtures
        spec = spec._replace(model_type=arch.model_type, architecture=arch.class_name, task=arch.task)
        return Variant("", spec, arch)

    def path(self, target: HubTarget) -> Path:
        """Build or reuse ``target``'s entry; the directory to serve for it."""
        key = (target.repo_type, target.repo_id)
        with self._lock:
            if key in self._paths:
                return self._paths[key]
        start = time.perf_counter()
        built = False
        if target.adapter is not None:
            path = self._adapter_repo(target)
        elif target.configs is not None:
            path = self._config_dataset_repo(target)
        else:
            result = self.session.ensure(self.variant(target))
            built = bool(result.built)
            entry = Path(result.path)
            if target.repo_type == "model":
                path = entry / "repo"
                if target.library is not None:
                    path = self._library_repo(entry, target.library)
            else:
                path = self._dataset_repo(entry)
        with self._lock:
            self._paths[key] = path
            self.served[key] = {"origin": target.origin, "label": target.label, "built": built,
                                "seconds": round(time.perf_counter() - start, 3)}
        return path

    def _library_repo(self, entry: Path, library: str) -> Path:
        """The entry's repo plus ``library``'s files (:func:`.layouts.write_library_layout`)."""
        from .layouts import write_library_layout

        task = json.loads((entry / "recipe.json").read_text(encoding="utf-8")).get("task") or "base"
        with self._lock:
            return write_library_layout(entry / "repo", self.workdir / "layouts" / f"{entry.name}-{library}", library,
                                        task)

    def _adapter_repo(self, target: HubTarget) -> Path:
        """A LoRA adapter on the served base of ``target`` (:func:`.layouts.build_adapter`)."""
        import hashlib

        from .layouts import build_adapter

        assert target.adapter is not None
        base = self.registry.adapter_base(target)
        base_dir = self.path(base)
        entry = base_dir.parent
        recipe = entry / "recipe.json"
        task = json.loads(recipe.read_text(encoding="utf-8")).get("task") if recipe.is_file() else None
        settings = json.dumps({k: v for k, v in sorted(target.adapter.items())}, sort_keys=True, default=list)
        name = hashlib.sha256(f"{base_dir}\0{settings}".encode()).hexdigest()[:16]
        with self._lock:
            return build_adapter(base_dir, base.repo_id, target.adapter, task or "causal-lm",
                                 self.workdir / "adapters" / name)

    def _config_dataset_repo(self, target: HubTarget) -> Path:
        """A dataset repo of named configs (:func:`.layouts.build_dataset_repo`)."""
        from .layouts import build_dataset_repo

        assert target.configs is not None

        def fixture_dataset(name: str) -> Any:
            from ..build import DATASET_DIR
            from ..build.datasets import load_dataset_dir

            result = self.session.ensure(self.variant(HubTarget("dataset", target.repo_id, target.origin, fixture=name)))
            return load_dataset_dir(Path(result.path) / DATASET_DIR)

        folder = target.repo_id.replace("/", "--")
        with self._lock:
            return build_dataset_repo(target.repo_id, target.configs, self.workdir / "dataset-configs" / folder,
                                      fixture_dataset)

    def _dataset_repo(self, entry: Path) -> Path:
        """A Hub-style dataset repo (``data/train-00000-of-00001.parquet``) exported from the entry."""
        from ..build import DATASET_DIR

        dest = self.workdir / "datasets" / entry.name
        with self._lock:
            if (dest / DATASET_FILE).is_file():
                return dest
            from ..build.datasets import load_dataset_dir

            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=_mkdir(self.workdir / "datasets")))
            (tmp / DATASET_FILE).parent.mkdir(parents=True)
            from .._quiet import quiet_libraries

            with quiet_libraries():
                load_dataset_dir(entry / DATASET_DIR).to_parquet(str(tmp / DATASET_FILE))
            os.replace(tmp, dest)
            return dest


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0][:300] if text else type(exc).__name__


def repo_folder_name(repo_type: str, repo_id: str) -> str:
    """``models--org--name`` / ``datasets--org--name`` (huggingface_hub's cache folder name)."""
    return f"{repo_type}s--" + repo_id.replace("/", "--")


def materialize(hub_cache: Path | str, repo_type: str, repo_id: str, repo_dir: Path | str,
                revisions: Iterable[str] = ()) -> str:
    """Write ``repo_dir`` into ``hub_cache`` in huggingface_hub's layout; returns the commit sha.

    ``<type>s--org--name/blobs/<etag>`` (hard links or copies), ``snapshots/<sha>/<path>`` (relative
    symlinks to the blobs) and ``refs/main``. The sha and etags are the ones :class:`HubServer`
    reports for the same directory, so both modes agree. Each of ``revisions`` resolves to the same
    content: a name gets ``refs/<name>`` (``refs/refs/pr/14`` for ``refs/pr/14``, as huggingface_hub
    writes it), a 40-hex commit sha a snapshot folder of its own.
    """
    from .snapshots import HashCache, build_snapshot

    snap = build_snapshot(repo_type, repo_id, Path(repo_dir).resolve(), HashCache())
    root = Path(hub_cache) / repo_folder_name(repo_type, repo_id)
    blobs = root / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    for entry in snap.files.values():
        blob = blobs / entry.etag
        if not blob.exists():
            tmp = blobs / f".{entry.etag}.tmp{os.getpid()}"
            try:
                os.link(entry.abspath, tmp)
            except OSError:
                shutil.copyfile(entry.abspath, tmp)
            os.replace(tmp, blob)
    names = ["main", *revisions]
    for commit in [snap.sha, *(r for r in names if is_commit_sha(r))]:
        link_snapshot(root, commit, {rel: entry.etag for rel, entry in snap.files.items()})
    for name in names:
        if not is_commit_sha(name):
            ref = root / "refs" / name
            ref.parent.mkdir(parents=True, exist_ok=True)
            ref.write_text(snap.sha)
    return snap.sha


def is_commit_sha(revision: str) -> bool:
    """Whether ``revision`` is a full 40-hex commit sha (huggingface_hub then reads ``snapshots/<sha>``)."""
    return len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)


def link_snapshot(root: Path, commit: str, files: Mapping[str, str]) -> Path:
    """``root/snapshots/<commit>/<path>`` symlinks to ``root/blobs/<etag>`` for ``files`` (path -> etag)."""
    snapshot = root / "snapshots" / commit
    for rel, etag in files.items():
        link = snapshot / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            try:
                os.symlink(os.path.relpath(root / "blobs" / etag, link.parent), link)
            except FileExistsError:  # another thread linked it first
                pass
    return snapshot


# --------------------------------------------------------------------------- session controller


class TinyHub:
    """Set up the tiny hub for a session (``start``) and restore everything (``stop``)."""

    def __init__(self, session: Any, registry: HubRegistry, mode: str = "serve", *,
                 log: Callable[[str], None] | None = None, timeout: int = DEFAULT_TIMEOUT) -> None:
        if mode not in MODES:
            raise ValueError(f"tiny hub mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.session = session
        self.registry = registry
        self.mode = mode
        self.log = log
        self.timeout = timeout
        self.workdir: Path | None = None
        self.repos: HubRepos | None = None
        self.server: Any = None
        self.endpoint: str | None = None
        self.hub_cache: Path | None = None
        self.setup_seconds = 0.0
        self._stack: ExitStack | None = None
        #: offline mode: (repo type, lower-case id) of every repo written into the hub cache
        self._materialized: set[tuple[str, str]] = set()

    def start(self) -> None:
        """Start serving (or write the offline cache) and point the Hugging Face libraries at it."""
        from .server import HubServer, hub_environment

        start = time.perf_counter()
        self.workdir = Path(tempfile.mkdtemp(prefix="tinymodels-hub-"))
        self.hub_cache = self.workdir / "hf-hub-cache"
        self.hub_cache.mkdir()
        self.repos = HubRepos(self.session, self.registry, self.workdir, log=self.log)
        stack = ExitStack()
        try:
            self._upstream_builds(stack)
            if self.mode == "serve":
                self.server = HubServer({}, resolve=self.repos, verbose=bool(os.environ.get(VERBOSE_ENV)),
                                        revision_names=self.registry.revision_names)
                stack.enter_context(self.server)
                self.endpoint = self.server.endpoint
                stack.enter_context(hub_environment(endpoint=self.endpoint, cache_dir=self.hub_cache, offline=False,
                                                    timeout=self.timeout, datasets_cache=self.workdir / "datasets-cache"))
            else:
                datasets_dirs: dict[str, Path] = {}
                for target in self._offline_targets():
                    try:
                        repo_dir = self.repos.path(target)
                    except TinyModelsError as exc:
                        self.repos.failures[(target.repo_type, target.repo_id)] = _one_line(exc)
                        if self.log is not None:
                            self.log(f"hub: {target.repo_type} {target.repo_id} cannot be built: {_one_line(exc)}")
                        continue
                    materialize(self.hub_cache, target.repo_type, target.repo_id, repo_dir, target.revisions)
                    self._materialized.add((target.repo_type, target.repo_id.lower()))
                    if target.repo_type == "dataset":
                        datasets_dirs[target.repo_id] = repo_dir
                if datasets_dirs:
                    self._prepare_datasets(datasets_dirs)
                stack.enter_context(hub_environment(cache_dir=self.hub_cache, offline=True,
                                                    datasets_cache=self.workdir / "datasets-cache"))
            stack.callback(self._observe().close)
        except BaseException:
            stack.close()
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise
        self._stack = stack
        self.setup_seconds = time.perf_counter() - start

    def _offline_targets(self) -> list[HubTarget]:
        """The declared ids, and the bases of declared adapters that only a rule serves (offline mode
        writes only what it can name up front)."""
        targets = self.registry.declared()
        names = {(t.repo_type, t.repo_id.lower()) for t in targets}
        for target in list(targets):
            if target.adapter is not None:
                base_id = target.adapter["base_id"]
                base = self.registry.resolve("model", base_id)
                if base is not None and ("model", base_id.lower()) not in names:
                    names.add(("model", base_id.lower()))
                    targets.insert(0, base)
        return targets

    def _observe(self) -> Any:
        """Watch the libraries' lookups: in offline mode every id asked for and not in the cache is a miss
        (and ``any_commit`` links a snapshot for a pinned commit); in both modes the dataset config names
        asked for an id nobody serves are kept for the summary's hint."""
        from .observer import LookupObserver

        repos = self.repos
        assert repos is not None
        if self.mode == "offline":
            def served(repo_type: str, repo_id: str) -> bool:
                return (repo_type, repo_id.lower()) in self._materialized or (repo_type, repo_id) in repos.failures

            def record(repo_type: str, repo_id: str, config: str | None) -> None:
                repos.note_miss(repo_type, repo_id, config)
        else:
            def served(repo_type: str, repo_id: str) -> bool:
                try:
                    return self.registry.resolve(repo_type, repo_id) is not None
                except TinyModelsError:
                    return True  # declared but broken: reported as a failure, not a miss

            def record(repo_type: str, repo_id: str, config: str | None) -> None:
                repos.note_miss(repo_type, repo_id, config, count=False)  # the server counted the request
        commit = self._link_commit if self.mode == "offline" and self.registry.any_commit else None
        return LookupObserver(record, served, offline=self.mode == "offline", commit=commit).start()

    def _link_commit(self, repo_type: str, repo_id: str, sha: str) -> None:
        """Offline ``any_commit``: a snapshot folder for ``sha`` with the files of ``main``."""
        assert self.hub_cache is not None
        root = self.hub_cache / repo_folder_name(repo_type, repo_id)
        if (root / "snapshots" / sha).is_dir() or not (root / "refs" / "main").is_file():
            return
        main = root / "snapshots" / (root / "refs" / "main").read_text().strip()
        files = {p.relative_to(main).as_posix(): Path(os.readlink(p)).name for p in main.rglob("*") if p.is_symlink()}
        link_snapshot(root, sha, files)

    def _upstream_builds(self, stack: ExitStack) -> None:
        """Builds that read a real repo (``source``/``download`` fixtures) keep using the Hub settings
        the session started with, not the tiny hub: while one runs, those settings are put back.

        The session's ``ensure`` is wrapped (undone by ``stack``). A build runs in the test's thread
        (fixture setup) or in the server thread while the test waits for the answer, so no test
        code sees the swapped settings.
        """
        from huggingface_hub import constants

        from .server import hub_environment

        upstream = {"endpoint": os.environ.get("HF_ENDPOINT") or constants.ENDPOINT,
                    "cache_dir": os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE,
                    "offline": bool(constants.HF_HUB_OFFLINE)}
        session, lock = self.session, threading.Lock()
        original = session.ensure

        def ensure(variant: Any, **kwargs: Any) -> Any:
            spec = variant.spec
            if not (spec.source or spec.download):
                return original(variant, **kwargs)
            with lock, hub_environment(**upstream):
                return original(variant, **kwargs)

        session.ensure = ensure
        stack.callback(lambda: session.__dict__.pop("ensure", None))

    def _prepare_datasets(self, repos: Mapping[str, Path]) -> None:
        """Offline mode: ``datasets.load_dataset(id)`` with ``HF_HUB_OFFLINE=1`` only reads datasets' own
        prepared cache, never the hub cache, so each declared dataset is loaded once here, through
        a short-lived loopback server, into the session's ``HF_DATASETS_CACHE``."""
        from .server import HubServer, hub_environment
        from .._quiet import quiet_libraries

        assert self.workdir is not None and self.hub_cache is not None
        with HubServer({f"datasets/{rid}": path for rid, path in repos.items()}) as server:
            with hub_environment(endpoint=server.endpoint, cache_dir=self.hub_cache, offline=False,
                                 datasets_cache=self.workdir / "datasets-cache"), quiet_libraries():
                import datasets

                for repo_id in repos:
                    target = self.registry.resolve("dataset", repo_id)
                    for name in (list(target.configs) if target is not None and target.configs else [None]):
                        datasets.load_dataset(repo_id, name)

    def stop(self) -> None:
        """Stop the server, restore the environment and delete the session's hub files."""
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- reporting

    def record(self) -> dict[str, Any]:
        """What this process served, failed and missed (JSON-able, merged across xdist workers)."""
        repos = self.repos
        if repos is None:
            return {"served": [], "failures": [], "misses": []}
        return {
            "served": [[t, i, v] for (t, i), v in sorted(repos.served.items())],
            "failures": [[t, i, m] for (t, i), m in sorted(repos.failures.items())],
            "misses": [[t, i, n] for (t, i), n in sorted(repos.misses.items())],
            "configs": {i: list(names) for i, names in sorted(repos.missed_configs.items())},
            "hints": {f"{t} {i}": self.registry.declaration_hint(t, i, repos.missed_configs.get(i, ()))
                      for (t, i) in sorted(repos.misses)},
        }

    def header(self) -> str:
        declared = len(self.registry.declared())
        rules = len(self.registry.rules) + (len(BUILTIN_RULES) if self.registry.builtin else 0)
        if self.mode == "serve":
            return (f"tinymodels: tiny hub serving on {self.endpoint} (HF_ENDPOINT; {declared} declared ids,"
                    f" {rules} id rules, built on first request)")
        return (f"tinymodels: tiny hub offline cache {self.hub_cache} (HF_HUB_CACHE, HF_HUB_OFFLINE=1;"
                f" {declared} declared ids, set up in {self.setup_seconds:.2f}s)")


def summary_lines(records: Iterable[Mapping[str, Any]], mode: str) -> list[str]:
    """Terminal summary lines from :meth:`TinyHub.record` of one or several processes."""
    served: dict[tuple[str, str], Any] = {}
    failures: dict[tuple[str, str], str] = {}
    misses: dict[tuple[str, str], int] = {}
    configs: dict[str, list[str]] = {}
    hints: dict[str, str] = {}
    for rec in records:
        hints.update(rec.get("hints", {}))
        for i, names in rec.get("configs", {}).items():
            configs.setdefault(i, [])
            configs[i] += [n for n in names if n not in configs[i]]
        for t, i, v in rec.get("served", []):
            served.setdefault((t, i), v)
        for t, i, m in rec.get("failures", []):
            failures.setdefault((t, i), m)
        for t, i, n in rec.get("misses", []):
            misses[(t, i)] = misses.get((t, i), 0) + n
    lines = []
    for (t, i), v in sorted(served.items()):
        lines.append(f"{t:<7} {i:<60} {v['label']}  ({v['origin']})")
    for (t, i), m in sorted(failures.items()):
        lines.append(f"{t:<7} {i:<60} NOT SERVED: {m}")
    answer = ("the library found no cached repo (offline)" if mode == "offline"
              else "the library got the Hub's 'repository not found'")
    for (t, i), n in sorted(misses.items()):
        example = hints.get(f"{t} {i}") or miss_hint(t, i, configs.get(i, ()))
        lines.append(f"{t:<7} {i:<60} not served ({n} request{'s' if n != 1 else ''}): {answer}; to serve a tiny"
                     f" one, add to the manifest: {example}")
    if mode == "offline":
        lines.append("(offline mode: only declared ids are in the cache; ids nobody declared fail as not cached)")
    return lines
