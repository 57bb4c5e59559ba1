"""Tiny processors for non-text modalities.

* :func:`tiny_image_processor` / :func:`tiny_feature_extractor`: the model type's **own** image
  processor / feature extractor class (from transformers' auto-mappings), sized to the tiny config
  (image size, mel bins, sampling rate);
* :func:`build_processor`: saves them (and, for multimodal models, the model type's processor
  wrapping the tokenizer) into a repo directory with ``save_pretrained``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import TinyModelsError
from . import rules
from .architectures import auto_mapping_names
from .configtools import AUDIO_KEYS, VISION_KEYS, find_in_config

if TYPE_CHECKING:
    from transformers import PretrainedConfig

    from .architectures import ArchInfo

__all__ = [
    "ProcessorError",
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

def _image_size(config: Any) -> int:
    size = find_in_config(config, "image_size", VISION_KEYS)
    if size is None:
        size = find_in_config(config, "max_img_size", VISION_KEYS)  # TVP's frames
    if isinstance(size, (list, tuple)) and size:
        size = min(size)  # SegGPT's [2h, w] canvas holds two h x w images
    return int(size) if isinstance(size, int) and size > 0 else 32


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

    table = auto_mapping_names("IMAGE_PROCESSOR_MAPPING_NAMES")
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
            return cls(**kwargs)
        except Exception as exc:  # noqa: BLE001 - try the next backend
            lib = missing_library(exc)
            if lib and missing is None:
                missing = (name, lib)
            errors.append(f"{name}: {type(exc).__name__}: {_first_line(exc)[:120]}")
    if missing is not None:
        return SavedProcessorConfig(missing[0], "image_processor_type",
                                    {"size": {"height": size, "width": size}}, missing[1])
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

    names = _class_names(auto_mapping_names("FEATURE_EXTRACTOR_MAPPING_NAMES"), rules.processor_of("audio", model_type))
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


def build_processor(arch: ArchInfo, config: PretrainedConfig, repo_dir: Path, *, tokenizer: Any = None) -> dict:
    """Save the tiny processor(s) of ``arch`` into ``repo_dir``; return a JSON-able description.

    image -> image processor; audio -> feature extractor (+ tokenizer when given, e.g. CTC / speech
    seq2seq); multimodal -> the model type's processor class wrapping the tiny image processor /
    feature extractor and the tokenizer when it can be built, else those parts saved side by side.
    """
    import transformers

    repo_dir = Path(repo_dir)
    repo_dir.mkdir(parents=True, exist_ok=True)
    desc: dict[str, Any] = {"modality": arch.modality}
    parts: dict[str, Any] = {}
    errors: list[str] = []
    if arch.modality in ("image", "multimodal"):
        try:
            parts["image_processor"] = tiny_image_processor(arch.model_type, config)
            desc["image_size"] = _image_size(config)
        except ProcessorError as exc:
            errors.append(str(exc))
    if arch.modality in ("audio", "multimodal"):
        try:
            parts["feature_extractor"] = tiny_feature_extractor(arch.model_type, config)
            desc["sampling_rate"] = SAMPLING_RATE
        except ProcessorError as exc:
            errors.append(str(exc))
    if not parts:
        raise ProcessorError(f"{arch.id}: " + "; ".join(errors))
    for key, part in parts.items():
        if isinstance(part, SavedProcessorConfig):
            desc[key] = part.class_name
            desc.setdefault("needs", []).append(part.missing)
        else:
            desc[key] = type(part).__name__
    processor_name = auto_mapping_names("PROCESSOR_MAPPING_NAMES").get(arch.model_type)
    processor_cls = getattr(transformers, processor_name, None) if isinstance(processor_name, str) else None
    if processor_cls is not None and tokenizer is not None and "needs" not in desc:
        try:
            processor = processor_cls(**parts, tokenizer=tokenizer)
            processor.save_pretrained(str(repo_dir))
            desc["processor"] = processor_cls.__name__
            return desc
        except Exception as exc:  # noqa: BLE001 - fall back to the parts, and say so
            desc["processor_error"] = f"{processor_cls.__name__}: {type(exc).__name__}: {str(exc)[:160]}"
    for part in parts.values():
        part.save_pretrained(str(repo_dir))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(repo_dir))
    return desc


def smoke_processor(arch: ArchInfo, config: PretrainedConfig) -> Any:
    """The feature extractor that lays out audio inputs for a smoke forward (None for other models)."""
    if arch.modality not in ("audio", "multimodal"):
        return None
    try:
        extractor = tiny_feature_extractor(arch.model_type, config)
    except ProcessorError:
        return None
    return None if isinstance(extractor, SavedProcessorConfig) else extractor

