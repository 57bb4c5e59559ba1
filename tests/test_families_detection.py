"""The detection family rules (pytest_tinymodels/build/families/detection.py): detection, segmentation, depth,
document-layout and OCR models that failed to build or run, built exactly as fixtures are, plus the config
rules of the module on config dicts (each check fails without its rule)."""

from __future__ import annotations

import pytest

from pytest_tinymodels.build import shrink
from pytest_tinymodels.build.families import detection

SIZE_LIMIT = 2_097_152


@pytest.mark.parametrize(
    ("model_type", "class_name"),
    [
        ("detr", "DetrForSegmentation"),  # timm backbone -> transformers ResNet; mask head needs d_model+heads % 8
        ("rt_detr", "RTDetrForObjectDetection"),  # hybrid encoder channels follow the backbone (was 3.3 MB)
        ("omdet-turbo", "OmDetTurboForObjectDetection"),  # timm Swin, class / task prompt inputs
        ("grounding-dino", "GroundingDinoForObjectDetection"),  # -inf text padding, size (was 2.5 MB)
        ("depth_pro", "DepthProForDepthEstimation"),  # multi-scale patches of the tiny ViT encoders
        ("pp_ocrv5_mobile_rec", "PPOCRV5MobileRecForTextRecognition"),  # text-line images, height-first strides
        ("uvdoc", "UVDocModel"),  # nested channel lists, all bridge outputs
    ],
)
def test_family_builds_and_runs(model_type: str, class_name: str, tmp_path) -> None:
    pytest.importorskip("torch")
    from pytest_tinymodels import coverage
    from pytest_tinymodels.build import architectures

    row = coverage.check_fixture(architectures.resolve(model_type, class_name, None), workdir=tmp_path)
    assert row["forward"], row["reason"]
    assert row["size_bytes"] <= SIZE_LIMIT, row["reason"]


def _ctx() -> shrink.ShrinkContext:
    return shrink.ShrinkContext(value_map={}, vocab_size=None, special={})


def _shrunk(model_type: str) -> dict:
    pytest.importorskip("transformers")
    return shrink.shrink_dict(shrink.base_config(model_type).to_dict())


# --------------------------------------------------------------------------- rules on library default configs


def test_timm_backbone_becomes_transformers_backbone() -> None:
    for model_type, expected, out in (("detr", "resnet", [1, 2, 3, 4]), ("deformable_detr", "resnet", [2, 3, 4]),
                                      ("omdet-turbo", "swin", [2, 3, 4])):
        bb = _shrunk(model_type)["backbone_config"]
        assert bb["model_type"] == expected, model_type
        assert bb["out_indices"] == out, model_type
        assert bb["out_features"] == [bb["stage_names"][i] for i in out]
        assert max(bb.get("hidden_sizes") or [bb.get("embed_dim")]) <= shrink.TINY["stage_max_dim"]


def test_hybrid_encoder_channels_follow_backbone_and_decoder() -> None:
    for model_type in ("rt_detr", "d_fine", "pp_doclayout_v2"):
        d = _shrunk(model_type)
        bb = d["backbone_config"]
        assert d["encoder_in_channels"] == detection.backbone_out_channels(bb), model_type
        assert d["decoder_in_channels"] == [d["encoder_hidden_dim"]] * 3, model_type
        assert d["hidden_expansion"] <= 0.5 and d["encoder_hidden_dim"] < d["d_model"]


def test_stride4_mask_feature_keeps_backbone_width() -> None:
    d = _shrunk("pp_doclayout_v3")
    chans = detection.backbone_out_channels(d["backbone_config"])
    assert d["encoder_in_channels"] == chans[1:] and d["x4_feat_dim"] == chans[0]


def test_omdet_class_embedding_differs_from_decoder_width() -> None:
    d = _shrunk("omdet-turbo")
    assert d["class_embed_dim"] == d["text_config"]["hidden_size"] != d["decoder_hidden_dim"]
    assert d["d_model"] == d["decoder_hidden_dim"]  # d_model is the encoder width (``encoder_hidden_dim``)
    assert d["vision_features_channels"] == [d["d_model"]] * 3
    assert d["apply_layernorm_after_vision_backbone"] is False


def test_dpt_neck_reads_one_backbone_layer_per_entry() -> None:
    d = _shrunk("chmv2")
    assert len(d["backbone_config"]["out_indices"]) == len(d["post_process_channels"]) == 4
    assert max(d["post_process_channels"]) <= shrink.TINY["stage_max_dim"]
    assert d["fusion_hidden_size"] < shrink.TINY["hidden"]
    d = _shrunk("depth_anything")
    assert d["reassemble_hidden_size"] == d["backbone_config"]["hidden_size"]


def test_depth_pro_patches() -> None:
    d = _shrunk("depth_pro")
    patch_encoder = d["patch_model_config"]
    assert d["patch_size"] == patch_encoder["image_size"]
    assert d["image_size"] * min(d["scaled_images_ratios"]) >= d["patch_size"]
    assert all(0 <= h < patch_encoder["num_hidden_layers"] for h in d["intermediate_hook_ids"])
    assert max(d["scaled_images_feature_dims"]) <= shrink.TINY["hidden"]


def test_text_detectors_get_a_complete_neck() -> None:
    d = _shrunk("pp_ocrv6_medium_det")
    assert set(d["intraclass_block_config"]) == set(detection.INTRACLASS_BLOCK_CONFIG)
    assert d["scale_factor_list"] == [1, 2, 4, 8] and d["kernel_list"] == detection.DB_HEAD_KERNELS
    bb = d["backbone_config"]
    assert bb["out_indices"] == [1, 2, 3, 4]
    assert not any(isinstance(b[3], list) for stage in bb["block_configs"] for b in stage)
    small = _shrunk("pp_ocrv6_small_det")
    assert small["layer_list_out_channels"] == small["backbone_config"]["stage_out_channels"]


# --------------------------------------------------------------------------- rules on plain dicts


def test_per_class_lists() -> None:
    node = {"class_thresholds": None, "class_order": None, "id2label": {0: "a", 1: "b", 2: "c"},
            "reading_order_config": {"num_classes": 2}}
    detection._rule_per_class_lists(node, _ctx())
    assert node["class_thresholds"] == [0.5] * 3 and node["class_order"] == [0, 1, 0]


def test_vit_windows_tile_the_tiny_grid() -> None:
    node = {"model_type": "lw_detr_vit", "image_size": 32, "patch_size": 8, "num_windows": 16,
            "num_windows_side": 4, "window_block_indices": [0, 1, 3, 6, 7, 9], "num_hidden_layers": 2}
    detection._rule_vit_windows(node, _ctx())
    assert node["num_windows"] == 4 and node["num_windows_side"] == 2
    assert node["window_block_indices"] == [0]  # the last layer attends globally


def test_projector_levels() -> None:
    node = {"model_type": "lw_detr", "d_model": 64, "projector_scale_factors": [], "projector_in_channels": [],
            "projector_out_channels": 256, "num_feature_levels": 0}
    detection._rule_projector_levels(node, _ctx())
    assert node["num_feature_levels"] == 1 and node["projector_in_channels"] == [64]


def test_text_recognition_strides_and_characters() -> None:
    blocks = [[[3, 4, 4, 1, False]], [[3, 4, 8, 2, False]], [[3, 8, 16, 2, False]], [[3, 16, 32, 2, False]],
              [[5, 32, 64, 2, True]]]
    node = {"model_type": "pp_ocrv5_mobile_rec", "head_out_channels": 18385,
            "backbone_config": {"block_configs": blocks}}
    detection._rule_text_recognition(node, _ctx())
    assert node["head_out_channels"] == detection.TINY_CHARACTERS
    assert node["image_size"] == detection.TEXT_LINE_HEIGHT
    strides = [stage[0][3] for stage in blocks]
    height = 2  # the stem
    for s in strides:
        height *= s[0] if isinstance(s, list) else s
    assert detection.TEXT_LINE_HEIGHT // height == 3  # three rows, pooled to the head's single row


def test_uvdoc_channels() -> None:
    bb = {"resnet_head": [[3, 32], [32, 32]],
          "resnet_configs": [[[32, 64, 1, True], [64, 64, 3, False], [64, 64, 3, False]]],
          "stage_configs": [[[64, 1]], [[64, 2]]], "stage_names": ["stem", "stage1", "stage2"],
          "out_indices": [2], "out_features": ["stage2"]}
    detection._rule_uvdoc_channels(bb, _ctx())
    assert bb["resnet_head"] == [[3, 8], [8, 8]] and len(bb["resnet_configs"][0]) == 2
    assert bb["out_indices"] == [1, 2] and bb["stage_configs"] == [[[16, 1]], [[16, 2]]]
    node = {"backbone_config": bb, "kernel_size": 5, "bridge_connector": [64, 64],
            "out_point_positions2D": [[64, 32], [32, 2]]}
    detection._rule_uvdoc_channels(node, _ctx())
    assert node["bridge_connector"] == [16, 16] and node["out_point_positions2D"] == [[16, 8], [8, 2]]
    assert node["image_size"] // 2 ** 3 > node["kernel_size"] // 2  # 2 head convs + 1 downsampling stage


def test_pixel_decoder_dims_stay_equal() -> None:
    node = {"conv_dim": 32, "mask_dim": 64, "hidden_dim": 64}
    ctx = _ctx()
    ctx.old[id(node)] = {"conv_dim": 256, "mask_dim": 256, "hidden_dim": 256}
    detection._rule_pixel_decoder_dims(node, ctx)
    assert node == {"conv_dim": 64, "mask_dim": 64, "hidden_dim": 64}
