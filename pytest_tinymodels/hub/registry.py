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
      stand_ins = ["org/*"]                         # or true: undeclared ids get a guessed stand-in
      any_commit = true                             # any 40-hex commit sha resolves to a repo's content

  An id table may also hold ``revisions = ["v2.0.0", "refs/pr/14"]`` (more names for the same content),
  ``library = "sentence-transformers"`` (that library's files beside the model's) and
  ``adapter = { type = "lora", base = "tiny_llama", r = 4 }`` (a LoRA adapter repo on a served base); a
  table naming no model (``"org/stsb-bert-tiny" = {}``) is a stand-in guessed from the words of the id
  (:mod:`.standins`). A dataset id may list named configs::

      [hub.datasets."org/tiny-pref"]
      configs = { standard_preference = { format = "preference" }, raw = { data_files = { train = "a.jsonl" } } }

* built-in rules: ``hf-internal-testing/tiny-random-{arch}`` (and the same under
  ``peft-internal-testing``, ``trl-internal-testing``, ``HuggingFaceM4``) and
  ``trl-internal-testing/tiny-{arch}-<suffix>``, where ``{arch}`` is any architecture class
  (``LlamaForCausalLM``) or model type (``gpt2``) of the installed transformers; plus
  :data:`BUILTIN_IDS`, common tiny ids whose names are no class name, and the adapters of
  :data:`.conventions.BUILTIN_ADAPTERS`. Class names in ids match case-insensitively; a rule's
  ``{suffix}`` that names a chat variant (``-3.2``, ``-Instruct-2507``, ``-NoThink``) selects it, and
  :data:`.conventions.ID_CONFIG_DEFAULTS` / :data:`.conventions.ID_SIZE_DEFAULTS` add an organisation's config
  and size conventions.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from dataclasses import dataclass, field as dc_field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from ..errors import ManifestError
from ..manifest import FixtureSpec, Manifest, is_hub_id
from . import conventions

__all__ = ["BUILTIN_IDS", "BUILTIN_RULES", "HubRegistry", "HubRule", "HubTarget", "arch_table", "load_hub_registry",
           "miss_hint"]

REPO_TYPES = ("model", "dataset")
#: Keys of the ``[hub]`` table.
HUB_KEYS = ("ids", "datasets", "rules", "builtin", "stand_ins", "any_commit")
#: Fixture keys a ``[hub]`` id table may not use (they make no sense for one published repo).
_TABLE_EXCLUDED = ("hub_id", "architectures", "exclude", "description")
#: Keys of an id table that describe the repo rather than the model built for it.
REPO_KEYS = ("revisions", "library", "adapter")
#: Keys of a dataset id table with named configs, and of one config.
DATASET_REPO_KEYS = ("configs", "revisions")
CONFIG_KEYS = ("format", "rows", "test_rows", "seed", "data_files", "fixture", "params")
ADAPTER_KEYS = ("type", "base", "r", "lora_alpha", "target_modules", "init_lora_weights", "seed", "task_type")
ADAPTER_TYPES = ("lora",)
#: Keys that say what model an id table builds; a table with none of them is a stand-in.
_MODEL_KEYS = ("model_type", "architecture", "source", "download")
#: Revision names that are never valid (git would refuse them too).
_BAD_REVISION = re.compile(r"(^|/)\.|\.\.|[\s~^:?*\\\[]|//|/$|^$")
#: Id patterns that resolve by rule; ``{arch}`` is an architecture class or a model type,
#: ``{suffix}`` an optional ``-anything`` tail (``tiny-Qwen2ForCausalLM-2.5``).
BUILTIN_RULES: tuple[str, ...] = (
    "hf-internal-testing/tiny-random-{arch}",
    "peft-internal-testing/tiny-random-{arch}",
    "trl-internal-testing/tiny-random-{arch}",
    "HuggingFaceM4/tiny-random-{arch}",
    "trl-internal-testing/tiny-{arch}{suffix}",
)
#: Common tiny test ids whose name is not ``tiny-random-<class or model type>``: a class or model type, or a
#: fixture table (``sshleifer/tiny-gpt2`` is a 2-step-trained GPT-2 upstream: a trained stand-in, build/train.py).
BUILTIN_IDS: dict[str, str | Mapping[str, Any]] = {
    "sshleifer/tiny-gpt2": {"architecture": "GPT2LMHeadModel", "train": True, "dataset": {"max_chars": 120}},
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
    """What a repo id stands for: a manifest fixture, a spec of its own, a LoRA ``adapter`` on a served base,
    or a dataset repo of named ``configs``; with extra ``revisions`` names and a ``library`` layout."""

    repo_type: str  # "model" or "dataset"
    repo_id: str
    origin: str  # where it was declared, for messages
    fixture: str | None = None
    spec: FixtureSpec | None = None
    revisions: tuple[str, ...] = ()
    library: str | None = None
    adapter: Mapping[str, Any] | None = dc_field(default=None, hash=False, compare=False)
    configs: Mapping[str, Mapping[str, Any]] | None = dc_field(default=None, hash=False, compare=False)
    manifest: Path | None = None  # the file that declared it (relative data_files paths)

    @property
    def label(self) -> str:
        if self.adapter is not None:
            kind = {"lora": "LoRA"}.get(self.adapter["type"], self.adapter["type"])
            return f"{kind} adapter (r={self.adapter['r']}) on {self.adapter['base_id']}"
        if self.configs is not None:
            return f"dataset configs {', '.join(self.configs)}"
        if self.fixture:
            text = f"fixture {self.fixture}"
        else:
            assert self.spec is not None
            from ..build import architectures, label_of

            text = label_of(self.spec)
            if self.spec.architecture is None and self.spec.model_type and not (self.spec.source or self.spec.download):
                try:  # the class a model type (and task) stands for: "BertModel", not "bert"
                    text = architectures.resolve(self.spec.model_type, None, self.spec.task).class_name
                except architectures.ArchitectureError:
                    pass
            config = self.spec.config.get("num_labels")
            if config is not None and "ForSequenceClassification" in text:
                text += f" (num_labels={config})"
            if self.spec.train is not None:
                text += " (trained)"
        return text + (f" + {self.library} layout" if self.library else "")


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
        return [token for token, _ in self.split(repo_id)]

    def split(self, repo_id: str) -> list[tuple[str, str]]:
        """``(architecture token, suffix)`` pairs to try for ``repo_id``, longest token first."""
        m = self.regex.match(repo_id)
        if not m:
            return []
        full = token = m.group("arch")
        out = [(token, "")]
        while self.suffix and "-" in token:
            token = token.rsplit("-", 1)[0]
            out.append((token, full[len(token):]))
        return out


@lru_cache(maxsize=1)
def _class_names() -> dict[str, str]:
    """lower-case class name -> class name, for every class of transformers' model auto-mappings."""
    from transformers.models.auto import modeling_auto

    out: dict[str, str] = {}
    for name in sorted(dir(modeling_auto)):
        table = getattr(modeling_auto, name)
        if name.startswith("MODEL_") and name.endswith("_MAPPING_NAMES") and isinstance(table, Mapping):
            for value in table.values():
                for cls in (value if isinstance(value, (tuple, list)) else (value,)):
                    if isinstance(cls, str):
                        out.setdefault(cls.lower(), cls)
    return out


@lru_cache(maxsize=4096)
def arch_table(token: str) -> dict[str, str] | None:
    """``{"architecture": X}`` or ``{"model_type": x}`` when ``token`` names one in the installed
    transformers, else None (class names win; class names and model types match case-insensitively:
    ``tiny-GptNeoXForSequenceClassification`` is ``GPTNeoXForSequenceClassification``)."""
    from ..build import architectures

    for cls in dict.fromkeys((token, _class_names().get(token.lower(), token))):
        try:
            architectures.resolve(None, cls, None)
            return {"architecture": cls}
        except architectures.ArchitectureError:
            pass
    for mt in dict.fromkeys((token, token.lower())):
        try:
            architectures.resolve(mt, None, None)
            return {"model_type": mt}
        except architectures.ArchitectureError:
            continue
    return None


def _id_defaults(table: Iterable[tuple[str, Mapping[str, Any]]], repo_id: str) -> dict[str, Any]:
    """The values of ``repo_id`` in a convention table of (id glob, values): every matching entry, later wins
    (:data:`.conventions.ID_CONFIG_DEFAULTS`, :data:`.conventions.ID_SIZE_DEFAULTS`)."""
    out: dict[str, Any] = {}
    lowered = repo_id.lower()
    for pattern, values in table:
        if fnmatch.fnmatchcase(lowered, pattern.lower()):
            out.update(values)
    return out


def _variant_tokenizer(table: Mapping[str, Any], suffix: str) -> dict[str, Any]:
    """Tokenizer keys (``chat_template``, ``thinking``) selected by an id suffix that names a chat variant
    (``-3.2``, ``-Instruct-2507``, ``-NoThink``); {} for an unknown suffix or a model without chat."""
    from ..build import architectures
    from ..build.tokenizer import chat
    from ..manifest import TOKENIZER_KEYS

    if not suffix or "chat_template" not in TOKENIZER_KEYS:
        return {}
    try:
        arch = architectures.resolve(table.get("model_type"), table.get("architecture"), table.get("task"))
    except architectures.ArchitectureError:
        return {}
    if chat.chat_format_for(arch.model_type, None, task=arch.task) is None:
        return {}
    name, options = chat.variant_format(arch.model_type, suffix)
    if name == chat.variant_format(arch.model_type, None)[0] and not options:
        return {}
    out: dict[str, Any] = {"chat_template": name}
    if "thinking" in options and "thinking" in TOKENIZER_KEYS:
        out["thinking"] = options["thinking"]
    return out


class HubRegistry:
    """Repo ids -> :class:`HubTarget`: declared ids, then built-in ids, rules and stand-ins."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.declared_ids: dict[tuple[str, str], HubTarget] = {}
        self.rules: list[HubRule] = []
        self.builtin = True
        #: ``[hub] stand_ins``: True (every id), id globs, or False
        self.stand_ins: bool | tuple[str, ...] = False
        #: ``[hub] any_commit``: any 40-hex commit sha resolves to a repo's content
        self.any_commit = False
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

    def revision_names(self, repo_type: str, repo_id: str) -> tuple[frozenset[str], bool]:
        """(extra revision names, whether any commit sha resolves) of a served id."""
        target = self.resolve(repo_type, repo_id)
        return frozenset(target.revisions if target is not None else ()), self.any_commit

    def stand_in_allowed(self, repo_id: str) -> bool:
        """Whether ``[hub] stand_ins`` covers ``repo_id``."""
        if self.stand_ins is True or self.stand_ins is False:
            return bool(self.stand_ins)
        lowered = repo_id.lower()
        return any(fnmatch.fnmatchcase(lowered, glob.lower()) for glob in self.stand_ins)

    def _lookup(self, repo_type: str, repo_id: str) -> HubTarget | None:
        found = _find(self.declared_ids, repo_type, repo_id)
        if found is not None or repo_type != "model":
            return found
        if self.builtin:  # the built-in ids are more specific than the rules (tiny-random-bert is a BertModel)
            alias = next((v for k, v in BUILTIN_IDS.items() if k.lower() == repo_id.lower()), None)
            table = dict(alias) if isinstance(alias, Mapping) else arch_table(alias) if alias is not None else None
            if table is not None:
                return HubTarget("model", repo_id, "built-in id", spec=self._spec(repo_id, table, "built-in id"))
            adapter = next((v for k, v in conventions.BUILTIN_ADAPTERS.items() if k.lower() == repo_id.lower()), None)
            if adapter is not None:
                return HubTarget("model", repo_id, "built-in adapter id",
                                 adapter=self._adapter(repo_id, adapter, None, f"built-in adapter {repo_id}"))
        rules = list(self.rules) + ([HubRule.compile(p, "built-in rule") for p in BUILTIN_RULES] if self.builtin else [])
        for rule in rules:
            for token, suffix in rule.split(repo_id):
                table = arch_table(token)
                if table is not None:
                    return HubTarget("model", repo_id, f"{rule.origin} {rule.pattern}",
                                     spec=self._spec(repo_id, table, rule.origin, suffix=suffix))
        if self.stand_in_allowed(repo_id):
            from .standins import guess_stand_in

            guess = guess_stand_in(repo_id)
            if guess is not None:
                return HubTarget("model", repo_id, f"stand-in ({guess.reason})", library=guess.library,
                                 spec=self._spec(repo_id, guess.table, "stand-in"))
        return None

    def _spec(self, repo_id: str, table: Mapping[str, Any], origin: str, path: Path | None = None,
              field: str | None = None, suffix: str = "") -> FixtureSpec:
        """A FixtureSpec for ``table`` (fixture keys) with the defaults of ``path``'s manifest, the id's
        config conventions (under the table's own config) and the chat variant its ``suffix`` names."""
        from ..manifest import default_manifest_path, parse_fixture

        path = path or (self.manifest.paths[-1] if self.manifest.paths else default_manifest_path())
        defaults = self._defaults.get(path, {})
        table = dict(table)
        if not table.get("download"):  # a downloaded repo is served as it is
            for key, conventional in (("config", _id_defaults(conventions.ID_CONFIG_DEFAULTS, repo_id)),
                                      ("size", _id_defaults(conventions.ID_SIZE_DEFAULTS, repo_id))):
                if conventional and not (key == "config" and table.get("source")):
                    own = table.get(key)
                    table[key] = {**conventional, **(own if isinstance(own, dict) else {})}
        variant = _variant_tokenizer(table, suffix)
        if variant:
            own = table.get("tokenizer")
            table["tokenizer"] = {**variant, **(own if isinstance(own, dict) else {})}
        try:
            spec = parse_fixture("hub_entry", table, defaults, path)
        except ManifestError as exc:
            where = field or f"hub id {repo_id}"
            raise ManifestError(exc.message, path=exc.path, field=f"{where}.{exc.field}" if exc.field else where,
                                hint=exc.hint) from None
        return spec._replace(name=f"hub:{repo_id}")

    def _adapter(self, repo_id: str, value: Any, path: Path | None, field: str) -> Mapping[str, Any]:
        """A validated adapter table, with ``base_id``: the served id of its base model (a fixture, class or
        model type as base is published under ``<id>-base``)."""
        where = path or (self.manifest.paths[-1] if self.manifest.paths else None)
        if not isinstance(value, dict):
            raise ManifestError("must be a table", path=where, field=field,
                                hint='e.g. adapter = { type = "lora", base = "tiny_llama", r = 4 }')
        _check_table_keys(value, ADAPTER_KEYS, where, field)
        adapter: dict[str, Any] = {"type": "lora", "r": 4, "init_lora_weights": True, "seed": 0, **value}
        if adapter["type"] not in ADAPTER_TYPES:
            raise ManifestError(f"adapter type {adapter['type']!r} is not one of {', '.join(ADAPTER_TYPES)}",
                                path=where, field=f"{field}.type")
        for key in ("r", "lora_alpha", "seed"):
            if key in adapter and (isinstance(adapter[key], bool) or not isinstance(adapter[key], int)
                                   or adapter[key] < (0 if key == "seed" else 1)):
                raise ManifestError(f"must be a positive integer, got {adapter[key]!r}", path=where,
                                    field=f"{field}.{key}")
        if not isinstance(adapter["init_lora_weights"], bool):
            raise ManifestError("must be true (identity: B = 0, as peft initialises) or false (random)",
                                path=where, field=f"{field}.init_lora_weights")
        task_types = sorted(set(conventions.ADAPTER_TASK_TYPES.values()))
        if "task_type" in adapter and adapter["task_type"] not in task_types:
            raise ManifestError(f"task_type {adapter['task_type']!r} is not one of {', '.join(task_types)}", path=where,
                                field=f"{field}.task_type", hint="by default it follows the base model's task")
        targets = adapter.get("target_modules")
        if targets is not None and not (isinstance(targets, list) and targets and all(isinstance(t, str) for t in targets)):
            raise ManifestError("must be a non-empty list of module names", path=where, field=f"{field}.target_modules",
                                hint='e.g. ["q_proj", "v_proj"]')
        base = adapter.get("base")
        if not isinstance(base, str) or not base.strip():
            raise ManifestError("an adapter needs its base model", path=where, field=f"{field}.base",
                                hint='a fixture name, a class, a model type or a served hub id: base = "tiny_llama"')
        if is_hub_id(base):
            adapter["base_id"] = base
        else:
            base_id = f"{repo_id}-base"
            target = _parse_target(self, "model", base_id, base, where or Path("fixtures.toml"), f"{field}.base")
            self.declared_ids.setdefault(("model", base_id), target)
            adapter["base_id"] = base_id
        return MappingProxyType(adapter)

    def adapter_base(self, target: HubTarget) -> HubTarget:
        """The served target of an adapter's base model; ManifestError when nothing serves it."""
        assert target.adapter is not None
        base_id = target.adapter["base_id"]
        base = self.resolve("model", base_id)
        if base is None or base.adapter is not None:
            raise ManifestError(f"the base model {base_id!r} of adapter {target.repo_id!r} is "
                                + ("an adapter itself" if base is not None else "not served"),
                                path=target.manifest, field=f'hub.ids."{target.repo_id}".adapter.base',
                                hint="declare the base id too, or name a fixture, class or model type as base")
        return base


    def declaration_hint(self, repo_type: str, repo_id: str, configs: Iterable[str] = ()) -> str:
        """The manifest line that declares ``repo_id`` (for offline mode, where only declared ids exist): what
        a rule, built-in id or stand-in would serve, else :func:`miss_hint`'s guess."""
        try:
            target = self.resolve(repo_type, repo_id)
        except ManifestError:
            target = None
        if target is None or target.repo_type != "model":
            return miss_hint(repo_type, repo_id, configs)
        if target.adapter is not None:
            keys = {k: v for k, v in target.adapter.items() if k in ("type", "r") or k == "base"}
            keys["base"] = target.adapter.get("base", target.adapter["base_id"])
            inner = ", ".join(f"{k} = {_toml_value(v)}" for k, v in keys.items())
            return f'[hub.ids] "{repo_id}" = {{ adapter = {{ {inner} }} }}'
        spec = target.spec
        if spec is None:
            return miss_hint(repo_type, repo_id, configs)
        parts = [f"architecture = {_toml_value(spec.architecture)}" if spec.architecture
                 else f"model_type = {_toml_value(spec.model_type)}"]
        if spec.task and not spec.architecture:
            parts.append(f"task = {_toml_value(spec.task)}")
        if spec.config:
            parts.append("config = { " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in sorted(spec.config.items()))
                         + " }")
        chat = [f"{k} = {_toml_value(spec.tokenizer[k])}" for k in ("chat_template", "thinking") if k in spec.tokenizer]
        if chat:
            parts.append("tokenizer = { " + ", ".join(chat) + " }")
        from ..manifest import DATASET_DEFAULTS

        dataset = [f"{k} = {_toml_value(v)}" for k, v in sorted(spec.dataset.items()) if DATASET_DEFAULTS.get(k) != v]
        if dataset:
            parts.append("dataset = { " + ", ".join(dataset) + " }")
        if spec.train is not None:
            parts.append("train = { " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in sorted(spec.train.items())) + " }")
        if spec.size:
            parts.append("size = { " + ", ".join(f"{k} = {v}" for k, v in sorted(spec.size.items())) + " }")
        if target.library:
            parts.append(f"library = {_toml_value(target.library)}")
        if len(parts) == 1 and spec.architecture:
            return f'[hub.ids] "{repo_id}" = {_toml_value(spec.architecture)}'
        return f'[hub.ids] "{repo_id}" = {{ ' + ", ".join(parts) + " }"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json_string(value)
    return repr(value)


def json_string(text: str) -> str:
    """A TOML basic string (JSON's escaping is valid TOML)."""
    import json

    return json.dumps(text)


def miss_hint(repo_type: str, repo_id: str, configs: Iterable[str] = ()) -> str:
    """The manifest line that would serve an undeclared id: a stand-in guessed from the id's words for a
    model, the requested ``configs`` (config names asked for) for a dataset."""
    if repo_type == "dataset":
        names = [c for c in dict.fromkeys(configs) if c] or ["default"]
        return f'[hub.datasets."{repo_id}"] configs = {{ ' + ", ".join(
            f"{_toml_key(name)} = {_dataset_config_hint(name)}" for name in names) + " }"
    from .standins import guess_stand_in, hint_table

    try:
        guess = guess_stand_in(repo_id)
    except Exception:  # noqa: BLE001 - a hint must never fail the summary
        guess = None
    # no model type among the id's words (a diffusers pipeline, a test's module name): no class is guessed
    value = hint_table(guess) if guess is not None else '"<Class>"  # the class it stands for, a model type or a fixture'
    return f'[hub.ids] "{repo_id}" = {value}'


def _toml_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else f'"{name}"'


def _dataset_config_hint(name: str) -> str:
    """``{ format = "preference" }`` where the config name names a dataset format, else a fixture's rows."""
    formats = _dataset_formats()
    candidate = name
    for prefix in conventions.DATASET_CONFIG_PREFIXES:
        if candidate.startswith(prefix):
            candidate = candidate[len(prefix):]
    for option in (name, candidate):
        if option in formats:
            return f'{{ format = "{option}" }}'
    return '{ fixture = "tiny_llama" }'


def _dataset_formats() -> frozenset[str]:
    """The dataset formats the build knows (``build.datasets.DATASET_FORMATS`` where it exists)."""
    try:
        from ..build import datasets as build_datasets
    except ImportError:  # pragma: no cover - the build package is always there
        return frozenset()
    for name in ("DATASET_FORMATS", "FORMATS"):
        table = getattr(build_datasets, name, None)
        if table:
            return frozenset(table)
    return frozenset()


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


def _check_table_keys(table: Mapping[str, Any], allowed: tuple[str, ...], path: Path | None, field: str) -> None:
    for key in table:
        if key not in allowed:
            import difflib

            close = difflib.get_close_matches(key, allowed, n=1)
            raise ManifestError(f"unknown key {key!r}", path=path, field=f"{field}.{key}",
                                hint=f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}")


def _parse_hub_table(registry: HubRegistry, table: Any, path: Path) -> None:
    if not isinstance(table, dict):
        raise ManifestError("must be a table", path=path, field="hub")
    _check_table_keys(table, HUB_KEYS, path, "hub")
    for key in ("builtin", "any_commit"):
        if key in table:
            if not isinstance(table[key], bool):
                raise ManifestError(f"must be true or false, got {table[key]!r}", path=path, field=f"hub.{key}")
            setattr(registry, key, table[key])
    if "stand_ins" in table:
        value = table["stand_ins"]
        if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
            previous = registry.stand_ins if isinstance(registry.stand_ins, tuple) else ()
            registry.stand_ins = registry.stand_ins if registry.stand_ins is True else (*previous, *value)
        elif isinstance(value, bool):
            registry.stand_ins = value
        else:
            raise ManifestError(f"must be true, false or a list of id globs, got {value!r}", path=path,
                                field="hub.stand_ins", hint='e.g. stand_ins = ["sentence-transformers/*"] or true')
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
            return HubTarget(repo_type, repo_id, origin, fixture=value, manifest=path)
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
        return HubTarget(repo_type, repo_id, origin, spec=registry._spec(repo_id, table, origin, path, field),
                         manifest=path)
    if not isinstance(value, dict):
        raise ManifestError(f"must be a string or a table, got {type(value).__name__} {value!r}", path=path,
                            field=field)
    value = dict(value)
    revisions = _revisions(value.pop("revisions", []), path, f"{field}.revisions")
    if repo_type == "dataset" and "configs" in value:
        _check_table_keys(value, DATASET_REPO_KEYS, path, field)
        configs = _dataset_configs(registry, value["configs"], path, f"{field}.configs")
        return HubTarget(repo_type, repo_id, origin, revisions=revisions, configs=configs, manifest=path)
    library = value.pop("library", None)
    if library is not None and library not in conventions.LIBRARIES:
        raise ManifestError(f"unknown library {library!r}", path=path, field=f"{field}.library",
                            hint=f"libraries with a layout: {', '.join(conventions.LIBRARIES)}")
    if "adapter" in value:
        if repo_type != "model" or set(value) != {"adapter"}:
            raise ManifestError("an adapter id holds only 'adapter' (and 'revisions')", path=path,
                                field=f"{field}.adapter", hint='e.g. { adapter = { type = "lora", base = "tiny_llama" } }')
        adapter = registry._adapter(repo_id, value["adapter"], path, f"{field}.adapter")
        return HubTarget(repo_type, repo_id, origin, revisions=revisions, adapter=adapter, manifest=path)
    bad = [k for k in value if k in _TABLE_EXCLUDED]
    if bad:
        raise ManifestError(f"key {bad[0]!r} is not allowed here", path=path, field=f"{field}.{bad[0]}",
                            hint="an id table describes one repo: model_type/architecture/task/config/...")
    if "fixture" in value:
        if set(value) != {"fixture"}:
            raise ManifestError("'fixture' cannot be combined with other keys", path=path, field=field)
        target = _parse_target(registry, repo_type, repo_id, value["fixture"], path, field)
        return _with(target, revisions=revisions, library=library)
    if repo_type == "model" and not any(value.get(k) for k in _MODEL_KEYS):  # a stand-in guessed from the id
        from .standins import guess_stand_in

        guess = guess_stand_in(repo_id)
        if guess is None:
            raise ManifestError(f"no word of {repo_id!r} names a model type of the installed transformers, and the "
                                "table names no model", path=path, field=field,
                                hint='set model_type or architecture, e.g. { model_type = "bert" }')
        table = {**guess.table, **value}
        if guess.table.get("config") and isinstance(value.get("config"), dict):
            table["config"] = {**guess.table["config"], **value["config"]}
        if "architecture" in value:  # the user's class decides model type and task
            table.pop("model_type", None)
            table.pop("task", None)
        origin = f"{origin}, stand-in: {guess.reason}"
        library = library if library is not None else guess.library
        return HubTarget(repo_type, repo_id, origin, spec=registry._spec(repo_id, table, origin, path, field),
                         revisions=revisions, library=library, manifest=path)
    return HubTarget(repo_type, repo_id, origin, spec=registry._spec(repo_id, value, origin, path, field),
                     revisions=revisions, library=library, manifest=path)


def _with(target: HubTarget, **changes: Any) -> HubTarget:
    from dataclasses import replace

    return replace(target, **{k: v for k, v in changes.items() if v})


def _revisions(value: Any, path: Path, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError("must be a list of revision names", path=path, field=field,
                            hint='e.g. revisions = ["v2.0.0", "refs/pr/14"]')
    for name in value:
        if _BAD_REVISION.search(name) or name == "main":
            raise ManifestError(f"not a usable revision name: {name!r}", path=path, field=field,
                                hint="a branch, tag, refs/pr/N or a 40-hex commit sha ('main' is always there)")
    return tuple(dict.fromkeys(value))


def _dataset_configs(registry: HubRegistry, value: Any, path: Path, field: str) -> Mapping[str, Mapping[str, Any]]:
    """Validated named configs: each ``{format = ...}``, ``{data_files = {split = path}}`` or ``{fixture = name}``."""
    if not isinstance(value, dict) or not value:
        raise ManifestError("must be a table of config_name = { ... }", path=path, field=field,
                            hint='e.g. configs = { standard_preference = { format = "preference" } }')
    out: dict[str, Mapping[str, Any]] = {}
    for name, config in value.items():
        where = f"{field}.{name}"
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise ManifestError(f"config name {name!r} is not a plain name", path=path, field=where,
                                hint="letters, digits, '_', '-', '.'")
        if not isinstance(config, dict):
            raise ManifestError("must be a table", path=path, field=where, hint='e.g. { format = "preference" }')
        _check_table_keys(config, CONFIG_KEYS, path, where)
        kinds = [k for k in ("format", "data_files", "fixture") if k in config]
        if len(kinds) != 1:
            raise ManifestError("a config needs exactly one of format, data_files, fixture"
                                + (f" (got {', '.join(kinds)})" if kinds else ""), path=path, field=where,
                                hint='e.g. { format = "preference" } or { data_files = { train = "train.jsonl" } }')
        config = dict(config)
        for key in ("rows", "test_rows", "seed"):
            if key in config and (isinstance(config[key], bool) or not isinstance(config[key], int)
                                  or config[key] < (0 if key == "seed" else 1)):
                raise ManifestError(f"must be a positive integer, got {config[key]!r}", path=path,
                                    field=f"{where}.{key}")
        if "params" in config and not isinstance(config["params"], dict):
            raise ManifestError("must be a table", path=path, field=f"{where}.params")
        if "format" in config:
            formats = _dataset_formats()
            if not isinstance(config["format"], str) or (formats and config["format"] not in formats):
                import difflib

                close = difflib.get_close_matches(str(config["format"]), sorted(formats), n=1)
                raise ManifestError(f"unknown dataset format {config['format']!r}", path=path, field=f"{where}.format",
                                    hint=(f"did you mean {close[0]!r}? " if close else "")
                                    + f"formats: {', '.join(sorted(formats))}")
        if "fixture" in config:
            if config["fixture"] not in registry.manifest:
                raise ManifestError(f"no fixture named {config['fixture']!r}", path=path, field=f"{where}.fixture")
            if registry.manifest[config["fixture"]].parametrized:
                raise ManifestError(f"fixture {config['fixture']!r} is parametrized over architectures", path=path,
                                    field=f"{where}.fixture")
        if "data_files" in config:
            files = config["data_files"]
            if not isinstance(files, dict) or not files or not all(isinstance(v, (str, list)) for v in files.values()):
                raise ManifestError("must be a table of split = path (or list of paths)", path=path,
                                    field=f"{where}.data_files", hint='e.g. { train = "train.jsonl", test = "test.jsonl" }')
            resolved: dict[str, tuple[str, ...]] = {}
            for split, paths in files.items():
                items = [paths] if isinstance(paths, str) else paths
                full = []
                for item in items:
                    file = Path(item).expanduser()
                    file = file if file.is_absolute() else path.parent / file
                    if not file.is_file():
                        raise ManifestError(f"data file {str(file)!r} does not exist", path=path,
                                            field=f"{where}.data_files.{split}", hint="a path is relative to the manifest")
                    if file.suffix.lower() not in _DATA_FILE_BUILDERS:
                        raise ManifestError(f"cannot read {file.name!r} as a dataset", path=path,
                                            field=f"{where}.data_files.{split}",
                                            hint=f"use one of {', '.join(sorted(_DATA_FILE_BUILDERS))}")
                    full.append(str(file))
                resolved[split] = tuple(full)
            config["data_files"] = MappingProxyType(resolved)
        out[name] = MappingProxyType(config)
    return MappingProxyType(out)


#: data file suffix -> the datasets builder that reads it
_DATA_FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}
