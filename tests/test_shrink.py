"""shrink.py: generic rules, every named family rule, and real tiny models of representative families."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from pytest_tinymodels.build import shrink
from pytest_tinymodels.build.architectures import ArchitectureError, resolve
from pytest_tinymodels.build.shrink import ShrinkError, base_config, check_config, shrink_config, shrink_dict
from rulecheck import check_rule, rules_of

LLM = {"model_type": "x", "hidden_size": 4096, "num_attention_heads": 32, "num_hidden_layers": 32,
       "intermediate_size": 11008, "vocab_size": 32000}


def _llm(**extra):
    return {**LLM, **extra}


# --------------------------------------------------------------------------- named family rules
# name -> (input dict, check on the shrunk dict).  Each check must fail without its rule.
RULE_CASES = {
    "mrope_sections": (
        _llm(rope_parameters={"rope_type": "default", "mrope_section": [16, 24, 24]}),
        lambda d: sum(d["rope_parameters"]["mrope_section"]) == 16 // 2
        and len(d["rope_parameters"]["mrope_section"]) == 3,
    ),
    "rope_factor_lists": (
        _llm(rope_parameters={"rope_type": "longrope", "short_factor": [1.0] * 64, "long_factor": [2.0] * 64,
                              "original_max_position_embeddings": 4096}),
        lambda d: len(d["rope_parameters"]["short_factor"]) == 8 == len(d["rope_parameters"]["long_factor"]),
    ),
    "token_id_lists": (
        _llm(suppress_tokens=[1, 31999], begin_suppress_tokens=[220, 31000]),
        lambda d: d["suppress_tokens"] == [1] and d["begin_suppress_tokens"] == [220],
    ),
    "layer_period_offsets": (
        _llm(attn_layer_period=8, attn_layer_offset=4, expert_layer_period=2, expert_layer_offset=1),
        lambda d: d["attn_layer_offset"] < d["attn_layer_period"] <= d["num_hidden_layers"],
    ),
    "mla": (
        _llm(hidden_size=7168, num_attention_heads=128, num_key_value_heads=128, kv_lora_rank=512, q_lora_rank=1536,
             qk_rope_head_dim=64, qk_nope_head_dim=128, v_head_dim=128, head_dim=64),
        lambda d: d["num_key_value_heads"] == d["num_attention_heads"] and d["head_dim"] == d["qk_rope_head_dim"]
        and d["qk_rope_head_dim"] % 2 == 0,
    ),
    "mamba_heads": (
        {"model_type": "m", "hidden_size": 4096, "expand": 2, "num_heads": 128, "head_dim": 64, "state_size": 128,
         "num_hidden_layers": 64},
        lambda d: d["num_heads"] * d["head_dim"] == d["expand"] * d["hidden_size"],
    ),
    "per_layer_overrides": (
        _llm(num_hidden_layers=6, head_dim=128, layer_types=["sliding_attention"] * 5 + ["full_attention"],
             per_layer_config={"05": {"head_dim": 512}}),
        lambda d: list(d["per_layer_config"].values()) == [{"head_dim": d["head_dim"]}],
    ),
    "kv_shared_layers": (
        _llm(num_hidden_layers=35, num_kv_shared_layers=15,
             layer_types=(["sliding_attention"] * 4 + ["full_attention"]) * 7),
        lambda d: d["num_kv_shared_layers"] <= d["num_hidden_layers"] - 2,
    ),
    "cyclic_block_pattern": (
        _llm(num_hidden_layers=26, block_types=["recurrent", "recurrent", "attention"]),
        lambda d: d["num_hidden_layers"] == 3,
    ),
    "layer_parts": (
        _llm(num_hidden_layers=72, n_input_layers=16, n_recurrent_layers=40, n_output_layers=16),
        lambda d: d["n_input_layers"] + d["n_recurrent_layers"] + d["n_output_layers"] == d["num_hidden_layers"],
    ),
    "rotary_dim": (
        {"model_type": "g", "n_embd": 4096, "n_head": 16, "n_layer": 28, "rotary_dim": 64, "vocab_size": 50400},
        lambda d: d["rotary_dim"] <= d["n_embd"] // d["n_head"] and d["rotary_dim"] % 2 == 0,
    ),
    "axial_positions": (
        _llm(hidden_size=256, num_attention_heads=2, axial_pos_embds_dim=[64, 192], axial_pos_shape=[64, 64],
             max_position_embeddings=4096, lsh_attn_chunk_length=64, local_attn_chunk_length=64),
        lambda d: sum(d["axial_pos_embds_dim"]) == d["hidden_size"]
        and d["axial_pos_shape"][0] * d["axial_pos_shape"][1] == d["max_position_embeddings"],
    ),
    "fill_missing": (
        _llm(head_dim=None, num_key_value_heads=None, num_experts=None, num_experts_per_tok=None),
        lambda d: d["head_dim"] == 16 and d["num_key_value_heads"] == 2 and d["num_experts_per_tok"] == 2,
    ),
    "hybrid_attention_layer": (
        _llm(mamba_d_state=256, mamba_n_heads=128, attn_layer_indices=None),
        lambda d: d["attn_layer_indices"] == [d["num_hidden_layers"] - 1],
    ),
    "rope_per_layer_type": (
        _llm(layer_types=["full_attention"] * 32, rope_parameters={}),
        lambda d: set(d["rope_parameters"]) == {"full_attention"},
    ),
    "recurrent_stacks": (
        _llm(H_cycles=2, L_cycles=3, L_bp_cycles=[2], num_layers_per_stack=None, num_hidden_layers=128),
        lambda d: (d["H_cycles"], d["L_cycles"], d["L_bp_cycles"], d["num_hidden_layers"]) == (1, 1, [1], 1),
    ),
    "default_language": (
        _llm(languages=["en_XX", "de_DE"], default_language=None),
        lambda d: d["default_language"] == "en_XX",
    ),
    "attn_config_rope": (
        _llm(rope_parameters={"rope_theta": 500000.0}, attn_config={"kv_n_heads": 8, "clip_qkv": None}),
        lambda d: d["attn_config"]["rope_theta"] == 500000.0 and d["attn_config"]["clip_qkv"] is not None,
    ),
    "indexer_defaults": (
        _llm(num_hidden_layers=4, layer_types=["linear_attention", "indexed_attention"] * 2, indexer_n_heads=None,
             indexer_kv_heads=None, indexer_head_dim=None, indexer_budget=None, indexer_compress_ratio=None),
        lambda d: all(d[k] for k in d if k.startswith("indexer_")),
    ),
    "index_heads": (
        _llm(num_key_value_heads=8, index_num_heads=64),
        lambda d: d["index_num_heads"] <= d["num_attention_heads"] // d["num_key_value_heads"],
    ),
    "conv_layer_types": (
        _llm(conv_L_cache=3, layer_types=None),
        lambda d: d["layer_types"] is not None and len(d["layer_types"]) == d["num_hidden_layers"]
        and "conv" in d["layer_types"],
    ),
    "dim_factors": (
        _llm(qk_dim_factor=0.5),
        lambda d: (d["hidden_size"] * d["qk_dim_factor"]) % 64 == 0,
    ),
    "backbone_stages": (
        {"model_type": "v", "hidden_size": 768, "num_attention_heads": 12, "num_hidden_layers": 12,
         "stage_names": ["stem"] + [f"stage{i}" for i in range(1, 13)], "out_features": ["stage12"],
         "out_indices": [12]},
        lambda d: d["stage_names"] == ["stem", "stage1", "stage2"] and d["out_indices"] == [2]
        and d["out_features"] == ["stage2"],
    ),
    "group_norm_groups": (
        {"model_type": "r", "hidden_sizes": [256, 512, 1024, 2048], "depths": [3, 4, 6, 3], "num_groups": 32},
        lambda d: min(d["hidden_sizes"]) % d["num_groups"] == 0,
    ),
    "time_series_lengths": (
        {"model_type": "t", "d_model": 64, "prediction_length": None, "context_length": None,
         "lags_sequence": [1, 2, 3, 4, 5, 6, 7]},
        lambda d: d["prediction_length"] and d["context_length"] and max(d["lags_sequence"]) <= 3,
    ),
    "shared_hybrid_blocks": (
        _llm(num_hidden_layers=12, layers_block_type=["linear_attention"] * 5 + ["hybrid"] + ["linear_attention"] * 6),
        lambda d: d["layers_block_type"].count("hybrid") >= 2 and len(d["layers_block_type"]) == d["num_hidden_layers"],
    ),
    "attention_hidden_size": (
        _llm(hidden_size=3712, num_attention_heads=16, attention_hidden_size=7424, attention_head_dim=464),
        lambda d: d["attention_hidden_size"] == 2 * d["hidden_size"]
        and d["attention_head_dim"] * d["num_attention_heads"] == d["attention_hidden_size"],
    ),
    "channel_multipliers": (
        {"model_type": "vq", "base_channels": 128, "channel_multiplier": [1, 1, 2, 2, 4], "num_res_blocks": 2},
        lambda d: d["channel_multiplier"] == [1] * 5,
    ),
    "mel_source_positions": (
        {"model_type": "w", "d_model": 384, "encoder_layers": 4, "num_mel_bins": 80, "max_source_positions": 1500},
        lambda d: 2 * d["max_source_positions"] * 160 % 16000 == 0,
    ),
    "depth_per_stage": (
        {"model_type": "c", "embed_dim": [64, 192, 384], "depth": [1, 2, 10], "num_heads": [1, 3, 6]},
        lambda d: all(x > i for i, x in enumerate(d["depth"])),
    ),
    "feature_layer_indices": (
        {"model_type": "vlm", "vision_config": {"model_type": "v", "hidden_size": 1024, "num_hidden_layers": 24,
                                                "num_attention_heads": 16},
         "adapter_config": {"model_type": "a", "vision_feature_layer": [24, 18]}},
        lambda d: all(-3 <= i <= 2 for i in d["adapter_config"]["vision_feature_layer"])
        and len(set(d["adapter_config"]["vision_feature_layer"])) == 2,
    ),
    "window_stages": (
        {"model_type": "swin", "image_size": 224, "patch_size": 4, "window_size": 7, "embed_dim": 96,
         "depths": [2, 2, 6, 2], "num_heads": [3, 6, 12, 24]},
        lambda d: (d["image_size"] // d["patch_size"]) // 8 == d["window_size"] >= 2,
    ),
    "fixed_stride_stem": (
        {"model_type": "levit", "image_size": 224, "patch_size": 16, "hidden_sizes": [128, 256, 384],
         "num_attention_heads": [4, 8, 12], "depths": [4, 4, 4], "down_ops": [["Subsample", 16, 8, 4, 2, 2]]},
        lambda d: d["patch_size"] == 16 and d["image_size"] // d["patch_size"] >= 4,
    ),
    "backbone_channels": (
        {"model_type": "det", "d_model": 256, "encoder_in_channels": [512, 1024, 2048],
         "backbone_config": {"model_type": "resnet", "hidden_sizes": [256, 512, 1024, 2048], "depths": [3, 4, 6, 3],
                             "out_indices": [2, 3, 4]}},
        lambda d: d["encoder_in_channels"] == d["backbone_config"]["hidden_sizes"][1:],
    ),
    "codec_channels": (
        {"model_type": "codec", "hidden_size": 128, "num_filters": 32, "upsampling_ratios": [8, 5, 4, 2],
         "codebook_size": 1024, "target_bandwidths": [1.5, 3.0, 6.0, 12.0, 24.0]},
        lambda d: d["num_filters"] <= 4 and d["codebook_size"] <= 64 and len(d["target_bandwidths"]) == 2,
    ),
    "width_multipliers": (
        {"model_type": "effnet", "width_coefficient": 2.0, "depth_coefficient": 3.1, "hidden_dim": 2560},
        lambda d: d["width_coefficient"] <= 0.25 and d["depth_coefficient"] <= 0.5 and d["hidden_dim"] == 320,
    ),
    "global_blocks": (
        {"model_type": "hiera", "hidden_size": 96, "blocks_per_stage": [1, 2, 7, 2],
         "embed_dim_per_stage": [96, 192, 384, 768], "num_attention_heads_per_stage": [1, 2, 4, 8],
         "global_attention_blocks": [5, 7, 9]},
        lambda d: all(b < sum(d["blocks_per_stage"]) for b in d["global_attention_blocks"]),
    ),
    "neck_feature_count": (
        {"model_type": "dpt", "hidden_size": 768, "num_attention_heads": 12, "num_hidden_layers": 12,
         "neck_hidden_sizes": [96, 192, 384, 768], "backbone_out_indices": [2, 5, 8, 11]},
        lambda d: len(set(d["backbone_out_indices"])) == 4 and max(d["backbone_out_indices"]) < d["num_hidden_layers"],
    ),
    "layout_box_dims": (
        {"model_type": "layoutlmv3", "hidden_size": 768, "num_attention_heads": 12, "num_hidden_layers": 12,
         "coordinate_size": 128, "shape_size": 128},
        lambda d: 4 * d["coordinate_size"] + 2 * d["shape_size"] == d["hidden_size"],
    ),
    "xpath_embeddings": (
        {"model_type": "markuplm", "hidden_size": 768, "num_attention_heads": 12, "num_hidden_layers": 12,
         "max_depth": 50, "xpath_unit_hidden_size": 32, "max_xpath_tag_unit_embeddings": 256,
         "max_xpath_subs_unit_embeddings": 1024},
        lambda d: d["max_depth"] * d["xpath_unit_hidden_size"] * d["max_xpath_subs_unit_embeddings"] <= 4096,
    ),
    "pixel_window": (
        {"model_type": "qwen2_5_vl_vision", "hidden_size": 1280, "num_heads": 16, "depth": 32, "patch_size": 14,
         "spatial_merge_size": 2, "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31]},
        lambda d: d["window_size"] % (d["patch_size"] * d["spatial_merge_size"]) == 0
        and d["window_size"] >= d["patch_size"] * d["spatial_merge_size"],
    ),
    "vocabulary_map": (
        _llm(vocabulary_map=None),
        lambda d: d["vocabulary_map"]["<image>"] < d["vocab_size"]
        and all(v < d["vocab_size"] for v in d["vocabulary_map"].values()),
    ),
    "six_part_layout": (
        {"model_type": "lilt", "hidden_size": 768, "num_attention_heads": 12, "num_hidden_layers": 12,
         "channel_shrink_ratio": 4},
        lambda d: d["hidden_size"] % (6 * 4) == 0 and d["hidden_size"] % d["num_attention_heads"] == 0,
    ),
    "output_stride": (
        {"model_type": "mobilevitv2", "image_size": 256, "output_stride": 32, "hidden_sizes": [64, 128, 256]},
        lambda d: d["image_size"] >= 2 * d["output_stride"],
    ),
}


def test_every_named_rule_has_a_test():
    """Every generic named rule of shrink.py has a case here (family modules test their own rules)."""
    assert set(RULE_CASES) == rules_of(shrink)


@pytest.mark.parametrize("rule", sorted(RULE_CASES))
def test_named_rule(rule, monkeypatch):
    check_rule(rule, *RULE_CASES[rule], monkeypatch)


# --------------------------------------------------------------------------- generic rules


def test_generic_text_dims():
    d = shrink_dict(_llm(num_key_value_heads=8, max_position_embeddings=131072, head_dim=128), vocab_size=300)
    assert (d["hidden_size"], d["num_attention_heads"], d["num_key_value_heads"], d["head_dim"]) == (64, 4, 2, 16)
    assert d["num_hidden_layers"] == 2 and d["intermediate_size"] == 128
    assert d["max_position_embeddings"] == 256 and d["vocab_size"] == 300


def test_multi_query_stays_multi_query():
    d = shrink_dict({"model_type": "f", "hidden_size": 4544, "num_attention_heads": 71, "num_kv_heads": 1,
                     "num_hidden_layers": 32})
    assert d["num_kv_heads"] == 1 and d["hidden_size"] % d["num_attention_heads"] == 0


def test_per_layer_lists_keep_one_layer_of_each_type():
    d = shrink_dict(_llm(num_hidden_layers=12, layer_types=["sliding_attention"] * 5 + ["full_attention"] + [
        "sliding_attention"] * 6, mlp_layer_types=["dense"] + ["sparse"] * 11))
    assert d["num_hidden_layers"] == len(d["layer_types"]) == len(d["mlp_layer_types"])
    assert set(d["layer_types"]) == {"sliding_attention", "full_attention"}
    assert set(d["mlp_layer_types"]) == {"dense", "sparse"}


def test_layer_index_lists_are_remapped():
    d = shrink_dict({"model_type": "sam", "hidden_size": 768, "num_attention_heads": 12, "num_hidden_layers": 12,
                     "global_attn_indexes": [2, 5, 8, 11]})
    assert all(0 <= i < d["num_hidden_layers"] for i in d["global_attn_indexes"])
    assert d["global_attn_indexes"]  # the global-attention kind of layer is kept


def test_layer_source_lists_point_at_kept_layers():
    """``kv_source_layers[i]`` names the layer whose cache layer i reads: cut with the layers, values remapped."""
    types = ["sliding_attention"] * 6 + ["indexed_attention"] * 6
    d = shrink_dict(_llm(num_hidden_layers=12, num_key_value_heads=8, layer_types=types, index_layers=[6, 8, 10],
                         kv_source_layers=list(range(8)) + [7, 7, 7, 7], index_num_heads=32))
    n = d["num_hidden_layers"]
    assert len(d["layer_types"]) == len(d["kv_source_layers"]) == n
    assert all(0 <= i < n and d["kv_source_layers"][i] <= j
               for j, i in enumerate(d["kv_source_layers"]))
    assert d["index_layers"] and all(d["layer_types"][i] == "indexed_attention" for i in d["index_layers"])


def test_kolibri_builds_consistent_layers():
    transformers = pytest.importorskip("transformers")
    if "kolibri1_1" not in transformers.models.auto.configuration_auto.CONFIG_MAPPING_NAMES:
        pytest.skip("this transformers has no Kolibri1_1")
    cfg = shrink_config(transformers.AutoConfig.for_model("kolibri1_1"))
    n = cfg.num_hidden_layers
    assert len(cfg.layer_types) == len(cfg.kv_source_layers) == n
    assert all(0 <= src <= i for i, src in enumerate(cfg.kv_source_layers))
    assert all(cfg.layer_types[i] == "indexed_attention" for i in cfg.index_layers)
    assert cfg.index_num_heads <= cfg.num_attention_heads // cfg.num_key_value_heads


def test_stage_lists_keep_length_and_divisibility():
    d = shrink_dict({"model_type": "pvt", "hidden_sizes": [64, 128, 320, 512], "num_attention_heads": [1, 2, 5, 8],
                     "depths": [2, 2, 2, 2]})
    assert len(d["hidden_sizes"]) == 4 and max(d["hidden_sizes"]) <= 64 and d["depths"] == [1, 1, 1, 1]
    assert all(h % n == 0 for h, n in zip(d["hidden_sizes"], d["num_attention_heads"]))


def test_value_correlated_dims_and_sub_configs():
    d = shrink_dict({"model_type": "vlm", "mm_hidden_size": 1024, "projection_dim": 4096,
                     "vision_config": {"model_type": "v", "hidden_size": 1024, "num_attention_heads": 16,
                                       "num_hidden_layers": 24, "image_size": 336, "patch_size": 14},
                     "text_config": _llm(), "image_token_index": 32000}, vocab_size=512)
    assert d["mm_hidden_size"] == d["vision_config"]["hidden_size"] == 64
    assert d["projection_dim"] == d["text_config"]["hidden_size"]
    assert d["vision_config"]["image_size"] == 32 and d["vision_config"]["patch_size"] == 8
    assert d["text_config"]["vocab_size"] == 512 and d["image_token_index"] < 512


def test_special_ids_and_overrides_on_a_real_config():
    cfg = shrink_config(base_config("llama"), vocab_size=512,
                        special_token_ids={"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2},
                        overrides={"num_hidden_layers": 1, "rope_parameters": {"rope_theta": 1000.0}})
    assert (cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id) == (0, 1, 2)
    assert cfg.num_hidden_layers == 1 and cfg.rope_parameters["rope_theta"] == 1000.0
    assert cfg.num_key_value_heads < cfg.num_attention_heads  # GQA kept
    nested = shrink_config(base_config("llava"), vocab_size=512, overrides={"text_config": {"num_hidden_layers": 1}})
    assert nested.text_config.num_hidden_layers == 1 and nested.vision_config.num_hidden_layers == 2


def test_inconsistent_override_is_a_shrink_error():
    with pytest.raises(ShrinkError, match="overrides"):
        shrink_config(base_config("llama"), overrides={"hidden_size": 30})
    with pytest.raises(ShrinkError, match="key/value heads|overrides"):
        shrink_config(base_config("mistral"), overrides={"num_key_value_heads": 3})


def test_check_config_reports_problems():
    from transformers import LlamaConfig

    cfg = LlamaConfig(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2)
    assert check_config(cfg) == []
    object.__setattr__(cfg, "num_key_value_heads", 3)
    assert any("key/value" in p for p in check_config(cfg))


def test_base_config_unknown_model_type():
    with pytest.raises(ArchitectureError) as err:
        base_config("lama")
    assert err.value.field == "model_type" and "llama" in str(err.value)


def test_config_for_class_picks_the_sub_config():
    import transformers

    cfg = shrink_config(base_config("musicgen"), vocab_size=512)
    assert type(shrink.config_for_class(cfg, transformers.MusicgenForCausalLM)).__name__ == "MusicgenDecoderConfig"
    assert shrink.config_for_class(cfg, transformers.MusicgenForConditionalGeneration) is cfg


def test_llama_is_tiny():
    import transformers

    cfg = shrink_config(base_config("llama"), vocab_size=512)
    model = transformers.LlamaForCausalLM(cfg)
    assert sum(p.numel() for p in model.parameters()) < 250_000


# --------------------------------------------------------------------------- real forward passes

REPRESENTATIVE = [
    ("llama", None), ("mistral", None), ("gpt2", None), ("bert", None), ("t5", None), ("bart", None),
    ("whisper", None), ("wav2vec2", None), ("vit", None), ("clip", "CLIPModel"), ("llava", None),
    ("mixtral", None), ("mamba", None), ("qwen2_vl", None), ("deepseek_v3", None), ("swin", None),
    ("gemma3_text", None), ("jamba", None), ("resnet", None),
]


@pytest.mark.parametrize(("model_type", "architecture"), REPRESENTATIVE)
def test_representative_family_builds_and_runs(model_type, architecture):
    import torch
    import transformers

    from pytest_tinymodels.coverage import COVERAGE_SPECIAL_IDS, SIZE_LIMIT_BYTES
    from pytest_tinymodels.build.processors import smoke_processor
    from pytest_tinymodels.build.inputs import dummy_inputs, smoke_forward

    info = resolve(model_type, architecture, None)
    cfg = shrink_config(base_config(model_type), vocab_size=512, special_token_ids=COVERAGE_SPECIAL_IDS)
    assert check_config(cfg) == []
    cls = getattr(transformers, info.class_name)
    torch.manual_seed(0)
    model = cls(shrink.config_for_class(cfg, cls))
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        size = sum(p.stat().st_size for p in Path(tmp).glob("*.safetensors"))
    assert 0 < size < SIZE_LIMIT_BYTES
    smoke_forward(model, dummy_inputs(model, model.config, smoke_processor(info, model.config), task=info.task))


def test_base_config_fixes_only_invalid_library_defaults():
    from transformers import AutoConfig

    for model_type in shrink.BASE_CONFIG_FIXES:
        with pytest.raises(Exception):
            AutoConfig.for_model(model_type)  # the library default is invalid, hence the fix
        assert base_config(model_type).model_type == model_type


def test_mla_rope_dim_is_chosen_before_the_mrope_sections() -> None:
    """MLA with multimodal RoPE (HY-V4-VL): the sections sum to half the *final* qk_rope_head_dim."""
    d = shrink_dict({"model_type": "toy_mla", "hidden_size": 4096, "num_hidden_layers": 8, "num_attention_heads": 32,
                     "num_key_value_heads": 32, "intermediate_size": 11008, "vocab_size": 32000,
                     "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_rope_head_dim": 64, "qk_nope_head_dim": 192,
                     "v_head_dim": 256, "rope_parameters": {"rope_type": "default", "mrope_section": [12, 10, 10]}},
                    vocab_size=512)
    assert sum(d["rope_parameters"]["mrope_section"]) == d["qk_rope_head_dim"] // 2 == 4


def test_size_table_sets_the_tiny_values_for_one_block() -> None:
    """``tiny_sizes`` (a fixture's ``size``) narrows the shrink within its block only; explicit head dims keep
    the tiny head dim (as narrow real repos keep their class's)."""
    import threading

    from pytest_tinymodels.build.shrink import DEFAULT_TINY, TINY, ShrinkError, tiny_sizes

    with tiny_sizes({"hidden": 8, "intermediate": 32}):
        llama = shrink_config(base_config("llama"))
        gpt2 = shrink_config(base_config("gpt2"))
        seen = []
        worker = threading.Thread(target=lambda: seen.append(TINY["hidden"]))  # another thread: the defaults
        worker.start()
        worker.join()
    assert seen == [DEFAULT_TINY["hidden"]] and TINY["hidden"] == DEFAULT_TINY["hidden"]
    assert (llama.hidden_size, llama.intermediate_size, llama.head_dim) == (8, 32, DEFAULT_TINY["head_dim"])
    assert (gpt2.n_embd, gpt2.n_head) == (8, 4)  # key names of any family: by kind of quantity
    assert shrink_config(base_config("llama")).hidden_size == DEFAULT_TINY["hidden"]
    with pytest.raises(ShrinkError, match="did you mean 'hidden'"):
        with tiny_sizes({"hiden": 8}):
            pass
