"""Family special cases: vision (see :mod:`pytest_tinymodels.build.families`).

Image/video backbones, the SAM family, keypoint matchers, video models, image matting, SegGPT,
BEiT-style segmentation, Hiera, Perceiver, SigLIP2 (NaFlex patches), PP-LCNet.
"""

from __future__ import annotations

import copy
from typing import Any

from .. import configtools, rules, shrink
from ..inputs import InputContext, SmokeError, build_input

_is_int = shrink.is_int


def _pow2_down(value: int, factor: int, floor: int = 4) -> int:
    return max(floor, value // factor)


# --------------------------------------------------------------------------- shrink: data

VISION_VALUES: dict[str, dict[str, Any]] = {
    # Perceiver image classifiers cross-attend to 3 + 2 * 2 * num_bands + 1 Fourier channels (261, 322...),
    # which only one cross-attention head divides (the released vision checkpoints use 1 as well)
    "perceiver": {"num_cross_attention_heads": 1},
    # SAM3 video: random detection scores (~0.25) never pass the released thresholds (0.5, 0.7), and with no
    # object detected the tracker never runs; a tiny model detects everything
    "sam3_video": {"score_threshold_detection": 0.0, "new_det_thresh": 0.0},
    # Sapiens2 dense heads (matting, segmentation, pose, normals, pointmap) need a head config (None by
    # default): two transposed-conv upsamplings, one conv, and the pointmap's scale branch
    "sapiens2": {"head_config": {"upsample_out_channels": [16, 8], "use_pixel_shuffle": False,
                                 "conv_out_channels": [8], "scale_conv_out_channels": [8],
                                 "scale_final_hidden_sizes": [16, 8]}},
}
for _model_type, _values in VISION_VALUES.items():
    rules.model_type_values(_model_type, _values)

rules.IMAGE_PROCESSOR_OF.update({
    "pp_lcnet_v3": "pp_ocrv5_mobile_det",  # PP-LCNetV3 is the backbone of PP-OCRv5 mobile detection
    "vjepa2": "videomae",  # video model without an image processor: VideoMAE's handles video frames
    "uvdoc_backbone": "uvdoc",  # the backbone of UVDoc document unwarping
})


# --------------------------------------------------------------------------- shrink: rules


@rules.family_rule("vision_image_embedding_size")
def _rule_image_embedding_size(node: dict, ctx: shrink.ShrinkContext) -> None:
    """SAM prompt encoders: the dense prompt grid (``image_embedding_size``) is image_size // patch_size of
    the tiny image."""
    if not _is_int(node.get("image_embedding_size")):
        return
    size, patch = node.get("image_size"), node.get("patch_size")
    if _is_int(size) and _is_int(patch) and patch > 0:
        node["image_embedding_size"] = max(1, size // patch)


@rules.family_rule("vision_pos_feats")
def _rule_pos_feats(node: dict, ctx: shrink.ShrinkContext) -> None:
    """SAM vision configs: the shared random positional embedding has 2 * num_pos_feats = output_channels."""
    old = ctx.old.get(id(node), {})
    feats, out = node.get("num_pos_feats"), node.get("output_channels")
    if _is_int(feats) and _is_int(out) and old.get("num_pos_feats", 0) * 2 == old.get("output_channels"):
        node["num_pos_feats"] = out // 2


@rules.family_rule("vision_hiera_det_globals")
def _rule_hiera_det_global_blocks(node: dict, ctx: shrink.ShrinkContext) -> None:
    """SAM2 Hiera-det backbones: a global-attention block must not be the first (query-pooling) block
    of a pooled stage (its window 0 // stride divides by zero): move it to the stage's second block."""
    blocks, globals_ = node.get("blocks_per_stage"), node.get("global_attention_blocks")
    pools = node.get("num_query_pool_stages")
    if not (isinstance(blocks, list) and blocks and isinstance(globals_, list) and globals_ and _is_int(pools)):
        return
    starts = [sum(blocks[:s]) for s in range(len(blocks))]
    placed: list[tuple[int, int]] = []
    for g in globals_:
        g = min(max(g, 0), sum(blocks) - 1)
        stage = max(s for s in range(len(blocks)) if starts[s] <= g)
        pos = g - starts[stage]
        placed.append((stage, 1 if pos == 0 and 0 < stage <= pools else pos))
    new_blocks = list(blocks)
    for stage, pos in placed:
        new_blocks[stage] = max(new_blocks[stage], pos + 1)
    new_starts = [sum(new_blocks[:s]) for s in range(len(new_blocks))]
    node["blocks_per_stage"] = new_blocks
    node["global_attention_blocks"] = sorted({new_starts[s] + p for s, p in placed})


@rules.family_rule("vision_loftr_features")
def _rule_loftr_out_features(node: dict, ctx: shrink.ShrinkContext) -> None:
    """EfficientLoFTR: the RepVGG stages end at hidden_size (``out_features[-1] == hidden_size``); one block a
    stage (the per-block lists are derived from these by the config); no pooling of the tiny coarse map."""
    feats, hidden = node.get("out_features"), node.get("hidden_size")
    if node.get("model_type") != "efficientloftr" or not (isinstance(feats, list) and _is_int(hidden)):
        return
    if not all(_is_int(f) for f in feats) or not feats:
        return
    factor = max(1, feats[-1] // hidden)
    node["out_features"] = [max(4, f // factor) for f in feats[:-1]] + [hidden]
    if isinstance(node.get("stage_num_blocks"), list):
        node["stage_num_blocks"] = [1] * len(node["stage_num_blocks"])
    if _is_int(node.get("num_attention_heads")):  # the attention reshapes keys with the full hidden size
        node["num_key_value_heads"] = node["num_attention_heads"]
    for k in ("q_aggregation_kernel_size", "q_aggregation_stride", "kv_aggregation_kernel_size",
              "kv_aggregation_stride"):
        if _is_int(node.get(k)):  # a 32-pixel image has a 4x4 coarse map: attend over it unpooled
            node[k] = 1
    for k in ("stage_in_channels", "stage_block_in_channels", "stage_block_out_channels", "stage_block_stride",
              "fine_fusion_dims"):
        node.pop(k, None)


@rules.family_rule("vision_uper_head_features")
def _rule_uper_head_features(node: dict, ctx: shrink.ShrinkContext) -> None:
    """BEiT / data2vec-vision: the UperNet segmentation head reads 4 hidden states (``out_indices`` of 4
    layers), so the tiny encoder keeps 4 layers."""
    if node.get("model_type") not in ("beit", "data2vec-vision") or not isinstance(node.get("pool_scales"), list):
        return
    layers = max(4, int(node.get("num_hidden_layers") or 0))
    hidden = min(int(node.get("hidden_size") or 32), 32)  # the head's convolutions are hidden_size ** 2 * 9
    node["hidden_size"] = hidden
    node["num_attention_heads"] = shrink.divisor_at_most(hidden, int(node.get("num_attention_heads") or 2))
    node["intermediate_size"] = min(int(node.get("intermediate_size") or 2 * hidden), 2 * hidden)
    if _is_int(node.get("auxiliary_channels")):
        node["auxiliary_channels"] = min(node["auxiliary_channels"], hidden)
    node["num_hidden_layers"] = layers
    node["out_indices"] = list(range(layers - 3, layers + 1))
    if "out_features" in node:
        node["out_features"] = [f"stage{i}" for i in node["out_indices"]]
    if "stage_names" in node:
        node["stage_names"] = ["stem"] + [f"stage{i}" for i in range(1, layers + 1)]


@rules.family_rule("vision_block_configs")
def _rule_block_configs(node: dict, ctx: shrink.ShrinkContext) -> None:
    """PP-LCNet backbones: ``block_configs`` (per stage: [kernel, in, out, stride, se]) keep one block per
    stage (two where the stage has a squeeze-excitation block), channels scaled like the stem."""
    stages = node.get("block_configs")
    if not (isinstance(stages, list) and stages and all(isinstance(s, list) and s for s in stages)):
        return
    widest = max(b[2] for s in stages for b in s)
    factor = shrink.pow2_factor(widest, shrink.TINY["stage_max_dim"])
    old = ctx.old.get(id(node), {})
    stem = old.get("stem_channels", node.get("stem_channels"))
    if _is_int(stem):
        node["stem_channels"] = _pow2_down(stem, factor)
        first_in = node["stem_channels"]
    elif isinstance(stem, list) and stem:
        node["stem_channels"] = [stem[0]] + [_pow2_down(c, factor) for c in stem[1:]]
        first_in = node["stem_channels"][-1]
    else:
        first_in = None
    new_stages, prev = [], first_in
    for stage in stages:
        kept = [stage[0]] + [b for b in stage[1:] if b[4] and not stage[0][4]][:1]
        out = []
        for b in kept:
            b = list(b)
            b[1] = prev if prev is not None else _pow2_down(b[1], factor)
            b[2] = _pow2_down(b[2], factor)
            prev = b[2]
            out.append(b)
        new_stages.append(out)
    node["block_configs"] = new_stages
    if isinstance(node.get("depths"), list):
        node["depths"] = [len(s) for s in new_stages]
    if isinstance(node.get("stage_out_channels"), list):
        node["stage_out_channels"] = [s[-1][2] for s in new_stages]


@rules.family_rule("vision_visual_prompter")
def _rule_visual_prompter(node: dict, ctx: shrink.ShrinkContext) -> None:
    """TVP: frames of 64 pixels (the stride-32 backbone map is max-pooled by 2 once more); the frame-pad
    visual prompt fits inside them; few frames."""
    pad, size = node.get("visual_prompt_size"), node.get("max_img_size")
    if not (_is_int(pad) and _is_int(size)):
        return
    size = node["max_img_size"] = max(size, 2 * shrink.TINY["image_size"])
    node["visual_prompt_size"] = max(1, min(pad, size // 8))
    if _is_int(node.get("num_frames")):
        node["num_frames"] = min(node["num_frames"], 4)


@rules.family_rule("vision_hiera_decoder")
def _rule_hiera_decoder(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Hiera: the MAE pre-training decoder (``HieraForPreTraining``) needs its sizes, unset by default."""
    if node.get("model_type") != "hiera":
        return
    node["decoder_hidden_size"] = min(node.get("decoder_hidden_size") or 32, shrink.TINY["hidden"])
    node["decoder_depth"] = min(node.get("decoder_depth") or 1, 1)
    node["decoder_num_heads"] = shrink.divisor_at_most(node["decoder_hidden_size"],
                                                        node.get("decoder_num_heads") or 2)


@rules.family_rule("vision_matting_stride")
def _rule_matting_stride(node: dict, ctx: shrink.ShrinkContext) -> None:
    """ViTMatte: the fusion path upsamples the ViT features once per conv-stream stage plus one, so the
    backbone patch stride is 2 ** (len(convstream_hidden_sizes) + 1); conv widths shrink."""
    conv, fusion, backbone = (node.get("convstream_hidden_sizes"), node.get("fusion_hidden_sizes"),
                              node.get("backbone_config"))
    if not (isinstance(conv, list) and isinstance(fusion, list) and isinstance(backbone, dict)):
        return
    factor = shrink.pow2_factor(max(conv + fusion), 32)
    node["convstream_hidden_sizes"] = [_pow2_down(c, factor) for c in conv]
    node["fusion_hidden_sizes"] = [_pow2_down(c, factor) for c in fusion]
    stride = 2 ** (len(conv) + 1)
    if _is_int(backbone.get("patch_size")):
        backbone["patch_size"] = stride
        size = backbone.get("image_size")
        if _is_int(size) and size < 2 * stride:
            backbone["image_size"] = 2 * stride


@rules.family_rule("vision_fpn_to_decoder")
def _rule_fpn_to_mask_decoder(node: dict, ctx: shrink.ShrinkContext) -> None:
    """SAM2-style models (sam2, sam3 tracker, EdgeTAM): the vision neck's ``fpn_hidden_size`` is the mask
    decoder's (and prompt encoder's) hidden size."""
    vision, decoder = node.get("vision_config"), node.get("mask_decoder_config")
    if not (isinstance(vision, dict) and isinstance(decoder, dict) and _is_int(vision.get("fpn_hidden_size"))):
        return
    if _is_int(decoder.get("hidden_size")):
        vision["fpn_hidden_size"] = decoder["hidden_size"]


def _side(value: Any) -> int | None:
    if _is_int(value):
        return value
    if isinstance(value, list) and value and _is_int(value[0]):
        return value[0]
    return None


def _feature_grids(vision: dict, levels: int) -> list[int] | None:
    """Side of each backbone feature map a SAM2-style neck hands to the mask decoder, finest first."""
    bb = vision.get("backbone_config")
    if not isinstance(bb, dict):
        return None
    image = _side(bb.get("image_size"))
    if image is None:
        return None
    stride = _side(bb.get("patch_stride"))
    if stride:  # Hiera-det: every stage halves the map
        return [max(1, image // stride // 2 ** i) for i in range(levels)]
    patch, scales = _side(bb.get("patch_size")), vision.get("scale_factors")
    if patch and isinstance(scales, list) and len(scales) >= levels:  # ViT + FPN of scale factors
        return [max(1, int(image // patch * s)) for s in scales[:levels]]
    return None


@rules.family_rule("vision_sam2_feature_sizes")
def _rule_sam2_feature_sizes(node: dict, ctx: shrink.ShrinkContext) -> None:
    """SAM2-style models: ``backbone_feature_sizes`` are the maps the tiny backbone really makes, and the
    prompt encoder's grid (image_size // patch_size) is the coarsest of them, as in the released configs."""
    vision, prompt = node.get("vision_config"), node.get("prompt_encoder_config")
    if not (isinstance(vision, dict) and isinstance(vision.get("backbone_feature_sizes"), list)):
        return
    grids = _feature_grids(vision, len(vision["backbone_feature_sizes"]))
    if not grids:
        return
    vision["backbone_feature_sizes"] = [[g, g] for g in grids]
    image = _side(vision["backbone_config"].get("image_size"))
    if isinstance(prompt, dict) and image:
        prompt["image_size"] = image
        prompt["patch_size"] = max(1, image // grids[-1])
    if _is_int(node.get("image_size")) and image:
        node["image_size"] = image
    rope = node.get("memory_attention_rope_feat_sizes")
    if isinstance(rope, list) and len(rope) == 2:
        node["memory_attention_rope_feat_sizes"] = [grids[-1], grids[-1]]


@rules.family_rule("vision_memory_resampler")
def _rule_memory_resampler(node: dict, ctx: shrink.ShrinkContext) -> None:
    """EdgeTAM video: the memory perceiver's heads span its hidden size (positions are added per head), and
    its 2-D latents tile the tiny memory map (``memory_attention_rope_feat_sizes``) in whole windows."""
    hidden, heads = node.get("perceiver_resampler_hidden_size"), node.get("perceiver_resampler_num_attention_heads")
    if not (_is_int(hidden) and _is_int(heads) and heads > 0):
        return
    if _is_int(node.get("perceiver_resampler_attention_head_dim")):
        node["perceiver_resampler_attention_head_dim"] = hidden // heads
    if _is_int(node.get("perceiver_resampler_num_latents")) and node["perceiver_resampler_num_latents"] > 0:
        node["perceiver_resampler_num_latents"] = min(node["perceiver_resampler_num_latents"], 16)
    grid = node.get("memory_attention_rope_feat_sizes")
    if _is_int(node.get("perceiver_resampler_num_latents_2d")) and isinstance(grid, list) and _is_int(grid[0]):
        if node["perceiver_resampler_num_latents_2d"] > 0:
            node["perceiver_resampler_num_latents_2d"] = max(1, grid[0] // 2) ** 2


@rules.family_rule("vision_memory_encoder")
def _rule_memory_encoder(node: dict, ctx: shrink.ShrinkContext) -> None:
    """SAM2-style video memory encoders: the mask downsampler multiplies channels by stride ** 2 a layer up
    to total_stride ** 2, so downsample in fewer, larger strides (4 instead of 2) with the same total; the
    memory fuser's hidden width follows its embedding; one layer of memory perceiver, memory attention, memory
    fuser and mask-decoder transformer (these models carry a tracker on top of SAM2: the weights stay under 2 MB)."""
    total, stride = node.get("mask_downsampler_total_stride"), node.get("mask_downsampler_stride")
    if not (_is_int(total) and _is_int(stride)):
        return
    if stride == 2 and total >= 4 and (total.bit_length() - 1) % 2 == 0:
        node["mask_downsampler_stride"] = 4
    embed, inner = node.get("memory_fuser_embed_dim"), node.get("memory_fuser_intermediate_dim")
    if _is_int(embed) and _is_int(inner):
        node["memory_fuser_intermediate_dim"] = min(inner, 2 * embed)
    if _is_int(node.get("perceiver_resampler_num_layers")):
        node["perceiver_resampler_num_layers"] = 1
    for key in ("memory_attention_num_layers", "memory_fuser_num_layers"):
        if _is_int(node.get(key)):
            node[key] = 1
    decoder = node.get("mask_decoder_config")
    if isinstance(decoder, dict) and _is_int(decoder.get("num_hidden_layers")):
        decoder["num_hidden_layers"] = 1  # the two-way transformer: weights of video models stay under the limit


def _set_tracker_width(tracker: dict, width: int, old_width: int, ctx: shrink.ShrinkContext) -> None:
    """Every width of a SAM-style tracker tree that equalled its FPN width (``old_width``) becomes ``width``."""
    stack = [tracker]
    while stack:
        sub = stack.pop()
        old = ctx.old.get(id(sub), {})
        for k, v in sub.items():
            if shrink.is_config_dict(k, v):
                stack.append(v)
            elif _is_int(v) and old.get(k) == old_width and ("hidden" in k or k.endswith("embed_dim")):
                sub[k] = width


@rules.family_rule("vision_shared_tracker_width")
def _rule_shared_tracker_width(node: dict, ctx: shrink.ShrinkContext) -> None:
    """SAM3 video: the tracker runs on the detector's vision features, so it has the detector's vision
    config and its widths (every tracker width that equalled the FPN width) follow the detector's FPN."""
    detector, tracker = node.get("detector_config"), node.get("tracker_config")
    if not (isinstance(detector, dict) and isinstance(tracker, dict)):
        return
    det_vision, trk_vision = detector.get("vision_config"), tracker.get("vision_config")
    if not (isinstance(det_vision, dict) and isinstance(trk_vision, dict)):
        return
    width = det_vision.get("fpn_hidden_size")
    old_width = ctx.old.get(id(trk_vision), {}).get("fpn_hidden_size")
    if not (_is_int(width) and _is_int(old_width)):
        return
    _set_tracker_width(tracker, width, old_width, ctx)
    tracker["vision_config"] = copy.deepcopy(det_vision)


#: SAM3 tracker video: ViT + a 4-scale FPN neck of 3x3 convolutions + SAM2 decoder + video memory: at the
#: generic width of 64 it is just under 2 MB; at the width of SAM3 itself (32, see families.multimodal) ~1.2 MB.
NARROW_TRACKER_WIDTH = 32


@rules.family_rule("vision_narrow_video_tracker")
def _rule_narrow_video_tracker(node: dict, ctx: shrink.ShrinkContext) -> None:
    """SAM3 tracker video: every width that equalled the FPN width becomes :data:`NARROW_TRACKER_WIDTH`."""
    vision = node.get("vision_config")
    if node.get("model_type") != "sam3_tracker_video" or not isinstance(vision, dict):
        return
    old_width = ctx.old.get(id(vision), {}).get("fpn_hidden_size")
    if _is_int(old_width):
        _set_tracker_width(node, NARROW_TRACKER_WIDTH, old_width, ctx)


@rules.family_rule("vision_pretrain_image_size")
def _rule_pretrain_image_size(node: dict, ctx: shrink.ShrinkContext) -> None:
    """ViT backbones with interpolated absolute positions (ViTDet, SAM3 ViT): the position table has
    (pretrain_image_size // patch_size) ** 2 rows; pre-train at the tiny image size."""
    pre, size = node.get("pretrain_image_size"), _side(node.get("image_size"))
    if _is_int(pre) and size and pre > size:
        node["pretrain_image_size"] = size


@rules.family_rule("vision_video_clip")
def _rule_video_clip(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Video transformers (V-JEPA 2, VideoPrism): a short clip of tiny frames; the tubelet's spatial size
    is the tiny patch size (VideoPrism's 18x18 tubelets would not fit a 32-pixel frame)."""
    tubelet = node.get("tubelet_size")
    if tubelet is None or not any(k in node for k in ("frames_per_clip", "num_frames")):
        return
    for key in ("frames_per_clip", "num_frames"):
        if _is_int(node.get(key)) and node[key] > 4:
            t = tubelet[0] if isinstance(tubelet, list) else tubelet
            node[key] = max(4, 2 * int(t)) if _is_int(t) else 4
    if _is_int(node.get("crop_size")):
        node["crop_size"] = min(node["crop_size"], shrink.TINY["image_size"])
    image = _side(node.get("image_size", node.get("crop_size")))
    if isinstance(tubelet, list) and len(tubelet) == 3 and image and image % tubelet[1]:
        patch = shrink.TINY["patch_size"]
        node["tubelet_size"] = [tubelet[0], patch, patch]


@rules.family_rule("vision_seggpt_layers")
def _rule_seggpt_layers(node: dict, ctx: shrink.ShrinkContext) -> None:
    """SegGPT: the decoder reads hidden states at ``intermediate_hidden_state_indices`` and the prompt and
    image branches merge after layer ``merge_index`` (<= the first of them): all within the tiny layer count;
    ``image_size`` keeps the 2:1 canvas of prompt over image; a narrow decoder keeps the weights small."""
    indices, layers = node.get("intermediate_hidden_state_indices"), node.get("num_hidden_layers")
    if not (isinstance(indices, list) and indices and _is_int(layers)):
        return
    old_layers = ctx.old.get(id(node), {}).get("num_hidden_layers", layers)
    node["intermediate_hidden_state_indices"] = sorted({min(layers - 1, i * layers // old_layers) for i in indices})
    old_size, size = ctx.old.get(id(node), {}).get("image_size"), node.get("image_size")
    if isinstance(old_size, list) and isinstance(size, list) and old_size[0] == 2 * old_size[1]:
        node["image_size"] = [2 * size[1], size[1]]  # the prompt and the image stacked vertically
    if _is_int(node.get("decoder_hidden_size")):  # decoder_embed maps to patch_size ** 2 * decoder_hidden_size
        node["decoder_hidden_size"] = min(node["decoder_hidden_size"], 16)
    if _is_int(node.get("merge_index")):
        node["merge_index"] = min(node["merge_index"], node["intermediate_hidden_state_indices"][0])


@rules.family_rule("vision_gnn_layers")
def _rule_gnn_layers(node: dict, ctx: shrink.ShrinkContext) -> None:
    """SuperGlue: one self- and one cross-attention GNN layer; the keypoint encoder MLP narrows with the
    hidden size (its last width is the hidden size); 10 Sinkhorn iterations."""
    types = node.get("gnn_layers_types")
    if not (isinstance(types, list) and types):
        return
    node["gnn_layers_types"] = list(dict.fromkeys(types))
    if _is_int(node.get("sinkhorn_iterations")):  # optimal-transport iterations over every keypoint pair
        node["sinkhorn_iterations"] = min(node["sinkhorn_iterations"], 10)
    sizes, hidden = node.get("keypoint_encoder_sizes"), node.get("hidden_size")
    if isinstance(sizes, list) and sizes and all(_is_int(s) for s in sizes) and _is_int(hidden):
        factor = shrink.pow2_factor(max(sizes), hidden // 2)
        node["keypoint_encoder_sizes"] = [_pow2_down(s, factor) for s in sizes]


@rules.family_rule("vision_naflex_patches")
def _rule_naflex_patches(node: dict, ctx: shrink.ShrinkContext) -> None:
    """NaFlex vision towers (SigLIP2): the position grid has ``num_patches`` = side ** 2 entries; the tiny
    grid is the tiny image's (image_size // patch_size) ** 2."""
    if not _is_int(node.get("num_patches")) or "image_size" in node or not _is_int(node.get("patch_size")):
        return
    side = max(1, shrink.TINY["image_size"] // node["patch_size"])
    node["num_patches"] = min(node["num_patches"], side * side)


# --------------------------------------------------------------------------- smoke: input builders


def _sub(config: Any, *keys: str) -> Any:
    """The config's vision sub-config holding ``keys`` (or the config itself)."""
    for sub in (config, *(getattr(config, k, None) for k in ("vision_config", "backbone_config"))):
        if sub is not None and any(getattr(sub, k, None) is not None for k in keys):
            return sub
    return config


def _video_shape(config: Any) -> tuple[int, int, int, int]:
    """(frames, channels, height, width) of the clips a video config expects."""
    sub = _sub(config, "num_frames", "frames_per_clip")
    frames = getattr(sub, "num_frames", None) or getattr(sub, "frames_per_clip", None) or 4
    channels = getattr(sub, "num_channels", None) or getattr(sub, "in_chans", None) or 3
    size = getattr(sub, "image_size", None) or getattr(sub, "crop_size", None) or 32
    h, w = (size, size) if _is_int(size) else (int(size[0]), int(size[-1]))
    return int(frames), int(channels), int(h), int(w)


@rules.input_builder("pixel_values_videos")
def _pixel_values_videos(c: InputContext) -> Any:
    """Video clips: (batch, frames, channels, height, width) from the config's frames and frame size."""
    frames, channels, h, w = _video_shape(c.config)
    return c.randn(c.b, frames, channels, h, w)


def _patch_count(config: Any) -> int:
    """Patches (tubelets for video configs) of one input: the sequence a masked-modelling mask covers."""
    h, w = configtools.image_size_of(config)
    sub = _sub(config, "patch_size")
    patch = getattr(sub, "patch_size", None) or 16
    ph, pw = (patch, patch) if _is_int(patch) else (int(patch[0]), int(patch[-1]))
    count = (h // ph) * (w // pw)
    frames, tubelet = getattr(sub, "num_frames", None), getattr(sub, "tubelet_size", None)
    if _is_int(frames) and _is_int(tubelet) and tubelet > 0:
        count *= frames // tubelet
    return count


@rules.input_builder("bool_masked_pos")
def _bool_masked_pos(c: InputContext) -> Any:
    """Masked image / video modelling: (batch, patches), the same number of patches masked in every row."""
    n = _patch_count(c.config)
    mask = c.torch.zeros(c.b, n, dtype=c.torch.bool)
    mask[:, 1::2] = True
    return mask


@rules.input_builder("prompt_pixel_values")
def _prompt_pixel_values(c: InputContext) -> Any:
    """In-context segmentation (SegGPT): the prompt image, shaped like ``pixel_values``."""
    return build_input("pixel_values", c)


@rules.input_builder("prompt_masks")
def _prompt_masks(c: InputContext) -> Any:
    """In-context segmentation (SegGPT): the prompt's mask, an image of the prompt's shape."""
    return build_input("pixel_values", c)


#: model types whose vision tower takes NaFlex patches: pixel_values (batch, patches, channels * patch ** 2)
#: with ``spatial_shapes`` (batch, 2) and ``pixel_attention_mask`` (batch, patches).
NAFLEX_MODEL_TYPES = frozenset({"siglip2", "siglip2_vision_model"})


def _naflex(config: Any) -> tuple[int, int, int] | None:
    """(grid side, channels, patch size) of a NaFlex vision config (or its vision sub-config)."""
    sub = _sub(config, "num_patches")
    patches, patch = getattr(sub, "num_patches", None), getattr(sub, "patch_size", None)
    if not (_is_int(patches) and _is_int(patch)) or getattr(sub, "image_size", None) is not None:
        return None
    return max(1, int(patches ** 0.5)), int(getattr(sub, "num_channels", 3) or 3), patch


@rules.input_builder("spatial_shapes")
def _spatial_shapes(c: InputContext) -> Any:
    """NaFlex: the (rows, columns) patch grid of every image: the config's full square grid."""
    side = (_naflex(c.config) or (4, 3, 8))[0]
    return c.torch.tensor([[side, side]] * c.b, dtype=c.torch.long)


@rules.input_builder("pixel_attention_mask")
def _pixel_attention_mask(c: InputContext) -> Any:
    """NaFlex: which patches are real (all of them); otherwise a per-pixel mask of the image."""
    naflex = _naflex(c.config)
    if naflex is not None:
        return c.torch.ones(c.b, naflex[0] ** 2, dtype=c.torch.long)
    h, w = configtools.image_size_of(c.config)
    return c.torch.ones(c.b, h, w, dtype=c.torch.long)


def _session_class(model: Any) -> Any:
    """The inference-session class annotated on the model's ``forward`` (SAM2 / SAM3 video models)."""
    import inspect
    import sys

    ann = inspect.signature(model.forward).parameters["inference_session"].annotation
    if isinstance(ann, str):
        ann = getattr(sys.modules[type(model).__module__], ann.split("|")[0].strip(), None)
    if not isinstance(ann, type):
        raise SmokeError(f"{type(model).__name__}.forward: cannot tell the inference session class")
    return ann


#: frames of the dummy video of an inference session
_SESSION_FRAMES = 2


@rules.input_builder("inference_session")
def _inference_session(c: InputContext) -> Any:
    """Video segmentation (SAM2/SAM3 video, EdgeTAM video): a session over a short video of the tiny image
    size with one object clicked at the centre of frame 0 (or a text prompt, for text-prompted SAM3 video)."""
    h, w = configtools.image_size_of(c.config)
    video = c.randn(_SESSION_FRAMES, 3, h, w)
    session = _session_class(c.model)(video=video, video_height=h, video_width=w, dtype=c.torch.float32)
    if hasattr(session, "add_point_inputs"):
        obj_idx = session.obj_id_to_idx(1)
        points = {"point_coords": c.torch.tensor([[[[w / 2.0, h / 2.0]]]]),
                  "point_labels": c.torch.ones(1, 1, 1, dtype=c.torch.int32)}
        session.add_point_inputs(obj_idx, 0, points)
        session.obj_with_new_inputs = [1]
    elif hasattr(session, "add_prompt"):
        prompt_id = session.add_prompt("a tiny object")
        session.prompt_input_ids[prompt_id] = c.ids((1, c.t))
        session.prompt_attention_masks[prompt_id] = c.torch.ones(1, c.t, dtype=c.torch.long)
    return session


# --------------------------------------------------------------------------- smoke: input fixups


@rules.input_fixup("vision_in_context_pairs")
def _fixup_in_context_pairs(c: InputContext, inputs: dict) -> None:
    """SegGPT: ``image_size`` is the canvas of the prompt stacked over the image, so every input image
    (image, prompt image, prompt mask) is half the configured height."""
    if "prompt_pixel_values" not in inputs or getattr(c.config, "model_type", "") != "seggpt":
        return
    h, w = configtools.image_size_of(c.config)
    for name in ("pixel_values", "prompt_pixel_values", "prompt_masks"):
        if name in inputs:
            inputs[name] = c.randn(c.b, int(getattr(c.config, "num_channels", 3)), h // 2, w)


#: model types matching the keypoints of an image *pair*: ``pixel_values`` is (batch, 2, channels, h, w).
IMAGE_PAIR_MODEL_TYPES = frozenset({"lightglue", "superglue", "efficientloftr"})


@rules.input_fixup("vision_image_pairs")
def _fixup_image_pairs(c: InputContext, inputs: dict) -> None:
    """Keypoint matchers (LightGlue, SuperGlue, EfficientLoFTR) take two images per example."""
    pixels = inputs.get("pixel_values")
    if getattr(c.config, "model_type", "") not in IMAGE_PAIR_MODEL_TYPES or pixels is None or pixels.ndim != 4:
        return
    inputs["pixel_values"] = c.torch.stack([pixels, c.randn(*pixels.shape)], dim=1)


@rules.input_fixup("vision_naflex_patches")
def _fixup_naflex_patches(c: InputContext, inputs: dict) -> None:
    """SigLIP2: images go in already cut into patches, with their grid and patch mask."""
    naflex = _naflex(c.config)
    pixels = inputs.get("pixel_values")
    if getattr(c.config, "model_type", "") not in NAFLEX_MODEL_TYPES or naflex is None or pixels is None:
        return
    side, channels, patch = naflex
    inputs["pixel_values"] = c.randn(c.b, side * side, channels * patch * patch)
    inputs["spatial_shapes"] = _spatial_shapes(c)
    inputs["pixel_attention_mask"] = _pixel_attention_mask(c)


@rules.input_fixup("vision_perceiver_latent_inputs")
def _fixup_perceiver_inputs(c: InputContext, inputs: dict) -> None:
    """Perceiver without a preprocessor (``PerceiverModel``): ``inputs`` are already embedded, (batch, seq,
    d_model)."""
    if getattr(c.config, "model_type", "") != "perceiver" or "inputs" not in inputs:
        return
    if hasattr(c.model, "input_preprocessor") and c.model.input_preprocessor is None:
        inputs["inputs"] = c.randn(c.b, c.t, int(c.config.d_model))


@rules.input_fixup("vision_text_video_grounding")
def _fixup_text_video_grounding(c: InputContext, inputs: dict) -> None:
    """TVP: the text query and the video frames (batch, num_frames, channels, max_img_size, max_img_size), one
    example: its 2-D position embeddings are viewed with the batch size (``col_shape``), so batch > 1 fails."""
    if getattr(c.config, "model_type", "") != "tvp":
        return
    size = int(c.config.max_img_size)
    inputs["pixel_values"] = c.randn(1, int(c.config.num_frames), 3, size, size)
    for name in ("input_ids", "attention_mask"):
        if name in inputs:
            inputs[name] = inputs[name][:1]


@rules.input_fixup("vision_session_frame")
def _fixup_session_frame(c: InputContext, inputs: dict) -> None:
    """Video segmentation sessions: run the frame holding the prompt (frame 0)."""
    if "inference_session" in inputs and "frame_idx" not in inputs:
        inputs["frame_idx"] = 0
