"""Family special cases: detection (see :mod:`pytest_tinymodels.build.families`).

Detection, segmentation, depth, document-layout and OCR models: DETR-like models over a timm backbone,
RT-DETR-like hybrid encoders over CNN backbones, grounding models, PaddlePaddle OCR / layout models,
DPT-style depth heads.
"""

from __future__ import annotations

from typing import Any

from .. import configtools, rules, shrink
from ..inputs import InputContext

_is_int = shrink.is_int

# --------------------------------------------------------------------------- timm backbones

#: timm backbone name prefix -> (transformers model type of the same architecture, offset from timm's
#: ``features_only`` ``out_indices`` to the transformers backbone's ``out_indices`` over ``stage_names``).
#: timm's resnet features are [stem, layer1..4] like transformers' stage names; timm's swin has no stem feature.
TIMM_BACKBONES: dict[str, tuple[str, int]] = {
    "resnet": ("resnet", 0),
    "swin": ("swin", 1),
}


def timm_replacement(node: dict) -> dict | None:
    """The tiny transformers backbone config dict replacing a ``timm_backbone`` config dict, or None."""
    name = str(node.get("backbone") or "")
    entry = next((v for k, v in TIMM_BACKBONES.items() if name.startswith(k)), None)
    if entry is None:
        return None
    model_type, offset = entry
    from transformers import AutoConfig

    base = AutoConfig.for_model(model_type).to_dict()
    small = shrink.shrink_dict(base)
    stages = small.get("stage_names") or []
    idx = node.get("out_indices")
    if isinstance(idx, (list, tuple)) and idx and stages:
        new_idx = sorted({min(max(int(i) + offset, 1), len(stages) - 1) for i in idx})
    else:
        new_idx = [len(stages) - 1] if stages else None
    small.pop("out_features", None)
    small.pop("transformers_version", None)
    if new_idx is not None:
        small["out_indices"] = new_idx
        small["out_features"] = [stages[i] for i in new_idx]
    if _is_int(node.get("num_channels")):
        small["num_channels"] = node["num_channels"]
    return small


@rules.family_rule("detection_timm_backbone")
def _rule_timm_backbone(node: dict, ctx: shrink.ShrinkContext) -> None:
    """DETR family: timm is not installed, so a model's ``timm_backbone`` sub-config becomes the same
    architecture's transformers backbone config (tiny), with the same feature maps.  (A standalone timm backbone
    config is left alone: it is timm's.)"""
    for k, sub in list(node.items()):
        if isinstance(sub, dict) and sub.get("model_type") == "timm_backbone":
            new = timm_replacement(sub)
            if new is not None:
                node[k] = new


def backbone_out_channels(bb: dict) -> list[int] | None:
    """Channels of the feature maps a (tiny) backbone config dict outputs, one per ``out_indices`` entry."""
    idx = bb.get("out_indices")
    if not (isinstance(idx, list) and idx and all(_is_int(i) for i in idx)):
        return None
    widths = bb.get("stage_out_channels") or bb.get("hidden_sizes")
    if isinstance(widths, list) and widths and all(1 <= i <= len(widths) for i in idx):
        return [widths[i - 1] for i in idx]
    embed, depths = bb.get("embed_dim"), bb.get("depths")
    if _is_int(embed) and isinstance(depths, list) and all(1 <= i <= len(depths) for i in idx):
        return [embed * 2 ** (i - 1) for i in idx]  # swin-like: channels double at every stage
    return None


#: per-level input channel lists of necks / hybrid encoders over a backbone's feature maps.
BACKBONE_CHANNEL_KEYS = ("encoder_in_channels", "layer_list_out_channels")


@rules.family_rule("detection_encoder_in_channels")
def _rule_encoder_in_channels(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Hybrid encoders / necks over a backbone (OmDet-Turbo's Swin, PP-DocLayout-V3's extra stride-4 map, PP-OCR
    detectors' ``layer_list_out_channels``): their per-level input channels are the backbone's last output
    channels (as many as at full size)."""
    bb = node.get("backbone_config")
    key = next((k for k in BACKBONE_CHANNEL_KEYS if isinstance(node.get(k), list)), None)
    if not (isinstance(bb, dict) and key):
        return
    chans = backbone_out_channels(bb)
    n = len(ctx.old.get(id(node), {}).get(key) or node[key])
    if chans is None or len(chans) < n:
        return
    widths = isinstance(bb.get("stage_out_channels") or bb.get("hidden_sizes"), list)
    if key == "encoder_in_channels" and widths and len(chans) == n:
        return  # one map per entry of a CNN's stage widths: shrink's own ``backbone_channels`` rule
    node[key] = chans[len(chans) - n:]
    # maps before those (PP-DocLayout-V3's stride-4 map for the mask branch) keep their own widths
    old_chans = backbone_out_channels(ctx.old.get(id(bb), {}))
    if old_chans is not None and len(old_chans) == len(chans):
        moved = dict(zip(old_chans[: len(chans) - n], chans[: len(chans) - n]))
        for k, v in list(node.items()):
            if k.endswith("feat_dim") and _is_int(v) and ctx.old.get(id(node), {}).get(k) in moved:
                node[k] = moved[ctx.old[id(node)][k]]


@rules.family_rule("detection_hidden_channel_lists")
def _rule_hidden_channel_lists(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Per-level channel lists equal to a hidden size of the same config (``decoder_in_channels`` = the
    encoder's hidden dim in RT-DETR) follow that hidden size."""
    old = ctx.old.get(id(node), {})
    moved = {old[k]: v for k, v in node.items()
             if (shrink.key_kind(k) == "hidden" or k.endswith("hidden_dim"))
             and _is_int(v) and _is_int(old.get(k)) and old[k] != v}
    if not moved:
        return
    for k, v in list(node.items()):
        if not (k.endswith("channels") and isinstance(v, list) and v and all(_is_int(x) for x in v)):
            continue
        if k in shrink.STAGE_DIM_KEYS or k == "encoder_in_channels" or v != old.get(k):
            continue
        if all(x in moved for x in v):
            node[k] = [moved[x] for x in v]


@rules.family_rule("detection_hybrid_encoder_width")
def _rule_hybrid_encoder_width(node: dict, ctx: shrink.ShrinkContext) -> None:
    """RT-DETR-style hybrid encoders (CSP layers of three 3x3 RepVGG blocks at every level, projected to the
    decoder through ``decoder_in_channels``) dominate the weights: an encoder half as wide as the decoder and
    half the CSP expansion keep the detectors under the size budget."""
    if not (_is_int(node.get("encoder_hidden_dim")) and isinstance(node.get("hidden_expansion"), (int, float))):
        return
    node["hidden_expansion"] = min(float(node["hidden_expansion"]), 0.5)
    dec = node.get("decoder_in_channels")
    if not (isinstance(dec, list) and dec):
        return
    width = node["encoder_hidden_dim"]
    new = max(16, min(width, shrink.TINY["hidden"] // 2))
    node["encoder_hidden_dim"] = new
    node["decoder_in_channels"] = [new if x == width else x for x in dec]


#: DETR's mask head takes ``d_model + encoder_attention_heads`` channels, which must be a multiple of 8.
rules.model_type_values("detr", {"encoder_attention_heads": 8, "decoder_attention_heads": 8})


# --------------------------------------------------------------------------- open-vocabulary detection inputs

#: class prompts per image for detectors that take a flat batch of class prompts (OmDet-Turbo).
CLASSES_PER_IMAGE = 2


@rules.input_builder("classes_input_ids")
def _classes_input_ids(c: InputContext) -> Any:
    """OmDet-Turbo: one tokenized class prompt per class, all images' classes flattened: (b * classes, t)."""
    return c.ids((c.b * CLASSES_PER_IMAGE, c.t))


@rules.input_builder("classes_attention_mask")
def _classes_attention_mask(c: InputContext) -> Any:
    """Mask of :func:`_classes_input_ids`: (b * classes, t)."""
    return c.torch.ones(c.b * CLASSES_PER_IMAGE, c.t, dtype=c.torch.long)


@rules.input_builder("classes_structure")
def _classes_structure(c: InputContext) -> Any:
    """Number of class prompts of each image: (b,)."""
    return c.torch.full((c.b,), CLASSES_PER_IMAGE, dtype=c.torch.long)


@rules.input_builder("tasks_input_ids")
def _tasks_input_ids(c: InputContext) -> Any:
    """OmDet-Turbo: one tokenized task prompt per image: (b, t)."""
    return c.ids((c.b, c.t))


@rules.input_builder("tasks_attention_mask")
def _tasks_attention_mask(c: InputContext) -> Any:
    """Mask of :func:`_tasks_input_ids`: (b, t)."""
    return c.torch.ones(c.b, c.t, dtype=c.torch.long)


#: OmDet-Turbo's layer norms after the backbone expect timm's channels-last feature maps; the transformers
#: Swin backbone (the timm replacement) returns channels-first maps that it has already normalized.
rules.model_type_values("omdet-turbo", {"apply_layernorm_after_vision_backbone": False})


@rules.family_rule("detection_class_embed_dim")
def _rule_class_embed_dim(node: dict, ctx: shrink.ShrinkContext) -> None:
    """OmDet-Turbo projects class embeddings (the text model's width) to the decoder only when
    ``class_embed_dim != decoder_hidden_dim``, yet always uses that projection: keep their full-size ratio
    by narrowing the detector (encoder = decoder = deformable-attention width) rather than the text model."""
    old = ctx.old.get(id(node), {})
    ced, dhd = old.get("class_embed_dim"), old.get("decoder_hidden_dim")
    if not (_is_int(ced) and _is_int(dhd) and ced != dhd and _is_int(node.get("decoder_hidden_dim"))):
        return
    if node["class_embed_dim"] != node["decoder_hidden_dim"]:
        return
    width = node["decoder_hidden_dim"]
    new = max(8, node["class_embed_dim"] * dhd // ced)
    for k, v in list(node.items()):
        if k in ("decoder_hidden_dim", "encoder_hidden_dim", "d_model") and v == width:
            node[k] = new
        elif k.endswith("channels") and k != "encoder_in_channels" and isinstance(v, list) and v \
                and all(x == width for x in v):
            node[k] = [new] * len(v)


@rules.family_rule("detection_per_class_lists")
def _rule_per_class_lists(node: dict, ctx: shrink.ShrinkContext) -> None:
    """PP-DocLayout-V2: ``class_thresholds`` / ``class_order`` (None by default) hold one entry per label;
    class orders index the reading-order model's class embeddings."""
    if "class_thresholds" not in node and "class_order" not in node:
        return
    labels = node.get("id2label")
    n = len(labels) if isinstance(labels, dict) and labels else node.get("num_labels")
    if not _is_int(n):
        return
    ro = node.get("reading_order_config")
    n_order = ro.get("num_classes") if isinstance(ro, dict) and _is_int(ro.get("num_classes")) else n
    if "class_thresholds" in node and not (isinstance(node["class_thresholds"], list)
                                           and len(node["class_thresholds"]) == n):
        node["class_thresholds"] = [0.5] * n
    if "class_order" in node and not (isinstance(node["class_order"], list) and len(node["class_order"]) == n):
        node["class_order"] = [i % n_order for i in range(n)]


@rules.input_fixup("detection_full_text_length")
def _full_text_length(c: InputContext, inputs: dict) -> None:
    """Grounding DINO family: text logits are padded to ``max_text_len`` with -inf by design, so the smoke
    forward uses a prompt of exactly ``max_text_len`` tokens (every logit is then a real, finite score)."""
    n = getattr(c.config, "max_text_len", None)
    ids = inputs.get("input_ids")
    if not (isinstance(n, int) and n > 0 and ids is not None and ids.dim() == 2 and ids.shape[1] != n):
        return
    b = ids.shape[0]
    inputs["input_ids"] = c.ids((b, n))
    for name, fill in (("attention_mask", 1), ("token_type_ids", 0)):
        if name in inputs:
            inputs[name] = c.torch.full((b, n), fill, dtype=c.torch.long)


#: Grounding DINO layers each hold deformable attention, a text enhancer and a bi-directional fusion block:
#: one encoder layer and a one-layer text backbone keep the model under the size budget (the decoder needs two
#: layers: its box heads are tied from the second layer on).
for _mt in ("grounding-dino", "mm-grounding-dino"):
    rules.model_type_values(_mt, {"encoder_layers": 1, "text_config": {"num_hidden_layers": 1}})


@rules.family_rule("detection_vit_windows")
def _rule_vit_windows(node: dict, ctx: shrink.ShrinkContext) -> None:
    """LW-DETR's ViT backbone splits the patch grid into ``num_windows`` (a perfect square) windows in the
    ``window_block_indices`` layers: as many windows per side as the tiny grid allows, the last layer global."""
    if not (_is_int(node.get("num_windows")) and isinstance(node.get("window_block_indices"), list)):
        return
    image, patch = node.get("image_size"), node.get("patch_size")
    if not (_is_int(image) and _is_int(patch) and patch > 0):
        return
    grid = image // patch
    side = max(s for s in (1, 2, 3, 4)
               if grid % s == 0 and (image // (s * s)) % s == 0 and s * s <= node["num_windows"])
    node["num_windows"] = side * side
    if "num_windows_side" in node:
        node["num_windows_side"] = side
    layers = shrink.node_layers(node) or 1
    if node["window_block_indices"]:
        node["window_block_indices"] = list(range(max(1, layers - 1)))


@rules.family_rule("detection_projector_levels")
def _rule_projector_levels(node: dict, ctx: shrink.ShrinkContext) -> None:
    """LW-DETR's library default has no feature level at all (``projector_scale_factors=[]``): one level at the
    backbone's resolution, as in the small checkpoints; the derived per-level fields follow (the config derives
    them in ``__post_init__``, but ``from_dict`` would restore the serialized ones)."""
    scales = node.get("projector_scale_factors")
    if not (isinstance(scales, list) and "projector_in_channels" in node and _is_int(node.get("d_model"))):
        return
    if not scales:
        node["projector_scale_factors"] = scales = [1.0]
    node["projector_in_channels"] = [node["d_model"]] * len(scales)
    node["projector_out_channels"] = node["d_model"]
    node["num_feature_levels"] = len(scales)


#: LW-DETR trains ``group_detr`` query groups with a box head each: two groups keep the grouping, not the weights.
rules.model_type_values("lw_detr", {"group_detr": 2})


# --------------------------------------------------------------------------- DPT-style depth heads

#: per-feature-map channel lists of DPT-style necks (one backbone feature map per entry).
NECK_CHANNEL_KEYS = ("post_process_channels", "neck_hidden_sizes")
#: widths of a DPT head after its neck (fusion blocks, depth head, depth bins).
HEAD_WIDTH_KEYS = ("fusion_hidden_size", "head_hidden_size", "number_output_channels")


@rules.family_rule("detection_dpt_neck")
def _rule_dpt_neck(node: dict, ctx: shrink.ShrinkContext) -> None:
    """DPT-style depth heads (Depth Anything, CHMv2): the neck reassembles one backbone feature map per entry of
    its channel list, from the backbone's width; the backbone outputs that many layers."""
    key = next((k for k in NECK_CHANNEL_KEYS if isinstance(node.get(k), list) and node[k]), None)
    bb = node.get("backbone_config")
    if key is None or not isinstance(bb, dict):
        return
    neck, old, old_bb = node[key], ctx.old.get(id(node), {}), ctx.old.get(id(bb), {})
    if neck == old.get(key) and all(_is_int(x) for x in neck) and max(neck) > shrink.TINY["stage_max_dim"]:
        f = shrink.pow2_factor(max(neck), shrink.TINY["stage_max_dim"])
        node[key] = neck = [max(8, x // f) for x in neck]
        for k in HEAD_WIDTH_KEYS:  # the fusion / head widths shrink by the same factor
            if _is_int(old.get(k)):
                node[k] = max(8, old[k] // f)
    for k in ("reassemble_hidden_size",):
        if _is_int(node.get(k)) and old.get(k) == old_bb.get("hidden_size") and _is_int(bb.get("hidden_size")):
            node[k] = bb["hidden_size"]
    n = len(neck)
    layers = bb.get("num_hidden_layers")
    if isinstance(bb.get("out_indices"), list) and _is_int(layers) and len(bb["out_indices"]) != n:
        layers = max(layers, n)
        bb["num_hidden_layers"] = layers
        bb["stage_names"] = ["stem"] + [f"stage{i}" for i in range(1, layers + 1)]
        bb["out_indices"] = list(range(layers - n + 1, layers + 1))
        if isinstance(bb.get("out_features"), list):
            bb["out_features"] = [bb["stage_names"][i] for i in bb["out_indices"]]


@rules.family_rule("detection_multiscale_patches")
def _rule_multiscale_patches(node: dict, ctx: shrink.ShrinkContext) -> None:
    """DepthPro encodes the image at several ``scaled_images_ratios`` as overlapping patches of ``patch_size``
    pixels (= its ViT encoders' image size): the image is ``patch_size / min(ratio)`` pixels (declared as
    ``image_size``), hook ids index the tiny patch encoder's layers, feature dims shrink like the hidden sizes."""
    ratios, hooks = node.get("scaled_images_ratios"), node.get("intermediate_hook_ids")
    sub = node.get("patch_model_config")
    if not (isinstance(ratios, list) and ratios and isinstance(hooks, list) and isinstance(sub, dict)):
        return
    if not _is_int(sub.get("image_size")):
        return
    node["patch_size"] = sub["image_size"]
    node["image_size"] = -(-int(sub["image_size"] / min(ratios)) // 8) * 8
    old_layers = ctx.old.get(id(sub), {}).get("num_hidden_layers")
    layers = sub.get("num_hidden_layers")
    if _is_int(old_layers) and _is_int(layers):
        node["intermediate_hook_ids"] = [min(layers - 1, h * layers // old_layers) for h in hooks]
    dims = [k for k in ("intermediate_feature_dims", "scaled_images_feature_dims") if isinstance(node.get(k), list)]
    largest = max((x for k in dims for x in node[k] if _is_int(x)), default=0)
    if largest > shrink.TINY["hidden"]:
        f = shrink.pow2_factor(largest, shrink.TINY["hidden"])
        for k in dims:
            node[k] = [max(8, x // f) for x in node[k]]
        old = ctx.old.get(id(node), {})
        if _is_int(old.get("fusion_hidden_size")):  # the fusion stage's 3x3 convs shrink by the same factor
            node["fusion_hidden_size"] = max(8, old["fusion_hidden_size"] // f)


# --------------------------------------------------------------------------- PaddlePaddle OCR

#: height of the text-line images PP-OCR recognizers read (their image processors resize to 48 x W).
TEXT_LINE_HEIGHT = 48
#: tiny character set of CTC recognition heads (``head_out_channels``: one class per character).
TINY_CHARACTERS = 64
#: strides of the downsampling block of each LCNet stage of a recognizer (height, width): with the stem, the
#: height is downsampled 16x (48 -> 3 rows, pooled to the single row the CTC head reads), the width 4x.
REC_STAGE_STRIDES: list[Any] = [1, [2, 1], [2, 1], [1, 2], [2, 1]]


@rules.family_rule("detection_text_recognition")
def _rule_text_recognition(node: dict, ctx: shrink.ShrinkContext) -> None:
    """PP-OCR text recognizers: backbones downsample the height 16x and the head pools 3 rows, so images are
    text lines of :data:`TEXT_LINE_HEIGHT` pixels (declared as ``image_size``); the CTC head has a tiny
    character set; LCNet backbones downsample mostly the height (as in PaddleOCR's recognition nets) where the
    library default strides both ways 32x (leaving no row for the head)."""
    if not (str(node.get("model_type", "")).endswith("_rec") and _is_int(node.get("head_out_channels"))):
        return
    node["head_out_channels"] = min(node["head_out_channels"], TINY_CHARACTERS)
    node["image_size"] = TEXT_LINE_HEIGHT
    bb = node.get("backbone_config")
    blocks = bb.get("block_configs") if isinstance(bb, dict) else None
    if isinstance(blocks, list) and not any(isinstance(b[3], list) for stage in blocks for b in stage):
        for stage, stride in zip(blocks, REC_STAGE_STRIDES):
            for b in stage:
                if b[3] == 2:
                    b[3] = stride


#: PaddleOCR's IntraCL block (PP-OCRv5 server / v6 medium text detectors): (kernel, stride, padding) of each
#: convolution; the library default config leaves it None.
INTRACLASS_BLOCK_CONFIG: dict[str, list[Any]] = {
    "reduce_channel": [1, 1, 0],
    "return_channel": [1, 1, 0],
    "vertical_long_to_small_conv_longratio": [[7, 1], [1, 1], [3, 0]],
    "vertical_long_to_small_conv_midratio": [[5, 1], [1, 1], [2, 0]],
    "vertical_long_to_small_conv_shortratio": [[3, 1], [1, 1], [1, 0]],
    "horizontal_small_to_long_conv_longratio": [[1, 7], [1, 1], [0, 3]],
    "horizontal_small_to_long_conv_midratio": [[1, 5], [1, 1], [0, 2]],
    "horizontal_small_to_long_conv_shortratio": [[1, 3], [1, 1], [0, 1]],
    "symmetric_conv_long_longratio": [[7, 7], [1, 1], [3, 3]],
    "symmetric_conv_long_midratio": [[5, 5], [1, 1], [2, 2]],
    "symmetric_conv_long_shortratio": [[3, 3], [1, 1], [1, 1]],
}
#: DB head kernel sizes (conv, then two transposed convs) of PaddleOCR's text detectors.
DB_HEAD_KERNELS = [3, 2, 2]


@rules.family_rule("detection_text_detector_neck")
def _rule_text_detector_neck(node: dict, ctx: shrink.ShrinkContext) -> None:
    """PP-OCR text detectors whose library default leaves the neck undefined (``intraclass_block_config``,
    ``scale_factor_list``, ``kernel_list`` None): PaddleOCR's IntraCL blocks, every level upsampled to the
    finest one (x1, x2, x4, ...), the DB head's kernels; a narrower neck (its 9x9 convs dominate the weights)."""
    if "intraclass_block_config" not in node:
        return
    if node["intraclass_block_config"] is None:
        node["intraclass_block_config"] = {k: list(v) for k, v in INTRACLASS_BLOCK_CONFIG.items()}
    bb = node.get("backbone_config")
    levels = len(bb.get("stage_out_channels") or []) if isinstance(bb, dict) else 0
    if "scale_factor_list" in node and node["scale_factor_list"] is None and levels:
        node["scale_factor_list"] = [2 ** i for i in range(levels)]
    if "kernel_list" in node and node["kernel_list"] is None:
        node["kernel_list"] = list(DB_HEAD_KERNELS)
    if _is_int(node.get("neck_out_channels")):  # the large-kernel (9x9) PAN convs dominate the weights
        node["neck_out_channels"] = min(node["neck_out_channels"], shrink.TINY["hidden"] // 2)


#: stride of the first block of each LCNet-v4 stage in a text detector: every stage after the first halves the
#: resolution, so the FPN neck's x2 upsampling between consecutive levels matches.
DET_STAGE_STRIDES: list[Any] = [1, 2, 2, 2]


@rules.family_rule("detection_text_detector_backbone")
def _rule_text_detector_backbone(node: dict, ctx: shrink.ShrinkContext) -> None:
    """PP-OCRv6 text detectors default to the recognition LCNet-v4 (height-only strides, last stage only): the
    neck fuses every stage, each at half the previous resolution."""
    if not (str(node.get("model_type", "")).endswith("_det") and isinstance(node.get("backbone_config"), dict)):
        return
    bb = node["backbone_config"]
    blocks, names = bb.get("block_configs"), bb.get("stage_names")
    if not (isinstance(blocks, list) and isinstance(names, list) and len(names) == len(blocks) + 1):
        return
    if not any(isinstance(b[3], list) for stage in blocks for b in stage):
        return  # already a detection backbone
    for stage, stride in zip(blocks, DET_STAGE_STRIDES):
        for i, b in enumerate(stage):
            b[3] = stride if i == 0 else 1
    bb["out_indices"] = list(range(1, len(blocks) + 1))
    bb["out_features"] = names[1:]
    _rule_encoder_in_channels(node, ctx)  # the neck's input channels follow the new feature maps


# --------------------------------------------------------------------------- UVDoc (document unwarping)

#: UVDoc's channel counts live in nested lists: divide those of at least 16 by this factor.
UVDOC_CHANNEL_FACTOR = 4
#: residual blocks kept per UVDoc ResNet stage (the first one downsamples).
UVDOC_BLOCKS_PER_STAGE = 2


def _narrow(c: Any) -> Any:
    return c // UVDOC_CHANNEL_FACTOR if _is_int(c) and c >= 16 else c


@rules.family_rule("detection_uvdoc_channels")
def _rule_uvdoc_channels(node: dict, ctx: shrink.ShrinkContext) -> None:
    """UVDoc describes its layers as nested lists ([in, out] heads, [in, out, dilation, downsample] blocks,
    [channels, dilation] bridges) the generic shrinker does not read: narrower channels, fewer blocks per stage;
    the head fuses every bridge output, so the backbone outputs all of them."""
    if isinstance(node.get("resnet_configs"), list) and isinstance(node.get("stage_configs"), list):
        node["resnet_head"] = [[_narrow(a), _narrow(b)] for a, b in node["resnet_head"]]
        node["resnet_configs"] = [
            [[_narrow(i), _narrow(o), d, down] for i, o, d, down in stage[:UVDOC_BLOCKS_PER_STAGE]]
            for stage in node["resnet_configs"]
        ]
        node["stage_configs"] = [[[_narrow(c), d] for c, d in bridge] for bridge in node["stage_configs"]]
        names = node.get("stage_names")
        if isinstance(names, list) and len(names) == len(node["stage_configs"]) + 1:
            node["out_indices"] = list(range(1, len(names)))
            node["out_features"] = names[1:]
    if isinstance(node.get("bridge_connector"), list) and isinstance(node.get("out_point_positions2D"), list):
        node["bridge_connector"] = [_narrow(c) for c in node["bridge_connector"]]
        node["out_point_positions2D"] = [[_narrow(a), _narrow(b)] for a, b in node["out_point_positions2D"]]
        bb = node.get("backbone_config")
        if isinstance(bb, dict) and isinstance(bb.get("resnet_head"), list) and _is_int(node.get("kernel_size")):
            # the head's reflect-padded convs need a map larger than their padding after the 2^k downsampling
            downs = len(bb["resnet_head"]) + sum(1 for st in bb.get("resnet_configs") or [] if st and st[0][3])
            node["image_size"] = max(shrink.TINY["image_size"], 2 ** downs * (node["kernel_size"] // 2 + 1))


#: the UVDoc backbone has no image processor of its own: UVDoc's.
rules.IMAGE_PROCESSOR_OF["uvdoc_backbone"] = "uvdoc"


@rules.input_builder("task_inputs")
def _task_inputs(c: InputContext) -> Any:
    """OneFormer: the tokenized task prompt ("the task is semantic"), padded to ``task_seq_len``: (b, len)."""
    length = getattr(c.config, "task_seq_len", None) or c.t
    vocab = getattr(c.config, "text_encoder_vocab_size", None) or configtools.text_vocab_size(c.config)
    return c.torch.randint(0, int(vocab), (c.b, int(length)), generator=c.gen)


@rules.family_rule("detection_pixel_decoder_dims")
def _rule_pixel_decoder_dims(node: dict, ctx: shrink.ShrinkContext) -> None:
    """OneFormer: the pixel decoder (``conv_dim``), mask features (``mask_dim``) and transformer decoder
    (``hidden_dim``) widths are equal at full size and the decoder projects one into the other: keep them equal."""
    old = ctx.old.get(id(node), {})
    keys = ("conv_dim", "mask_dim", "hidden_dim")
    if all(_is_int(old.get(k)) for k in keys) and len({old[k] for k in keys}) == 1 and _is_int(node.get("hidden_dim")):
        for k in keys:
            node[k] = node["hidden_dim"]
