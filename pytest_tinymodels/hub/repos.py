"""Offline hub: tiny entries published under Hub repo ids, so unmodified code that calls
``from_pretrained("org/name")``, ``hf_hub_download``, ``snapshot_download`` or
``datasets.load_dataset("org/name")`` gets a tiny model/tokenizer/dataset with no network.

Which ids exist (:class:`HubRegistry`, built from the manifests):

* ``hub_id = "org/name"`` (or a list) on a ``[fixtures.NAME]`` table publishes that fixture's
  repo as model ``org/name`` and its dataset as dataset ``org/name``;
* a ``[hub]`` table declares more ids in one place::

      [hub]
      ids = { "org/tiny-llama" = "LlamaForCausalLM",              # class name
              "org/tiny-bert" = { model_type = "bert", task = "masked-lm" },  # a fixture table
              "org/mine" = "tiny_llama" }                          # a fixture name
      datasets = { "org/tiny-ds" = "tiny_llama" }   # dataset repos: same value forms
      rules = ["myorg/tiny-{arch}"]                 # more id patterns ({arch}: class or model type)
      builtin = true                                # the built-in rules and aliases (default)

* built-in rules: ``hf-internal-testing/tiny-random-{arch}`` (and the same under
  ``peft-internal-testing``, ``trl-internal-testing``, ``HuggingFaceM4``) and
  ``trl-internal-testing/tiny-{arch}-<suffix>``, where ``{arch}`` is any architecture class
  (``LlamaForCausalLM``) or model type (``gpt2``) of the installed transformers; plus
  :data:`BUILTIN_IDS`, common tiny ids whose names are no class name.

How they are served (:class:`TinyHub`, used by the pytest plugin; ``serve.py`` for other
processes):

* ``serve`` (default): an in-process loopback :class:`~pytest_tinymodels.hubserver.HubServer`
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
import re
import shutil
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import pytest

from .errors import ManifestError, TinyModelsError
from .manifest import FixtureSpec, Manifest, is_hub_id

__all__ = [
    "BUILTIN_IDS",
    "BUILTIN_RULES",
    "HubRegistry",
    "HubRepos",
    "HubTarget",
    "TinyHub",
    "load_hub_registry",
    "materialize",
]

MODES = ("serve", "offline")
REPO_TYPES = ("model", "dataset")
#: Keys of the ``[hub]`` table.
HUB_KEYS = ("ids", "datasets", "rules", "builtin")
#: Fixture keys a ``[hub]`` id table may not use (they make no sense for one published repo).
_TABLE_EXCLUDED = ("hub_id", "architectures", "exclude", "description")
#: Id patterns that resolve by rule; ``{arch}`` is an architecture class or a model type,
#: ``{suffix}`` an optional ``-anything`` tail (``tiny-Qwen2ForCausalLM-2.5``).
BUILTIN_RULES: tuple[str, ...] = (
    "hf-internal-testing/tiny-random-{arch}",
    "peft-internal-testing/tiny-random-{arch}",
    "trl-internal-testing/tiny-random-{arch}",
    "HuggingFaceM4/tiny-random-{arch}",
    "trl-internal-testing/tiny-{arch}{suffix}",
)
#: Common tiny test ids whose name is not ``tiny-random-<class or model type>``.
BUILTIN_IDS: dict[str, str] = {
    "sshleifer/tiny-gpt2": "GPT2LMHeadModel",
    "sshleifer/tiny-distilbert-base-cased": "distilbert",
    "sshleifer/tiny-distilroberta-base": "roberta",
    "sshleifer/tiny-mbart": "mbart",
    "sshleifer/bart-tiny-random": "BartForConditionalGeneration",
    "patrickvonplaten/t5-tiny-random": "T5ForConditionalGeneration",
    "hf-internal-testing/tiny-bert": "bert",
    "hf-internal-testing/tiny-bert-for-token-classification": "BertForTokenClassification",
    "hf-internal-testing/Mixtral-tiny": "MixtralForCausalLM",
    "hf-internal-testing/tiny-random-gpt2": "GPT2LMHeadModel",
    "hf-internal-testing/tiny-random-t5": "T5ForConditionalGeneration",
    "hf-internal-testing/tiny-random-bert": "BertModel",  # the rule alone would give bert's default, BertForMaskedLM
    "fxmarty/tiny-llama-fast-tokenizer": "LlamaForCausalLM",
    "HuggingFaceM4/tiny-random-LlamaForCausalLM": "LlamaForCausalLM",
}
#: Seconds huggingface_hub waits for an answer in serve mode (a first request may build the repo).
DEFAULT_TIMEOUT = 300
DATASET_FILE = "data/train-00000-of-00001.parquet"
#: Set to 1 to log every request of the in-process server to stderr.
VERBOSE_ENV = "PYTEST_TINYMODELS_HUB_VERBOSE"


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class HubTarget:
    """What a repo id stands for: a manifest fixture, or a spec of its own."""

    repo_type: str  # "model" or "dataset"
    repo_id: str
    origin: str  # where it was declared, for messages
    fixture: str | None = None
    spec: FixtureSpec | None = None

    @property
    def label(self) -> str:
        if self.fixture:
            return f"fixture {self.fixture}"
        assert self.spec is not None
        from .builder import label_of

        return label_of(self.spec)


@dataclass(frozen=True)
class HubRule:
    """An id pattern such as ``hf-internal-testing/tiny-random-{arch}``."""

    pattern: str
    origin: str
    regex: re.Pattern[str]
    suffix: bool

    @classmethod
    def compile(cls, pattern: str, origin: str) -> "HubRule":
        if pattern.count("{arch}") != 1 or not re.fullmatch(r"[^{}]*\{arch\}(\{suffix\})?", pattern):
            raise ValueError("a rule holds one '{arch}' at the end, optionally followed by '{suffix}'")
        prefix = pattern.split("{arch}")[0]
        if "/" not in prefix or not is_hub_id(prefix.replace("{arch}", "") + "x"):
            raise ValueError("a rule must look like 'org/prefix-{arch}'")
        regex = re.compile(re.escape(prefix) + r"(?P<arch>[A-Za-z0-9_.-]+)\Z", re.IGNORECASE)
        return cls(pattern, origin, regex, pattern.endswith("{suffix}"))

    def candidates(self, repo_id: str) -> list[str]:
        """Architecture tokens to try for ``repo_id`` (longest first), or [] when it does not match."""
        m = self.regex.match(repo_id)
        if not m:
            return []
        token = m.group("arch")
        out = [token]
        while self.suffix and "-" in token:
            token = token.rsplit("-", 1)[0]
            out.append(token)
        return out


@lru_cache(maxsize=4096)
def arch_table(token: str) -> dict[str, str] | None:
    """``{"architecture": X}`` or ``{"model_type": x}`` when ``token`` names one in the installed
    transformers, else None (class names win; model types match case-insensitively)."""
    from . import architectures

    try:
        architectures.resolve(None, token, None)
        return {"architecture": token}
    except architectures.ArchitectureError:
        pass
    for mt in dict.fromkeys((token, token.lower())):
        try:
            architectures.resolve(mt, None, None)
            return {"model_type": mt}
        except architectures.ArchitectureError:
            continue
    return None


class HubRegistry:
    """Repo ids -> :class:`HubTarget`: declared ids, then rules, then built-in aliases."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.declared_ids: dict[tuple[str, str], HubTarget] = {}
        self.rules: list[HubRule] = []
        self.builtin = True
        self._defaults: dict[Path, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._resolved: dict[tuple[str, str], HubTarget | None] = {}

    # -- lookups

    def declared(self) -> list[HubTarget]:
        """Every explicitly declared id (fixture ``hub_id`` and ``[hub]`` ids/datasets), sorted."""
        return [self.declared_ids[k] for k in sorted(self.declared_ids)]

    def resolve(self, repo_type: str, repo_id: str) -> HubTarget | None:
        """The target of ``repo_id``, or None when nothing declares it and no rule matches."""
        key = (repo_type, repo_id)
        with self._lock:
            if key in self._resolved:
                return self._resolved[key]
        target = self._lookup(repo_type, repo_id)
        with self._lock:
            self._resolved[key] = target
        return target

    def _lookup(self, repo_type: str, repo_id: str) -> HubTarget | None:
        found = _find(self.declared_ids, repo_type, repo_id)
        if found is not None or repo_type != "model":
            return found
        if self.builtin:  # the built-in ids are more specific than the rules (tiny-random-bert is a BertModel)
            alias = next((v for k, v in BUILTIN_IDS.items() if k.lower() == repo_id.lower()), None)
            if alias is not None and (table := arch_table(alias)) is not None:
                return HubTarget("model", repo_id, "built-in id", spec=self._spec(repo_id, table, "built-in id"))
        rules = list(self.rules) + ([HubRule.compile(p, "built-in rule") for p in BUILTIN_RULES] if self.builtin else [])
        for rule in rules:
            for token in rule.candidates(repo_id):
                table = arch_table(token)
                if table is not None:
                    return HubTarget("model", repo_id, f"{rule.origin} {rule.pattern}",
                                     spec=self._spec(repo_id, table, rule.origin))
        return None

    def _spec(self, repo_id: str, table: Mapping[str, Any], origin: str, path: Path | None = None,
              field: str | None = None) -> FixtureSpec:
        """A FixtureSpec for ``table`` (fixture keys) with the defaults of ``path``'s manifest."""
        from .manifest import _parse_fixture, default_manifest_path

        path = path or (self.manifest.paths[-1] if self.manifest.paths else default_manifest_path())
        defaults = self._defaults.get(path, {})
        try:
            spec = _parse_fixture("hub_entry", dict(table), defaults, path)
        except ManifestError as exc:
            where = field or f"hub id {repo_id}"
            raise ManifestError(exc.message, path=exc.path, field=f"{where}.{exc.field}" if exc.field else where,
                                hint=exc.hint) from None
        return spec._replace(name=f"hub:{repo_id}")


# --------------------------------------------------------------------------- parsing


def load_hub_registry(manifest: Manifest) -> HubRegistry:
    """Read fixture ``hub_id``s and every manifest's ``[hub]`` table; raises :class:`ManifestError`."""
    registry = HubRegistry(manifest)
    for path in manifest.paths:
        data = _read_toml(path)
        defaults = data.get("defaults")
        registry._defaults[path] = defaults if isinstance(defaults, dict) else {}
        if "hub" in data:
            _parse_hub_table(registry, data["hub"], path)
    for name in manifest.names():
        spec = manifest[name]
        for hub_id in spec.hub_ids:
            if spec.parametrized:
                raise ManifestError("a parametrized fixture cannot be published under one hub id", path=spec.manifest,
                                    fixture=name, field="hub_id",
                                    hint="declare one fixture per architecture, or use [hub] ids")
            for repo_type in REPO_TYPES:
                _add(registry, HubTarget(repo_type, hub_id, f"fixture {name} ({spec.manifest.name})", fixture=name),
                     spec.manifest, name, "hub_id")
    return registry


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib  # only when a hub mode runs

    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:  # the manifest module reported it first
        raise ManifestError(f"cannot read manifest: {exc}", path=path) from None


def _add(registry: HubRegistry, target: HubTarget, path: Path, fixture: str | None, field: str) -> None:
    clash = _find(registry.declared_ids, target.repo_type, target.repo_id)
    if clash is not None:
        raise ManifestError(f"{target.repo_type} repo {target.repo_id!r} is declared twice (also by {clash.origin})",
                            path=path, fixture=fixture, field=field, hint="keep one declaration per id")
    registry.declared_ids[(target.repo_type, target.repo_id)] = target


def _find(ids: Mapping[tuple[str, str], HubTarget], repo_type: str, repo_id: str) -> HubTarget | None:
    """``ids[(repo_type, repo_id)]``, compared case-insensitively like the Hub does."""
    found = ids.get((repo_type, repo_id))
    if found is None:
        lowered = repo_id.lower()
        found = next((t for (rt, rid), t in ids.items() if rt == repo_type and rid.lower() == lowered), None)
    return found


def _parse_hub_table(registry: HubRegistry, table: Any, path: Path) -> None:
    if not isinstance(table, dict):
        raise ManifestError("must be a table", path=path, field="hub")
    for key in table:
        if key not in HUB_KEYS:
            import difflib

            close = difflib.get_close_matches(key, HUB_KEYS, n=1)
            raise ManifestError(f"unknown key {key!r}", path=path, field=f"hub.{key}",
                                hint=f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(HUB_KEYS)}")
    if "builtin" in table:
        if not isinstance(table["builtin"], bool):
            raise ManifestError(f"must be true or false, got {table['builtin']!r}", path=path, field="hub.builtin")
        registry.builtin = table["builtin"]
    rules = table.get("rules", [])
    if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
        raise ManifestError("must be a list of strings", path=path, field="hub.rules",
                            hint='e.g. rules = ["myorg/tiny-{arch}"]')
    for i, pattern in enumerate(rules):
        try:
            registry.rules.append(HubRule.compile(pattern, f"rule ({path.name})"))
        except ValueError as exc:
            raise ManifestError(f"bad rule {pattern!r}: {exc}", path=path, field=f"hub.rules[{i}]",
                                hint='e.g. "myorg/tiny-random-{arch}"') from None
    for section, repo_type in (("ids", "model"), ("datasets", "dataset")):
        entries = table.get(section, {})
        if not isinstance(entries, dict):
            raise ManifestError("must be a table of \"org/name\" = value", path=path, field=f"hub.{section}",
                                hint=f'e.g. {section} = {{ "org/tiny-llama" = "LlamaForCausalLM" }}')
        for repo_id, value in entries.items():
            field = f'hub.{section}."{repo_id}"'
            if not is_hub_id(repo_id) or ".." in repo_id:
                raise ManifestError(f"not a hub repo id: {repo_id!r}", path=path, field=field, hint='use "org/name"')
            _add(registry, _parse_target(registry, repo_type, repo_id, value, path, field), path, None, field)


def _parse_target(registry: HubRegistry, repo_type: str, repo_id: str, value: Any, path: Path, field: str) -> HubTarget:
    origin = f"[hub] {field.split('.', 1)[1]} ({path.name})"
    if isinstance(value, str):
        if value in registry.manifest:
            if registry.manifest[value].parametrized:
                raise ManifestError(f"fixture {value!r} is parametrized over architectures", path=path, field=field,
                                    hint="map the id to a single-architecture fixture or a class name")
            return HubTarget(repo_type, repo_id, origin, fixture=value)
        table = arch_table(value) if value.strip() else None
        if table is None:
            from . import architectures

            try:
                architectures.resolve(None, value, None)
            except architectures.ArchitectureError as exc:
                detail = str(getattr(exc, "message", exc))
            else:  # pragma: no cover - arch_table would have accepted it
                detail = ""
            raise ManifestError(f"{value!r} is neither a fixture name, an architecture class nor a model type. {detail}",
                                path=path, field=field,
                                hint='e.g. "LlamaForCausalLM", "gpt2", a fixture name, or a table { model_type = ... }')
        return HubTarget(repo_type, repo_id, origin, spec=registry._spec(repo_id, table, origin, path, field))
    if isinstance(value, dict):
        bad = [k for k in value if k in _TABLE_EXCLUDED]
        if bad:
            raise ManifestError(f"key {bad[0]!r} is not allowed here", path=path, field=f"{field}.{bad[0]}",
                                hint="an id table describes one repo: model_type/architecture/task/config/...")
        if "fixture" in value:
            if set(value) != {"fixture"}:
                raise ManifestError("'fixture' cannot be combined with other keys", path=path, field=field)
            return _parse_target(registry, repo_type, repo_id, value["fixture"], path, field)
        return HubTarget(repo_type, repo_id, origin, spec=registry._spec(repo_id, value, origin, path, field))
    raise ManifestError(f"must be a string or a table, got {type(value).__name__} {value!r}", path=path, field=field)


# --------------------------------------------------------------------------- repos on disk


class HubRepos:
    """Builds (or reuses) the entry behind a hub id and returns a repo directory for it.

    Model repos are the cache entry's ``repo/`` directory itself; dataset repos are a parquet
    export of the entry's dataset, written under ``workdir``. Used as a
    :class:`~pytest_tinymodels.hubserver.HubServer` ``resolve`` callback; records what it served,
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
        self._lock = threading.RLock()
        self._paths: dict[tuple[str, str], Path] = {}

    def __call__(self, repo_type: str, repo_id: str) -> Path | None:
        """:class:`HubServer` ``resolve`` callback: a directory, None (unknown id) or RepoUnavailable."""
        from .hubserver import RepoUnavailable

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
            with self._lock:
                self.misses[key] = self.misses.get(key, 0) + 1
            return None
        try:
            return self.path(target)
        except TinyModelsError as exc:
            message = _one_line(exc)
            self._fail(key, message)
            raise RepoUnavailable(message) from None

    def _fail(self, key: tuple[str, str], message: str) -> None:
        with self._lock:
            self.failures[key] = message
        if self.log is not None:
            self.log(f"hub: {key[0]} {key[1]} cannot be served: {message}")

    def variant(self, target: HubTarget) -> Any:
        """The session :class:`~pytest_tinymodels.session.Variant` behind ``target``."""
        from .session import Variant

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
        from . import architectures

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
        result = self.session.ensure(self.variant(target))
        entry = Path(result.path)
        if target.repo_type == "model":
            path = entry / "repo"
        else:
            path = self._dataset_repo(entry)
        with self._lock:
            self._paths[key] = path
            self.served[key] = {"origin": target.origin, "label": target.label, "built": bool(result.built),
                                "seconds": round(time.perf_counter() - start, 3)}
        return path

    def _dataset_repo(self, entry: Path) -> Path:
        """A Hub-style dataset repo (``data/train-00000-of-00001.parquet``) exported from the entry."""
        from .builder import DATASET_DIR

        dest = self.workdir / "datasets" / entry.name
        with self._lock:
            if (dest / DATASET_FILE).is_file():
                return dest
            from .dataset import load_dataset_dir

            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=_mkdir(self.workdir / "datasets")))
            (tmp / DATASET_FILE).parent.mkdir(parents=True)
            from ._quiet import quiet_libraries

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


def materialize(hub_cache: Path | str, repo_type: str, repo_id: str, repo_dir: Path | str) -> str:
    """Write ``repo_dir`` into ``hub_cache`` in huggingface_hub's layout; returns the commit sha.

    ``<type>s--org--name/blobs/<etag>`` (hard links or copies), ``snapshots/<sha>/<path>`` (relative
    symlinks to the blobs) and ``refs/main``. The sha and etags are the ones :class:`HubServer`
    reports for the same directory, so both modes agree.
    """
    from .hubserver import _build_snapshot, _HashCache

    snap = _build_snapshot(repo_type, repo_id, Path(repo_dir).resolve(), _HashCache())
    root = Path(hub_cache) / repo_folder_name(repo_type, repo_id)
    blobs, snapshot = root / "blobs", root / "snapshots" / snap.sha
    blobs.mkdir(parents=True, exist_ok=True)
    for rel, entry in snap.files.items():
        blob = blobs / entry.etag
        if not blob.exists():
            tmp = blobs / f".{entry.etag}.tmp{os.getpid()}"
            try:
                os.link(entry.abspath, tmp)
            except OSError:
                shutil.copyfile(entry.abspath, tmp)
            os.replace(tmp, blob)
        link = snapshot / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            os.symlink(os.path.relpath(blob, link.parent), link)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(snap.sha)
    return snap.sha


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

    def start(self) -> None:
        """Start serving (or write the offline cache) and point the Hugging Face libraries at it."""
        from .hubserver import HubServer, hub_environment

        start = time.perf_counter()
        self.workdir = Path(tempfile.mkdtemp(prefix="tinymodels-hub-"))
        self.hub_cache = self.workdir / "hf-hub-cache"
        self.hub_cache.mkdir()
        self.repos = HubRepos(self.session, self.registry, self.workdir, log=self.log)
        stack = ExitStack()
        try:
            self._upstream_builds(stack)
            if self.mode == "serve":
                self.server = HubServer({}, resolve=self.repos, verbose=bool(os.environ.get(VERBOSE_ENV)))
                stack.enter_context(self.server)
                self.endpoint = self.server.endpoint
                stack.enter_context(hub_environment(endpoint=self.endpoint, cache_dir=self.hub_cache, offline=False,
                                                    timeout=self.timeout, datasets_cache=self.workdir / "datasets-cache"))
            else:
                datasets_dirs: dict[str, Path] = {}
                for target in self.registry.declared():
                    try:
                        repo_dir = self.repos.path(target)
                    except TinyModelsError as exc:
                        self.repos.failures[(target.repo_type, target.repo_id)] = _one_line(exc)
                        if self.log is not None:
                            self.log(f"hub: {target.repo_type} {target.repo_id} cannot be built: {_one_line(exc)}")
                        continue
                    materialize(self.hub_cache, target.repo_type, target.repo_id, repo_dir)
                    if target.repo_type == "dataset":
                        datasets_dirs[target.repo_id] = repo_dir
                if datasets_dirs:
                    self._prepare_datasets(datasets_dirs)
                stack.enter_context(hub_environment(cache_dir=self.hub_cache, offline=True,
                                                    datasets_cache=self.workdir / "datasets-cache"))
        except BaseException:
            stack.close()
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise
        self._stack = stack
        self.setup_seconds = time.perf_counter() - start

    def _upstream_builds(self, stack: ExitStack) -> None:
        """Builds that read a real repo (``source``/``download`` fixtures) keep using the Hub settings
        the session started with, not the tiny hub: while one runs, those settings are put back.

        The session's ``ensure`` is wrapped (undone by ``stack``). A build runs in the test's thread
        (fixture setup) or in the server thread while the test waits for the answer, so no test
        code sees the swapped settings.
        """
        from huggingface_hub import constants

        from .hubserver import hub_environment

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
        from .hubserver import HubServer, hub_environment
        from ._quiet import quiet_libraries

        assert self.workdir is not None and self.hub_cache is not None
        with HubServer({f"datasets/{rid}": path for rid, path in repos.items()}) as server:
            with hub_environment(endpoint=server.endpoint, cache_dir=self.hub_cache, offline=False,
                                 datasets_cache=self.workdir / "datasets-cache"), quiet_libraries():
                import datasets

                for repo_id in repos:
                    datasets.load_dataset(repo_id)

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
    for rec in records:
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
    for (t, i), n in sorted(misses.items()):
        example = ('[hub] datasets = { "%s" = "tiny_llama" }' % i) if t == "dataset" else (
            '[hub] ids = { "%s" = "LlamaForCausalLM" }' % i)
        lines.append(f"{t:<7} {i:<60} not declared ({n} request{'s' if n != 1 else ''}): the library got the Hub's"
                     f" 'repository not found'; to serve a tiny one, declare it, e.g. {example}, or hub_id on a fixture")
    if mode == "offline":
        lines.append("(offline mode: only declared ids are in the cache; ids nobody declared fail as not cached)")
    return lines


def hub_mode(option_serve: bool, option_offline: bool, ini: str | None) -> str | None:
    """The mode from ``--tiny-hub`` / ``--tiny-hub-offline`` / ini ``tiny_hub`` (None: off)."""
    if option_offline:
        return "offline"
    if option_serve:
        return "serve"
    value = (ini or "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return None
    if value in ("1", "true", "yes", "on", "serve"):
        return "serve"
    if value == "offline":
        return "offline"
    raise ValueError(f"ini tiny_hub must be true, false, serve or offline, got {ini!r}")


# --------------------------------------------------------------------------- pytest wiring


HUB_RECORD_KEY = "tinymodels_hub"


class TinyHubPlugin:
    """Pytest hooks of the tiny hub; registered by ``plugin.py`` when ``--tiny-hub`` is on."""

    def __init__(self, config: Any, session: Any, registry: HubRegistry, mode: str,
                 log: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.mode = mode
        self.hub = TinyHub(session, registry, mode, log=log)
        self.worker_records: list[dict[str, Any]] = []
        self.controller = _is_xdist_controller(config)

    def pytest_sessionstart(self, session: Any) -> None:
        if not self.controller:  # xdist workers each run their own hub; the controller runs no test
            self.hub.start()

    def pytest_report_header(self, config: Any) -> list[str]:
        if self.controller:
            return [f"tinymodels: tiny hub ({self.mode}) runs in each xdist worker"]
        return [self.hub.header()]

    def pytest_sessionfinish(self, session: Any) -> None:
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[HUB_RECORD_KEY] = json.dumps(self.hub.record())
        self.hub.stop()

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        raw = getattr(node, "workeroutput", {}).get(HUB_RECORD_KEY)
        if raw:
            self.worker_records.append(json.loads(raw))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        lines = summary_lines([self.hub.record(), *self.worker_records], self.mode)
        if len(lines) <= (1 if self.mode == "offline" else 0):
            return
        terminalreporter.write_sep("-", "tiny hub")
        for line in lines:
            terminalreporter.write_line(line)


def _is_xdist_controller(config: Any) -> bool:
    if hasattr(config, "workerinput"):
        return False
    option = config.option
    workers = getattr(option, "numprocesses", None) or getattr(option, "tx", None)
    return getattr(option, "dist", "no") != "no" and bool(workers)


def configure(config: Any, session: Any, log: Callable[[str], None] | None = None) -> None:
    """Register :class:`TinyHubPlugin` when the options ask for it (called from ``plugin.py``)."""
    try:
        mode = hub_mode(config.getoption("tiny_hub", False), config.getoption("tiny_hub_offline", False),
                        config.getini("tiny_hub"))
    except ValueError as exc:
        raise pytest.UsageError(f"pytest-tinymodels: {exc}") from None
    if mode is None:
        return
    try:
        registry = load_hub_registry(session.manifest)
    except ManifestError as exc:
        raise pytest.UsageError(f"pytest-tinymodels: {exc}") from None
    config.pluginmanager.register(TinyHubPlugin(config, session, registry, mode, log), "tinymodels-hub")
