"""Family special cases: size (see :mod:`pytest_tinymodels.build.families`).

What keeps a generically shrunk model above the 2 MB budget is rarely its hidden size: it is the
quantities the generic rules do not know are dimensions — codebook and audio-token vocabularies,
conv-stem / vocoder channel counts, hard-wired channel multiples (``4 * output_channels``), learned
position grids, parallel residual blocks, one transformer stack per modality.  Each rule below names
the family it serves and keeps the config self-consistent.
"""

from __future__ import annotations

from typing import Any

from .. import rules, shrink

_is_int = shrink.is_int

#: tiny sizes of the quantities handled here.
CODEBOOK = 64  # entries per audio / image codebook
AUDIO_CODEBOOKS = 8  # parallel audio codebooks of an audio-token language model
CONV_STEM_CHANNELS = 16  # conv sub-sampling stems of speech encoders


def _old(node: dict, ctx: shrink.ShrinkContext) -> dict:
    return ctx.old.get(id(node), {})


def _cap(node: dict, key: str, value: int) -> None:
    if _is_int(node.get(key)) and node[key] > value:
        node[key] = value


# --------------------------------------------------------------------------- data: fixed values per model type

#: model type -> values set on its shrunk config dict (merged into ``rules.MODEL_TYPE_CONFIG``).
SIZE_VALUES: dict[str, dict[str, Any]] = {
    # Perceiver: cross-attention q/k width = the latent width instead of the (hard-wired 512-channel) input width
    "perceiver": {"cross_attention_shape_for_attention": "q"},
    # Inkling audio: one embedding row per (mel bin, dMel level); the processor quantizes into 16 levels
    "inkling_audio": {"mel_vocab_size": 16},
    # FLAVA's DALL-E image codebook: group widths are 1/2/4/8 x hidden_size, with 2 blocks per group
    "flava_image_codebook": {"hidden_size": 8, "num_blocks_per_group": 1},
    # FLAVA: the fusion encoder over the text and image encoders keeps one layer
    "flava": {"multimodal_config": {"num_hidden_layers": 1}},
    # Janus: its VQ-VAE only generates images (understanding goes through the SigLIP tower): 3 resolution levels
    "janus_vqgan": {"channel_multiplier": [1, 1, 1]},
    # Dots3-Note (LM + MoE vision tower + audio tower, with a 256-wide patch merger): a one-layer audio encoder
    "dots3_note_audio_encoder": {"num_hidden_layers": 1},
    # RF-DETR: one query group / encoder-output head per ``group_detr`` (13): two keep the grouping
    "rf_detr": {"group_detr": 2},
    # MobileViTV2 segmentation: three 3x3 atrous convs of ``aspp_out_channels``
    "mobilevitv2": {"aspp_out_channels": 32},
    # FastSpeech2-Conformer: position-wise conv feed-forwards (kernel 3, 4 per layer) and a 5-layer pitch predictor
    "fastspeech2_conformer": {"positionwise_conv_kernel_size": 1, "pitch_predictor_layers": 2,
                              "speech_decoder_postnet_layers": 2},
    # VITS: 4 prior / duration flows of WaveNet stacks (kernel 5), conv feed-forwards, 513-bin linear spectrograms
    "vits": {"prior_encoder_num_flows": 2, "duration_predictor_num_flows": 2, "wavenet_kernel_size": 3,
             "ffn_kernel_size": 1, "spectrogram_bins": 65},
}


for _model_type, _values in SIZE_VALUES.items():
    rules.model_type_values(_model_type, _values)


# --------------------------------------------------------------------------- codecs and vocoders


@rules.family_rule("size_codec_strides")
def _rule_codec_strides(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Conv codecs whose width doubles at each (down)sampling stage keep one LSTM layer (EnCodec / MusicGen).
    With 5+ stages (VibeVoice: 6 on a base width of 1) the strides are ordered largest first, so the long
    stride kernels (2 x stride) sit on the narrow stages; the hop length (their product) is unchanged."""
    ratios = next((node[k] for k in ("downsampling_ratios", "upsampling_ratios") if isinstance(node.get(k), list)),
                  None)
    if not (ratios and all(_is_int(r) for r in ratios)):
        return
    _cap(node, "num_lstm_layers", 1)
    if len(ratios) >= 5:
        if isinstance(node.get("downsampling_ratios"), list):
            node["downsampling_ratios"] = sorted(node["downsampling_ratios"], reverse=True)
        if isinstance(node.get("upsampling_ratios"), list):
            node["upsampling_ratios"] = sorted(node["upsampling_ratios"])


@rules.family_rule("size_kernel_predictor")
def _rule_kernel_predictor(node: dict, ctx: shrink.ShrinkContext) -> None:
    """UnivNet: the kernel predictor emits ``hidden^2 * kernel * layers`` weights per frame, so both its own width
    and the generator width it predicts for are what make the model big.  Its residual blocks are built with
    ``model_in_channels`` (the noise width), which therefore equals ``kernel_predictor_hidden_channels``."""
    if not _is_int(node.get("kernel_predictor_hidden_channels")):
        return
    _cap(node, "model_hidden_channels", 8)
    _cap(node, "kernel_predictor_hidden_channels", 16)
    if _is_int(node.get("model_in_channels")):
        node["model_in_channels"] = node["kernel_predictor_hidden_channels"]


# --------------------------------------------------------------------------- audio-token language models


def _codebook_ids(node: dict, old: dict, old_size: int, new_size: int) -> None:
    """Ids just above an audio codebook (stream bos/eos = size, size + 1; codebook pad...) follow its new size."""
    for k, v in list(node.items()):
        was = old.get(k)
        if (_is_int(v) and _is_int(was) and k.endswith("_id") and ("stream" in k or "codebook" in k)
                and old_size <= was < old_size + 16):
            node[k] = new_size + (was - old_size)


@rules.family_rule("size_audio_codebooks")
def _rule_audio_codebooks(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Audio-token LMs (higgs-audio): ``num_codebooks`` embedding tables / heads of ``codebook_size`` rows each;
    the codebook is cut to 64 entries and the stream ids just above it move with it."""
    if not (_is_int(node.get("num_codebooks")) and _is_int(node.get("codebook_size"))):
        return
    old_size = _old(node, ctx).get("codebook_size", node["codebook_size"])
    if not _is_int(old_size) or old_size <= CODEBOOK:
        return
    node["codebook_size"] = CODEBOOK
    _codebook_ids(node, _old(node, ctx), old_size, CODEBOOK)


@rules.family_rule("size_codec_decoder_vocab")
def _rule_codec_decoder_vocab(node: dict, ctx: shrink.ShrinkContext) -> None:
    """MusicGen: the decoder's vocabulary is the audio codec's codebook (+1 row for the pad / start id = vocab),
    not the text tokenizer's."""
    codec, dec = node.get("audio_encoder"), node.get("decoder")
    if not (isinstance(codec, dict) and isinstance(dec, dict) and _is_int(codec.get("codebook_size"))
            and _is_int(dec.get("num_codebooks")) and _is_int(dec.get("vocab_size"))):
        return
    size = codec["codebook_size"]
    dec["vocab_size"] = size
    for k in ("pad_token_id", "bos_token_id", "decoder_start_token_id"):
        if _is_int(dec.get(k)):
            dec[k] = size
    for k in ("pad_token_id", "decoder_start_token_id"):
        if _is_int(node.get(k)) and node[k] >= size:
            node[k] = size


@rules.family_rule("size_backbone_depth_codebooks")
def _rule_backbone_depth_codebooks(node: dict, ctx: shrink.ShrinkContext) -> None:
    """CSM: a backbone + depth decoder over ``num_codebooks`` (32) codec codebooks whose audio vocabulary is the
    codec's codebook plus 3 ids (pad = vocab - 1): 8 codebooks of ``codebook_size + 3`` ids; the depth decoder
    and the codec's transformers keep one layer."""
    depth, codec = node.get("depth_decoder_config"), node.get("codec_config")
    if not (isinstance(depth, dict) and isinstance(codec, dict) and _is_int(node.get("num_codebooks"))
            and _is_int(codec.get("codebook_size"))):
        return
    n = min(node["num_codebooks"], AUDIO_CODEBOOKS)
    vocab = codec["codebook_size"] + 3
    for cfg in (node, depth):
        cfg["num_codebooks"] = n
        cfg["vocab_size"] = vocab
    if _is_int(depth.get("max_position_embeddings")):
        depth["max_position_embeddings"] = n + 1
    _cap(depth, "num_hidden_layers", 1)  # the depth decoder is a small helper (4 layers vs the backbone's 16)
    _cap(codec, "num_hidden_layers", 1)  # the codec only turns audio into codes (and back) around the LM
    if _is_int(codec.get("num_quantizers")):
        codec["num_quantizers"] = n  # the codec emits one code per LM codebook
    if _is_int(node.get("codebook_pad_token_id")):
        node["codebook_pad_token_id"] = vocab - 1
    if _is_int(node.get("codebook_eos_token_id")):
        node["codebook_eos_token_id"] = 0


# --------------------------------------------------------------------------- speech encoders


@rules.family_rule("size_conv_stem")
def _rule_conv_stem(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Speech encoders' conv sub-sampling stems (FastConformer ``subsampling_conv_channels``, Dots3 audio
    ``downsample_hidden_size``): 2-D convs whose flattened output feeds a linear of channels x mel bins."""
    for k in ("subsampling_conv_channels", "downsample_hidden_size"):
        _cap(node, k, CONV_STEM_CHANNELS)


@rules.family_rule("size_head_dims")
def _rule_head_dims(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Attention written with ``dim_head`` / ``*_dim_head`` (granite-speech conformer, evolla's perceiver
    resampler): heads x dim_head is the attention width, so dim_head follows the tiny head dim."""
    hidden = shrink.first_int(node, shrink.PRIMARY_HIDDEN + ("hidden_dim",))
    heads = shrink.first_int(node, shrink.PRIMARY_HEADS)
    for k, v in list(node.items()):
        if not (_is_int(v) and (k == "dim_head" or k.endswith("_dim_head"))):
            continue
        if k == "dim_head" and hidden and heads:
            node[k] = max(2, hidden // heads)
        else:
            node[k] = min(v, shrink.TINY["head_dim"])


@rules.family_rule("size_resampler")
def _rule_resampler(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Perceiver resamplers / aligners given as ``resampler_depth`` / ``resampler_heads`` / ``*_ff_mult``
    (evolla): tiny depth and heads, feed-forwards twice as wide as their input."""
    _cap(node, "resampler_depth", shrink.TINY["layers"])
    _cap(node, "resampler_heads", shrink.TINY["heads"])
    for k in list(node):
        if k.endswith(("_ff_mult", "_ffn_mult")):
            _cap(node, k, 2)


# --------------------------------------------------------------------------- layer lists


@rules.family_rule("size_block_type_list")
def _rule_block_type_list(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Hybrid stacks whose depth *is* the length of ``layers_block_type`` (Nemotron-H, no layer count key): the
    list keeps one layer of each block type, in order."""
    types = node.get("layers_block_type")
    if not (isinstance(types, list) and types) or shrink.node_layers(node) is not None:
        return
    keep = list(dict.fromkeys(types))
    if len(keep) < len(types):
        node["layers_block_type"] = keep


@rules.family_rule("size_duplicate_layers")
def _rule_duplicate_layers(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Heterogeneous stacks (``per_layer_config``, Dots3 vision): layers that became identical once their
    overrides were shrunk are dropped, keeping one layer of each remaining kind."""
    if not isinstance(node.get("per_layer_config"), dict) or not _is_int(node.get("num_hidden_layers")):
        return
    layers = node["num_hidden_layers"]
    if layers > shrink.TINY["layers"]:
        node["num_hidden_layers"] = shrink.shrink_per_layer(node, layers, shrink.TINY["layers"])


@rules.family_rule("size_tower_layers")
def _rule_tower_layers(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Configs holding five or more transformer stacks side by side (SeamlessM4T: text encoder / decoder, speech
    encoder, text-to-unit encoder / decoder): one layer per stack."""
    keys = [k for k, v in node.items() if shrink.key_kind(k) == "layers" and _is_int(v) and v > 0]
    if len(keys) < 5:
        return
    for k in keys:
        node[k] = 1


@rules.family_rule("size_adaptor_conv")
def _rule_adaptor_conv(node: dict, ctx: shrink.ShrinkContext) -> None:
    """SeamlessM4T speech adaptor: strided convs of kernel = stride = 8 over 2x hidden channels; 2 keeps the
    kernel = stride layout."""
    if _is_int(node.get("adaptor_kernel_size")) and _is_int(node.get("adaptor_stride")):
        node["adaptor_kernel_size"] = min(node["adaptor_kernel_size"], 2)
        node["adaptor_stride"] = min(node["adaptor_stride"], 2)


# --------------------------------------------------------------------------- conv nets and vision towers


@rules.family_rule("size_lcnet_divisor")
def _rule_lcnet_divisor(node: dict, ctx: shrink.ShrinkContext) -> None:
    """PP-LCNet backbones inside detectors / table recognizers (PP-OCRv5 det, SLANet): the convs are
    ``make_divisible(width * scale, divisor)`` wide but the heads read ``int(width * scale)``; with tiny widths
    the two differ unless the divisor divides every scaled width (scale 1 where a scaled width is fractional)."""
    bb = node.get("backbone_config")
    if not (isinstance(bb, dict) and isinstance(bb.get("block_configs"), list) and _is_int(bb.get("divisor"))):
        return
    widths = [c for stage in bb["block_configs"] for b in stage for c in b[1:3] if _is_int(c)]
    stem = bb.get("stem_channels")
    widths += [stem] if _is_int(stem) else [c for c in stem or [] if _is_int(c)]
    scale = bb.get("scale", 1.0)
    if not isinstance(scale, (int, float)) or any((w * scale) % 1 for w in widths):
        bb["scale"] = scale = 1.0
    divisor = bb["divisor"]
    while divisor > 1 and any((w * scale) % divisor for w in widths):
        divisor //= 2
    bb["divisor"] = divisor


@rules.family_rule("size_position_grid")
def _rule_position_grid(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Learned position grids resampled to each image's patch grid (Kimi-K2.5 ``pos_emb_height`` x
    ``pos_emb_width``, 64 x 64): 16 x 16 covers the tiny images."""
    for k in ("pos_emb_height", "pos_emb_width"):
        _cap(node, k, 16)


@rules.family_rule("size_high_res_neck")
def _rule_high_res_neck(node: dict, ctx: shrink.ShrinkContext) -> None:
    """DeepSeek-VL hybrid: the SAM high-resolution tower's neck feeds two 3x3 convs of 2x and 4x
    ``output_channels``; 16 neck channels keep them small."""
    hr = node.get("high_res_vision_config")
    if isinstance(hr, dict):
        _cap(hr, "output_channels", 16)


@rules.family_rule("size_vqvae")
def _rule_vqvae(node: dict, ctx: shrink.ShrinkContext) -> None:
    """VQ-VAE image tokenizers (chameleon, emu3, janus): a 64-entry codebook, an attention width equal to the
    channels it attends over (``base_channels * channel_multiplier[-1]``), and no residual blocks inside the
    resolution levels (the decoder keeps ``num_res_blocks + 1`` = 1 per level, the middle blocks stay): their
    32-group norms need 32 channels, so the count of 3x3 convs is what sets the size."""
    mult = node.get("channel_multiplier")
    if not (_is_int(node.get("base_channels")) and isinstance(mult, list) and mult):
        return
    for k in ("codebook_size", "num_embeddings"):
        _cap(node, k, CODEBOOK)
    _cap(node, "num_res_blocks", 0)
    if _is_int(node.get("hidden_size")) and all(_is_int(m) for m in mult):
        node["hidden_size"] = node["base_channels"] * mult[-1]
        heads = node.get("num_attention_heads")
        if _is_int(heads):
            node["num_attention_heads"] = shrink.divisor_at_most(node["hidden_size"], heads)


#: name prefixes of the text tokens that stand for image codes in a ``vocabulary_map`` (chameleon, emu3).
IMAGE_CODE_TOKEN_PREFIXES = ("IMGIMG", "<|visual token")


@rules.family_rule("size_codebook_follows_vocabulary_map")
def _rule_codebook_follows_vocabulary_map(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Chameleon / Emu3 turn VQ codes into text tokens through the image-code tokens of ``vocabulary_map`` (one
    per code, named with the family's prefix): the VQ codebook has exactly as many entries as the tiny map has
    image-code tokens of one family."""
    vmap, vq = node.get("vocabulary_map"), node.get("vq_config")
    if not (isinstance(vmap, dict) and isinstance(vq, dict)):
        return
    codes = max(sum(1 for name in vmap if str(name).startswith(prefix)) for prefix in IMAGE_CODE_TOKEN_PREFIXES)
    for k in ("codebook_size", "num_embeddings"):
        if codes and _is_int(vq.get(k)):
            vq[k] = codes


@rules.family_rule("size_image_codebook_targets")
def _rule_image_codebook_targets(node: dict, ctx: shrink.ShrinkContext) -> None:
    """FLAVA: masked-image-modeling targets are the DALL-E image codebook's ids, so the image encoder's
    ``vocab_size`` (its MIM heads) and the codebook's output conv both follow a 64-entry codebook."""
    codebook, image = node.get("image_codebook_config"), node.get("image_config")
    if not (isinstance(codebook, dict) and _is_int(codebook.get("vocab_size"))):
        return
    codebook["vocab_size"] = min(codebook["vocab_size"], CODEBOOK)
    if isinstance(image, dict) and _is_int(image.get("vocab_size")):
        image["vocab_size"] = codebook["vocab_size"]


# --------------------------------------------------------------------------- auxiliary towers


@rules.family_rule("size_diarization_head")
def _rule_diarization_head(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Nemotron-3 diarization: the head's sub-pixel upsampler is a conv of ``hidden x (hidden * subsampling)``;
    the head keeps its full-size ratio to the audio encoder width (192 / 512)."""
    head, audio = node.get("head_config"), node.get("audio_config")
    if not (isinstance(head, dict) and isinstance(audio, dict) and _is_int(head.get("hidden_size"))
            and _is_int(head.get("subsampling_factor")) and _is_int(audio.get("hidden_size"))):
        return
    old_head, old_audio = _old(head, ctx).get("hidden_size"), _old(audio, ctx).get("hidden_size")
    if _is_int(old_head) and _is_int(old_audio) and old_head < old_audio:
        head["hidden_size"] = max(8, audio["hidden_size"] * old_head // old_audio // 8 * 8)
    if _is_int(head.get("audio_hidden_size")):
        head["audio_hidden_size"] = audio["hidden_size"]


@rules.family_rule("size_word_timestamp_tower")
def _rule_word_timestamp_tower(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Nemotron-3.5 transcribe: the word-timestamp encoder beside the ASR encoder and the LM keeps one layer."""
    wt = node.get("word_timestamp_config")
    if isinstance(wt, dict):
        _cap(wt, "num_hidden_layers", 1)


# --------------------------------------------------------------------------- vocoders


@rules.family_rule("size_hifigan_resblocks")
def _rule_hifigan_resblocks(node: dict, ctx: shrink.ShrinkContext) -> None:
    """HiFi-GAN generators (SeamlessM4T, VITS, SpeechT5): every upsampling stage runs one residual block per
    ``resblock_kernel_sizes`` entry in parallel; two of the three are kept (with their dilations)."""
    kernels, dilations = node.get("resblock_kernel_sizes"), node.get("resblock_dilation_sizes")
    if not (isinstance(node.get("upsample_rates"), list) and isinstance(kernels, list) and len(kernels) > 2):
        return
    node["resblock_kernel_sizes"] = kernels[:2]
    if isinstance(dilations, list) and len(dilations) == len(kernels):
        node["resblock_dilation_sizes"] = dilations[:2]


@rules.family_rule("size_unit_vocoder")
def _rule_unit_vocoder(node: dict, ctx: shrink.ShrinkContext) -> None:
    """SeamlessM4T (v1 / v2): the text-to-unit decoder and the unit HiFi-GAN embed ~10k discrete units (the t2u
    vocabulary is the units + ``vocoder_offset``-style specials), v2 also characters; the vocoder conditions on
    unit + language + speaker embeddings (1280 / 256 / 256 wide) and predicts durations with kernel-3 convs."""
    unit = node.get("unit_hifi_gan_vocab_size")
    old = _old(node, ctx)
    if not _is_int(unit):
        return
    node["unit_hifi_gan_vocab_size"] = min(unit, CODEBOOK)
    old_t2u, old_unit = old.get("t2u_vocab_size"), old.get("unit_hifi_gan_vocab_size")
    if _is_int(node.get("t2u_vocab_size")) and _is_int(old_t2u) and _is_int(old_unit) and old_t2u >= old_unit:
        node["t2u_vocab_size"] = node["unit_hifi_gan_vocab_size"] + (old_t2u - old_unit)
    _cap(node, "char_vocab_size", 2 * CODEBOOK)
    _cap(node, "vocoder_num_spkrs", 4)
    unit_dim = node.get("unit_embed_dim")
    for k in ("lang_embed_dim", "spkr_embed_dim"):
        if _is_int(unit_dim) and _is_int(node.get(k)):
            node[k] = min(node[k], max(8, unit_dim // 4))
    if _is_int(unit_dim):
        _cap(node, "t2u_variance_predictor_hidden_dim", max(8, unit_dim // 4))
    _cap(node, "variance_predictor_kernel_size", 1)


# --------------------------------------------------------------------------- diffusion heads


@rules.family_rule("size_timestep_frequencies")
def _rule_timestep_frequencies(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Diffusion / flow heads (VibeVoice, Pocket-TTS, Gradium Phonon): the sinusoidal timestep embedding of
    ``frequency_embedding_size`` (256) feeds a linear to the hidden size: 64 frequencies."""
    _cap(node, "frequency_embedding_size", shrink.TINY["hidden"])
