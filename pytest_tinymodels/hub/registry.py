"""The tiny hub's registry: which Hub repo ids exist and what each stands for.

Built from the manifests (:func:`load_hub_registry`):

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
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from ..errors import ManifestError
from ..manifest import FixtureSpec, Manifest, is_hub_id

__all__ = ["BUILTIN_IDS", "BUILTIN_RULES", "HubRegistry", "HubRule", "HubTarget", "arch_table", "load_hub_registry"]

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
        from ..build import label_of

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
    from ..build import architectures

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
        from ..manifest import default_manifest_path, parse_fixture

        path = path or (self.manifest.paths[-1] if self.manifest.paths else default_manifest_path())
        defaults = self._defaults.get(path, {})
        try:
            spec = parse_fixture("hub_entry", dict(table), defaults, path)
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
            from ..build import architectures

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
