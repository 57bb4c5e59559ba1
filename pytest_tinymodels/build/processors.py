"""Tiny processors for non-text modalities.

* :func:`tiny_image_processor` / :func:`tiny_feature_extractor`: the model type's **own** image
  processor / feature extractor class (from transformers' auto-mappings), sized to the tiny config
  (image size, mel bins, sampling rate);
* :func:`build_processor`: saves them (and, for multimodal models, the model type's processor
  wrapping the tokenizer, with its chat template and the arguments the tiny config implies: patch size,
  image sequence length, ...) into a repo directory with ``save_pretrained``;
* :func:`add_processor_tokens`: before the config is shrunk, gives a multimodal tokenizer the tokens its
  family's processor reads or writes (``image_token``, ``boi_token``...), each one special token, so that the
  config's ids (``image_token_id`` / ``image_token_index``) can point at them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from ..errors import TinyModelsError
from . import rules
from .architectures import auto_mapping_names
from .configtools import AUDIO_KEYS, VISION_KEYS, find_in_config

if TYPE_CHECKING:
    from transformers import PretrainedConfig

    from .architectures import ArchInfo

__all__ = [
    "STANDARD_TOKENS",
    "ProcessorError",
    "add_processor_tokens",
    "class_table",
    "processor_class",
    "processor_class_name",
    "placeholders",
    "processor_token_ids",
    "tokenizer_reads",
    "SavedProcessorConfig",
    "missing_library",
    "tiny_image_processor",
    "tiny_feature_extractor",
    "build_processor",
    "smoke_processor",
]


class ProcessorError(TinyModelsError):
    """No tiny processor can be made for a model type."""


#: sampling rate of every tiny feature extractor (Hz).
SAMPLING_RATE = 16000
#: the image processor of image model types that have none and no entry in :data:`.rules.IMAGE_PROCESSOR_OF`:
#: ViT's (resize to the tiny size, rescale, normalize).
GENERIC_IMAGE_PROCESSOR_OF = "vit"

#: how transformers' backend checks name a missing library ("X requires the timm library ...").
MISSING_LIBRARY_RE = re.compile(r"requires (?:the )?(\S+) library", re.IGNORECASE)


def missing_library(exc: BaseException) -> str | None:
    """The library an ``ImportError`` of transformers' backend checks names (``torchvision``...), else None."""
    if not isinstance(exc, ImportError):
        return None
    found = MISSING_LIBRARY_RE.search(str(exc))
    return found.group(1).lower() if found else None


class SavedProcessorConfig:
    """A processor whose class needs a library that is not installed (torchvision, torchaudio...).

    Its ``preprocessor_config.json`` is written with the tiny sizes and the class name, so the entry
    holds the model's own processor, which loads wherever that library is installed.
    """

    def __init__(self, class_name: str, type_key: str, values: Mapping[str, Any], missing: str) -> None:
        self.class_name, self.type_key, self.values, self.missing = class_name, type_key, dict(values), missing

    def save_pretrained(self, save_directory: str | Path) -> None:
        path = Path(save_directory) / "preprocessor_config.json"
        path.write_text(json.dumps({self.type_key: self.class_name, **self.values}, indent=2, sort_keys=True) + "\n")

    def __repr__(self) -> str:
        return f"SavedProcessorConfig({self.class_name}, needs {self.missing})"

#: Image size for a convolutional backbone whose config fixes none (stages of ``hidden_sizes``, no patches:
#: ResNet, RegNet, BiT): its last stage (stride 32) keeps 2 x 2 positions, so batch norm in training mode works
#: on a single image, as it does with the real repos' 224-pixel processors (peft's test_vision_models trains the
#: tiny ResNet on one image). Other models without an image size keep 32.
SIZE_AGNOSTIC_IMAGE_SIZE = 64


def _image_size(config: Any) -> int:
    size = find_in_config(config, "image_size", VISION_KEYS)
    if size is None:
        size = find_in_config(config, "max_img_size", VISION_KEYS)  # TVP's frames
    if isinstance(size, (list, tuple)) and size:
        size = min(size)  # SegGPT's [2h, w] canvas holds two h x w images
    if isinstance(size, int) and size > 0:
        return int(size)
    cnn = isinstance(getattr(config, "hidden_sizes", None), (list, tuple)) and getattr(config, "patch_size", None) is None
    return SIZE_AGNOSTIC_IMAGE_SIZE if cnn else 32


def _class_names(table: Mapping[str, Any], model_type: str) -> list[str]:
    entry = table.get(model_type)
    if entry is None:
        return []
    if isinstance(entry, str):
        return [entry]
    if isinstance(entry, Mapping):  # {"pil": ..., "torchvision": ...}: prefer what needs no torchvision
        order = ["pil", "torchvision"] + [k for k in entry if k not in ("pil", "torchvision")]
        return [entry[k] for k in order if entry.get(k)]
    return [x for x in entry if isinstance(x, str)]


def _sized(value: Any, size: int) -> dict[str, int] | None:
    """A size dict with every set dimension replaced by ``size``."""
    if value is None:
        return None
    items = dict(value.items()) if hasattr(value, "items") else dict(vars(value))
    keys = [k for k, v in items.items() if v is not None]
    if not keys:
        return None
    out = {}
    for k in keys:
        if k in ("height", "width", "shortest_edge", "longest_edge", "max_height", "max_width"):
            out[k] = size
        elif k in ("min_pixels", "max_pixels"):
            out[k] = size * size
    return out or None


def tiny_image_processor(model_type: str, config: PretrainedConfig | None = None, *, image_size: int | None = None):
    """The model type's own image processor, resizing/cropping to the tiny image size (default: the config's).

    Model types without one use the one :func:`.rules.processor_of` names, else ViT's.  When the class needs a
    library that is not installed (torchvision), a :class:`SavedProcessorConfig` of it is returned.
    """
    import transformers

    table = class_table("IMAGE_PROCESSOR_MAPPING_NAMES")
    size = image_size or (_image_size(config) if config is not None else 32)
    errors = []
    source = rules.processor_of("image", model_type)
    names = _class_names(table, source)
    if not names and source == model_type and _takes_images(config):
        names = _class_names(table, GENERIC_IMAGE_PROCESSOR_OF)
    missing: tuple[str, str] | None = None
    for name in names:
        cls = getattr(transformers, name, None)
        if cls is None:
            errors.append(f"{name}: not in transformers")
            continue
        try:
            default = cls()
            kwargs = {}
            for attr in ("size", "crop_size"):
                sized = _sized(getattr(default, attr, None), size)
                if sized:
                    kwargs[attr] = sized
            kwargs.update(_geometry_kwargs(vars(default), config))
            kwargs.update(_family_kwargs(model_type, config, "image_processor"))
            return cls(**kwargs)
        except Exception as exc:  # noqa: BLE001 - try the next backend
            lib = missing_library(exc)
            if lib and missing is None:
                missing = (name, lib)
            errors.append(f"{name}: {type(exc).__name__}: {_first_line(exc)[:120]}")
    if missing is not None:
        return SavedProcessorConfig(missing[0], "image_processor_type",
                                    {"size": {"height": size, "width": size}, **_geometry_kwargs(None, config),
                                     **_family_kwargs(model_type, config, "image_processor")}, missing[1])
    raise ProcessorError(
        f"no image processor for model type {model_type!r}"
        + (f" ({'; '.join(errors)})" if errors else " in transformers' IMAGE_PROCESSOR_MAPPING_NAMES")
    )


def _takes_images(config: Any) -> bool:
    """Whether a config describes an image input (image size or channel count, here or in a vision sub-config)."""
    return config is not None and any(find_in_config(config, k, VISION_KEYS) is not None for k in ("image_size", "num_channels"))


def _first_line(exc: BaseException) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), "")


def tiny_feature_extractor(model_type: str, config: PretrainedConfig | None = None):
    """The model type's own feature extractor, with the tiny config's mel bins and a 16 kHz rate.

    Whisper-style extractors pad to a fixed length: it is set so that the frame count equals
    ``2 * max_source_positions`` of the tiny config.
    """
    import inspect

    import transformers

    names = _class_names(class_table("FEATURE_EXTRACTOR_MAPPING_NAMES"), rules.processor_of("audio", model_type))
    if not names:
        raise ProcessorError(f"no feature extractor for model type {model_type!r} in FEATURE_EXTRACTOR_MAPPING_NAMES")
    cls = getattr(transformers, names[0], None)
    if cls is None:
        raise ProcessorError(f"feature extractor class {names[0]!r} is not available in this transformers")
    params = inspect.signature(cls.__init__).parameters
    kwargs: dict[str, Any] = {}
    if "sampling_rate" in params:
        kwargs["sampling_rate"] = SAMPLING_RATE
    bins = None
    if config is not None:
        bins = find_in_config(config, "num_mel_bins", AUDIO_KEYS) or find_in_config(config, "input_feat_per_channel", AUDIO_KEYS)
    if bins and "feature_size" in params:
        kwargs["feature_size"] = int(bins)
    if bins and "num_mel_bins" in params:
        kwargs["num_mel_bins"] = int(bins)
    src = find_in_config(config, "max_source_positions", AUDIO_KEYS) if config is not None else None
    if isinstance(src, int) and "chunk_length" in params and "hop_length" in params:
        hop = params["hop_length"].default if isinstance(params["hop_length"].default, int) else 160
        samples = 2 * src * hop
        if samples % SAMPLING_RATE == 0:
            kwargs["chunk_length"] = samples // SAMPLING_RATE
    try:
        return cls(**kwargs)
    except Exception as exc:
        lib = missing_library(exc)
        if lib:
            return SavedProcessorConfig(cls.__name__, "feature_extractor_type", kwargs, lib)
        raise ProcessorError(f"{cls.__name__}({kwargs}) failed: {type(exc).__name__}: {_first_line(exc)}") from exc


# --------------------------------------------------------------------------- the family's processor and its tokens

#: a tokenizer's standard named tokens: never a processor's placeholder.
STANDARD_TOKENS = frozenset({"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"})
#: ``tokenizer.<name>_token`` (or ``..._token_id``) in a processor's source: a token it reads from its tokenizer.
_TOKENIZER_READ = re.compile(r"tokenizer\.([a-z][a-z0-9_]*?_token)(?:_id)?\b"
                             r"""|getattr\(\s*(?:self\.)?tokenizer\s*,\s*["']([a-z][a-z0-9_]*?_token)(?:_id)?["']""")
#: processor ``__init__`` arguments that are never derived from the config.
_NOT_CONFIG_ARGS = frozenset({"self", "chat_template", "kwargs", "args"})


#: auto module of transformers holding the ``MISSING_<table>`` entries it merges into each table on import.
_AUTO_MODULES = {"PROCESSOR_MAPPING_NAMES": "processing_auto", "VIDEO_PROCESSOR_MAPPING_NAMES": "video_processing_auto",
                 "IMAGE_PROCESSOR_MAPPING_NAMES": "image_processing_auto",
                 "FEATURE_EXTRACTOR_MAPPING_NAMES": "feature_extraction_auto"}


def class_table(name: str) -> dict[str, Any]:
    """A processor auto-mapping as transformers ships it (``auto_mappings`` plus the ``MISSING_...`` entries its
    auto module merges in), read from the source files: importing those modules rewrites the torchvision
    entries to None where torchvision is missing, and a repo must still name its family's classes."""
    return dict(_class_table(name))


@lru_cache(maxsize=None)
def _class_table(name: str) -> tuple[tuple[str, Any], ...]:
    import ast
    import importlib.util

    table: dict[str, Any] = {}
    for module, wanted in (("auto_mappings", name), (_AUTO_MODULES.get(name, ""), f"MISSING_{name}")):
        spec = importlib.util.find_spec(f"transformers.models.auto.{module}") if module else None
        if spec is None or not spec.origin:
            continue
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == wanted for t in node.targets)
                    and isinstance(node.value, ast.Call) and node.value.args):
                try:
                    table.update(ast.literal_eval(node.value.args[0]))
                except ValueError:
                    continue
    return tuple(table.items()) or tuple(auto_mapping_names(name).items())


def processor_class_name(model_type: str) -> str | None:
    """The name of the processor class ``AutoProcessor`` gives ``model_type`` (a family's
    :data:`.rules.PROCESSOR_CLASS_OF` first, then transformers' mapping with the entries its auto module adds)."""
    rules.load_families()
    name = rules.PROCESSOR_CLASS_OF.get(model_type) or class_table("PROCESSOR_MAPPING_NAMES").get(model_type)
    return name if isinstance(name, str) else None


def processor_class(model_type: str) -> type | None:
    """The processor class of ``model_type`` (see :func:`processor_class_name`); where its library is missing,
    transformers' placeholder for it (``PixtralProcessor`` without torchvision), which cannot be built."""
    import transformers

    name = processor_class_name(model_type)
    cls = getattr(transformers, name, None) if name else None
    return cls if isinstance(cls, type) else None


def tokenizer_reads(processor_cls: type) -> tuple[str, ...]:
    """The named tokens (``image_token``, ``boi_token``...) a processor class reads from its tokenizer, from its
    source (``tokenizer.boi_token``, ``tokenizer.image_token_id``); standard ones and ``add_*`` flags excluded."""
    import inspect

    found: list[str] = []
    for klass in processor_cls.__mro__:
        if klass.__module__.startswith("transformers.processing_utils") or klass is object:
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        names = [a or b for a, b in _TOKENIZER_READ.findall(source)]
        found += [m for m in names if m not in STANDARD_TOKENS and not m.startswith("add_")]
    return tuple(dict.fromkeys(found))


def _token_params(processor_cls: type) -> dict[str, str]:
    """``__init__`` arguments of a processor naming a token, with their string defaults (``image_token="<image>"``)."""
    import inspect

    out = {}
    for name, param in inspect.signature(processor_cls.__init__).parameters.items():
        if name.endswith("_token") and isinstance(param.default, str) and name not in STANDARD_TOKENS:
            out[name] = param.default
    return out


def _named_token(tokenizer: Any, attribute: str) -> str | None:
    try:
        value = getattr(tokenizer, attribute, None)
    except Exception:  # noqa: BLE001 - a tokenizer's __getattr__ may raise anything for unknown names
        return None
    return value if isinstance(value, str) and value else None


def _set_named_tokens(tokenizer: Any, tokens: Mapping[str, str]) -> None:
    """Each token one special token of ``tokenizer`` (never split, never normalized), under its attribute name."""
    from tokenizers import AddedToken

    if not tokens:
        return
    new = [AddedToken(t, special=True, normalized=False) for t in dict.fromkeys(tokens.values())
           if len(tokenizer.encode(t, add_special_tokens=False)) != 1 or tokenizer.convert_tokens_to_ids(t) in (None, tokenizer.unk_token_id)]
    if new:
        tokenizer.add_tokens(new, special_tokens=True)
    tokenizer._set_model_specific_special_tokens(special_tokens=dict(tokens))


def add_processor_tokens(model_type: str, tokenizer: Any) -> dict[str, int]:
    """Give ``tokenizer`` the tokens its family's processor reads (``tokenizer.boi_token``: Gemma 3) or writes (its
    own placeholders: LLaVA's ``<image>``, Idefics 3's), as special tokens; return ``{"<attribute>_id": id}`` for
    every such token (what the config's ids must be).

    The family's tokens (:data:`.rules.PROCESSOR_TOKENS`) are set first; then the processor is built around the
    tokenizer as it is; only where that fails are the tokens it reads given (a chat format's placeholder, the
    processor's argument default, else ``<|name|>``) and the processor built again.  Placeholders the processor
    writes become named tokenizer attributes where the tokenizer has none of that name, and where the processor
    does not read that name from the tokenizer and keeps its own (Idefics 3 and Ovis 2 write ``<image>``
    whatever the tokenizer or their arguments say): the chat template then renders the processor's token.
    """
    cls = processor_class(model_type)
    if cls is None:
        return {}
    rules.load_families()
    family = rules.PROCESSOR_TOKENS.get(model_type, {})
    _set_named_tokens(tokenizer, {attr: token for attr, token in family.items() if _named_token(tokenizer, attr) != token})
    defaults, reads = _token_params(cls), tokenizer_reads(cls)
    def give_read_tokens() -> Any:
        wanted = {attr: defaults.get(attr) or f"<|{attr[: -len('_token')]}|>"
                  for attr in reads if _named_token(tokenizer, attr) is None}
        _set_named_tokens(tokenizer, wanted)
        return _probe_processor(cls, model_type, tokenizer)

    probe = _probe_processor(cls, model_type, tokenizer)
    if probe is None:
        probe = give_read_tokens()
    written = placeholders(probe) if probe is not None else {}
    own = {attr: token for attr, token in written.items()
           if isinstance(getattr(probe, attr), str) and (_named_token(tokenizer, attr) is None or attr not in reads)}
    _set_named_tokens(tokenizer, {a: t for a, t in own.items() if _named_token(tokenizer, a) != t})
    if own and _probe_processor(cls, model_type, tokenizer) is None:
        # the processor as it loads from the saved tokenizer, which now names its placeholders, reads more of it
        # (Idefics 2: with tokenizer.image_token set it reads tokenizer.image_boundary_token too)
        give_read_tokens()
    ids = processor_token_ids(tokenizer, (*reads, *defaults, *family, *written))
    for attr, token in written.items():  # AddedToken placeholders (BLIP-2): the id, no tokenizer attribute
        token_ids = tokenizer.encode(token, add_special_tokens=False)
        if f"{attr}_id" not in ids and len(token_ids) == 1:
            ids[f"{attr}_id"] = int(token_ids[0])
    return ids


def placeholders(processor: Any) -> dict[str, str]:
    """The placeholder tokens a processor writes: its ``*_token`` attributes (strings or ``AddedToken``), standard
    tokens excluded."""
    if processor is None:
        return {}
    out = {}
    for attr, value in vars(processor).items():
        token = getattr(value, "content", value)
        if attr.endswith("_token") and isinstance(token, str) and token and attr not in STANDARD_TOKENS:
            out[attr] = token
    return out


def processor_token_ids(tokenizer: Any, attributes: Any) -> dict[str, int]:
    """``{"<attribute>_id": id}`` of the tokenizer's named tokens among ``attributes`` (single-id tokens only)."""
    out: dict[str, int] = {}
    for attr in dict.fromkeys(attributes):
        token = _named_token(tokenizer, attr)
        if token is None:
            continue
        ids = tokenizer.encode(token, add_special_tokens=False)
        if len(ids) == 1:
            out[f"{attr}_id"] = int(ids[0])
    return out


def _probe_processor(cls: type, model_type: str, tokenizer: Any) -> Any:
    """The processor built around ``tokenizer`` with default parts (None where it cannot be built), so that
    the tokens it adds to its tokenizer or keeps as attributes are known before the config is shrunk."""
    from unittest import mock

    from transformers.processing_utils import ProcessorMixin

    try:
        parts = _parts(cls, model_type, None)
        if not any(isinstance(part, SavedProcessorConfig) for part in parts.values()):
            return cls(**parts, tokenizer=tokenizer, **_token_kwargs(cls, tokenizer))
        # a part needs a missing library (torchvision): transformers refuses to build the processor at all, yet
        # its tokens are known only once built; the probe (never saved) takes plain stand-ins for those parts
        stand_ins = {k: SimpleNamespace(**v.values) if isinstance(v, SavedProcessorConfig) else v for k, v in parts.items()}
        with mock.patch.object(ProcessorMixin, "check_argument_for_proper_class", lambda self, name, arg: type(arg)):
            return cls(**stand_ins, tokenizer=tokenizer, **_token_kwargs(cls, tokenizer))
    except Exception:  # noqa: BLE001 - the probe only adds knowledge
        return None


def _sub_processors(cls: type) -> list[str]:
    try:
        return [a for a in cls.get_attributes() if a != "tokenizer"]
    except Exception:  # noqa: BLE001
        return []


#: processor attribute -> (auto-mapping of its classes, the ``rules.processor_of`` kind).
_PART_TABLES = {"image_processor": ("IMAGE_PROCESSOR_MAPPING_NAMES", "image"),
                "video_processor": ("VIDEO_PROCESSOR_MAPPING_NAMES", "image"),
                "feature_extractor": ("FEATURE_EXTRACTOR_MAPPING_NAMES", "audio")}


def _part_source(cls: type, model_type: str, part: str) -> str:
    """The model type whose ``part`` class a processor of ``cls`` uses for ``model_type``: its own (or the one a
    family names), else that of a model type the auto-mapping gives the same processor class (Qwen3-VL-MoE ->
    Qwen3-VL, DiffusionGemma -> Gemma 4)."""
    table_name, kind = _PART_TABLES[part]
    table = class_table(table_name)
    source = rules.processor_of(kind, model_type)
    if table.get(source):
        return source
    own = processor_class_name(model_type) or cls.__name__
    processors = class_table("PROCESSOR_MAPPING_NAMES")
    return next((m for m, name in processors.items() if name == own and table.get(m)), source)


def _parts(cls: type, model_type: str, config: Any) -> dict[str, Any]:
    """The sub-processors (image processor, feature extractor, video processor) of ``cls`` for ``model_type``."""
    builders = {"image_processor": tiny_image_processor, "feature_extractor": tiny_feature_extractor,
                "video_processor": tiny_video_processor}
    parts: dict[str, Any] = {}
    names = _sub_processors(cls)
    if _needs_missing_library(cls):  # a placeholder class: the parts its model type's mappings name
        names = [n for n, (table, _) in _PART_TABLES.items() if class_table(table).get(_part_source(cls, model_type, n))]
    for name in names:
        try:
            if name in builders:
                parts[name] = builders[name](_part_source(cls, model_type, name), config)
            elif name in SECOND_TOKENIZERS:
                parts[name] = _second_tokenizer(name, config)
        except ProcessorError:
            continue
    return parts


#: processor attributes holding a second tokenizer -> (the sub-config it feeds, the model type trained for it).
SECOND_TOKENIZERS: dict[str, tuple[str, str]] = {"qformer_tokenizer": ("qformer_config", "bert")}


def _second_tokenizer(name: str, config: Any) -> Any:
    """A tiny tokenizer for a processor's second text input (InstructBLIP's Q-Former instruction), trained to the
    vocabulary of the sub-config it feeds."""
    from .tokenizer.train import train_tokenizer

    key, model_type = SECOND_TOKENIZERS[name]
    vocab = getattr(getattr(config, key, None), "vocab_size", None) if config is not None else None
    return train_tokenizer(model_type, int(vocab) if is_int_value(vocab) and vocab > 8 else 512)


def _token_kwargs(cls: type, tokenizer: Any) -> dict[str, str]:
    """Token arguments of the processor (``image_token=``) given the tokenizer's value, so both agree."""
    return {attr: _named_token(tokenizer, attr) for attr in _token_params(cls) if _named_token(tokenizer, attr)}


def tiny_video_processor(model_type: str, config: PretrainedConfig | None = None) -> Any:
    """The model type's own video processor at the tiny image size; a :class:`SavedProcessorConfig` of it when
    its class needs a library that is not installed (every video processor needs torchvision)."""
    import transformers

    names = _class_names(class_table("VIDEO_PROCESSOR_MAPPING_NAMES"), model_type)
    if not names:
        raise ProcessorError(f"no video processor for model type {model_type!r}")
    size = _image_size(config) if config is not None else 32
    values = {"size": {"height": size, "width": size}, **_geometry_kwargs(None, config),
              **_family_kwargs(model_type, config, "video_processor")}
    cls = getattr(transformers, names[0], None)
    try:
        if cls is None:
            raise ImportError(f"{names[0]} requires the torchvision library")
        default = cls()
        sized = _sized(getattr(default, "size", None), size)
        values = {**values, **_geometry_kwargs(vars(default), config)}
        return cls(**{**values, **({"size": sized} if sized else {})})
    except Exception as exc:  # noqa: BLE001
        lib = missing_library(exc)
        if lib:
            return SavedProcessorConfig(names[0], "video_processor_type", values, lib)
        raise ProcessorError(f"{names[0]}: {type(exc).__name__}: {_first_line(exc)}") from exc


#: image / video processor arguments read from the vision config by name (processor argument -> config names).
GEOMETRY_ARGS: dict[str, tuple[str, ...]] = {
    "patch_size": ("patch_size",),
    "merge_size": ("spatial_merge_size", "merge_size"),
    "temporal_patch_size": ("temporal_patch_size",),
}


def _geometry_kwargs(defaults: Mapping[str, Any] | None, config: Any) -> dict[str, Any]:
    """Patch / merge sizes for an image or video processor from the tiny vision config: the integer arguments
    its defaults hold (``defaults``: its attributes; None: a class that cannot be built here, all of them)."""
    if config is None:
        return {}
    out = {}
    for arg, names in GEOMETRY_ARGS.items():
        if defaults is not None and not is_int_value(defaults.get(arg)):
            continue
        value = next((v for v in (find_in_config(config, n, VISION_KEYS) for n in names) if is_int_value(v)), None)
        if value is not None:
            out[arg] = value
    return out


def is_int_value(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _family_kwargs(model_type: str, config: Any, part: str) -> dict[str, Any]:
    """The family's :data:`.rules.PROCESSOR_KWARGS` for ``part`` (``"processor"`` / ``"image_processor"``)."""
    rules.load_families()
    family = rules.PROCESSOR_KWARGS.get(model_type)
    return dict(family(config).get(part, {})) if family is not None and config is not None else {}


def _processor_kwargs(cls: type, model_type: str, config: Any, tokenizer: Any) -> dict[str, Any]:
    """Arguments of the processor class from the tiny config (same-named values of the config or its vision
    config, then the family's :data:`.rules.PROCESSOR_KWARGS`) and the tokenizer (its token arguments)."""
    import inspect

    parts = set(_sub_processors(cls)) | {"tokenizer"}
    out: dict[str, Any] = {}
    for name in inspect.signature(cls.__init__).parameters:
        if name in parts or name in _NOT_CONFIG_ARGS or name.endswith("_token"):
            continue
        value = find_in_config(config, name, VISION_KEYS)
        if isinstance(value, (int, str, float)) and not isinstance(value, bool):
            out[name] = value
    out.update(_token_kwargs(cls, tokenizer) if tokenizer is not None else {})
    out.update(_family_kwargs(model_type, config, "processor"))
    return out


def build_processor(arch: ArchInfo, config: PretrainedConfig, repo_dir: Path, *, tokenizer: Any = None) -> dict:
    """Save the tiny processor(s) of ``arch`` into ``repo_dir``; return a JSON-able description.

    image -> image processor; audio -> feature extractor (+ tokenizer when given, e.g. CTC / speech
    seq2seq); multimodal -> the family's processor class (:func:`processor_class`) around the tiny image
    processor / feature extractor / video processor and the tokenizer, with the tokenizer's chat template and
    the arguments the tiny config implies; a part whose class needs a missing library (torchvision) is saved
    under its own class name all the same, so the repo holds every file the family's ``AutoProcessor`` reads.
    Where the processor cannot be built, the parts are saved side by side.  The description's ``token_ids``
    (``{"image_token_id": ...}``) are the ids of the placeholders the processor writes.
    """
    repo_dir = Path(repo_dir)
    repo_dir.mkdir(parents=True, exist_ok=True)
    desc: dict[str, Any] = {"modality": arch.modality}
    errors: list[str] = []
    cls = processor_class(arch.model_type) if arch.modality == "multimodal" and tokenizer is not None else None
    if cls is not None:
        parts = _parts(cls, arch.model_type, config)
        _describe(desc, parts, config)
        try:
            if any(isinstance(part, SavedProcessorConfig) for part in parts.values()) or _needs_missing_library(cls):
                _save_processor_config(cls, arch.model_type, config, tokenizer, parts, repo_dir)
                written: dict[str, str] = {}
            else:
                processor = _family_processor(cls, arch.model_type, config, tokenizer, parts)
                processor.save_pretrained(str(repo_dir))
                written = placeholders(processor)
            desc["processor"] = processor_class_name(arch.model_type) or cls.__name__
            desc["token_ids"] = processor_token_ids(tokenizer, (*tokenizer_reads(cls), *written))
            return desc
        except Exception as exc:  # noqa: BLE001 - fall back to the parts, and say so
            desc["processor_error"] = f"{processor_class_name(arch.model_type)}: {type(exc).__name__}: {_first_line(exc)[:160]}"
    parts = {}
    if arch.modality in ("image", "multimodal"):
        try:
            parts["image_processor"] = tiny_image_processor(arch.model_type, config)
        except ProcessorError as exc:
            errors.append(str(exc))
    if arch.modality in ("audio", "multimodal"):
        try:
            parts["feature_extractor"] = tiny_feature_extractor(arch.model_type, config)
        except ProcessorError as exc:
            errors.append(str(exc))
    if not parts:
        raise ProcessorError(f"{arch.id}: " + "; ".join(errors))
    if "image_processor" in parts and "feature_extractor" in parts:  # one preprocessor_config.json: the image part
        del parts["feature_extractor"]  # (a processor class holds both; without one the audio part would clobber it)
        desc["feature_extractor_not_saved"] = "no processor class holds it next to the image processor"
    _describe(desc, parts, config)
    for part in parts.values():
        part.save_pretrained(str(repo_dir))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(repo_dir))
    return desc


def _describe(desc: dict[str, Any], parts: Mapping[str, Any], config: Any) -> None:
    for key, part in parts.items():
        if isinstance(part, SavedProcessorConfig):
            desc[key] = part.class_name
            desc.setdefault("needs", []).append(part.missing)
        else:
            desc[key] = type(part).__name__
    if "image_processor" in parts:
        desc["image_size"] = _image_size(config)
    if "feature_extractor" in parts:
        desc["sampling_rate"] = SAMPLING_RATE


def _family_processor(cls: type, model_type: str, config: Any, tokenizer: Any, parts: Mapping[str, Any]) -> Any:
    """The family's processor around ``tokenizer`` and ``parts``, with the tokenizer's chat template."""
    missing = [name for name in _sub_processors(cls) if name not in parts]
    if missing:
        raise ProcessorError(f"{cls.__name__} needs {', '.join(missing)}, which cannot be built for {model_type!r}")
    processor = cls(**parts, tokenizer=tokenizer, **_processor_kwargs(cls, model_type, config, tokenizer))
    if tokenizer.chat_template and not getattr(processor, "chat_template", None):
        processor.chat_template = tokenizer.chat_template
    return processor


def _needs_missing_library(cls: type) -> bool:
    """Whether ``cls`` is transformers' placeholder for a processor whose library is missing (``PixtralProcessor``
    without torchvision: a ``DummyObject``); it cannot be built, its files are written by
    :func:`_save_processor_config`."""
    return type(cls).__name__ == "DummyObject"


def _save_processor_config(cls: type, model_type: str, config: Any, tokenizer: Any, parts: Mapping[str, Any],
                           repo_dir: Path) -> None:
    """Save a processor whose parts need a library that is not installed (torchvision: every video processor),
    as its ``save_pretrained`` would: ``processor_config.json`` naming the class, its arguments and each part
    (the missing-library ones under their own class names), the tokenizer and the chat template.  transformers
    cannot even build such a processor without that library, so the file is written from the same pieces."""
    name = processor_class_name(model_type) or cls.__name__  # a placeholder class is named "Placeholder"
    data: dict[str, Any] = {"processor_class": name, **_processor_kwargs(cls, model_type, config, tokenizer)}
    for name, part in parts.items():
        if isinstance(part, SavedProcessorConfig):
            data[name] = {part.type_key: part.class_name, **part.values}
        elif hasattr(part, "to_json_string"):
            data[name] = json.loads(part.to_json_string())
        else:  # a second tokenizer: its own folder, as ProcessorMixin saves it
            part.save_pretrained(str(Path(repo_dir) / name))
    (Path(repo_dir) / "processor_config.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tokenizer.save_pretrained(str(repo_dir))


def smoke_processor(arch: ArchInfo, config: PretrainedConfig) -> Any:
    """The feature extractor that lays out audio inputs for a smoke forward (None for other models)."""
    if arch.modality not in ("audio", "multimodal"):
        return None
    try:
        extractor = tiny_feature_extractor(arch.model_type, config)
    except ProcessorError:
        return None
    return None if isinstance(extractor, SavedProcessorConfig) else extractor

