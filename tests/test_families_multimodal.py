"""The multimodal family rules (pytest_tinymodels/build/families/multimodal.py): vision-language, omni and robotics
models built exactly as fixtures are, plus every config rule of the module on plain dicts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_tinymodels.build import shrink
from pytest_tinymodels.build.families import multimodal
from rulecheck import check_rule, rules_of

SIZE_LIMIT = 2_097_152


@pytest.mark.parametrize(
    ("model_type", "class_name"),
    [
        ("blip-2", "Blip2ForImageTextRetrieval"),  # Q-Former text feed-forward, explicit text mask
        ("instructblipvideo", "InstructBlipVideoForConditionalGeneration"),  # qformer ids, frames, video tokens
        ("kosmos-2", "Kosmos2ForConditionalGeneration"),  # text next to pixels, image embedding positions
        ("pi0", "PI0ForConditionalGeneration"),  # state, denoising step, camera images + placeholders
        ("pix2struct", "Pix2StructForConditionalGeneration"),  # flattened patches with row / column ids
        ("mllama", "MllamaVisionModel"),  # tiled images, aspect ratio ids and mask
    ],
)
def test_family_builds_and_runs(model_type: str, class_name: str, tmp_path) -> None:
    pytest.importorskip("torch")
    from pytest_tinymodels import coverage
    from pytest_tinymodels.build import architectures

    row = coverage.check_fixture(architectures.resolve(model_type, class_name, None), workdir=tmp_path)
    assert row["forward"], row["reason"]
    assert row["size_bytes"] <= SIZE_LIMIT


# --------------------------------------------------------------------------- config rules on plain dicts
# rule name -> (input dict, check on the shrunk dict).  Each check must fail without its rule.

_TEXT = {"model_type": "t", "hidden_size": 4096, "num_attention_heads": 32, "num_hidden_layers": 32,
         "intermediate_size": 11008, "vocab_size": 152064}
_VIT = {"model_type": "v", "hidden_size": 1024, "num_attention_heads": 16, "num_hidden_layers": 24,
        "intermediate_size": 4096, "image_size": 224, "patch_size": 14}


def _text(**extra: object) -> dict:
    return {**_TEXT, **extra}


def _tokens_fit(d: dict, *keys: str) -> bool:
    ids = [d[k] for k in keys]
    return all(isinstance(i, int) and 0 <= i < 512 for i in ids) and len(set(ids)) == len(ids)


RULE_CASES: dict[str, tuple[dict, Callable[[dict], bool]]] = {
    "query_token_placeholders": (
        {"model_type": "blip-2", "num_query_tokens": 32, "image_token_index": None,
         "qformer_config": {"model_type": "blip_2_qformer", "hidden_size": 768, "num_attention_heads": 12,
                            "num_hidden_layers": 12, "use_qformer_text_input": False},
         "text_config": _text(model_type="opt", vocab_size=50272)},
        lambda d: d["num_query_tokens"] <= 2 and _tokens_fit(d, "image_token_index")
        and d["qformer_config"]["use_qformer_text_input"] is True,
    ),
    "code_token_ranges": (
        {"model_type": "apertus1p5", "image_token_id": 131079, "audio_token_id": 131085,
         "image_token_offset": 131272, "audio_token_offset": 262344, "text_config": _text(vocab_size=266752),
         "vision_config": {"model_type": "apertus1p5_vision_tokenizer", "codebook_size": 131072},
         "audio_config": {"model_type": "wavtokenizer_encoder", "codebook_size": 4096,
                          "decoder_hidden_size": 4, "decoder_attention_num_groups": 32}},
        lambda d: d["image_token_offset"] + d["vision_config"]["codebook_size"] == d["audio_token_offset"]
        and d["audio_token_offset"] + d["audio_config"]["codebook_size"] <= 512
        and max(d["image_token_id"], d["audio_token_id"]) < d["image_token_offset"]
        and 4 % d["audio_config"]["decoder_attention_num_groups"] == 0,
    ),
    "implicit_mrope_sections": (
        _text(model_type="ernie4_5_vl_moe_text", hidden_size=2560, num_attention_heads=20,
              rope_parameters={"rope_type": "default", "rope_theta": 500000.0}),
        lambda d: sum(d["rope_parameters"]["mrope_section"]) == 64 // 4 // 2
        and d["rope_parameters"]["mrope_section"][0] == d["rope_parameters"]["mrope_section"][1],
    ),
    "moe_intermediate_fill": (
        _text(num_experts=128, top_k_experts=8, moe_intermediate_size=None),
        lambda d: isinstance(d["moe_intermediate_size"], int) and d["moe_intermediate_size"] > 0,
    ),
    "mlp_layer_types_fill": (
        _text(model_type="deepseek_ocr2_text", n_routed_experts=64, mlp_layer_types=None),
        lambda d: d["mlp_layer_types"] == ["dense", "sparse"],
    ),
    "deepstack_window_qformer": (
        {"model_type": "granite4_vision", "downsample_rate": None, "deepstack_layer_map": None,
         "spatial_target_layers": None, "text_config": _text(), "vision_config": dict(_VIT)},
        lambda d: d["downsample_rate"] == "1/2" and d["vision_config"]["num_hidden_layers"] == 1
        and all(0 <= llm < 2 for _, llm in d["deepstack_layer_map"])
        and all(0 <= i < 2 for i in d["spatial_target_layers"]),
    ),
    "vision_start_token": (
        {"model_type": "qwen2_5_omni_thinker", "image_token_index": 151655, "video_token_index": 151656,
         "text_config": _text()},
        lambda d: _tokens_fit(d, "vision_start_token_id", "image_token_index", "video_token_index"),
    ),
    "talker_spatial_merge": (
        {"model_type": "qwen3_omni_moe", "thinker_config": {"model_type": "qwen3_omni_moe_thinker",
                                                             "vision_config": {**_VIT, "spatial_merge_size": 2}},
         "talker_config": {"model_type": "", "text_config": _text()}},
        lambda d: d["talker_config"].get("spatial_merge_size") == 2,
    ),
    "pixel_shuffle_width": (
        {**_VIT, "model_type": "llama4_vision_model", "hidden_size": 768, "intermediate_size": 5632,
         "pixel_shuffle_ratio": 0.5, "projector_input_dim": 4096},
        lambda d: d["intermediate_size"] == d["hidden_size"] * 4,
    ),
    "efficientnet_image_embeds": (
        {"model_type": "align", "projection_dim": 640, "text_config": _text(model_type="align_text_model"),
         "vision_config": {"model_type": "align_vision_model", "num_channels": 3, "image_size": 600,
                           "width_coefficient": 2.0, "depth_divisor": 8, "hidden_dim": 2560,
                           "out_channels": [16, 24, 40, 80, 112, 192, 320]}},
        lambda d: d["projection_dim"] == multimodal._round_filters(d["vision_config"],
                                                                   d["vision_config"]["out_channels"][-1]),
    ),
    "pooler_follows_hidden": (
        {**_VIT, "model_type": "vit", "pooler_output_size": 1024},
        lambda d: d["pooler_output_size"] == d["hidden_size"],
    ),
    "verdict_tokens": (
        {"model_type": "shieldgemma2", "image_token_index": 262144, "text_config": _text(vocab_size=262208)},
        lambda d: _tokens_fit(d, "yes_token_index", "no_token_index", "image_token_index"),
    ),
    "pooled_image_tokens": (  # Gemma 3: 256 pooled tokens cannot tile a 4 x 4 tiny patch grid
        {"model_type": "gemma3", "mm_tokens_per_image": 256, "vision_config": {**_VIT, "model_type": "siglip_vision_model"},
         "text_config": _text(model_type="gemma3_text")},
        lambda d: (d["vision_config"]["image_size"] // d["vision_config"]["patch_size"])
        % int(d["mm_tokens_per_image"] ** 0.5) == 0 and int(d["mm_tokens_per_image"] ** 0.5) ** 2 == d["mm_tokens_per_image"],
    ),
    "tiny_grid_pinpoints": (  # LLaVA-NeXT: tiles are multiples of the tiny tower's image size
        {"model_type": "llava_next", "image_grid_pinpoints": [[336, 672], [672, 336], [672, 672]],
         "vision_config": {**_VIT, "model_type": "clip_vision_model", "image_size": 336},
         "text_config": _text(model_type="llama")},
        lambda d: all(x % d["vision_config"]["image_size"] == 0 and x <= 4 * d["vision_config"]["image_size"]
                      for p in d["image_grid_pinpoints"] for x in p),
    ),
    "sam3_width": (
        {"model_type": "sam3", "vision_config": {"model_type": "sam3_vision_model", "fpn_hidden_size": 256,
                                                 "backbone_config": dict(_VIT)},
         "geometry_encoder_config": {"model_type": "sam3_geometry_encoder", "hidden_size": 256, "roi_size": 7,
                                     "num_attention_heads": 8, "num_layers": 3}},
        lambda d: d["vision_config"]["fpn_hidden_size"] == 32 == d["vision_config"]["backbone_config"]["hidden_size"]
        and d["geometry_encoder_config"]["roi_size"] == 2 == 64 // d["geometry_encoder_config"]["hidden_size"],
    ),
}


def test_every_multimodal_rule_has_a_case() -> None:
    assert rules_of(multimodal) == set(RULE_CASES)


@pytest.mark.parametrize("rule", sorted(RULE_CASES))
def test_named_rule(rule: str, monkeypatch: pytest.MonkeyPatch) -> None:
    check_rule(rule, *RULE_CASES[rule], monkeypatch)


def test_rules_leave_other_families_alone() -> None:
    plain = _text(model_type="llama", rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    with_rules = shrink.shrink_dict(plain, vocab_size=512)
    assert "mrope_section" not in with_rules["rope_parameters"]
    assert {"vision_start_token_id", "yes_token_index", "mlp_layer_types"}.isdisjoint(with_rules)


def test_scaled_sections_keep_height_and_width_equal() -> None:
    assert multimodal._scaled_sections([22, 22, 20], 8) == [2, 2, 4]
    assert sum(multimodal._scaled_sections([16, 24, 24], 32)) == 32


def test_model_type_values_name_real_model_types() -> None:
    pytest.importorskip("transformers")
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    ours = {"t5gemma2_text", "step3p5", "qwen3_omni_moe_talker_text", "kosmos-2", "pi0", "pix2struct_vision_model",
            "align_vision_model", *multimodal.NARROW_VISION_TOWERS}
    assert ours <= set(multimodal.rules.MODEL_TYPE_CONFIG)
    assert ours <= set(CONFIG_MAPPING_NAMES), ours - set(CONFIG_MAPPING_NAMES)
