"""The size family rules (pytest_tinymodels/build/families/size.py): models that built and ran but whose weights
were over the 2 MB budget, built exactly as fixtures are, plus every config rule of the module on plain dicts."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from pytest_tinymodels.build import shrink
from pytest_tinymodels.build.families import size
from rulecheck import check_rule, rules_of

SIZE_LIMIT = 2_097_152


@pytest.mark.parametrize(
    ("model_type", "class_name"),
    [
        ("csm", "CsmForConditionalGeneration"),  # 32 codebooks of a 2051-id audio vocabulary (19 MB before)
        ("univnet", "UnivNetModel"),  # kernel predictor emitting hidden^2 x kernel x layers weights (59 MB)
        ("vibevoice", "VibeVoiceForConditionalGeneration"),  # 6-stage codecs, stride kernels (19 MB)
        ("seamless_m4t_v2", "SeamlessM4Tv2Model"),  # five stacks, unit / char vocabularies, vocoder (4.5 MB)
        ("janus", "JanusForConditionalGeneration"),  # VQ-VAE of 32-channel convs, image-token head (3.1 MB)
        ("musicgen", "MusicgenForConditionalGeneration"),  # decoder over the codec's codebook (3.2 MB)
    ],
)
def test_family_builds_and_runs(model_type: str, class_name: str, tmp_path) -> None:
    pytest.importorskip("torch")
    from pytest_tinymodels import coverage
    from pytest_tinymodels.build import architectures

    row = coverage.check_fixture(architectures.resolve(model_type, class_name, None), workdir=tmp_path)
    assert row["forward"], row["reason"]
    assert row["size_bytes"] <= SIZE_LIMIT, row["reason"]


# --------------------------------------------------------------------------- config rules on plain dicts
# rule name -> (input dict, check on the shrunk dict).  Each check must fail without its rule.


def _make_divisible(value: float, divisor: int) -> int:
    """PP-LCNet's channel rounding (modeling_pp_lcnet.make_divisible)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


_LCNET_BLOCKS = [[[3, 16, 32, 1, False]], [[3, 32, 64, 2, False], [3, 64, 64, 1, False]],
                 [[3, 64, 128, 2, False], [3, 128, 128, 1, False]],
                 [[3, 128, 256, 2, False], [5, 256, 256, 1, False]], [[5, 256, 512, 2, True], [5, 512, 512, 1, True]]]


def _lcnet_heads_match(d: dict) -> bool:
    bb = d["backbone_config"]
    outs = [b[2] for stage in bb["block_configs"] for b in stage]
    return all(_make_divisible(w * bb["scale"], bb["divisor"]) == int(w * bb["scale"]) for w in outs)


_ENCODER = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096}

RULE_CASES: dict[str, tuple[dict, Callable[[dict], bool]]] = {
    "size_codec_strides": (
        {"model_type": "vibevoice_acoustic_tokenizer", "hidden_size": 64, "num_filters": 32, "num_lstm_layers": 2,
         "downsampling_ratios": [2, 2, 4, 5, 5, 8], "depths": [3, 3, 3, 3, 3, 3, 8]},
        lambda d: d["downsampling_ratios"] == [8, 5, 5, 4, 2, 2] and d["num_lstm_layers"] == 1,
    ),
    "size_kernel_predictor": (
        {"model_type": "univnet", "model_in_channels": 64, "model_hidden_channels": 32, "num_mel_bins": 100,
         "kernel_predictor_hidden_channels": 64, "kernel_predictor_num_blocks": 3},
        lambda d: d["model_hidden_channels"] <= 8 and d["model_in_channels"] == d["kernel_predictor_hidden_channels"]
        <= 16,
    ),
    "size_audio_codebooks": (
        {"model_type": "higgs_audio_v2", **_ENCODER, "vocab_size": 128256, "num_codebooks": 8,
         "codebook_size": 1024, "audio_stream_bos_id": 1024, "audio_stream_eos_id": 1025},
        lambda d: (d["codebook_size"], d["audio_stream_bos_id"], d["audio_stream_eos_id"]) == (64, 64, 65),
    ),
    "size_codec_decoder_vocab": (
        {"model_type": "musicgen",
         "audio_encoder": {"model_type": "encodec", "codebook_size": 2048, "num_filters": 64, "hidden_size": 128,
                           "upsampling_ratios": [8, 5, 4, 4]},
         "decoder": {"model_type": "musicgen_decoder", **_ENCODER, "vocab_size": 2048, "num_codebooks": 4,
                     "pad_token_id": 2048, "bos_token_id": 2048}},
        lambda d: d["decoder"]["vocab_size"] == d["audio_encoder"]["codebook_size"] == d["decoder"]["pad_token_id"]
        == d["decoder"]["bos_token_id"],
    ),
    "size_backbone_depth_codebooks": (
        {"model_type": "csm", **_ENCODER, "vocab_size": 2051, "text_vocab_size": 128256, "num_codebooks": 32,
         "codebook_pad_token_id": 2050, "codebook_eos_token_id": 0,
         "depth_decoder_config": {"model_type": "csm_depth_decoder_model", **_ENCODER, "num_hidden_layers": 4,
                                  "num_codebooks": 32, "vocab_size": 2051, "max_position_embeddings": 33},
         "codec_config": {"model_type": "mimi", "hidden_size": 512, "num_hidden_layers": 8,
                          "num_attention_heads": 8, "codebook_size": 2048, "num_quantizers": 32, "num_filters": 64,
                          "upsampling_ratios": [8, 6, 5, 4]}},
        lambda d: (d["num_codebooks"] == d["depth_decoder_config"]["num_codebooks"] == 8
                   and d["vocab_size"] == d["depth_decoder_config"]["vocab_size"]
                   == d["codec_config"]["codebook_size"] + 3 == d["codebook_pad_token_id"] + 1
                   and d["depth_decoder_config"]["max_position_embeddings"] == 9
                   and d["codec_config"]["num_quantizers"] >= 8),
    ),
    "size_conv_stem": (
        {"model_type": "parakeet_encoder", **_ENCODER, "subsampling_conv_channels": 256, "num_mel_bins": 128},
        lambda d: d["subsampling_conv_channels"] <= 16,
    ),
    "size_head_dims": (
        {"model_type": "granite_speech_encoder", "hidden_dim": 1024, "num_heads": 8, "dim_head": 128,
         "num_layers": 10, "feedforward_mult": 4},
        lambda d: d["dim_head"] * d["num_heads"] == d["hidden_dim"],
    ),
    "size_resampler": (
        {"model_type": "evolla", **_ENCODER, "resampler_depth": 6, "resampler_heads": 8, "resampler_ff_mult": 4,
         "aligner_ffn_mult": 4},
        lambda d: d["resampler_depth"] <= 2 and d["resampler_heads"] <= 4 and d["resampler_ff_mult"] == 2
        and d["aligner_ffn_mult"] == 2,
    ),
    "size_block_type_list": (
        {"model_type": "nemotron_h", "hidden_size": 2688, "num_attention_heads": 32,
         "layers_block_type": ["mamba", "moe"] * 10 + ["attention", "moe"] * 3},
        lambda d: d["layers_block_type"] == ["mamba", "moe", "attention"],
    ),
    "size_duplicate_layers": (
        {"model_type": "dots3_note_vision_encoder", **_ENCODER, "num_hidden_layers": 8, "num_local_experts": 64,
         "mlp_layer_types": ["dense"] * 4 + ["sparse"] * 4,
         "per_layer_config": {str(i): {"num_local_experts": 8 * (i - 3)} for i in range(4, 8)}},
        lambda d: d["num_hidden_layers"] == 2 and d["mlp_layer_types"] == ["dense", "sparse"]
        and len(d["per_layer_config"]) == 1,
    ),
    "size_tower_layers": (
        {"model_type": "seamless_m4t", "hidden_size": 1024, "encoder_attention_heads": 16,
         "decoder_attention_heads": 16, "encoder_layers": 24, "decoder_layers": 24, "speech_encoder_layers": 24,
         "t2u_encoder_layers": 6, "t2u_decoder_layers": 6},
        lambda d: {d[k] for k in ("encoder_layers", "decoder_layers", "speech_encoder_layers", "t2u_encoder_layers",
                                  "t2u_decoder_layers")} == {1},
    ),
    "size_adaptor_conv": (
        {"model_type": "seamless_m4t", "hidden_size": 1024, "adaptor_kernel_size": 8, "adaptor_stride": 8},
        lambda d: d["adaptor_kernel_size"] == d["adaptor_stride"] == 2,
    ),
    "size_position_grid": (
        {"model_type": "kimi_k25_vision", "hidden_size": 1152, "num_attention_heads": 16, "num_hidden_layers": 27,
         "patch_size": 14, "pos_emb_height": 64, "pos_emb_width": 64},
        lambda d: d["pos_emb_height"] == d["pos_emb_width"] == 16,
    ),
    "size_high_res_neck": (
        {"model_type": "deepseek_vl_hybrid",
         "high_res_vision_config": {"model_type": "sam_vision_model", "hidden_size": 768, "output_channels": 256,
                                    "num_hidden_layers": 12, "num_attention_heads": 12}},
        lambda d: d["high_res_vision_config"]["output_channels"] <= 16,
    ),
    "size_vqvae": (
        {"model_type": "emu3_vqgan", "codebook_size": 32768, "embed_dim": 4, "base_channels": 256,
         "channel_multiplier": [1, 2, 2, 4], "num_res_blocks": 2, "hidden_size": 1024, "num_attention_heads": 1,
         "attn_resolutions": [3]},
        lambda d: d["codebook_size"] == 64 and d["num_res_blocks"] == 0
        and d["hidden_size"] == d["base_channels"] * d["channel_multiplier"][-1],
    ),
    "size_codebook_follows_vocabulary_map": (
        {"model_type": "chameleon", **_ENCODER, "vocab_size": 65536, "vocabulary_map": None,
         "vq_config": {"model_type": "chameleon_vqgan", "num_embeddings": 8192, "embed_dim": 256,
                       "base_channels": 128, "channel_multiplier": [1, 1, 2, 2, 4], "num_res_blocks": 2}},
        lambda d: d["vq_config"]["num_embeddings"] == sum(1 for name in d["vocabulary_map"]
                                                          if name.startswith("IMGIMG")),
    ),
    "size_image_codebook_targets": (
        {"model_type": "flava",
         "image_codebook_config": {"model_type": "flava_image_codebook", "vocab_size": 8192, "hidden_size": 256,
                                   "num_groups": 4, "num_blocks_per_group": 2},
         "image_config": {"model_type": "flava_image_model", **_ENCODER, "vocab_size": 8192}},
        lambda d: d["image_codebook_config"]["vocab_size"] == d["image_config"]["vocab_size"] == 64,
    ),
    "size_diarization_head": (
        {"model_type": "nemotron3_diarization",
         "audio_config": {"model_type": "nemotron3_diarization_audio", "hidden_size": 512,
                          "num_hidden_layers": 17, "num_attention_heads": 8},
         "head_config": {"hidden_size": 192, "audio_hidden_size": 512, "subsampling_factor": 8, "model_type": ""}},
        lambda d: d["head_config"]["hidden_size"] <= 24
        and d["head_config"]["audio_hidden_size"] == d["audio_config"]["hidden_size"],
    ),
    "size_word_timestamp_tower": (
        {"model_type": "nemo_speechlm",
         "word_timestamp_config": {"model_type": "nemotron3_5_transcribe_word_timestamp", **_ENCODER,
                                   "num_hidden_layers": 4}},
        lambda d: d["word_timestamp_config"]["num_hidden_layers"] == 1,
    ),
    "size_hifigan_resblocks": (
        {"model_type": "speecht5_hifigan", "model_in_dim": 80, "upsample_initial_channel": 512,
         "upsample_rates": [4, 4, 4, 4], "upsample_kernel_sizes": [8, 8, 8, 8], "resblock_kernel_sizes": [3, 7, 11],
         "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]]},
        lambda d: d["resblock_kernel_sizes"] == [3, 7] and len(d["resblock_dilation_sizes"]) == 2,
    ),
    "size_unit_vocoder": (
        {"model_type": "seamless_m4t_v2", "hidden_size": 1024, "t2u_vocab_size": 10082,
         "unit_hifi_gan_vocab_size": 10000, "char_vocab_size": 10943, "vocoder_num_spkrs": 200,
         "unit_embed_dim": 1280, "lang_embed_dim": 256, "spkr_embed_dim": 256, "variance_predictor_kernel_size": 3,
         "t2u_variance_predictor_hidden_dim": 256},
        lambda d: (d["unit_hifi_gan_vocab_size"], d["t2u_vocab_size"]) == (64, 64 + 82) and d["char_vocab_size"] <= 128
        and d["vocoder_num_spkrs"] == 4 and d["variance_predictor_kernel_size"] == 1
        and d["lang_embed_dim"] < d["unit_embed_dim"],
    ),
    "size_timestep_frequencies": (
        {"model_type": "vibevoice_diffusion", "hidden_size": 1536, "latent_size": 64, "num_hidden_layers": 4,
         "frequency_embedding_size": 256},
        lambda d: d["frequency_embedding_size"] == 64,
    ),
    "size_lcnet_divisor": (
        {"model_type": "pp_ocrv5_mobile_det", "neck_out_channels": 96,
         "backbone_config": {"model_type": "pp_lcnet_v3", "scale": 0.75, "divisor": 16, "stem_channels": 16,
                             "block_configs": _LCNET_BLOCKS, "out_indices": [2, 3, 4, 5]}},
        _lcnet_heads_match,
    ),
}


def test_every_size_rule_has_a_case() -> None:
    assert rules_of(size) == set(RULE_CASES)


@pytest.mark.parametrize("rule", sorted(RULE_CASES))
def test_named_rule(rule: str, monkeypatch: pytest.MonkeyPatch) -> None:
    check_rule(rule, *RULE_CASES[rule], monkeypatch, what="small")


def test_codec_strides_keep_the_hop_length() -> None:
    config = RULE_CASES["size_codec_strides"][0]
    assert math.prod(shrink.shrink_dict(config)["downsampling_ratios"]) == math.prod(config["downsampling_ratios"])


def test_rules_leave_other_families_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = {"model_type": "llama", **_ENCODER, "vocab_size": 32000}
    encodec = {"model_type": "encodec", "num_filters": 32, "upsampling_ratios": [8, 5, 4, 2], "hidden_size": 128}
    with_rules = [shrink.shrink_dict(c, vocab_size=512) for c in (plain, encodec)]
    for name in [n for n, rule in size.rules.FAMILY_RULES.items() if rule.__module__ == size.__name__]:
        monkeypatch.setitem(size.rules.FAMILY_RULES, name, lambda node, ctx: None)  # in place: order kept
    assert with_rules == [shrink.shrink_dict(c, vocab_size=512) for c in (plain, encodec)]  # 4-stage codec: as is


def test_size_values_name_real_model_types() -> None:
    pytest.importorskip("transformers")
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    assert set(size.SIZE_VALUES) <= set(CONFIG_MAPPING_NAMES), set(size.SIZE_VALUES) - set(CONFIG_MAPPING_NAMES)


@pytest.mark.parametrize(("model_type", "class_name"), [("emu3", "Emu3Model"), ("chameleon", "ChameleonModel")])
def test_vq_codes_map_to_text_tokens(model_type: str, class_name: str) -> None:
    """Images go through the VQ-VAE and its codes through the vocabulary map to text-token ids."""
    torch = pytest.importorskip("torch")
    import transformers

    config = shrink.shrink_config(shrink.base_config(model_type))
    model = getattr(transformers, class_name)(config).eval()
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        if model_type == "emu3":
            tokens = model.get_image_tokens(pixels, torch.tensor([[32, 32]]))
        else:
            tokens = model.get_image_tokens(pixels)
    assert tokens.numel() and int(tokens.max()) < config.get_text_config().vocab_size


def test_size_values_reach_the_shrunk_config() -> None:
    """SIZE_VALUES go through ``rules.model_type_values`` (merged with other families' values)."""
    d = shrink.shrink_dict({"model_type": "perceiver", "d_model": 768, "d_latents": 1280, "num_latents": 256,
                            "num_blocks": 1, "num_self_attends_per_block": 26,
                            "cross_attention_shape_for_attention": "kv", "num_cross_attention_heads": 8})
    assert d["cross_attention_shape_for_attention"] == "q"  # size.py
    assert d["num_cross_attention_heads"] == 1  # vision.py, same model type
