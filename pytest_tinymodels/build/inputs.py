"""Inputs for one forward of any architecture, with labels per task, and a one-forward smoke check.

Public: :func:`model_inputs` (what ``model(**inputs)`` accepts, on the model's device and dtype; with
``labels=True`` the task's labels, so ``.loss`` is set) and :func:`generation_inputs` (what
``model.generate(**inputs)`` needs).  ``TinyTriple.inputs()`` / ``.generate_inputs()``, the build's smoke
check, the coverage command and the GPU sweep all call them.

Inputs are chosen from the model's ``forward`` signature and ``main_input_name``: a builder per
input name (:data:`GENERIC_INPUT_BUILDERS`, and the families' in :data:`.rules.INPUT_BUILDERS`) makes a
deterministic tensor whose shape follows the config (vocabulary, image size, mel bins, source
positions...); labels come from :data:`LABEL_BUILDERS` (task -> builder).  A family fixup
(:func:`.rules.input_fixup`) may set labels itself when ``ctx.labels`` is true: the task's builder only
adds what is not there yet.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import TinyModelsError
from . import rules
from .configtools import AUDIO_KEYS, VISION_KEYS, all_config_keys, find_in_config, image_size_of, text_vocab_size

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig, PreTrainedModel

__all__ = ["SmokeError", "InputsError", "model_inputs", "generation_inputs", "default_text_length", "dummy_inputs",
           "smoke_forward", "takes_argument", "LABEL_NAMES",
           "entry_point", "GENERIC_INPUT_BUILDERS", "LABEL_BUILDERS", "DEFAULT_SEQ_LEN", "build_input",
           # helpers for family input builders and fixups (pytest_tinymodels/build/families)
           "InputContext"]


class SmokeError(TinyModelsError):
    """The smoke forward pass failed or produced non-finite outputs."""


class InputsError(TinyModelsError):
    """No inputs of the kind asked for: labels for a task that has none, generate for a model that cannot."""


def _special_ids(config: Any, out: set[int] | None = None) -> set[int]:
    """Every special token id mentioned anywhere in the config tree (kept out of random ids)."""
    from transformers import PretrainedConfig

    out = set() if out is None else out
    for k, v in vars(config).items():
        if isinstance(v, PretrainedConfig):
            _special_ids(v, out)
        elif ("token" in k and (k.endswith("_id") or k.endswith("_index"))) and isinstance(v, int):
            out.add(v)
        elif k.endswith("_token_ids") and isinstance(v, (list, tuple)):
            out.update(x for x in v if isinstance(x, int))
    return out


# --------------------------------------------------------------------------- builders


class InputContext:
    """What input builders, fixups and label builders see: the model, its config, the feature extractor
    (or None), the batch size ``b``, the sequence length ``t``, whether labels are wanted (``labels``) and
    the task (``task``, or None); ``seq_len_given`` is false where ``t`` is the default (a family may then
    pick the one length its model trains at)."""

    def __init__(self, model: Any, config: Any, processor: Any, batch_size: int, seq_len: int, labels: bool,
                 task: str | None = None, seq_len_given: bool = True):
        import torch

        self.model, self.config, self.processor = model, config, processor
        self.b, self.t, self.labels = batch_size, seq_len, labels
        self.task, self.seq_len_given = task, seq_len_given
        #: what the feature extractor returned for the audio inputs (masks included), by input name
        self.processed: dict[str, Any] = {}
        self.gen = torch.Generator().manual_seed(0)
        self.torch = torch

    def ids(self, shape: tuple[int, ...]) -> torch.Tensor:
        vocab = text_vocab_size(self.config)
        special = _special_ids(self.config)
        allowed = [i for i in range(min(vocab, 4096)) if i not in special] or list(range(vocab))
        idx = self.torch.randint(0, len(allowed), shape, generator=self.gen)
        return self.torch.tensor(allowed)[idx]

    def randn(self, *shape: int) -> torch.Tensor:
        return self.torch.randn(*shape, generator=self.gen)


def _input_ids(c: InputContext) -> torch.Tensor:
    # audio-codebook decoders (musicgen) take one row per codebook: (batch * num_codebooks, seq)
    codebooks = getattr(c.config, "num_codebooks", None)
    rows = c.b * codebooks if isinstance(codebooks, int) and codebooks > 1 and _codebook_rows(c) else c.b
    return c.ids((rows, c.t))


def _codebook_rows(c: InputContext) -> bool:
    return "input_ids" == getattr(c.model, "main_input_name", "input_ids") and "decoder" in type(
        c.config).__name__.lower()


def _attention_mask(c: InputContext) -> torch.Tensor:
    return c.torch.ones(c.b, c.t, dtype=c.torch.long)



def _decoder_input_ids(c: InputContext) -> torch.Tensor:
    # same length as the encoder ids: encoder-decoder classifiers pool decoder states at the eos of input_ids;
    # audio-codebook decoders (musicgen) take one row per codebook
    codebooks = find_in_config(c.config, "num_codebooks", ("decoder",))
    rows = c.b * codebooks if isinstance(codebooks, int) and codebooks > 1 else c.b
    return c.ids((rows, c.t))


def _pixel_values(c: InputContext) -> torch.Tensor:
    h, w = image_size_of(c.config)
    channels = find_in_config(c.config, "num_channels", VISION_KEYS) or 3
    frames = find_in_config(c.config, "num_frames", VISION_KEYS)
    video = getattr(c.model, "main_input_name", "") != "inputs"  # Perceiver's multimodal config has frames too
    if video and isinstance(frames, int) and frames > 0:  # video models: (batch, frames, channels, h, w)
        return c.randn(c.b, frames, channels, h, w)
    return c.randn(c.b, channels, h, w)


def _input_features(c: InputContext) -> torch.Tensor:
    if c.processor is not None and hasattr(c.processor, "__call__"):
        try:
            return _features_from_processor(c)
        except Exception:
            pass
    bins = find_in_config(c.config, "num_mel_bins", AUDIO_KEYS) or find_in_config(c.config, "input_feat_per_channel", AUDIO_KEYS)
    bins = bins or find_in_config(c.config, "feature_projection_input_dim", AUDIO_KEYS)
    bins = bins or find_in_config(c.config, "feature_size", AUDIO_KEYS) or 16
    src = find_in_config(c.config, "max_source_positions", AUDIO_KEYS)
    frames = 2 * src if isinstance(src, int) and getattr(c.config, "model_type", "") in _WHISPER_LAYOUT else 64
    if _channels_last_features(c):
        return c.randn(c.b, frames, bins)
    return c.randn(c.b, bins, frames)


#: model types whose encoder needs exactly ``2 * max_source_positions`` mel frames, (B, mel, T).
_WHISPER_LAYOUT = frozenset({"whisper"})


def _channels_last_features(c: InputContext) -> bool:
    mt = str(getattr(c.config, "model_type", ""))
    return mt not in _WHISPER_LAYOUT and find_in_config(c.config, "num_mel_bins", AUDIO_KEYS) is None


def _features_from_processor(c: InputContext) -> torch.Tensor:
    import numpy as np

    sr = getattr(c.processor, "sampling_rate", 16000)
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(int(sr * 0.5)).astype("float32") for _ in range(c.b)]
    out = _process(c, waves, sr)
    features = out["input_features"]
    c.processed["input_features"] = out
    return features


def _process(c: InputContext, waves: list[Any], sr: int) -> Any:
    """The feature extractor's output for ``waves``, with its attention / padding mask where it makes one."""
    try:
        return c.processor(waves, sampling_rate=sr, return_tensors="pt", return_attention_mask=True)
    except TypeError:  # an extractor without that option
        return c.processor(waves, sampling_rate=sr, return_tensors="pt")


def _values_from_processor(c: InputContext) -> torch.Tensor:
    import numpy as np

    sr = getattr(c.processor, "sampling_rate", 16000)
    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(4000)).astype("float32") for _ in range(c.b)]
    out = _process(c, waves, sr)
    values = out["input_values"]
    c.processed["input_values"] = out
    return values


def _input_values(c: InputContext) -> torch.Tensor:
    if c.processor is not None:  # the model type's own feature extractor knows the layout (AST, codecs...)
        try:
            return _values_from_processor(c)
        except Exception:
            pass
    # neural codecs (encodec, dac, mimi...) take (batch, channels, samples); speech encoders (batch, samples)
    subs = ("acoustic_model_config", "audio_encoder_config", "codec_config", "encoder_config")
    codec = any(isinstance(find_in_config(c.config, k, subs), (list, tuple)) for k in ("upsampling_ratios",
                                                                          "downsampling_ratios"))
    channels = getattr(c.config, "audio_channels", None)
    if codec or isinstance(channels, int):
        return c.randn(c.b, channels if isinstance(channels, int) else 1, 4000) * 0.1
    return c.randn(c.b, 4000) * 0.1


def _bbox(c: InputContext) -> torch.Tensor:
    dim = getattr(c.config, "dim_bbox", None)
    if isinstance(dim, int):  # BROS: normalised float coordinates
        return c.torch.rand(c.b, c.t, dim, generator=c.gen)
    # (x0, y0, x1, y1) with x0 <= x1 < max_2d_position_embeddings (and <= 1000, the layout models' range)
    limit = min(int(getattr(c.config, "max_2d_position_embeddings", 1024) or 1024), 1001)
    x0 = c.torch.randint(0, max(1, limit - 12), (c.b, c.t, 2), generator=c.gen)
    return c.torch.cat([x0, x0 + 10], dim=-1)


def _visual_feats(c: InputContext) -> torch.Tensor:
    return c.randn(c.b, 4, int(getattr(c.config, "visual_feat_dim", 16)))


def _visual_pos(c: InputContext) -> torch.Tensor:
    return c.torch.rand(c.b, 4, int(getattr(c.config, "visual_pos_dim", 4)), generator=c.gen)


def _grid(c: InputContext) -> tuple[int, int, int]:
    merge = int(find_in_config(c.config, "spatial_merge_size", VISION_KEYS) or 1)
    return 1, 2 * merge, 2 * merge


def _grid_thw(c: InputContext) -> torch.Tensor:
    """Qwen-VL style vision towers: one (t, h, w) patch grid per image."""
    return c.torch.tensor([list(_grid(c))] * c.b, dtype=c.torch.long)


def _flat_patches(c: InputContext) -> torch.Tensor:
    """Flattened patches for grid-based vision towers: (sum of t*h*w, channels * temporal * patch * patch)."""
    t, h, w = _grid(c)
    channels = int(find_in_config(c.config, "in_channels", VISION_KEYS) or find_in_config(c.config, "num_channels", VISION_KEYS) or 3)
    temporal = int(find_in_config(c.config, "temporal_patch_size", VISION_KEYS) or 1)
    patch = find_in_config(c.config, "patch_size", VISION_KEYS) or 8
    patch = patch[0] if isinstance(patch, (list, tuple)) else int(patch)
    return c.randn(c.b * t * h * w, channels * temporal * patch * patch)


def _series_length(c: InputContext) -> int:
    context = int(getattr(c.config, "context_length", None) or 16)
    lags = getattr(c.config, "lags_sequence", None)
    return context + (max(lags) if isinstance(lags, (list, tuple)) and lags else 0)


def _past_values(c: InputContext) -> torch.Tensor:
    """Time series: (batch, length) or (batch, length, channels)."""
    length = _series_length(c)
    channels = getattr(c.config, "num_input_channels", None) or getattr(c.config, "input_size", None) or 1
    if getattr(c.config, "num_input_channels", None) is not None or channels > 1:
        return c.randn(c.b, length, int(channels))
    return c.randn(c.b, length)


def _past_time_features(c: InputContext) -> torch.Tensor:
    return c.randn(c.b, _series_length(c), int(getattr(c.config, "num_time_features", 1) or 1))


def _past_observed_mask(c: InputContext) -> torch.Tensor:
    return c.torch.ones_like(_past_values(c))


def _inputs_embeds(c: InputContext) -> torch.Tensor:
    """Draft (assistant) models take the target model's hidden states through a pre-projection."""
    proj = getattr(c.model, "pre_projection", None)
    dim = getattr(proj, "in_features", None)
    if dim is None:
        text = c.config.get_text_config() if hasattr(c.config, "get_text_config") else c.config
        dim = getattr(text, "hidden_size", 64)
    return c.randn(c.b, c.t, int(dim))


def _shared_kv_states(c: InputContext) -> dict:
    """Assistant models attend to the target model's KV of the last layer of each attention type:
    {layer_type: (keys, values)} of shape (batch, kv_heads, target_len, head_dim)."""
    text = c.config.get_text_config() if hasattr(c.config, "get_text_config") else c.config
    kv = int(getattr(text, "num_key_value_heads", None) or getattr(text, "num_attention_heads", 1))
    out = {}
    for lt in dict.fromkeys(getattr(text, "layer_types", None) or ["full_attention"]):
        hd = getattr(text, "global_head_dim", None) if lt == "full_attention" else None
        hd = int(hd or getattr(text, "head_dim", 16))
        out[lt] = (c.randn(c.b, kv, c.t, hd), c.randn(c.b, kv, c.t, hd))
    return out


def _token_type_ids(c: InputContext) -> torch.Tensor:
    return c.torch.zeros(c.b, c.t, dtype=c.torch.long)


#: input name -> builder.  Unknown required inputs are reported by :func:`dummy_inputs`.
GENERIC_INPUT_BUILDERS: dict[str, Callable[[InputContext], Any]] = {
    "input_ids": _input_ids,
    "attention_mask": _attention_mask,
    "decoder_input_ids": _decoder_input_ids,
    "pixel_values": _pixel_values,
    "input_features": _input_features,
    "input_values": _input_values,
    "bbox": _bbox,
    "visual_feats": _visual_feats,
    "visual_pos": _visual_pos,
    "grid_thw": _grid_thw,
    "shared_kv_states": _shared_kv_states,
    "past_values": _past_values,
    "past_time_features": _past_time_features,
    "past_observed_mask": _past_observed_mask,
}

def build_input(name: str, c: InputContext) -> Any:
    """The forward argument ``name`` built by its generic builder or a family's (:func:`.rules.input_builder`);
    KeyError where none knows it."""
    builder = GENERIC_INPUT_BUILDERS.get(name) or rules.INPUT_BUILDERS.get(name)
    if builder is None:
        raise KeyError(name)
    return builder(c)


#: inputs added whenever the forward accepts them, on top of the main and required ones.
_ALWAYS = ("attention_mask",)
_SEQ_INPUTS = frozenset({"input_ids", "decoder_input_ids"})


def _num_labels(c: InputContext) -> int:
    return int(getattr(c.config, "num_labels", 2) or 2)


def _lm_labels(c: InputContext, inputs: dict[str, Any]) -> dict[str, Any]:
    """Language modeling: the input ids themselves (the model shifts them)."""
    ids = inputs.get("input_ids")  # models fed inputs_embeds (draft models) get labels of the same length
    if ids is None:
        embeds = inputs.get("inputs_embeds")
        return {"labels": c.ids(tuple(embeds.shape[:2]) if embeds is not None else (c.b, c.t))}
    codebooks = getattr(c.config, "num_codebooks", None)
    if _codebook_rows(c) and isinstance(codebooks, int) and ids.shape[0] == c.b * codebooks > c.b:
        # audio-codebook decoders (musicgen): ids (batch * codebooks, seq) -> labels (batch, seq, codebooks)
        return {"labels": ids.reshape(c.b, codebooks, -1).transpose(1, 2).contiguous()}
    return {"labels": ids.clone()}


def _seq2seq_labels(c: InputContext, inputs: dict[str, Any]) -> dict[str, Any]:
    """Encoder-decoder generation: target ids shaped like the decoder inputs."""
    dec = inputs.get("decoder_input_ids")
    return {"labels": c.ids(tuple(dec.shape) if dec is not None else (c.b, c.t))}


def _class_labels(c: InputContext, inputs: dict[str, Any]) -> dict[str, Any]:
    """One class id per example (a float target where ``num_labels == 1``: regression)."""
    if _num_labels(c) == 1:
        return {"labels": c.randn(c.b)}
    return {"labels": c.torch.randint(0, _num_labels(c), (c.b,), generator=c.gen)}


def _token_labels(c: InputContext, inputs: dict[str, Any]) -> dict[str, Any]:
    """One class id per input token."""
    ids = inputs.get("input_ids")
    shape = tuple(ids.shape[:2]) if ids is not None and ids.ndim >= 2 else (c.b, c.t)
    return {"labels": c.torch.randint(0, _num_labels(c), shape, generator=c.gen)}


def _span_labels(c: InputContext, inputs: dict[str, Any]) -> dict[str, Any]:
    """Extractive QA: an answer span (start <= end) inside the sequence."""
    torch = c.torch
    start = torch.randint(0, max(1, c.t // 2), (c.b,), generator=c.gen)
    return {"start_positions": start, "end_positions": start + 1}


#: masks over the audio input that CTC losses read the input lengths from.
_AUDIO_MASKS = ("attention_mask", "padding_mask")


def _ctc_labels(c: InputContext, inputs: dict[str, Any]) -> dict[str, Any]:
    """CTC: a short transcript of token ids (the blank, the pad id, never among them), and the mask over the
    audio the forward takes (CTC losses read the input lengths from it: Parakeet, LASR, OmniASR): the feature
    extractor's, else all-valid over the frames."""
    out = {"labels": c.ids((c.b, 2))}
    name = next((n for n in ("input_values", "input_features") if n in inputs), None)
    if name is None or any(m in inputs for m in _AUDIO_MASKS):
        return out
    processed = c.processed.get(name) or {}
    if processed.get(name) is not inputs[name]:  # a fixup replaced what the extractor made: its mask does not fit
        processed = {}
    for mask in _AUDIO_MASKS:
        if mask in processed and takes_argument(c.model, mask):
            out[mask] = processed[mask]
            return out
    if takes_argument(c.model, "attention_mask"):
        out["attention_mask"] = c.torch.ones(c.b, _frames(c, inputs[name]), dtype=c.torch.long)
    return out


def _frames(c: InputContext, audio: torch.Tensor) -> int:
    """The time axis of a waveform (batch, samples) or of features: (batch, frames, bins * k) where the last
    axis is a multiple of the mel bins (stacked frames too), else (batch, bins, frames)."""
    if audio.ndim == 2:
        return int(audio.shape[1])
    bins = find_in_config(c.config, "num_mel_bins", AUDIO_KEYS) or find_in_config(c.config, "feature_size", AUDIO_KEYS)
    if isinstance(bins, int) and bins > 0 and audio.shape[2] % bins and not audio.shape[1] % bins:
        return int(audio.shape[2])
    return int(audio.shape[1])


def _choice_labels(c: InputContext, inputs: dict[str, Any]) -> dict[str, Any]:
    """Multiple choice: the index of the right choice."""
    return {"labels": c.torch.randint(0, _NUM_CHOICES, (c.b,), generator=c.gen)}


def _next_sentence_labels(c: InputContext, inputs: dict[str, Any]) -> dict[str, Any]:
    """Next-sentence prediction: 0 (is next) or 1 (random)."""
    return {"labels": c.torch.randint(0, 2, (c.b,), generator=c.gen)}


#: task -> ``builder(ctx, inputs) -> {name: tensor}``: the labels :func:`model_inputs` adds with ``labels=True``
#: (only names not set yet: a family fixup may have set its own).
LABEL_BUILDERS: dict[str, Callable[[InputContext, dict[str, Any]], dict[str, Any]]] = {
    "causal-lm": _lm_labels,
    "masked-lm": _lm_labels,
    "image-text-to-text": _lm_labels,
    "multimodal-lm": _lm_labels,
    "seq2seq-lm": _seq2seq_labels,
    "speech-seq2seq": _seq2seq_labels,
    "sequence-classification": _class_labels,
    "image-classification": _class_labels,
    "audio-classification": _class_labels,
    "video-classification": _class_labels,
    "token-classification": _token_labels,
    "question-answering": _span_labels,
    "ctc": _ctc_labels,
    "multiple-choice": _choice_labels,
    "next-sentence-prediction": _next_sentence_labels,
}


#: sequence length of text inputs when none is asked for (a family fixup may pick its model's own).
DEFAULT_SEQ_LEN = 8


def model_inputs(
    model: PreTrainedModel,
    processor: Any = None,
    *,
    task: str | None = None,
    batch_size: int = 2,
    seq_len: int | None = None,
    labels: bool = False,
    device: Any = None,
    config: PretrainedConfig | None = None,
) -> dict[str, Any]:
    """Deterministic inputs that ``model(**inputs)`` accepts, for any architecture.

    The model's main input and every input its ``forward`` requires are built from its config (token ids
    below the vocabulary avoiding special ids, pixels at the image size, audio features through the
    model's feature extractor...), floating tensors in the model's dtype, everything on ``device``
    (default: the model's).  ``processor``: the fixture's processor, feature extractor or tokenizer (its
    feature extractor, if any, lays out audio features).  ``seq_len``: length of text inputs (default
    :data:`DEFAULT_SEQ_LEN`, or the one length a model trains at).

    ``labels=True`` adds the labels of ``task`` (:data:`LABEL_BUILDERS`: token ids for language models,
    class ids, per-token class ids, ``start_positions``/``end_positions``, CTC transcripts, seq2seq targets),
    so the output has a ``.loss``; :class:`InputsError` for a task without labels.
    """
    inputs = dummy_inputs(model, config, _feature_extractor(processor), batch_size=batch_size, seq_len=seq_len,
                          task=task, labels=labels)
    return _to_device(inputs, device if device is not None else _model_device(model))


#: forward arguments that ``generate`` makes itself (or that only training takes).
_NOT_FOR_GENERATE = ("decoder_input_ids", "decoder_attention_mask", "labels", "use_cache")


def generation_inputs(
    model: PreTrainedModel,
    processor: Any = None,
    *,
    task: str | None = None,
    batch_size: int = 2,
    seq_len: int | None = None,
    device: Any = None,
    config: PretrainedConfig | None = None,
) -> dict[str, Any]:
    """What ``model.generate(**inputs, max_new_tokens=N)`` needs: the prompt (``input_ids`` and
    ``attention_mask``) and the inputs of the other modalities the model reads (``pixel_values``,
    ``input_features``...), no labels and no decoder inputs (``generate`` makes those).

    :class:`InputsError` where the model cannot generate (``model.can_generate()`` is false).
    """
    can = getattr(model, "can_generate", None)
    if not callable(can) or not can():
        raise InputsError(f"{type(model).__name__} cannot generate (its can_generate() is false): use "
                          "model_inputs() for a forward")
    inputs = model_inputs(model, processor, task=task, batch_size=batch_size, seq_len=seq_len, device=device,
                          config=config)
    return {k: v for k, v in inputs.items() if k not in _NOT_FOR_GENERATE}


def _feature_extractor(processor: Any) -> Any:
    """The feature extractor inside a processor (or the processor itself when it is one); None for a
    tokenizer or an image processor (their inputs are built from the config)."""
    if processor is None:
        return None
    inner = getattr(processor, "feature_extractor", None)
    if inner is not None:
        return inner
    try:
        from transformers.feature_extraction_utils import FeatureExtractionMixin
    except ImportError:  # pragma: no cover - every supported transformers has it
        return None
    return processor if isinstance(processor, FeatureExtractionMixin) else None


def _model_device(model: Any) -> Any:
    device = getattr(model, "device", None)
    if device is not None:
        return device
    first = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    return first.device if first is not None else "cpu"


def _to_device(value: Any, device: Any) -> Any:
    """Tensors (in dicts, lists and tuples too) moved to ``device``."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_device(v, device) for v in value)
    return value


def dummy_inputs(
    model: PreTrainedModel,
    config: PretrainedConfig | None = None,
    processor: Any = None,
    *,
    batch_size: int = 2,
    seq_len: int | None = None,
    task: str | None = None,
    labels: bool = False,
) -> dict[str, Any]:
    """The engine of :func:`model_inputs`, on the CPU: deterministic inputs for one forward of ``model``.

    The model's ``main_input_name`` and every input its ``forward`` requires are built, plus an
    attention mask where accepted, and ``decoder_input_ids`` for encoder-decoder models.
    ``labels=True`` adds the labels of ``task`` (:data:`LABEL_BUILDERS`).
    ``processor`` (a feature extractor) is used for audio features when given.
    """
    return _build(model, config, processor, batch_size, seq_len, task, labels)[0]


def default_text_length(model: PreTrainedModel, processor: Any = None, *, task: str | None = None,
                        config: PretrainedConfig | None = None) -> int:
    """The text length :func:`model_inputs` uses when no ``seq_len`` is asked for: :data:`DEFAULT_SEQ_LEN`, or
    the one length a family rule gives the model (Reformer trains at ``prod(axial_pos_shape)``, Perceiver's
    masked LM decodes ``max_position_embeddings`` positions).  ``tiny.batch()`` pads text to it."""
    return _build(model, config, _feature_extractor(processor), 1, None, task, False)[1].t


def _build(model: Any, config: Any, processor: Any, batch_size: int, seq_len: int | None, task: str | None,
           labels: bool) -> tuple[dict[str, Any], InputContext]:
    rules.load_families()
    config = config if config is not None else model.config
    c = InputContext(model, config, processor, batch_size, DEFAULT_SEQ_LEN if seq_len is None else seq_len, labels,
                     task, seq_len is not None)
    params = inspect.signature(entry_point(model)).parameters
    main_names = getattr(model, "main_input_name", "input_ids")  # a list for OneFormer (pixels + task)
    wanted: list[str] = list(main_names) if isinstance(main_names, (list, tuple)) else [main_names]
    for name, p in params.items():
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or name == "self":
            continue
        if p.default is inspect.Parameter.empty and name not in wanted:
            wanted.append(name)
    main = wanted[0]
    if main in _SEQ_INPUTS or main == "input_ids":
        wanted += [n for n in _ALWAYS if n in params]
    if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in params:
        wanted.append("decoder_input_ids")
    if "pixel_values" in params and "pixel_values" not in wanted and "inputs" not in wanted and _dual_encoder(config):
        wanted.append("pixel_values")
    # inputs that some families need although their signature says optional
    for name, needed in (("bbox", lambda: hasattr(config, "max_2d_position_embeddings") or hasattr(config, "dim_bbox")),
                         ("visual_feats", lambda: hasattr(config, "visual_feat_dim")),
                         ("visual_pos", lambda: hasattr(config, "visual_pos_dim"))):
        if name in params and name not in wanted and needed():
            wanted.append(name)
    if getattr(model, "pre_projection", None) is not None and "shared_kv_states" in params:
        wanted = [n for n in wanted if n != "input_ids"] + ["inputs_embeds", "shared_kv_states"]
    if "past_values" in wanted:  # time-series transformers need the covariates and mask as well
        wanted += [n for n in ("past_time_features", "past_observed_mask") if n in params]
    grid_tower = "grid_thw" in params
    inputs: dict[str, Any] = {}
    missing: list[str] = []
    for name in dict.fromkeys(wanted):
        if name == "hidden_states" and grid_tower:
            inputs[name] = _flat_patches(c)
            continue
        if name == "inputs_embeds":
            inputs[name] = _inputs_embeds(c)
            continue
        if name == "inputs":  # Perceiver: generic "inputs" of the modality its preprocessor expects
            inputs[name] = _pixel_values(c) if "Image" in type(model).__name__ else _input_ids(c)
            continue
        try:
            inputs[name] = build_input(name, c)
        except KeyError:
            missing.append(name)
    for fixup in rules.INPUT_FIXUPS.values():
        fixup(c, inputs)
    missing = [name for name in missing if name not in inputs]
    if missing:
        raise SmokeError(f"no dummy input builder for required input {missing[0]!r} of {type(model).__name__}")
    cls_name = type(model).__name__
    sep = getattr(config, "sep_token_id", None)
    if "input_ids" in inputs and isinstance(sep, int) and cls_name.endswith(("ForQuestionAnswering",
                                                                          "ForMultipleChoice")):
        ids = inputs["input_ids"]  # question </s></s> context </s>: three separators (Longformer checks)
        ids[:, 2], ids[:, 3], ids[:, -1] = sep, sep, sep
    eos = getattr(config, "eos_token_id", None)
    if "input_ids" in inputs and isinstance(eos, int) and cls_name.endswith("ForSequenceClassification"):
        inputs["input_ids"][:, -1] = eos  # encoder-decoder classifiers pool at the eos token
    if cls_name.endswith("ForMultipleChoice"):
        for name in ("input_ids", "attention_mask", "token_type_ids", "bbox"):
            if name in inputs:
                t = inputs[name]
                inputs[name] = t.unsqueeze(1).expand(t.shape[0], _NUM_CHOICES, *t.shape[1:]).contiguous()
    if labels and not LABEL_NAMES & set(inputs):  # a family fixup may have set its model's labels
        builder = LABEL_BUILDERS.get(task or "")
        if builder is None:
            known = ", ".join(sorted(LABEL_BUILDERS))
            raise InputsError(f"no labels for task {task!r} of {type(model).__name__}: labels are known for {known}")
        made = builder(c, inputs)
        for name in made:
            if not takes_argument(model, name):  # e.g. draft models: their forward swallows labels in **kwargs
                raise InputsError(f"{type(model).__name__} computes no loss for task {task!r}: its forward "
                                  f"takes no {name!r}")
        inputs.update(made)
    return _in_model_dtype(c, inputs), c


#: the forward arguments that carry labels (set by :data:`LABEL_BUILDERS` or a family fixup).
LABEL_NAMES = frozenset({"labels", "start_positions", "end_positions", "next_sentence_label", "mc_labels"})


def takes_argument(model: Any, name: str) -> bool:
    """Whether ``model``'s forward takes ``name``: named in its signature or in the signature of a forward
    up its class hierarchy (``Qwen3_5ForSequenceClassification.forward`` passes ``labels`` on through
    ``**kwargs`` to ``GenericForSequenceClassification.forward``)."""
    for klass in type(model).__mro__:
        forward = vars(klass).get("forward")
        if forward is None:
            continue
        try:
            if name in inspect.signature(forward).parameters:
                return True
        except (TypeError, ValueError):
            continue
    return False


def _in_model_dtype(c: InputContext, inputs: dict[str, Any]) -> dict[str, Any]:
    """Floating inputs (embeddings, pixels, features, hidden states; in lists and dicts too) in the
    model's floating dtype: a bfloat16 draft model's ``pre_projection`` takes bfloat16 ``inputs_embeds``."""
    torch = c.torch
    dtype = getattr(c.model, "dtype", None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point or dtype == torch.float32:
        return inputs

    def cast(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.to(dtype) if value.is_floating_point() else value
        if isinstance(value, dict):
            return {k: cast(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(cast(v) for v in value)
        return value

    return {name: cast(value) for name, value in inputs.items()}


_NUM_CHOICES = 2


def _dual_encoder(config: Any) -> bool:
    """Text+image models without image placeholder tokens (CLIP-like): they need both inputs."""
    if getattr(config, "vision_config", None) is None and getattr(config, "image_size", None) is None:
        return False
    return not any("image_token" in k or "video_token" in k for k in all_config_keys(config))


def _tensors(obj: Any) -> list[torch.Tensor]:
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, Mapping):
        return [t for v in obj.values() for t in _tensors(v)]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _tensors(v)]
    if hasattr(obj, "to_tuple"):
        return _tensors(obj.to_tuple())
    return []


def entry_point(model: Any) -> Callable[..., Any]:
    """What a smoke check calls: the model's ``forward``, or ``encode`` for models without one (VQ-VAE
    image tokenizers such as ``GlmImageVQVAE`` only encode)."""
    import torch

    if type(model).forward is torch.nn.Module.forward and callable(getattr(model, "encode", None)):
        return model.encode
    return model.forward


def smoke_forward(model: PreTrainedModel, inputs: Mapping[str, Any]) -> Any:
    """One forward (or ``encode``, see :func:`entry_point`) in ``torch.no_grad()`` (eval mode); raise
    :class:`SmokeError` unless outputs are finite."""
    import torch

    model.eval()
    call = entry_point(model)
    try:
        with torch.no_grad():
            out = model(**inputs) if call == model.forward else call(**inputs)
    except Exception as exc:
        msg = str(exc).strip().splitlines()
        raise SmokeError(f"forward of {type(model).__name__} failed: {type(exc).__name__}: "
                         f"{(msg[0] if msg else '')[:300]}") from exc
    tensors = [t for t in _tensors(out) if t.is_floating_point()]
    if not tensors and any(t.numel() for t in _tensors(out)):
        return out  # integer outputs only (a codec encoder's codes): nothing to check for finiteness
    if not tensors:
        raise SmokeError(f"forward of {type(model).__name__} returned no tensor")
    for t in tensors:
        if not torch.isfinite(t).all():
            raise SmokeError(f"forward of {type(model).__name__} produced non-finite values (shape {tuple(t.shape)})")
    return out

