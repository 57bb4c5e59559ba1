"""Family special cases: audio (see :mod:`pytest_tinymodels.build.families`).

* audio towers used inside larger models (``*_encoder``, ``*_audio``) take their parent model type's
  feature extractor (:data:`FEATURE_EXTRACTOR_OF`, registered in :data:`..rules.FEATURE_EXTRACTOR_OF`), and their
  smoke inputs come from it;
* config rules keep what the generic shrinker cannot see consistent: kv heads of speech encoders and
  encoder-decoders, codec widths per resampling stage and the frames two encoders must agree on, codebook
  vocabularies and their special ids, vocoder / extractor widths;
* input fixups and builders make what the generic builders do not: codec latents and halves, feature masks,
  stacked (low-frame-rate) features, codebook-stream ids, spectrogram decoder inputs, text+audio pairs.
"""

from __future__ import annotations

from typing import Any

from .. import configtools, processors, rules, shrink
from ..inputs import InputContext, build_input

# --------------------------------------------------------------------------- feature extractors

#: audio towers / sub-models without a feature extractor of their own -> their parent model type's.
FEATURE_EXTRACTOR_OF: dict[str, str] = {
    "qwen2_audio_encoder": "qwen2_audio",
    "voxtral_encoder": "voxtral",
    "moss_transcribe_diarize_audio": "moss_transcribe_diarize",
    "audioflamingo3_encoder": "audioflamingo3",
    "fun_asr_nano_encoder": "fun_asr_nano",
    "qwen3_asr_encoder": "qwen3_asr",
    "gemma3n_audio": "gemma3n",
    "gemma4_audio": "gemma4",
    "nemotron3_diarization_audio": "nemotron3_diarization",
    "nemotron3_5_transcribe_asr_audio": "nemotron3_5_asr",
    "omniasr_audio": "omniasr",
    "pe_audio_encoder": "pe_audio",
    "muse_spark_audio": "muse_spark",
    "mimi_decoder": "mimi",
    "vibevoice_acoustic_tokenizer_encoder": "vibevoice_acoustic_tokenizer",
    "vibevoice_acoustic_tokenizer_decoder": "vibevoice_acoustic_tokenizer",
    "dots3_note_audio_encoder": "dots3_note",
    "gemma4_unified_audio": "gemma4_unified",
    "glmasr_encoder": "glmasr",
    "granite_speech_encoder": "granite_speech",
    "granite_speech_plus_encoder": "granite_speech_plus",
    "phi4_multimodal_audio": "phi4_multimodal",
    "qwen2_5_omni_audio_encoder": "qwen2_5_omni",
    "qwen3_omni_moe_audio_encoder": "qwen3_omni_moe",
    "voxtral_realtime_encoder": "voxtral_realtime",
    "mimi_encoder": "mimi",
    "pocket_tts_audio_tokenizer_encoder": "pocket_tts_audio_tokenizer",
    "pocket_tts_audio_tokenizer_decoder": "pocket_tts_audio_tokenizer",
    "wavtokenizer_encoder": "wavtokenizer",
    "moonshine_streaming_encoder": "moonshine",
    "moonshine_streaming": "moonshine",  # raw 16 kHz waveform (Wav2Vec2FeatureExtractor) like moonshine
    "speech-encoder-decoder": "wav2vec2",  # the library default's encoder is wav2vec2
}


rules.FEATURE_EXTRACTOR_OF.update(FEATURE_EXTRACTOR_OF)

# --------------------------------------------------------------------------- config rules

#: values set on the shrunk config of audio model types (merged into ``rules.MODEL_TYPE_CONFIG``).
MODEL_TYPE_VALUES: dict[str, dict[str, Any]] = {
    # DAC's decoder halves its width at each of its 4 upsampling stages from ``decoder_hidden_size``: 2**4
    "dac": {"decoder_hidden_size": 16},
    # Dia's decoder: 128 audio codes per channel then eos / pad / bos (as 1024 codes then 1024 / 1025 / 1026)
    "dia_decoder": {"vocab_size": 132, "eos_token_id": 128, "pad_token_id": 129, "bos_token_id": 130},
    # CLAP's feature extractor makes 4 crops per clip by default ("fusion" truncation): the fused audio tower
    # reads them (the unfused one takes one).  The spectrogram (10 s: 334 frames at 16 kHz / hop 480) is folded
    # into a ``spec_size`` square of ``spec_size * spec_size / mel`` frames, and the last of 4 stages (stride
    # 32) must keep ``spec_size / mel`` frequency rows: 32 mel bins in a 128 square
    "clap_audio_model": {"enable_fusion": True, "num_mel_bins": 32, "spec_size": 128},
    # CLVP's speech decoder: 256 speech codes then bos / eos (as 8192 codes then 8192 / 8193), two mel blocks
    "clvp_decoder": {"vocab_size": 258, "bos_token_id": 256, "eos_token_id": 257, "num_mel_attn_blocks": 2},
    # Gemma 3n's audio tower takes the 128 mel bins its feature extractor always makes
    "gemma3n_audio": {"input_feat_size": 128},
}
for _model_type, _values in MODEL_TYPE_VALUES.items():
    rules.model_type_values(_model_type, _values)


@rules.family_rule("audio_mha_stays_mha")
def _rule_mha_stays_mha(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Speech encoders (configs with ``num_mel_bins``) and codecs (with down-sampling ratios) that use
    multi-head attention keep kv heads = heads: some project keys with the query head count and would repeat
    them for grouped heads (Granite Speech 5), or rotate per-head positions (X-Codec 2, NeuCodec)."""
    if not (shrink.is_int(node.get("num_mel_bins")) or isinstance(node.get("downsampling_ratios"), list)):
        return
    old = ctx.old.get(id(node), {})
    heads = node.get("num_attention_heads")
    kv = node.get("num_key_value_heads")
    if shrink.is_int(heads) and shrink.is_int(kv) and old.get("num_key_value_heads") == old.get("num_attention_heads"):
        node["num_key_value_heads"] = heads


@rules.family_rule("audio_query_viewed_as_kv_heads")
def _rule_query_kv_heads(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Moonshine Streaming reshapes queries with ``num_key_value_heads`` (multi-head attention only), and its
    library default lacks that field on the decoder config: kv heads = heads."""
    if node.get("model_type") in ("moonshine_streaming", "moonshine_streaming_encoder"):
        heads = node.get("num_attention_heads")
        if shrink.is_int(heads):
            node["num_key_value_heads"] = heads


#: model types whose attention is saved as one packed ``w_qkv`` that loading splits in three equal parts
#: (transformers' conversion mapping): grouped kv heads would not load back, so kv heads = heads.
PACKED_QKV_MODEL_TYPES = frozenset({"nemotron3_5_transcribe_word_timestamp"})


@rules.family_rule("audio_packed_qkv_stays_mha")
def _rule_packed_qkv(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Nemotron 3.5 Transcribe's word-timestamp encoder (:data:`PACKED_QKV_MODEL_TYPES`): kv heads = heads."""
    heads = node.get("num_attention_heads")
    if node.get("model_type") in PACKED_QKV_MODEL_TYPES and shrink.is_int(heads):
        node["num_key_value_heads"] = heads


@rules.family_rule("audio_prefixed_kv_heads")
def _rule_prefixed_kv_heads(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Speech encoder-decoders (moonshine) give ``encoder_``/``decoder_`` head counts: each side's kv heads
    must divide its heads (multi-head attention stays multi-head)."""
    old = ctx.old.get(id(node), {})
    for prefix in ("encoder_", "decoder_"):
        heads_key, kv_key = f"{prefix}num_attention_heads", f"{prefix}num_key_value_heads"
        heads, kv = node.get(heads_key), node.get(kv_key)
        if not (shrink.is_int(heads) and shrink.is_int(kv)) or heads % kv == 0 and kv <= heads:
            continue
        node[kv_key] = heads if old.get(kv_key) == old.get(heads_key) else shrink.divisor_at_most(heads, kv)


@rules.family_rule("audio_adaptor_ratio")
def _rule_adaptor_ratio(node: dict, ctx: shrink.ShrinkContext) -> None:
    """FunASR-Nano: the audio adaptor's width is the text model's (its intermediate size a fixed fraction of
    it, as in the full config)."""
    adaptor, text = node.get("adaptor_config"), node.get("text_config")
    if not (isinstance(adaptor, dict) and isinstance(text, dict) and shrink.is_int(text.get("hidden_size"))):
        return
    old_a, old_t = ctx.old.get(id(adaptor), {}), ctx.old.get(id(text), {})
    hidden, old_hidden = text["hidden_size"], old_t.get("hidden_size")
    adaptor["hidden_size"] = hidden
    inter = old_a.get("intermediate_size")
    if shrink.is_int(inter) and shrink.is_int(old_hidden) and inter and old_hidden % inter == 0:
        adaptor["intermediate_size"] = hidden // (old_hidden // inter)


@rules.family_rule("audio_timestamp_layers")
def _rule_timestamp_layers(node: dict, ctx: shrink.ShrinkContext) -> None:
    """FunASR-Nano encoders end with timestamp-prediction layers after the transcription ones: keep one of
    each."""
    if shrink.is_int(node.get("num_timestamp_prediction_layers")) and shrink.is_int(node.get("num_hidden_layers")):
        node["num_hidden_layers"] = max(node["num_hidden_layers"], 2)
        node["num_timestamp_prediction_layers"] = node["num_hidden_layers"] - 1


@rules.family_rule("audio_deep_codec_width")
def _rule_deep_codec_width(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Convolutional codecs double their width at each resampling stage from a base width (``num_filters``,
    ``encoder_hidden_size``): with 5+ stages (X-Codec 2, NeuCodec, VibeVoice tokenizer) the base width is
    ``2 ** (6 - stages)`` (at most 4, as for every codec), and there is no FFN expansion."""
    ratios = node.get("downsampling_ratios") or node.get("upsampling_ratios")
    if not (isinstance(ratios, list) and len(ratios) >= 5):
        return
    base = max(1, 2 ** (6 - len(ratios)))
    for k in ("num_filters", "encoder_hidden_size"):
        if shrink.is_int(node.get(k)):
            node[k] = min(node[k], base)
    if shrink.is_int(node.get("ffn_expansion")):
        node["ffn_expansion"] = 1


@rules.family_rule("audio_semantic_codec_width")
def _rule_semantic_codec_width(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Codecs with a semantic encoder beside a 5-stage acoustic one (X-Codec 2, NeuCodec) also carry a
    transformer decoder and an iSTFT head of ``4 * hop`` bins per frame: a 32-wide transformer keeps the
    whole under the size limit; the quantizer takes both encoders' features concatenated."""
    if not (isinstance(node.get("semantic_model_config"), dict) and isinstance(node.get("downsampling_ratios"), list)):
        return
    heads = node.get("num_attention_heads")
    if shrink.is_int(node.get("hidden_size")) and shrink.is_int(heads):
        node["hidden_size"] = min(node["hidden_size"], 32)
        if shrink.is_int(node.get("head_dim")):
            node["head_dim"] = node["hidden_size"] // heads
    semantic_hidden = node["semantic_model_config"].get("hidden_size")
    if shrink.is_int(node.get("quantization_dim")) and shrink.is_int(semantic_hidden):
        node["quantization_dim"] = node["hidden_size"] + semantic_hidden  # quantizes [semantic; acoustic]


@rules.family_rule("audio_vocos_decoder_width")
def _rule_vocos_decoder_width(node: dict, ctx: shrink.ShrinkContext) -> None:
    """WavTokenizer's ``decoder_hidden_size`` is the width of its transformer (Vocos) decoder, not a conv base
    width: the tiny hidden size, with group norms whose group count divides it."""
    groups = node.get("decoder_attention_num_groups")
    if not (shrink.is_int(groups) and shrink.is_int(node.get("decoder_hidden_size"))):
        return
    node["decoder_hidden_size"] = shrink.TINY["hidden"]
    node["decoder_attention_num_groups"] = shrink.divisor_at_most(shrink.TINY["hidden"], min(groups, 4))


@rules.family_rule("audio_text_and_codebook_streams")
def _rule_text_and_codebook_streams(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Kyutai speech-to-text embeds one text stream plus ``num_codebooks`` streams of its codec's codes in one
    table (text vocab + codebooks x (codebook size + 1) + pad): few codebooks, the codec's quantizer count
    and codebook size, the audio BOS at the codebook size and the pad id at the end of the table."""
    codec = node.get("codec_config")
    if not (isinstance(codec, dict) and shrink.is_int(node.get("num_codebooks"))
            and shrink.is_int(node.get("codebook_vocab_size")) and shrink.is_int(codec.get("codebook_size"))):
        return
    n = min(node["num_codebooks"], 4)
    node["num_codebooks"] = n
    if shrink.is_int(codec.get("num_quantizers")):
        codec["num_quantizers"] = n
    size = codec["codebook_size"]
    node["codebook_vocab_size"] = size + 1
    if "audio_bos_token_id" in node:
        node["audio_bos_token_id"] = size
    if "audio_pad_token_id" in node and shrink.is_int(node.get("vocab_size")):
        node["audio_pad_token_id"] = node["vocab_size"] + n * (size + 1)


@rules.family_rule("audio_spectrogram_swin")
def _rule_spectrogram_swin(node: dict, ctx: shrink.ShrinkContext) -> None:
    """CLAP's audio tower is a Swin over the mel spectrogram folded into a ``spec_size`` square: stage ``i`` is
    ``patch_embeds_hidden_size * 2**i`` wide with its own head count, ``hidden_size`` is the last stage's width,
    (``spec_size`` and the mel bins: :data:`rules.MODEL_TYPE_CONFIG` ``clap_audio_model``)."""
    depths, heads = node.get("depths"), node.get("num_attention_heads")
    if not (shrink.is_int(node.get("patch_embeds_hidden_size")) and isinstance(depths, list)
            and isinstance(heads, list)):
        return
    base = 8  # stages 8, 16, 32, 64 wide
    node["patch_embeds_hidden_size"] = base
    node["num_attention_heads"] = [max(1, base * 2**i // shrink.TINY["head_dim"]) for i in range(len(depths))]
    node["hidden_size"] = base * 2 ** (len(depths) - 1)


@rules.family_rule("audio_vocoder_mel_bins")
def _rule_vocoder_mel_bins(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Text-to-speech models bundled with their vocoder (FastSpeech2 + HiFi-GAN): the vocoder reads the
    spectrogram model's mel bins (``model_in_dim``)."""
    vocoder = node.get("vocoder_config")
    if not (isinstance(vocoder, dict) and shrink.is_int(vocoder.get("model_in_dim"))):
        return
    bins = next((v["num_mel_bins"] for k, v in node.items() if k != "vocoder_config" and isinstance(v, dict)
                 and shrink.is_int(v.get("num_mel_bins"))), None)
    if bins is not None:
        vocoder["model_in_dim"] = bins


@rules.family_rule("audio_decoded_speech_vocab")
def _rule_decoded_speech_vocab(node: dict, ctx: shrink.ShrinkContext) -> None:
    """CLVP feeds the speech decoder's predicted codes to its speech encoder: the encoder's vocabulary covers
    the decoder's."""
    speech, decoder = node.get("speech_config"), node.get("decoder_config")
    if isinstance(speech, dict) and isinstance(decoder, dict) and shrink.is_int(speech.get("vocab_size")) and \
            shrink.is_int(decoder.get("vocab_size")):
        speech["vocab_size"] = max(speech["vocab_size"], decoder["vocab_size"])


@rules.family_rule("audio_min_rotary_dim")
def _rule_min_rotary_dim(node: dict, ctx: shrink.ShrinkContext) -> None:
    """CLVP encoders rotate at least 32 dims of each head (``max(projection_dim // (2 * heads), 32)``): heads
    at least 32 wide."""
    hidden, heads = node.get("hidden_size"), node.get("num_attention_heads")
    if node.get("use_rotary_embedding") is True and shrink.is_int(node.get("projection_dim")) and \
            shrink.is_int(hidden) and shrink.is_int(heads) and hidden // heads < 32:
        node["num_attention_heads"] = max(1, hidden // 32)


@rules.family_rule("audio_semantic_hop")
def _rule_semantic_hop(node: dict, ctx: shrink.ShrinkContext) -> None:
    """X-Codec concatenates acoustic-codec frames with semantic-model (HuBERT) frames: the semantic feature
    encoder keeps all its strided convolutions (narrow ones) so both hop the same number of samples."""
    semantic, acoustic = node.get("semantic_model_config"), node.get("acoustic_model_config")
    if not (isinstance(semantic, dict) and isinstance(acoustic, dict)):
        return
    old = ctx.old.get(id(semantic), {})
    strides, kernels = old.get("conv_stride"), old.get("conv_kernel")
    if not (isinstance(strides, list) and isinstance(kernels, list) and isinstance(semantic.get("conv_dim"), list)):
        return
    width = min(semantic["conv_dim"])
    semantic.update(conv_stride=list(strides), conv_kernel=list(kernels), conv_dim=[width] * len(strides))
    if "num_feat_extract_layers" in semantic:
        semantic["num_feat_extract_layers"] = len(strides)
    # the quantizer works on the concatenation; fewer, smaller codebooks (quantizers = f(top bandwidth))
    if shrink.is_int(semantic.get("hidden_size")) and shrink.is_int(acoustic.get("hidden_size")):
        node["codebook_dim"] = semantic["hidden_size"] + acoustic["hidden_size"]
    if shrink.is_int(node.get("codebook_size")):
        node["codebook_size"] = min(node["codebook_size"], 64)
    if isinstance(node.get("target_bandwidths"), list) and len(node["target_bandwidths"]) > 2:
        node["target_bandwidths"] = node["target_bandwidths"][:2]


@rules.family_rule("audio_feature_projection_input")
def _rule_feature_projection_input(node: dict, ctx: shrink.ShrinkContext) -> None:
    """``feature_projection_input_dim`` (wav2vec2-bert, SeamlessM4T speech encoders, the semantic encoders of
    X-Codec 2 / NeuCodec) is the width of the feature extractor's output (80 mel bins x 2 stacked frames),
    not a model width: it keeps its value."""
    old = ctx.old.get(id(node), {}).get("feature_projection_input_dim")
    if shrink.is_int(old) and shrink.is_int(node.get("feature_projection_input_dim")):
        node["feature_projection_input_dim"] = old


# --------------------------------------------------------------------------- inputs

#: audio towers whose forward names a feature-extractor output differently: {output: argument}; a leading
#: "~" inverts a boolean mask (Gemma 3n's ``audio_mel_mask`` is True on padding, the extractor's on audio).
TOWER_ARGUMENT_NAMES: dict[str, dict[str, str]] = {
    "gemma3n_audio": {"input_features": "audio_mel", "input_features_mask": "~audio_mel_mask"},
}


def _extractor_outputs(c: InputContext, extractor: Any) -> dict[str, Any]:
    """The extractor's outputs for ``c.b`` half-second random waveforms at its sampling rate."""
    import numpy as np

    sr = int(getattr(extractor, "sampling_rate", None) or processors.SAMPLING_RATE)
    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(sr // 2)).astype("float32") for _ in range(c.b)]
    return dict(extractor(waves, sampling_rate=sr, return_tensors="pt"))


@rules.input_fixup("audio_tower_features")
def _fixup_tower_features(c: InputContext, inputs: dict[str, Any]) -> None:
    """Audio towers (``*_encoder``/``*_audio`` model types) have no feature extractor of their own: their
    parent's extractor (:data:`FEATURE_EXTRACTOR_OF`; the smoke processor when one is given) lays out the main
    input and the masks the forward takes (fixed frame counts, channel axes, multiples of a hop), under the
    forward's own argument names (:data:`TOWER_ARGUMENT_NAMES`)."""
    import inspect

    model_type = str(getattr(c.config, "model_type", ""))
    if model_type not in FEATURE_EXTRACTOR_OF:
        return
    try:
        extractor = c.processor if callable(c.processor) else processors.tiny_feature_extractor(model_type, c.config)
        outputs = _extractor_outputs(c, extractor) if callable(extractor) else {}
    except Exception:  # noqa: BLE001 - keep the generic inputs (the forward then says what is wrong)
        return
    params = inspect.signature(c.model.forward).parameters
    names = TOWER_ARGUMENT_NAMES.get(model_type, {})
    main = getattr(c.model, "main_input_name", None)
    if not any(names.get(k, k).lstrip("~") == main for k in outputs):
        return  # the extractor does not make this model's main input (e.g. a codec decoder)
    for key, value in outputs.items():
        target = names.get(key, key)
        invert = target.startswith("~")
        target = target.lstrip("~")
        if target in params and hasattr(value, "shape"):
            inputs[target] = ~value.bool() if invert else value


@rules.input_fixup("audio_stacked_frames")
def _fixup_stacked_frames(c: InputContext, inputs: dict[str, Any]) -> None:
    """Low-frame-rate encoders (FunASR) take ``num_stacked_frames`` mel frames stacked on the feature axis:
    (batch, frames, mel bins * stacked frames)."""
    import inspect

    stack, bins = getattr(c.config, "num_stacked_frames", None), getattr(c.config, "num_mel_bins", None)
    feats = inputs.get("input_features")
    if not (isinstance(stack, int) and isinstance(bins, int)) or feats is None or feats.shape[-1] == stack * bins:
        return
    inputs["input_features"] = c.randn(c.b, 16, stack * bins)
    inputs.pop("input_features_mask", None)
    if "input_features_mask" in inspect.signature(c.model.forward).parameters:
        inputs["input_features_mask"] = c.torch.ones(c.b, 16, dtype=c.torch.long)


@rules.input_fixup("audio_feature_mask")
def _fixup_feature_mask(c: InputContext, inputs: dict[str, Any]) -> None:
    """Speech encoders that read ``input_features_mask`` (FunASR, Qwen3-ASR, AudioFlamingo3: lengths come
    from it, even where the signature says optional) get an all-valid mask over the feature frames."""
    import inspect

    feats = inputs.get("input_features")
    if "input_features_mask" in inputs or feats is None or getattr(feats, "ndim", 0) != 3:
        return
    if "input_features_mask" not in inspect.signature(c.model.forward).parameters:
        return
    bins = configtools.find_in_config(c.config, "num_mel_bins", configtools.AUDIO_KEYS) or configtools.find_in_config(c.config, "feature_size",
                                                                                   configtools.AUDIO_KEYS)
    frames = feats.shape[2] if feats.shape[1] == bins else feats.shape[1]
    inputs["input_features_mask"] = c.torch.ones(feats.shape[0], frames, dtype=c.torch.long)


@rules.input_fixup("audio_generic_encoder_inputs")
def _fixup_speech_encoder_inputs(c: InputContext, inputs: dict[str, Any]) -> None:
    """Speech encoder-decoder wrappers take a generic ``inputs``: the wrapped speech encoder's main input
    (waveform or features), built from the encoder's config and the model's feature extractor."""
    encoder = getattr(c.model, "encoder", None)
    enc_main = getattr(encoder, "main_input_name", None)
    if "inputs" not in inputs or enc_main not in ("input_values", "input_features"):
        return
    enc_ctx = InputContext(encoder, encoder.config, c.processor, c.b, c.t, c.labels)
    inputs["inputs"] = build_input(enc_main, enc_ctx)


@rules.input_builder("latents")
def _latents(c: InputContext) -> Any:
    """Codec decoders (Mimi, PocketTTS tokenizer) decode continuous latents: (batch, hidden_size, frames)."""
    hidden = getattr(c.config, "hidden_size", None) or configtools.find_in_config(c.config, "hidden_size", ("decoder_config",))
    return c.randn(c.b, int(hidden or 64), 8)


def _hop_length(config: Any) -> int:
    """Samples per frame of a codec config: the product of its down- (or up-) sampling ratios."""
    ratios = getattr(config, "downsampling_ratios", None) or getattr(config, "upsampling_ratios", None) or []
    hop = 1
    for r in ratios:
        hop *= int(r)
    return hop


@rules.input_fixup("audio_codec_half_hidden_states")
def _fixup_codec_half(c: InputContext, inputs: dict[str, Any]) -> None:
    """Halves of a convolutional codec (VibeVoice tokenizer encoder / decoder) name their input
    ``hidden_states``: (batch, in_channels of the first convolution, length) — a waveform of a few frames for
    an encoder (few input channels), a few latent frames for a decoder."""
    import inspect

    import torch.nn as nn

    params = inspect.signature(c.model.forward).parameters
    if "hidden_states" in inputs or "hidden_states" not in params or not _hop_length(c.config) > 1:
        return
    conv = next((m for m in c.model.modules() if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d))), None)
    if conv is None:
        return
    channels = conv.in_channels
    audio_channels = int(getattr(c.config, "channels", None) or getattr(c.config, "audio_channels", None) or 1)
    length = 4 * _hop_length(c.config) if channels == audio_channels else 8
    inputs["hidden_states"] = c.randn(c.b, channels, length) * (0.1 if channels == audio_channels else 1.0)
    main = getattr(c.model, "main_input_name", None)
    if main not in params:  # the inherited main input name is not an argument of this half
        inputs.pop(main, None)


@rules.input_fixup("audio_semantic_codec_inputs")
def _fixup_semantic_codec(c: InputContext, inputs: dict[str, Any]) -> None:
    """Codecs with a semantic encoder beside the acoustic one (X-Codec 2, NeuCodec) take the waveform and its
    features together: ``frames * hop`` samples (hop = product of the down-sampling ratios) and ``frames``
    feature vectors of the semantic encoder's ``feature_projection_input_dim``."""
    import inspect

    params = inspect.signature(c.model.forward).parameters
    required = {n for n, p in params.items() if p.default is inspect.Parameter.empty}
    semantic = getattr(c.config, "semantic_model_config", None)
    width = getattr(semantic, "feature_projection_input_dim", None)
    hop = _hop_length(c.config)
    if not ({"input_values", "input_features"} <= required and isinstance(width, int) and hop > 1):
        return
    frames = 8
    inputs["input_values"] = c.randn(c.b, 1, frames * hop) * 0.1
    inputs["input_features"] = c.randn(c.b, frames, width)
    if "input_features_mask" in inputs:
        inputs["input_features_mask"] = c.torch.ones(c.b, frames, dtype=c.torch.long)


@rules.input_fixup("audio_speech_decoder_values")
def _fixup_speech_decoder_values(c: InputContext, inputs: dict[str, Any]) -> None:
    """SpeechT5 decodes spectrogram frames (``decoder_input_values``: batch, frames, mel bins) through its
    speech pre-net; the bare ``SpeechT5Model`` has no pre-nets, so both sides take hidden states."""
    import inspect

    params = inspect.signature(c.model.forward).parameters
    if "decoder_input_values" not in params or "decoder_input_values" in inputs:
        return
    hidden = int(getattr(c.config, "hidden_size", 64))
    bare = [type(getattr(c.model, side, None)).__name__.endswith("WithoutPrenet") for side in ("encoder", "decoder")]
    if bare[0] and "input_values" in inputs:
        inputs["input_values"] = c.randn(c.b, c.t, hidden)
    width = hidden if bare[1] else int(getattr(c.config, "num_mel_bins", 16))
    inputs["decoder_input_values"] = c.randn(c.b, c.t, width)


@rules.input_fixup("audio_text_and_codebook_ids")
def _fixup_text_and_codebook_ids(c: InputContext, inputs: dict[str, Any]) -> None:
    """Kyutai speech-to-text takes ``input_ids`` of shape (batch, seq, 1 + num_codebooks): a text token and
    one code per codebook at each step."""
    n, size = getattr(c.config, "num_codebooks", None), getattr(c.config, "codebook_vocab_size", None)
    ids = inputs.get("input_ids")
    if not (isinstance(n, int) and isinstance(size, int)) or ids is None or ids.ndim != 2:
        return
    if getattr(c.config, "codec_config", None) is None:
        return
    codes = c.torch.randint(0, size - 1, (*ids.shape, n), generator=c.gen)
    inputs["input_ids"] = c.torch.cat([ids.unsqueeze(-1), codes], dim=-1)


@rules.input_fixup("audio_byte_text_to_codebooks")
def _fixup_byte_text_to_codebooks(c: InputContext, inputs: dict[str, Any]) -> None:
    """Dia reads bytes (its encoder's own small vocabulary) and decodes ``num_channels`` codebooks at once:
    ``input_ids`` below the encoder vocabulary, ``decoder_input_ids`` of shape (batch, seq, channels) below the
    decoder's special audio ids."""
    enc, dec = getattr(c.config, "encoder_config", None), getattr(c.config, "decoder_config", None)
    channels = getattr(dec, "num_channels", None)
    if not (isinstance(channels, int) and isinstance(getattr(enc, "vocab_size", None), int)):
        return
    if "input_ids" in inputs:
        inputs["input_ids"] = c.torch.randint(0, enc.vocab_size, tuple(inputs["input_ids"].shape), generator=c.gen)
    specials = [getattr(dec, k, None) for k in ("pad_token_id", "eos_token_id", "bos_token_id")]
    top = min([x for x in specials if isinstance(x, int)] + [dec.vocab_size])
    inputs["decoder_input_ids"] = c.torch.randint(0, top, (c.b, c.t, channels), generator=c.gen)


@rules.input_fixup("audio_dual_encoder_features")
def _fixup_dual_encoder_features(c: InputContext, inputs: dict[str, Any]) -> None:
    """Text+audio contrastive models (CLAP, CLVP: no audio placeholder tokens in the text) need both the text
    and the audio features."""
    import inspect

    if "input_features" in inputs or "input_ids" not in inputs:
        return
    audio = getattr(c.config, "audio_config", None) or getattr(c.config, "speech_config", None)
    if audio is None or getattr(c.config, "text_config", None) is None:
        return
    if "input_features" not in inspect.signature(c.model.forward).parameters:
        return
    if any("audio_token" in k for k in configtools.all_config_keys(c.config)):
        return
    params = inspect.signature(c.model.forward).parameters
    if c.processor is not None and callable(c.processor):
        try:
            outputs = _extractor_outputs(c, c.processor)
        except Exception:  # noqa: BLE001 - fall back to the generic builder
            outputs = {}
        if "input_features" in outputs:  # with the extra outputs the forward takes (CLAP's ``is_longer``)
            inputs.update({k: v for k, v in outputs.items()  # not the audio's attention mask: the text's
                           if k in params and hasattr(v, "shape") and (k == "input_features" or k not in inputs)})
            return
    inputs["input_features"] = build_input("input_features", c)


@rules.input_fixup("audio_streaming_lm_features")
def _fixup_streaming_lm_features(c: InputContext, inputs: dict[str, Any]) -> None:
    """Voxtral Realtime adds one audio embedding to each token embedding: ``audio_length_per_tok`` mel frames
    per input token, (batch, mel bins, seq * audio_length_per_tok)."""
    per_tok = getattr(c.config, "audio_length_per_tok", None)
    ids = inputs.get("input_ids")
    audio = getattr(c.config, "audio_config", None)
    if not isinstance(per_tok, int) or ids is None or audio is None:
        return
    bins = int(getattr(audio, "num_mel_bins", 16))
    inputs["input_features"] = c.randn(ids.shape[0], bins, ids.shape[1] * per_tok)
