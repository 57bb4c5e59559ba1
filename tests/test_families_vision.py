"""The vision family rules (pytest_tinymodels/build/families/vision.py): SAM / SAM2 / video segmentation, keypoint
matchers, video transformers, SegGPT, SigLIP2 built exactly as fixtures are, plus every config rule of the
module on the dict of the model type's default config."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_tinymodels.build import shrink
from pytest_tinymodels.build import inputs as smoke
from pytest_tinymodels.build.families import vision
from rulecheck import check_rule, rules_of

SIZE_LIMIT = 2_097_152


@pytest.mark.parametrize(
    ("model_type", "class_name"),
    [
        ("sam2", "Sam2Model"),  # Hiera-det global blocks, real feature-map sizes, FPN width = mask decoder's
        ("sam2_video", "Sam2VideoModel"),  # inference session with a click, lighter memory encoder
        ("siglip2", "Siglip2Model"),  # NaFlex patches + spatial_shapes + pixel_attention_mask
        ("seggpt", "SegGptModel"),  # prompt image + mask, 2:1 canvas, layers in range
        ("videomae", "VideoMAEForPreTraining"),  # short clip + bool_masked_pos over tubelets
        ("superglue", "SuperGlueForKeypointMatching"),  # image pairs, one self + one cross GNN layer
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
# rule name -> (model type whose default config dict is shrunk, check on the shrunk dict).
# Each check must fail without its rule.


def _global_blocks_off_pool_blocks(d: dict) -> bool:
    blocks, pools = d["blocks_per_stage"], d["num_query_pool_stages"]
    firsts = {sum(blocks[:s]) for s in range(1, pools + 1)}
    return bool(d["global_attention_blocks"]) and not firsts & set(d["global_attention_blocks"])


def _block_chain(d: dict) -> bool:
    prev = d["stem_channels"][-1] if isinstance(d["stem_channels"], list) else d["stem_channels"]
    for stage in d["block_configs"]:
        for _, cin, cout, *_ in stage:
            if cin != prev or cout > 64:
                return False
            prev = cout
    return d["stage_out_channels"] == [s[-1][2] for s in d["block_configs"]]


def _tracker_widths(d: dict) -> bool:
    width = d["detector_config"]["vision_config"]["fpn_hidden_size"]
    trk = d["tracker_config"]
    return trk["vision_config"] == d["detector_config"]["vision_config"] and {
        trk["mask_decoder_config"]["hidden_size"], trk["prompt_encoder_config"]["hidden_size"],
        trk["memory_attention_hidden_size"], trk["vision_config"]["fpn_hidden_size"]} == {width}


RULE_CASES: dict[str, tuple[str, Callable[[dict], bool]]] = {
    "vision_image_embedding_size": (
        "sam", lambda d: d["prompt_encoder_config"]["image_embedding_size"]
        == d["prompt_encoder_config"]["image_size"] // d["prompt_encoder_config"]["patch_size"]),
    "vision_pos_feats": (
        "sam", lambda d: 2 * d["vision_config"]["num_pos_feats"] == d["vision_config"]["output_channels"]),
    "vision_hiera_det_globals": ("sam2_hiera_det_model", _global_blocks_off_pool_blocks),
    "vision_loftr_features": (
        "efficientloftr", lambda d: d["out_features"][-1] == d["hidden_size"]
        and d["num_key_value_heads"] == d["num_attention_heads"] and d["q_aggregation_stride"] == 1),
    "vision_uper_head_features": (
        "beit", lambda d: len(d["out_indices"]) == 4 and max(d["out_indices"]) <= d["num_hidden_layers"]
        and d["out_features"] == [f"stage{i}" for i in d["out_indices"]] and d["hidden_size"] <= 32),
    "vision_block_configs": ("pp_lcnet_v4", _block_chain),
    "vision_visual_prompter": (
        "tvp", lambda d: 0 < d["max_img_size"] - 2 * d["visual_prompt_size"] and d["num_frames"] <= 4),
    "vision_hiera_decoder": (
        "hiera", lambda d: all(isinstance(d[k], int) for k in ("decoder_hidden_size", "decoder_depth",
                                                               "decoder_num_heads"))),
    "vision_matting_stride": (
        "vitmatte", lambda d: d["backbone_config"]["patch_size"] == 2 ** (len(d["convstream_hidden_sizes"]) + 1)),
    "vision_fpn_to_decoder": (
        "sam2", lambda d: d["vision_config"]["fpn_hidden_size"] == d["mask_decoder_config"]["hidden_size"]),
    "vision_sam2_feature_sizes": (
        "sam2", lambda d: d["vision_config"]["backbone_feature_sizes"] == [[8, 8], [4, 4], [2, 2]]
        and d["prompt_encoder_config"]["image_size"] // d["prompt_encoder_config"]["patch_size"] == 2),
    "vision_pretrain_image_size": ("vitdet", lambda d: d["pretrain_image_size"] == d["image_size"]),
    "vision_video_clip": (
        "vjepa2", lambda d: d["frames_per_clip"] <= 4 and d["crop_size"] <= shrink.TINY["image_size"]),
    "vision_seggpt_layers": (
        "seggpt", lambda d: max(d["intermediate_hidden_state_indices"]) < d["num_hidden_layers"]
        and d["merge_index"] <= min(d["intermediate_hidden_state_indices"]) and d["image_size"] == [64, 32]),
    "vision_gnn_layers": ("superglue", lambda d: d["gnn_layers_types"] == ["self", "cross"]),
    "vision_naflex_patches": ("siglip2_vision_model", lambda d: d["num_patches"] == 16),
    "vision_memory_resampler": (
        "edgetam_video", lambda d: d["perceiver_resampler_attention_head_dim"]
        * d["perceiver_resampler_num_attention_heads"] == d["perceiver_resampler_hidden_size"]),
    "vision_memory_encoder": (
        "sam2_video", lambda d: d["mask_downsampler_stride"] == 4 and d["memory_attention_num_layers"] == 1),
    "vision_shared_tracker_width": ("sam3_video", _tracker_widths),
    "vision_narrow_video_tracker": (
        "sam3_tracker_video", lambda d: {d["vision_config"]["fpn_hidden_size"], d["mask_decoder_config"]["hidden_size"],
                                         d["memory_attention_hidden_size"]} == {vision.NARROW_TRACKER_WIDTH}),
}


def test_every_vision_rule_has_a_case() -> None:
    assert rules_of(vision) == set(RULE_CASES)


@pytest.fixture(scope="module")
def default_dicts() -> dict[str, dict]:
    pytest.importorskip("transformers")
    return {mt: shrink.base_config(mt).to_dict() for mt in {mt for mt, _ in RULE_CASES.values()}}


@pytest.mark.parametrize("rule", sorted(RULE_CASES))
def test_named_rule(rule: str, default_dicts: dict[str, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    model_type, check = RULE_CASES[rule]
    check_rule(rule, default_dicts[model_type], check, monkeypatch, vocab_size=None,
               what=f"{model_type} config consistent")


def test_rules_leave_other_families_alone() -> None:
    vit = {"model_type": "vit", "hidden_size": 768, "num_attention_heads": 12, "num_hidden_layers": 12,
           "intermediate_size": 3072, "image_size": 224, "patch_size": 16, "num_channels": 3}
    out = shrink.shrink_dict(vit)
    assert out["num_hidden_layers"] == 2 and out["image_size"] == 32 and out["hidden_size"] == 64
    # no family rule adds keys; the generic shrinker writes the head_dim ViT's modeling code falls back on
    assert set(out) - set(vit) == {"head_dim"} and out["head_dim"] == 64 // out["num_attention_heads"]


def test_hiera_det_globals_move_off_query_pool_blocks() -> None:
    node = {"blocks_per_stage": [1, 1, 1, 1], "global_attention_blocks": [2], "num_query_pool_stages": 3}
    vision._rule_hiera_det_global_blocks(node, shrink.ShrinkContext(value_map={}, vocab_size=None, special={}))
    assert node == {"blocks_per_stage": [1, 1, 2, 1], "global_attention_blocks": [3], "num_query_pool_stages": 3}


def test_model_type_values_name_real_model_types() -> None:
    pytest.importorskip("transformers")
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    assert {"perceiver", "sam3_video", "sapiens2"} <= set(CONFIG_MAPPING_NAMES)
    assert set(vision.IMAGE_PAIR_MODEL_TYPES | vision.NAFLEX_MODEL_TYPES) <= set(CONFIG_MAPPING_NAMES)
    for model_type, source in (("pp_lcnet_v3", "pp_ocrv5_mobile_det"), ("vjepa2", "videomae"),
                               ("uvdoc_backbone", "uvdoc")):
        assert {model_type, source} <= set(CONFIG_MAPPING_NAMES)
        assert vision.rules.IMAGE_PROCESSOR_OF[model_type] == source


# --------------------------------------------------------------------------- input builders


def test_bool_masked_pos_covers_every_tubelet() -> None:
    pytest.importorskip("torch")
    from types import SimpleNamespace

    config = SimpleNamespace(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, model_type="videomae")
    c = smoke.InputContext(None, config, None, 2, 8, False)
    mask = smoke.build_input("bool_masked_pos", c)
    assert tuple(mask.shape) == (2, 16 * 2)
    assert mask.sum(1).tolist() == [16, 16]  # the same number masked in every row


def test_naflex_inputs_follow_the_patch_grid() -> None:
    pytest.importorskip("torch")
    from types import SimpleNamespace

    config = SimpleNamespace(model_type="siglip2_vision_model", num_patches=16, patch_size=8, num_channels=3)
    c = smoke.InputContext(None, config, None, 2, 8, False)
    inputs = {"pixel_values": c.randn(2, 3, 32, 32)}
    vision.rules.INPUT_FIXUPS["vision_naflex_patches"](c, inputs)
    assert tuple(inputs["pixel_values"].shape) == (2, 16, 3 * 8 * 8)
    assert inputs["spatial_shapes"].tolist() == [[4, 4], [4, 4]]
    assert tuple(inputs["pixel_attention_mask"].shape) == (2, 16)


def test_size_agnostic_cnn_trains_on_one_processed_image(tmp_path) -> None:
    """A fully convolutional classifier (ResNet: no image size in its config) gets a processor whose images keep
    2 x 2 positions after its stride-32 stages, so a training step on one image works (batch norm needs more
    than one value per channel), as with the real repos' 224-pixel processors."""
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    from pytest_tinymodels.build import build_entry
    from pytest_tinymodels.build.processors import SIZE_AGNOSTIC_IMAGE_SIZE
    from pytest_tinymodels.manifest import FixtureSpec

    spec = FixtureSpec(name="resnet", manifest=tmp_path / "fixtures.toml", architecture="ResNetForImageClassification")
    build_entry(spec, tmp_path / "entry")
    repo = str(tmp_path / "entry" / "repo")
    pixels = AutoImageProcessor.from_pretrained(repo)(Image.new("RGB", (640, 480), (200, 120, 40)),
                                                      return_tensors="pt")["pixel_values"]
    assert pixels.shape[-1] == SIZE_AGNOSTIC_IMAGE_SIZE
    model = AutoModelForImageClassification.from_pretrained(repo).train()
    loss = model(pixel_values=pixels, labels=torch.tensor([0])).loss
    loss.backward()
    assert torch.isfinite(loss)
