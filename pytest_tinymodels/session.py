"""TinySession: a manifest, a cache and what this run built or reused.

Used by the pytest plugin and by the CLI; knows nothing about pytest.
"""

from __future__ import annotations

import fnmatch
import os
import threading
import uuid
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple

from .cache import Cache, CacheResult, cache_key
from .errors import ManifestError, TinyModelsError
from .manifest import FixtureSpec, Manifest

CACHE_ENV = "PYTEST_TINYMODELS_CACHE"
APP_NAME = "pytest-tinymodels"


class Setting(NamedTuple):
    """An effective setting and where it came from (shown in the pytest header)."""

    value: Any
    source: str


def resolve_cache_dir(cli: str | None = None, ini: str | None = None, env: Mapping[str, str] | None = None,
                      ini_base: Path | None = None) -> Setting:
    """CLI > env ``PYTEST_TINYMODELS_CACHE`` > ini ``tiny_cache_dir`` > the user cache dir."""
    env = os.environ if env is None else env
    if cli:
        return Setting(Path(cli).expanduser().resolve(), "--tiny-cache-dir")
    if env.get(CACHE_ENV):
        return Setting(Path(env[CACHE_ENV]).expanduser().resolve(), CACHE_ENV)
    if ini:
        path = Path(ini).expanduser()
        if not path.is_absolute() and ini_base is not None:
            path = ini_base / path
        return Setting(path.resolve(), "ini tiny_cache_dir")
    import platformdirs

    return Setting(Path(platformdirs.user_cache_dir(APP_NAME)), "default")


class EntryStat(NamedTuple):
    """One fixture entry used in this run (merged across xdist workers by the plugin)."""

    fixture: str
    label: str
    key: str
    built: bool
    seconds: float
    size: int
    waited: float = 0.0
    repaired: str | None = None


class Variant(NamedTuple):
    """One concrete build of a fixture: the fixture itself, or one architecture of a parametrized one."""

    id: str  # pytest id ("llama", "LlamaForCausalLM", ...) or "" for a plain fixture
    spec: FixtureSpec
    arch: Any = None  # architectures.ArchInfo when known


class TinySession:
    """Resolves fixtures to cache entries, builds or reuses them, loads them once."""

    def __init__(
        self,
        manifest: Manifest,
        cache: Cache,
        *,
        rebuild: bool = False,
        run_id: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        arch_filter: Iterable[str] = (),
    ) -> None:
        self.manifest = manifest
        self.cache = cache
        self.rebuild = rebuild
        self.run_id = run_id or uuid.uuid4().hex
        self.device = device
        self.dtype = dtype
        self.arch_filter = tuple(a for a in arch_filter if a)
        self.stats: dict[str, EntryStat] = {}
        self._loaded: dict[tuple[str, str, str], Any] = {}
        self._variants: dict[str, list[Variant]] = {}
        self._candidates: dict[str, list[Any]] = {}  # a parametrized fixture's architectures before --tiny-arch
        self._failures: dict[str, TinyModelsError] = {}
        self._keys: dict[int, tuple[FixtureSpec, str]] = {}
        self._lock = threading.RLock()

    # -- what to build ------------------------------------------------------------------------
    def spec(self, name: str) -> FixtureSpec:
        spec = self.manifest[name]
        if self.dtype and self.dtype != spec.dtype:
            spec = spec._replace(dtype=self.dtype)
        return spec

    def variants(self, name: str) -> list[Variant]:
        """The concrete builds behind a fixture: one, or one per architecture (stable order)."""
        with self._lock:
            if name not in self._variants:
                self._variants[name] = self._compute_variants(self.spec(name))
            return self._variants[name]

    def _compute_variants(self, spec: FixtureSpec) -> list[Variant]:
        from .build import architectures

        try:
            if not spec.parametrized:
                if spec.download or spec.source:  # resolved by the builder from the repo's config.json
                    return [Variant("", spec)]
                # normalized: "llama" and "llama"+"LlamaForCausalLM" are the same entry; the modality
                # (ArchInfo) is left to the builder: reusing a built entry never needs it
                model_type, class_name, task = architectures.resolve_names(spec.model_type, spec.architecture, spec.task)
                check_config_keys(spec, [model_type], self.cache.root)
                return [Variant("", spec._replace(model_type=model_type, architecture=class_name, task=task))]
            include: Any = "*" if spec.architectures == ("*",) else list(spec.architectures or ())
            from .build import task_architectures

            table = task_architectures(spec.task, memo_dir=self.cache.root)
            infos = architectures.expand(spec.task, include, spec.exclude, table=table)
        except architectures.ArchitectureError as exc:
            raise ManifestError(exc.message, path=spec.manifest, fixture=spec.name, field=exc.field) from None
        check_architecture_patterns(spec, table)
        if spec.modalities is not None:  # manifest ``modalities = ["text"]``: e.g. no image model in a text test
            infos = [i for i in infos if i.modality in spec.modalities]
        self._candidates[spec.name] = infos
        if self.arch_filter:
            infos = [i for i in infos if _matches(i, self.arch_filter)]
        configs = check_config_keys(spec, sorted({i.model_type for i in infos}), self.cache.root)
        ids = _unique_ids(infos)
        return [Variant(vid, _with_config(spec.for_architecture(info.model_type, info.class_name),
                                          configs.get(info.model_type)), info) for vid, info in zip(ids, infos)]

    def unmatched_arch_filters(self, names: Iterable[str]) -> dict[str, list[str]]:
        """``--tiny-arch`` patterns that match no architecture of the parametrized fixtures ``names``
        (pattern -> the candidates' model types and class names, for a "did you mean"); empty when every
        pattern matches one, or when none of ``names`` is parametrized."""
        candidates: list[Any] = []
        for name in names:
            if self.manifest[name].parametrized:
                self.variants(name)
                candidates.extend(self._candidates.get(name, ()))
        if not candidates or not self.arch_filter:
            return {}
        known = sorted({n for info in candidates for n in (info.model_type, info.class_name)})
        return {p: known for p in self.arch_filter if not any(_matches(info, [p]) for info in candidates)}

    # -- build / reuse ------------------------------------------------------------------------
    def key(self, spec: FixtureSpec) -> str:
        """The cache key of ``spec``; every test's fixture asks for it, so it is computed once per spec
        object, except for ``source`` specs, whose key follows the source files' current content."""
        with self._lock:
            known = self._keys.get(id(spec))
        if known is not None and known[0] is spec:
            return known[1]
        from .build import key_fields

        key = cache_key(key_fields(spec, memo_dir=self.cache.root), memo_dir=self.cache.root)
        if not spec.source:
            with self._lock:
                self._keys[id(spec)] = (spec, key)  # holding spec keeps its id from being reused
        return key

    def ensure(self, variant: Variant) -> CacheResult:
        """Build the entry of ``variant`` if needed (exactly once across processes), else reuse it."""
        from .build import build_entry, label_of

        spec = variant.spec
        key = self.key(spec)
        label = label_of(spec)

        def build(dest: Path) -> dict[str, Any]:
            from .sources import fetch_inputs

            inputs = fetch_inputs(spec)
            return build_entry(spec, dest, arch=variant.arch, source_dir=inputs.source_dir,
                               download_dir=inputs.download_dir)

        result = self.cache.get_or_build(
            key,
            build,
            label=label,
            rebuild=self.rebuild,
            run_id=self.run_id,
        )
        stat_name = spec.name + (f"[{variant.id}]" if variant.id else "")
        with self._lock:
            previous = self.stats.get(stat_name)
            if previous is None or result.built:
                self.stats[stat_name] = EntryStat(stat_name, label, key, result.built, result.seconds, result.size,
                                                  result.waited, result.repaired)
        return result

    def load(self, variant: Variant, *, device: str | None = None) -> Any:
        """The session-wide loaded entry for ``variant`` (a :class:`loader.LoadedEntry`)."""
        from .loader import LoadedEntry

        spec = variant.spec
        device = device or self.device or spec.device
        memo = (self.key(spec), device, spec.dtype)
        with self._lock:
            loaded = self._loaded.get(memo)
            failed = self._failures.get(memo[0])
        if failed is not None:
            raise failed  # a build fails once per session, not once per test
        if loaded is None:
            try:
                result = self.ensure(variant)
            except TinyModelsError as exc:
                with self._lock:
                    self._failures[memo[0]] = exc
                raise
            loaded = LoadedEntry(spec.name, result.path, device=device, dtype=spec.dtype)
            with self._lock:
                loaded = self._loaded.setdefault(memo, loaded)
        return loaded

    def stats_records(self) -> list[dict[str, Any]]:
        return [s._asdict() for s in self.stats.values()]


def human_size(n: float) -> str:
    """``612.3 KB``-style size for summaries."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def check_config_keys(spec: FixtureSpec, model_types: list[str], memo_dir: Path | None) -> dict[str, dict[str, Any]]:
    """:func:`manifest.check_config_overrides` of ``spec`` against the default configs of ``model_types``
    (their known keys remembered in ``memo_dir``); model type -> the overrides that apply to it.

    Nothing is imported when ``spec`` has no checked override; a model type without a default config is
    left to the builder, which reports it.
    """
    from .manifest import check_config_overrides, checked_config_paths

    if not model_types or not checked_config_paths(spec):
        return {}
    trees: dict[str, Any] = {}
    class_names: dict[str, str] = {}
    for model_type in model_types:
        known = config_key_tree_of(model_type, memo_dir)
        if known is not None:
            trees[model_type], class_names[model_type] = known["tree"], known["class"]
    return check_config_overrides(spec, trees, class_names)


def config_key_tree_of(model_type: str, memo_dir: Path | None) -> dict[str, Any] | None:
    """``{"class": config class name, "tree": manifest.config_key_tree(default config)}`` of ``model_type``,
    or None where it has no default config; remembered in ``memo_dir`` per transformers version and builder code."""
    import hashlib

    from .cache import library_versions, stat_memo

    def compute() -> dict[str, Any]:
        from transformers.utils import logging as tlogging

        from .build import shrink
        from .manifest import config_key_tree

        verbosity = tlogging.get_verbosity()
        tlogging.set_verbosity_error()  # default configs warn about their own token ids
        try:
            config = shrink.base_config(model_type)
            return {"class": type(config).__name__, "tree": config_key_tree(config)}
        except Exception:  # no config class, or an invalid default: the build reports it
            return {"class": None, "tree": None}
        finally:
            tlogging.set_verbosity(verbosity)

    if memo_dir is None:
        value = compute()
    else:
        from .build import build_inputs_digest

        from .manifest import CONFIG_KEYS_VERSION

        stamp = (f"{CONFIG_KEYS_VERSION}|{library_versions(memo_dir).get('transformers')}|"
                 f"{build_inputs_digest(memo_dir)['code']}|{model_type}")
        where = hashlib.sha256(stamp.encode()).hexdigest()[:16]
        value = stat_memo(Path(memo_dir) / "memo" / f"config-keys-{where}.json", [], compute)
    return value if value.get("tree") is not None else None


def check_architecture_patterns(spec: FixtureSpec, table: list[Any] | None = None) -> None:
    """Each entry of a parametrized fixture's ``architectures`` / ``exclude`` must match an architecture
    of its task (``table``: every one, if at hand): a mistyped one is a :class:`ManifestError` with the close
    names, never an empty set."""
    from .build import architectures

    entries = [("architectures", p) for p in (spec.architectures or ()) if p != "*"] + \
        [("exclude", p) for p in spec.exclude]
    if not entries:
        return
    everything = architectures.expand(spec.task, "*", (), table=table)
    names = sorted({n for i in everything for n in (i.model_type, i.class_name)})
    for field, pattern in entries:
        if not any(_matches(i, [pattern]) for i in everything):
            raise ManifestError(
                f"{pattern!r} matches no architecture of task {spec.task!r}."
                f"{architectures.did_you_mean(pattern, names)}",
                path=spec.manifest, fixture=spec.name, field=field)


def _with_config(spec: FixtureSpec, config: Mapping[str, Any] | None) -> FixtureSpec:
    return spec if config is None or config == dict(spec.config) else spec._replace(config=config)


def _matches(info: Any, patterns: Iterable[str]) -> bool:
    names = (info.model_type, info.class_name)
    return any(fnmatch.fnmatchcase(n.lower(), p.lower()) for p in patterns for n in names)


def _unique_ids(infos: list[Any]) -> list[str]:
    """Readable ids: the model type, or the class name where a model type has several classes."""
    counts: dict[str, int] = {}
    for info in infos:
        counts[info.model_type] = counts.get(info.model_type, 0) + 1
    return [info.model_type if counts[info.model_type] == 1 else info.class_name for info in infos]


def default_manifest_file(rootdir: Path) -> Path | None:
    """``fixtures.toml`` at the rootdir, if present."""
    path = rootdir / "fixtures.toml"
    return path if path.is_file() else None
