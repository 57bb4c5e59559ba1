"""The text family rules (pytest_tinymodels/build/families/text.py): time-series, decision, text models and the
standalone vision towers of VLMs, built exactly as fixtures are, plus the config rules on plain dicts."""

from __future__ import annotations

import pytest

from pytest_tinymodels.build import shrink
from pytest_tinymodels.build.families import text

SIZE_LIMIT = 2_097_152


@pytest.mark.parametrize(
    ("model_type", "class_name"),
    [
        ("autoformer", "AutoformerModel"),  # feature_size recomputed from the cut lags
        ("bros", "BrosForTokenClassification"),  # derived bbox embedding sizes
        ("lfm3_vl_vision", "Lfm3VlVisionModel"),  # packed patches + grid_thw
        ("minicpm_ocr_vision", "MiniCPMOcrVisionModel"),  # NaViT packing + target_sizes
        ("decision_transformer", "DecisionTransformerModel"),  # trajectories
        ("jev", "JevForDecision"),  # one prompt, marks, option counts, question types
    ],
)
def test_family_builds_and_runs(model_type: str, class_name: str, tmp_path) -> None:
    pytest.importorskip("torch")
    from pytest_tinymodels import coverage
    from pytest_tinymodels.build import architectures

    row = coverage.check_fixture(architectures.resolve(model_type, class_name, None), workdir=tmp_path)
    assert row["forward"], row["reason"]
    assert row["size_bytes"] <= SIZE_LIMIT


def test_time_series_feature_size_is_recomputed() -> None:
    node = {"model_type": "informer", "lags_sequence": [1, 2, 3], "feature_size": 9, "num_time_features": 0,
            "input_size": 1}
    text._rule_time_series_features(node, None)  # type: ignore[arg-type]
    assert "feature_size" not in node and node["num_time_features"] == 1
    other = {"model_type": "patchtst", "feature_size": 9}  # no lags: not a lag-based time-series config
    text._rule_time_series_features(other, None)  # type: ignore[arg-type]
    assert other == {"model_type": "patchtst", "feature_size": 9}


def test_derived_keys_only_for_their_model_type() -> None:
    keys = {"dim_bbox_sinusoid_emb_2d": 192, "dim_bbox_sinusoid_emb_1d": 24, "dim_bbox_projection": 64}
    small = shrink.shrink_dict({"model_type": "bros", "hidden_size": 768, "num_attention_heads": 12, **keys})
    assert not set(keys) & set(small)
    other = {"model_type": "bert", "dim_bbox_projection": 64}
    text._rule_derived_keys(other, None)  # type: ignore[arg-type]
    assert other["dim_bbox_projection"] == 64


def test_blt_local_configs_follow_the_global_hidden_size() -> None:
    small = shrink.shrink_dict({
        "model_type": "blt",
        "encoder_config": {"model_type": "blt_local_encoder", "hidden_size": 1024, "hidden_size_global": 2048},
        "decoder_config": {"model_type": "blt_local_decoder", "hidden_size": 1024, "hidden_size_global": 2048},
        "global_config": {"model_type": "blt_global_transformer", "hidden_size": 2048},
    })
    glob = small["global_config"]["hidden_size"]
    assert small["encoder_config"]["hidden_size_global"] == glob
    assert small["decoder_config"]["hidden_size_global"] == glob
    assert small["use_cache"] is False and small["encoder_hash_byte_group_vocab"] <= 256


def test_decision_transformer_episode_table_is_small() -> None:
    small = shrink.shrink_dict({"model_type": "decision_transformer", "hidden_size": 128, "max_ep_len": 4096})
    assert small["max_ep_len"] == 256


def test_forced_token_ids_follow_the_tokenizer(tmp_path) -> None:
    """BART's config forces eos at the last step (class default 2): the tiny one forces the tokenizer's eos, in
    its config and its generation config, as the real repos force theirs."""
    import json

    from transformers import AutoTokenizer

    from pytest_tinymodels.build import build_entry
    from pytest_tinymodels.manifest import FixtureSpec

    spec = FixtureSpec(name="bart", manifest=tmp_path / "fixtures.toml", architecture="BartForConditionalGeneration")
    build_entry(spec, tmp_path / "entry")
    repo = tmp_path / "entry" / "repo"
    eos = AutoTokenizer.from_pretrained(str(repo)).eos_token_id
    config = json.loads((repo / "config.json").read_text())
    generation = json.loads((repo / "generation_config.json").read_text())
    assert config["eos_token_id"] == config["forced_eos_token_id"] == generation["forced_eos_token_id"] == eos


def test_gemma4_full_attention_layers_keep_their_wider_head() -> None:
    """Gemma 4's full-attention layers have twice the sliding layers' head dim (512 against 256): the tiny one
    keeps the ratio, so KV caches of two shapes exist (peft's prefix tuning handles them, #3201); the
    assistants, whose code reads one global head dim, keep one."""
    small = shrink.shrink_config(shrink.base_config("gemma4")).to_dict()["text_config"]
    full = [str(i) for i, kind in enumerate(small["layer_types"]) if kind == "full_attention"]
    assert full and small["per_layer_config"] == {i: {"head_dim": 2 * small["head_dim"]} for i in full}
    assistant = shrink.shrink_config(shrink.base_config("gemma4_assistant")).to_dict()["text_config"]
    assert not assistant["per_layer_config"]
    other = {"model_type": "llama", "text_config": {"head_dim": 16, "layer_types": ["full_attention"]}}
    text._rule_wider_full_attention_heads(other, None)  # type: ignore[arg-type]
    assert "per_layer_config" not in other["text_config"]
