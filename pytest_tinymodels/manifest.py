"""Manifest parsing and validation (pure Python, no heavy imports).

A manifest is a TOML file::

    [defaults]
    seed = 0
    dtype = "float32"
    device = "cpu"

    [fixtures.tiny_llama]
    model_type = "llama"
    config = { hidden_size = 32 }
    config_extra = { my_flag = 1 }      # deliberate extra attributes (not checked against the config class)
    tokenizer = { vocab_size = 512 }
    dataset = { rows = 32 }

The built-in manifest (``data/default_fixtures.toml``) is read first; a user manifest adds
fixtures and overrides built-in ones by name.  Every problem raises :class:`ManifestError`
naming the file, the fixture and the field.
"""

from __future__ import annotations

import difflib
import hashlib
import keyword
import math
import re
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple

from .errors import ManifestError

DTYPES = ("float32", "float16", "bfloat16")
DEVICES = ("cpu", "cuda", "auto")
TOKENIZER_METHODS = ("auto", "train", "truncate", "retrain", "spm-trim")
#: input modalities a parametrized fixture can be narrowed to (``modalities = ["text"]``).
MODALITIES = ("text", "image", "audio", "multimodal")
#: ``owner/name`` (patterns are compiled on first use: importing the plugin compiles none)
HUB_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*"


def is_hub_id(text: str) -> bool:
    """Whether ``text`` has the shape of a hub repo id (``owner/name``)."""
    return re.fullmatch(HUB_ID_PATTERN, text) is not None


def is_fixture_name(name: str) -> bool:
    """An ASCII Python identifier (``[A-Za-z_][A-Za-z0-9_]*``), not a keyword."""
    return name.isascii() and name.isidentifier() and not keyword.iskeyword(name)

#: Keys accepted under ``[defaults]``; each applies to every fixture that does not set it.
DEFAULT_KEYS = ("seed", "dtype", "device", "tokenizer", "dataset", "config", "config_extra", "smoke", "size")

#: Keys accepted under ``[fixtures.NAME]``, with the type each must have.
FIXTURE_KEYS: dict[str, tuple[type, ...]] = {
    "model_type": (str,),
    "architecture": (str,),
    "task": (str,),
    "architectures": (str, list),
    "exclude": (list,),
    "modalities": (list,),
    "config": (dict,),
    "config_extra": (dict,),
    "tokenizer": (dict,),
    "dataset": (dict,),
    "seed": (int,),
    "dtype": (str,),
    "device": (str,),
    "source": (str,),
    "download": (str,),
    "revision": (str,),
    "hub_id": (str, list),
    "smoke": (bool,),
    "description": (str,),
    "train": (dict, bool),
    "size": (dict,),
}

TOKENIZER_KEYS: dict[str, tuple[type, ...]] = {"vocab_size": (int,), "method": (str,), "model_max_length": (int,),
                                               "chat_template": (str, bool), "thinking": (bool,)}
DATASET_KEYS: dict[str, tuple[type, ...]] = {"rows": (int,), "min_chars": (int,), "max_chars": (int,), "seed": (int,),
                                             "format": (str,)}

TOKENIZER_DEFAULTS: dict[str, Any] = {"vocab_size": 512, "method": "auto"}
#: ``format`` has no default: a fixture's dataset has its task's format (``build.datasets.default_format``).
DATASET_DEFAULTS: dict[str, Any] = {"rows": 32, "min_chars": 40, "max_chars": 200}

#: Config fields that must be positive integers when given.
POSITIVE_INT_FIELDS = frozenset(
    {
        "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
        "intermediate_size", "vocab_size", "max_position_embeddings", "head_dim", "n_embd", "n_layer",
        "n_head", "n_positions", "d_model", "d_ff", "d_kv", "num_layers", "num_heads", "num_decoder_layers",
        "encoder_layers", "decoder_layers", "encoder_attention_heads", "decoder_attention_heads",
        "encoder_ffn_dim", "decoder_ffn_dim", "n_inner", "num_experts", "num_local_experts",
        "num_experts_per_tok", "image_size", "patch_size", "num_channels",
    }
)
#: (dimension, heads) pairs where heads must divide the dimension when the user sets both.
DIVISIBLE_FIELDS = (
    ("hidden_size", "num_attention_heads"),
    ("num_attention_heads", "num_key_value_heads"),
    ("n_embd", "n_head"),
    ("d_model", "num_heads"),
)

#: (smaller, larger) pairs: when the user sets both, smaller must not exceed larger.
AT_MOST_FIELDS = (
    ("num_key_value_heads", "num_attention_heads"),
    ("num_experts_per_tok", "num_local_experts"),
    ("num_experts_per_tok", "num_experts"),
)

MAX_TINY_VOCAB = 1_000_000
MAX_ROWS = 100_000
MAX_CHARS = 100_000
MAX_LENGTH = 1_000_000
#: Integers in ``config`` must fit in int64 (torch and the JSON config round trip need it).
INT64_MAX = 2**63 - 1
#: TOML value types a config override may use (dates and times mean nothing to a model config).
CONFIG_VALUE_TYPES = (str, int, float, bool, list, dict)


class FixtureSpec(NamedTuple):
    """One fixture as declared in a manifest, validated and with defaults applied (immutable:
    ``spec._replace(dtype="bfloat16")`` gives a changed copy)."""

    name: str
    manifest: Path
    model_type: str | None = None
    architecture: str | None = None
    task: str | None = None
    architectures: tuple[str, ...] | None = None  # set => parametrized over architectures
    exclude: tuple[str, ...] = ()
    config: Mapping[str, Any] = MappingProxyType({})  # overrides, ``config_extra`` merged in
    tokenizer: Mapping[str, Any] = MappingProxyType(dict(TOKENIZER_DEFAULTS))
    dataset: Mapping[str, Any] = MappingProxyType(dict(DATASET_DEFAULTS))
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"
    source: str | None = None
    download: str | None = None
    revision: str | None = None
    hub_ids: tuple[str, ...] = ()
    smoke: bool = True
    description: str | None = None
    config_extra: Mapping[str, Any] = MappingProxyType({})  # the part of ``config`` not checked against the class
    train: Mapping[str, Any] | None = None  # the training recipe (``build.train.check_train``); None: random weights
    modalities: tuple[str, ...] | None = None  # narrows a parametrized fixture to these input modalities
    size: Mapping[str, int] | None = None  # the shrink's tiny value per kind of quantity (``{"hidden": 8}``)

    @property
    def parametrized(self) -> bool:
        """True when the fixture runs once per architecture."""
        return self.architectures is not None

    def for_architecture(self, model_type: str, architecture: str) -> FixtureSpec:
        """The concrete (non-parametrized) spec of one architecture of a parametrized fixture."""
        return self._replace(model_type=model_type, architecture=architecture, architectures=None, exclude=(),
                             modalities=None)

    def build_key_fields(self) -> dict[str, Any]:
        """The fields that decide what is built (and so the cache key): not name, device or hub ids."""
        return {
            "model_type": self.model_type,
            "architecture": self.architecture,
            "task": self.task,
            "config": _sorted(self.config),
            "tokenizer": _sorted(self.tokenizer),
            "dataset": _sorted(self.dataset),
            "seed": self.seed,
            "dtype": self.dtype,
            "source": self.source,
            "download": self.download,
            "revision": self.revision,
            "smoke": self.smoke,
        } | ({"train": _sorted(self.train)} if self.train is not None else {}) | (
            {"size": _sorted(self.size)} if self.size else {})


class Manifest:
    """All fixtures, by name, with the file each came from."""

    def __init__(self, fixtures: dict[str, FixtureSpec] | None = None, paths: list[Path] | None = None) -> None:
        self.fixtures: dict[str, FixtureSpec] = {} if fixtures is None else fixtures
        self.paths: list[Path] = [] if paths is None else paths

    def __repr__(self) -> str:
        return f"Manifest({len(self.fixtures)} fixtures from {[str(p) for p in self.paths]})"

    def __contains__(self, name: object) -> bool:
        return name in self.fixtures

    def __getitem__(self, name: str) -> FixtureSpec:
        try:
            return self.fixtures[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self.fixtures), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"known fixtures: {', '.join(sorted(self.fixtures))}"
            raise ManifestError(f"no tiny fixture named {name!r}", fixture=name, hint=hint) from None

    def names(self) -> list[str]:
        return sorted(self.fixtures)


def default_manifest_path() -> Path:
    """Path of the built-in manifest shipped in the package."""
    return Path(str(resources.files("pytest_tinymodels") / "data" / "default_fixtures.toml"))


def load_manifest(path: Path | str | None = None, *, include_defaults: bool = True,
                  memo_dir: Path | None = None) -> Manifest:
    """Read the built-in manifest (unless ``include_defaults`` is false) and then ``path``, if given.

    ``memo_dir`` (a cache root): remember each file's parsed TOML there while the file is unchanged
    (see :func:`cache.stat_memo`), so a fresh process need not import and run the TOML parser.
    Validation runs every time.
    """
    manifest = Manifest()
    sources = []
    if include_defaults:
        sources.append(default_manifest_path())
    if path is not None:
        sources.append(Path(path))
    for src in sources:
        for name, spec in parse_manifest_file(src, memo_dir=memo_dir).items():
            manifest.fixtures[name] = spec
        manifest.paths.append(src)
    return manifest


def parse_manifest_file(path: Path | str, *, memo_dir: Path | None = None) -> dict[str, FixtureSpec]:
    """Parse and validate one manifest file (``memo_dir``: see :func:`load_manifest`)."""
    path = Path(path)

    def read_toml() -> dict[str, Any]:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ManifestError("manifest file not found", path=path,
                                hint="create it or fix --tiny-manifest / tiny_manifest") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestError(f"cannot read manifest: {exc}", path=path) from None
        return {"toml": _load_toml(text, path)}

    if memo_dir is None or not path.is_file():
        data = read_toml()["toml"]
    else:
        from .cache import stat_memo

        where = hashlib.sha256(str(path.absolute()).encode()).hexdigest()[:16]
        data = stat_memo(memo_dir / "memo" / f"manifest-{where}.json", [path], read_toml)["toml"]
    return _validate_document(data, path)


def parse_manifest_text(text: str, path: Path | str = "<string>") -> dict[str, FixtureSpec]:
    """Parse and validate manifest TOML text; ``path`` is only used in error messages."""
    path = Path(path)
    return _validate_document(_load_toml(text, path), path)


def _load_toml(text: str, path: Path) -> dict[str, Any]:
    import tomllib  # imported here: a manifest remembered by the cache needs no TOML parser

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(exc, path) from None
    except RecursionError:
        raise ManifestError("invalid TOML: nested too deeply", path=path, hint="fix the syntax") from None


def _validate_document(data: dict[str, Any], path: Path) -> dict[str, FixtureSpec]:
    try:
        return _parse_document(data, path)
    except RecursionError:
        raise ManifestError("nested too deeply", path=path, field="config") from None


def _toml_error(exc: Exception, path: Path) -> ManifestError:
    """A TOML syntax error; a table declared twice names its fixture and field."""
    message = str(exc)
    twice = re.match(r"Cannot declare \((.*)\) twice", message)
    if twice:
        parts = [p.strip().strip("'\"") for p in twice.group(1).split(",") if p.strip()]
        fixture = parts[1] if len(parts) >= 2 and parts[0] == "fixtures" else None
        dotted = ".".join(parts)
        return ManifestError(f"table [{dotted}] is declared twice ({message})", path=path, fixture=fixture,
                             field=dotted, hint="merge the two tables; fixture names must be unique")
    if message.startswith("Cannot overwrite a value") or message.startswith("Cannot mutate"):
        return ManifestError(f"a key is set twice ({message})", path=path, field="(duplicate key)",
                             hint="each key and fixture may appear once")
    return ManifestError(f"invalid TOML: {message}", path=path, hint="fix the syntax")


def _parse_document(data: dict[str, Any], path: Path) -> dict[str, FixtureSpec]:
    # [hub] (hub ids, rules) is parsed and validated by hub.registry.load_hub_registry
    _check_keys(data, ("defaults", "fixtures", "hub"), path, None, None)
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ManifestError("must be a table", path=path, field="defaults")
    _check_keys(defaults, DEFAULT_KEYS, path, None, "defaults")
    for key in ("seed", "dtype", "device", "smoke"):
        if key in defaults:
            _check_type(defaults[key], FIXTURE_KEYS[key], path, None, f"defaults.{key}")
    for key in ("tokenizer", "dataset", "config", "config_extra", "size"):
        if key in defaults and not isinstance(defaults[key], dict):
            raise ManifestError("must be a table", path=path, field=f"defaults.{key}")
    fixtures = data.get("fixtures", {})
    if not isinstance(fixtures, dict):
        raise ManifestError("must be a table of [fixtures.NAME] tables", path=path, field="fixtures")
    specs: dict[str, FixtureSpec] = {}
    for name, table in fixtures.items():
        specs[name] = parse_fixture(name, table, defaults, path)
    return specs


def parse_fixture(name: str, table: Any, defaults: Mapping[str, Any], path: Path) -> FixtureSpec:
    _check_name(name, path)
    if not isinstance(table, dict):
        raise ManifestError("must be a table ([fixtures.NAME])", path=path, fixture=name, field=f"fixtures.{name}")
    _check_keys(table, FIXTURE_KEYS, path, name, None)
    for key, types in FIXTURE_KEYS.items():
        if key in table:
            _check_type(table[key], types, path, name, key)

    def pick(key: str, fallback: Any) -> Any:
        return table.get(key, defaults.get(key, fallback))

    dtype = pick("dtype", "float32")
    if dtype not in DTYPES:
        raise _choice_error(dtype, DTYPES, path, name, "dtype")
    device = pick("device", "cpu")
    if device not in DEVICES and not re.fullmatch(r"cuda:\d+", device):
        raise _choice_error(device, DEVICES, path, name, "device")
    seed = pick("seed", 0)
    if not 0 <= seed < 2**32:
        raise ManifestError(f"must be between 0 and 2**32-1, got {seed}", path=path, fixture=name, field="seed")

    tokenizer = _merged_table(TOKENIZER_DEFAULTS, defaults.get("tokenizer"), table.get("tokenizer"), TOKENIZER_KEYS, path, name, "tokenizer")
    if not 2 <= tokenizer["vocab_size"] <= MAX_TINY_VOCAB:
        raise ManifestError(
            f"vocab_size must be between 2 and {MAX_TINY_VOCAB}, got {tokenizer['vocab_size']}",
            path=path, fixture=name, field="tokenizer.vocab_size",
        )
    if tokenizer["method"] not in TOKENIZER_METHODS:
        raise _choice_error(tokenizer["method"], TOKENIZER_METHODS, path, name, "tokenizer.method")
    if "model_max_length" in tokenizer and not 1 <= tokenizer["model_max_length"] <= MAX_LENGTH:
        raise ManifestError(f"must be between 1 and {MAX_LENGTH}, got {tokenizer['model_max_length']}",
                            path=path, fixture=name, field="tokenizer.model_max_length")
    _check_chat_template(tokenizer, path, name)
    dataset = _merged_table(DATASET_DEFAULTS, defaults.get("dataset"), table.get("dataset"), DATASET_KEYS, path, name, "dataset")
    if not 1 <= dataset["rows"] <= MAX_ROWS:
        raise ManifestError(f"rows must be between 1 and {MAX_ROWS}, got {dataset['rows']}", path=path, fixture=name, field="dataset.rows")
    if not 1 <= dataset["min_chars"] <= dataset["max_chars"] <= MAX_CHARS:
        raise ManifestError(
            f"need 1 <= min_chars <= max_chars <= {MAX_CHARS}, got {dataset['min_chars']} and {dataset['max_chars']}",
            path=path, fixture=name, field="dataset.min_chars",
        )

    if "seed" in dataset and not 0 <= dataset["seed"] < 2**32:
        raise ManifestError(f"must be between 0 and 2**32-1, got {dataset['seed']}", path=path, fixture=name,
                            field="dataset.seed")
    if "format" in dataset:
        _check_dataset_format(dataset["format"], path, name)

    config = dict(defaults.get("config", {}))
    config.update(table.get("config", {}))
    _check_config(config, path, name)
    extra = dict(defaults.get("config_extra", {}))
    extra.update(table.get("config_extra", {}))
    _check_config(extra, path, name, "config_extra")
    config = _merge_extra(config, extra, path, name)

    architectures: tuple[str, ...] | None = None
    if "architectures" in table:
        value = table["architectures"]
        architectures = (value,) if isinstance(value, str) else tuple(_str_list(value, path, name, "architectures"))
        if not architectures:
            raise ManifestError("must not be empty (use \"*\" for every architecture)", path=path, fixture=name, field="architectures")
        if "architecture" in table:
            raise ManifestError("set either 'architecture' or 'architectures', not both", path=path, fixture=name, field="architectures")
        if "task" not in table:
            raise ManifestError("a parametrized fixture needs a 'task'", path=path, fixture=name, field="task",
                                hint='e.g. task = "causal-lm"')
    exclude = tuple(_str_list(table.get("exclude", []), path, name, "exclude"))
    if exclude and architectures is None:
        raise ManifestError("'exclude' only applies with 'architectures'", path=path, fixture=name, field="exclude")
    modalities = _modalities(table, architectures, path, name)

    source, download = table.get("source"), table.get("download")
    if source and download:
        raise ManifestError("set either 'source' or 'download', not both", path=path, fixture=name, field="download")
    if download and architectures is not None:
        raise ManifestError("'download' cannot be parametrized over architectures", path=path, fixture=name, field="download")
    if download and not is_hub_id(download):
        raise ManifestError(f"not a hub repo id: {download!r}", path=path, fixture=name, field="download", hint='use "org/name"')
    if not (source or download or architectures or table.get("model_type") or table.get("architecture")):
        raise ManifestError(
            "says nothing about what to build",
            path=path, fixture=name, field="model_type",
            hint="set model_type, architecture, architectures, source or download",
        )
    for key in ("model_type", "architecture", "task", "source", "revision"):
        if key in table and not table[key].strip():
            raise ManifestError("must not be empty", path=path, fixture=name, field=key)
    hub_ids = table.get("hub_id", [])
    hub_ids = (hub_ids,) if isinstance(hub_ids, str) else tuple(_str_list(hub_ids, path, name, "hub_id"))
    for hub_id in hub_ids:
        if not is_hub_id(hub_id) or ".." in hub_id:
            raise ManifestError(f"not a hub repo id: {hub_id!r}", path=path, fixture=name, field="hub_id", hint='use "org/name"')

    return FixtureSpec(
        name=name,
        manifest=path,
        model_type=table.get("model_type"),
        architecture=table.get("architecture"),
        task=table.get("task"),
        architectures=architectures,
        exclude=exclude,
        modalities=modalities,
        config=config,
        tokenizer=tokenizer,
        dataset=dataset,
        seed=seed,
        dtype=dtype,
        device=device,
        source=source,
        download=download,
        revision=table.get("revision"),
        hub_ids=hub_ids,
        smoke=pick("smoke", True),
        description=table.get("description"),
        config_extra=extra,
        train=_check_train(table.get("train", False), path, name),
        size=_check_size({**defaults.get("size", {}), **table.get("size", {})}, path, name),
    )


def _check_chat_template(tokenizer: Mapping[str, Any], path: Path, fixture: str) -> None:
    """``chat_template``: a shipped format name, a ``.jinja`` file (relative to the manifest) or false;
    ``thinking``: the reasoning default of a format that has one."""
    from .build.tokenizer import chat  # the standard library only: the format names

    value, field_name = tokenizer.get("chat_template"), "tokenizer.chat_template"
    if value is True:
        raise ManifestError("must be a format name, a .jinja file or false, got true", path=path, fixture=fixture,
                            field=field_name, hint=f"formats: {', '.join(sorted(chat.FORMATS))}")
    if isinstance(value, str) and value not in chat.FORMATS:
        if not (value.endswith(".jinja") or "/" in value or "\\" in value):
            close = difflib.get_close_matches(value, list(chat.FORMATS), n=1, cutoff=0.5)
            raise ManifestError(f"unknown chat format {value!r}", path=path, fixture=fixture, field=field_name,
                                hint=(f"did you mean {close[0]!r}? " if close else "")
                                + f"formats: {', '.join(sorted(chat.FORMATS))}, or the path of a .jinja file")
        file = Path(value).expanduser()
        file = file if file.is_absolute() else Path(path).parent / file
        if not file.is_file():
            siblings = [p.name for p in file.parent.glob("*.jinja")] if file.parent.is_dir() else []
            close = difflib.get_close_matches(file.name, siblings, n=1)
            raise ManifestError(f"chat template file {str(file)!r} does not exist", path=path, fixture=fixture,
                                field=field_name, hint=(f"did you mean {close[0]!r}? " if close else "")
                                + "a path is relative to the manifest")
    if "thinking" in tokenizer:
        fmt = chat.FORMATS.get(value) if isinstance(value, str) else None
        if value is False or (isinstance(value, str) and fmt is None) or (fmt is not None and not fmt.supports_thinking):
            with_thinking = ", ".join(n for n, f in sorted(chat.FORMATS.items()) if f.supports_thinking)
            raise ManifestError(f"thinking does not apply to chat_template = {value!r}", path=path, fixture=fixture,
                                field="tokenizer.thinking", hint=f"formats with a reasoning mode: {with_thinking}")


def _check_size(value: Mapping[str, Any], path: Path, fixture: str) -> Mapping[str, int] | None:
    """``size``: kinds of quantity of the shrinker (``hidden``, ``intermediate``, ``layers`` ...) -> the most
    each may be in the tiny model (``build.shrink.DEFAULT_TINY``, imported only when set)."""
    if not value:
        return None
    from .build.shrink import check_sizes

    for kind, number in value.items():
        problems = check_sizes({kind: number})
        if problems:
            raise ManifestError(problems[0], path=path, fixture=fixture, field=f"size.{kind}",
                                hint="e.g. size = { hidden = 8, intermediate = 32 }")
    return MappingProxyType(dict(sorted(value.items())))


def _check_train(value: Any, path: Path, fixture: str) -> Mapping[str, Any] | None:
    """``train``: true, false or a table of ``build.train.TRAIN_KEYS`` (imported only when set)."""
    if value is False:
        return None
    from .build.train import check_train

    return check_train(value, path=path, fixture=fixture)


def _check_dataset_format(value: str, path: Path, fixture: str) -> None:
    """``dataset.format`` names a format of ``build.datasets.DATASET_FORMATS`` (imported only when set)."""
    from .build.datasets import check_format

    try:
        check_format(value)
    except ManifestError as exc:
        raise ManifestError(exc.message, path=path, fixture=fixture, field="dataset.format", hint=exc.hint) from None


def _modalities(table: Mapping[str, Any], architectures: Any, path: Path, name: str) -> tuple[str, ...] | None:
    """``modalities = ["text", ...]``: only with ``architectures``, not empty, each one of :data:`MODALITIES`."""
    if "modalities" not in table:
        return None
    values = tuple(_str_list(table["modalities"], path, name, "modalities"))
    if architectures is None:
        raise ManifestError("'modalities' only applies with 'architectures'", path=path, fixture=name, field="modalities")
    if not values:
        raise ManifestError(f"must not be empty (choose from {', '.join(MODALITIES)})", path=path, fixture=name,
                            field="modalities")
    for value in values:
        if value not in MODALITIES:
            raise _choice_error(value, MODALITIES, path, name, "modalities")
    return values


def _check_name(name: str, path: Path) -> None:
    if not is_fixture_name(name):
        raise ManifestError(
            f"fixture name {name!r} is not a valid Python identifier",
            path=path, fixture=name, field="name", hint="use letters, digits and underscores, e.g. tiny_llama",
        )
    if name.startswith("_"):
        raise ManifestError("fixture names must not start with '_'", path=path, fixture=name, field="name")


def _check_keys(table: Mapping[str, Any], allowed: Any, path: Path, fixture: str | None, prefix: str | None) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, list(allowed), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"
            field_name = f"{prefix}.{key}" if prefix else key
            raise ManifestError(f"unknown key {key!r}", path=path, fixture=fixture, field=field_name, hint=hint)


def _type_names(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "a table", float: "a number"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _check_type(value: Any, types: tuple[type, ...], path: Path, fixture: str | None, field_name: str) -> None:
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        raise ManifestError(
            f"must be {_type_names(types)}, got {type(value).__name__} {value!r}",
            path=path, fixture=fixture, field=field_name,
        )


def _choice_error(value: Any, choices: tuple[str, ...], path: Path, fixture: str, field_name: str) -> ManifestError:
    return ManifestError(f"{value!r} is not one of {', '.join(choices)}", path=path, fixture=fixture, field=field_name)


def _str_list(value: Any, path: Path, fixture: str, field_name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ManifestError("must be a list of non-empty strings", path=path, fixture=fixture, field=field_name)
    return list(value)


def _merged_table(
    base: Mapping[str, Any],
    default: Any,
    own: Any,
    keys: dict[str, tuple[type, ...]],
    path: Path,
    fixture: str,
    field_name: str,
) -> dict[str, Any]:
    merged = dict(base)
    for label, part in ((f"defaults.{field_name}", default), (field_name, own)):
        if part is None:
            continue
        if not isinstance(part, dict):
            raise ManifestError("must be a table", path=path, fixture=fixture, field=label)
        _check_keys(part, keys, path, fixture, field_name)
        for key, value in part.items():
            _check_type(value, keys[key], path, fixture, f"{field_name}.{key}")
        merged.update(part)
    return merged


#: Config tables keyed by layer index (``per_layer_config = { "3" = { head_dim = 32 } }``: Gemma 4, Dots3).
LAYER_INDEXED_TABLES = frozenset({"per_layer_config"})


def _check_config(config: Mapping[str, Any], path: Path, fixture: str, prefix: str = "config",
                  layer_indexed: bool = False) -> None:
    for key, value in config.items():
        field_name = f"{prefix}.{key}"
        if layer_indexed:
            if not (isinstance(key, str) and key.isascii() and key.isdigit()):
                raise ManifestError(f"keys of {prefix.rsplit('.', 1)[-1]} are layer indices, got {key!r}", path=path,
                                    fixture=fixture, field=field_name, hint='e.g. { "3" = { head_dim = 32 } }')
            if not isinstance(value, dict):
                raise ManifestError("must be a table of the layer's overrides", path=path, fixture=fixture,
                                    field=field_name)
            _check_config(value, path, fixture, field_name)
            continue
        if not isinstance(key, str) or not key.isidentifier():
            raise ManifestError(f"config keys must be identifiers, got {key!r}", path=path, fixture=fixture, field=field_name)
        if isinstance(value, dict):
            _check_config(value, path, fixture, field_name, layer_indexed=key in LAYER_INDEXED_TABLES)
        elif key in POSITIVE_INT_FIELDS:
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ManifestError(f"must be a positive integer, got {value!r}", path=path, fixture=fixture, field=field_name)
            if value > 1_000_000:
                raise ManifestError(f"{value} is not tiny", path=path, fixture=fixture, field=field_name,
                                    hint="tiny fixtures are for tests; use at most 1,000,000")
        else:
            _check_config_value(value, path, fixture, field_name)
    for small, large in AT_MOST_FIELDS:
        a, b = config.get(small), config.get(large)
        if isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool) and not isinstance(b, bool) and a > b:
            raise ManifestError(f"{small}={a} exceeds {large}={b}", path=path, fixture=fixture,
                                field=f"{prefix}.{small}", hint=f"use at most {b}")
    for dim, heads in DIVISIBLE_FIELDS:
        a, b = config.get(dim), config.get(heads)
        if isinstance(a, int) and isinstance(b, int) and a > 0 and b > 0 and a % b:
            raise ManifestError(
                f"{heads}={b} does not divide {dim}={a}",
                path=path, fixture=fixture, field=f"{prefix}.{heads}",
                hint=f"pick {heads} among the divisors of {a}",
            )


def _check_config_value(value: Any, path: Path, fixture: str, field_name: str) -> None:
    """A config override value: JSON-like, finite, integers within int64 (lists checked item by item)."""
    if not isinstance(value, CONFIG_VALUE_TYPES):
        raise ManifestError(f"must be a string, number, boolean, list or table, got {type(value).__name__} {value!r}",
                            path=path, fixture=fixture, field=field_name)
    if isinstance(value, float) and not math.isfinite(value):
        raise ManifestError(f"must be finite, got {value!r}", path=path, fixture=fixture, field=field_name)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT64_MAX:
        raise ManifestError(f"{value} does not fit in 64 bits", path=path, fixture=fixture, field=field_name)
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, dict):
                _check_config(item, path, fixture, f"{field_name}[{i}]")
            else:
                _check_config_value(item, path, fixture, f"{field_name}[{i}]")


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_sorted(v) for v in value]
    return value


def _merge_extra(config: Mapping[str, Any], extra: Mapping[str, Any], path: Path, fixture: str,
                 prefix: str = "config_extra") -> dict[str, Any]:
    """``config`` with ``extra`` merged in (nested tables merged); a key set in both is an error."""
    merged = dict(config)
    for key, value in extra.items():
        if key not in merged:
            merged[key] = value
        elif isinstance(value, dict) and isinstance(merged[key], dict):
            merged[key] = _merge_extra(merged[key], value, path, fixture, f"{prefix}.{key}")
        else:
            raise ManifestError("is also set in 'config'", path=path, fixture=fixture, field=f"{prefix}.{key}",
                                hint="set each key once: in config (checked) or in config_extra (not checked)")
    return merged


# -- config overrides against the config classes ----------------------------------------------------------
#: A config class's known keys, as JSON: ``{name: None}`` for an attribute (its value, even a dict such as
#: ``rope_parameters``, is not looked into) and ``{name: {...}}`` for a nested sub-config (``text_config``).
KeyTree = Mapping[str, Any]
#: Bump when :func:`config_key_tree` changes: remembered trees (session.config_key_tree_of) are keyed by it.
CONFIG_KEYS_VERSION = 1


def config_key_tree(config: Any) -> dict[str, Any]:
    """The keys an override may set on ``config`` (a ``PretrainedConfig``; read by duck typing, nothing is
    imported): its serialized attributes, dataclass fields and ``__init__`` parameters, the names of its
    ``attribute_map`` and its properties; sub-configs (``text_config``, ``vision_config``...) as nested trees."""
    import dataclasses
    import inspect

    cls = type(config)
    names: set[str] = set(config.to_dict())
    names.update(getattr(cls, "attribute_map", None) or {})
    if dataclasses.is_dataclass(config):
        names.update(f.name for f in dataclasses.fields(config))
    try:
        params = inspect.signature(cls.__init__).parameters.values()
        names.update(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    except (TypeError, ValueError):
        pass
    names.update(n for n in dir(cls) if not n.startswith("__") and isinstance(getattr(cls, n, None), property))
    names.discard("self")
    sub_classes = getattr(cls, "sub_configs", None) or {}
    tree: dict[str, Any] = {}
    for name in sorted(names):
        if isinstance(getattr(cls, name, None), property):  # computed (num_labels, use_return_dict...): a plain key
            tree[name] = None
            continue
        try:
            value = getattr(config, name, None)
        except Exception:  # e.g. a heterogeneous config refusing a global read of a per-layer attribute
            value = None
        if _is_config(value):
            tree[name] = config_key_tree(value)
        elif value is None and name in sub_classes and _is_config_class(sub_classes[name]):
            try:
                tree[name] = config_key_tree(sub_classes[name]())
            except Exception:  # a sub-config without defaults: its keys are not checked
                tree[name] = None
        else:
            tree[name] = None
    return tree


def _is_config(value: Any) -> bool:
    return hasattr(value, "to_dict") and isinstance(getattr(type(value), "model_type", None), str) and \
        hasattr(type(value), "attribute_map")


def _is_config_class(cls: Any) -> bool:
    """A concrete config class (not ``AutoConfig``, which stands for "any")."""
    return isinstance(cls, type) and hasattr(cls, "to_dict") and hasattr(cls, "attribute_map")


def config_paths(node: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every leaf of a nested override table, as a key path."""
    out: list[tuple[str, ...]] = []
    for key, value in node.items():
        if isinstance(value, Mapping) and value:
            out.extend(config_paths(value, prefix + (key,)))
        else:
            out.append(prefix + (key,))
    return out


def _unknown_path(path: tuple[str, ...], tree: KeyTree) -> int | None:
    """The index of the first key of ``path`` that ``tree`` does not know, or None when it is known
    (a known attribute whose value is not a sub-config accepts any nested table)."""
    node: Any = tree
    for i, key in enumerate(path):
        if not isinstance(node, Mapping):
            return None
        if key not in node:
            return i
        node = node[key]
    return None


def _without_paths(node: Mapping[str, Any], drop: set[tuple[str, ...]], prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        here = prefix + (key,)
        if here in drop:
            continue
        if isinstance(value, Mapping) and value and any(d[: len(here)] == here for d in drop):
            value = _without_paths(value, drop, here)
            if not value:
                continue
        out[key] = value
    return out


def checked_config_paths(spec: FixtureSpec) -> list[tuple[str, ...]]:
    """The override paths of ``spec`` checked against the config class (all but ``config_extra``'s)."""
    extra = set(config_paths(spec.config_extra))
    return [p for p in config_paths(spec.config) if p not in extra]


def check_config_overrides(spec: FixtureSpec, trees: Mapping[str, KeyTree],
                           class_names: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Check ``spec.config`` against the known keys of each model type in ``trees``; return, per model
    type, the overrides that apply to it.

    A key no model type knows raises :class:`ManifestError` naming the manifest, the fixture and the field
    (``config.hiden_size``) with the close names.  A key that only some of the model types know (a fixture
    parametrized over architectures) is applied to those and left out of the others' overrides.
    ``config_extra`` keys are never checked.  ``class_names``: model type -> config class name, for messages.
    """
    out = {model_type: dict(spec.config) for model_type in trees}
    if not trees:
        return out
    unknown: dict[str, set[tuple[str, ...]]] = {model_type: set() for model_type in trees}
    for path in checked_config_paths(spec):
        missing = {mt: _unknown_path(path, tree) for mt, tree in trees.items()}
        if all(i is not None for i in missing.values()):
            raise _unknown_key_error(spec, path, missing, trees, class_names or {})
        for mt, i in missing.items():
            if i is not None:
                unknown[mt].add(path)
    for mt, paths in unknown.items():
        if paths:
            out[mt] = _without_paths(spec.config, paths)
    return out


def _unknown_key_error(spec: FixtureSpec, path: tuple[str, ...], missing: Mapping[str, int | None],
                       trees: Mapping[str, KeyTree], class_names: Mapping[str, str]) -> ManifestError:
    depth = min(i for i in missing.values() if i is not None)
    bad = path[: depth + 1]
    candidates: set[str] = set()
    for mt, tree in trees.items():
        node: Any = tree
        for key in bad[:-1]:
            node = node.get(key) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping):
            candidates.update(node)
    close = difflib.get_close_matches(bad[-1], sorted(candidates), n=3, cutoff=0.6)
    if len(trees) == 1:
        (mt,) = trees
        owner = f"{class_names.get(mt) or 'the config class'} (model type {mt!r})"
    else:
        owner = f"any of the {len(trees)} selected architectures' config classes"
    where = f" in {'.'.join(bad[:-1])}" if len(bad) > 1 else ""
    message = f"unknown config key {bad[-1]!r}{where}: not an attribute of {owner}"
    extra_line = f"config_extra = {{ {'.'.join(bad)} = ... }}"
    hint = (f"did you mean {' or '.join(repr(c) for c in close)}? " if close else "") + \
        f"a deliberate extra attribute goes into {extra_line}"
    return ManifestError(message, path=spec.manifest, fixture=spec.name, field="config." + ".".join(bad), hint=hint)
