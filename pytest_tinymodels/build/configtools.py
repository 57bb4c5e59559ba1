"""Look-ups in a (nested) transformers config, shared by the input builders, the processors and the families.

Pure functions over config objects: no project imports, transformers only inside functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PretrainedConfig

__all__ = ["VISION_KEYS", "AUDIO_KEYS", "find_in_config", "text_vocab_size", "image_size_of", "all_config_keys"]

#: sub-configs that may hold the vision / audio tower's attributes, in the order they are searched.
VISION_KEYS = ("vision_config", "backbone_config", "encoder", "vision_encoder_config", "image_config")
AUDIO_KEYS = ("audio_config", "encoder", "audio_encoder_config", "speech_config", "encoder_config")


def find_in_config(config: Any, attr: str, subkeys: tuple[str, ...] = ()) -> Any:
    """``attr`` on the config, else on the first sub-config of ``subkeys`` that has it."""
    value = getattr(config, attr, None)
    if value is not None:
        return value
    for k in subkeys:
        sub = getattr(config, k, None)
        if sub is not None and getattr(sub, attr, None) is not None:
            return getattr(sub, attr)
    return None


def text_vocab_size(config: PretrainedConfig) -> int:
    """Vocabulary size used for ``input_ids`` (the decoder text config's, else the config's)."""
    for getter in (lambda: config.get_text_config(decoder=True), lambda: config.get_text_config()):
        try:
            vs = getattr(getter(), "vocab_size", None)
        except Exception:
            vs = None
        if isinstance(vs, int) and vs > 0:
            return vs
    vs = find_in_config(config, "vocab_size", ("text_config", "decoder", "encoder"))
    return vs if isinstance(vs, int) and vs > 0 else 64


def image_size_of(config: PretrainedConfig) -> tuple[int, int]:
    """(height, width) of the images the config expects (default 32x32)."""
    size = find_in_config(config, "image_size", VISION_KEYS)
    if isinstance(size, int):
        return size, size
    if isinstance(size, (list, tuple)) and len(size) >= 2:
        return int(size[0]), int(size[1])
    if isinstance(size, dict):
        h = size.get("height") or size.get("shortest_edge") or 32
        return int(h), int(size.get("width", h))
    return 32, 32


def all_config_keys(config: Any) -> set[str]:
    """Every attribute name of the config and of its sub-configs, at any depth."""
    from transformers import PretrainedConfig

    keys = set(vars(config))
    for v in vars(config).values():
        if isinstance(v, PretrainedConfig):
            keys |= all_config_keys(v)
    return keys
