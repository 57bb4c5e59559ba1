"""Family special cases: multimodal (see :mod:`pytest_tinymodels.build.families`).

Vision-language, omni and robotics models.  Their forwards usually need ``input_ids`` holding as many
image placeholder tokens as the tiny vision tower produces image features, plus extra inputs; the
configs rules here keep those counts small and the fixups put the placeholders where the model looks.
"""

from __future__ import annotations

from typing import Any

from .. import configtools, rules, shrink
from ..inputs import InputContext, InputsError, build_input

# --------------------------------------------------------------------------- helpers


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _forward_params(model: Any) -> set[str]:
    import inspect

    return set(inspect.signature(model.forward).parameters)


def _with_prefix(c: InputContext, inputs: dict, token: int, count: int) -> None:
    """``input_ids`` (and ``attention_mask``) starting with ``count`` copies of ``token``, then text."""
    torch = c.torch
    ids = inputs["input_ids"]
    length = max(ids.shape[-1], count + 4)
    if ids.shape[-1] < length:
        ids = torch.cat([ids, c.ids((*ids.shape[:-1], length - ids.shape[-1]))], dim=-1)
    ids = ids.clone()
    ids[..., :count] = token
    inputs["input_ids"] = ids
    if "attention_mask" in inputs:
        inputs["attention_mask"] = torch.ones_like(ids)


def _free_token_ids(node: dict, ctx: shrink.ShrinkContext, vocab: int, n: int) -> list[int]:
    """``n`` ids from the top of the vocabulary that no token id of ``node`` (nor a special id) uses."""
    used = {v for k, v in node.items() if "token" in k and _int(v)} | {v for v in ctx.special.values() if _int(v)}
    return [i for i in range(vocab - 1, 0, -1) if i not in used][:n]


# --------------------------------------------------------------------------- labels


@rules.input_fixup("answer_class_labels")
def _fix_answer_class_labels(c: InputContext, inputs: dict) -> None:
    """Visual QA heads that classify the answer among ``num_qa_labels`` (LXMERT's ``ForQuestionAnswering``):
    with labels, one answer class per example instead of an extractive span."""
    count = getattr(c.config, "num_qa_labels", None)
    if not c.labels or c.task != "question-answering" or not _int(count) or "labels" not in _forward_params(c.model):
        return
    inputs["labels"] = c.torch.randint(0, int(count), (c.b,), generator=c.gen)


#: classes whose forward takes ``labels`` (passing them to an inner language model) but returns no loss.
NO_LOSS_CLASSES = frozenset({"ShieldGemma2ForImageClassification"})


@rules.input_fixup("no_loss_with_labels")
def _fix_no_loss_with_labels(c: InputContext, inputs: dict) -> None:
    """ShieldGemma 2 (:data:`NO_LOSS_CLASSES`) scores Yes/No tokens and drops its language model's loss: asking
    for labels is an :class:`~pytest_tinymodels.build.inputs.InputsError`, as for any class without a loss."""
    if c.labels and type(c.model).__name__ in NO_LOSS_CLASSES:
        raise InputsError(f"{type(c.model).__name__} computes no loss for task {c.task!r}: its output has none "
                          "(it returns the Yes/No logits only)")


# --------------------------------------------------------------------------- text next to the image


@rules.input_fixup("text_with_pixels")
def _fix_text_with_pixels(c: InputContext, inputs: dict) -> None:
    """Image-to-text models whose main input is ``pixel_values`` but whose forward needs the text too
    (BLIP captioning, Kosmos-2, InstructBLIP, SAM 3's text prompt): ``input_ids`` and their mask."""
    if "pixel_values" not in inputs or "input_ids" in inputs:
        return
    params = _forward_params(c.model)
    if "input_ids" not in params:
        return
    inputs["input_ids"] = build_input("input_ids", c)
    if "attention_mask" in params:
        inputs["attention_mask"] = c.torch.ones_like(inputs["input_ids"])


@rules.input_fixup("attention_mask_with_ids")
def _fix_attention_mask(c: InputContext, inputs: dict) -> None:
    """Multimodal models that slice the text mask (BLIP-2 image-text retrieval) need it passed explicitly."""
    if "input_ids" in inputs and "attention_mask" not in inputs and "pixel_values" in inputs:
        if "attention_mask" in _forward_params(c.model):
            inputs["attention_mask"] = c.torch.ones_like(inputs["input_ids"])


# --------------------------------------------------------------------------- Q-Former models (BLIP-2 family)


@rules.family_rule("query_token_placeholders")
def _rule_query_tokens(node: dict, ctx: shrink.ShrinkContext) -> None:
    """BLIP-2 / InstructBLIP(Video): few learned query tokens, and an image / video placeholder id in the
    vocabulary (library default: None) so the query outputs have a place in the text; BLIP-2's Q-Former
    also gets its text feed-forward, which the image-text retrieval (ITM) head runs."""
    if not (isinstance(node.get("qformer_config"), dict) and _int(node.get("num_query_tokens"))):
        return
    node["num_query_tokens"] = min(node["num_query_tokens"], 2)
    if node.get("model_type") == "blip-2":  # its Q-Former's text feed-forward serves image-text retrieval
        node["qformer_config"]["use_qformer_text_input"] = True
    vocab = shrink.tree_vocab(node, ctx)
    if not _int(vocab):
        return
    for k in ("image_token_index", "video_token_index"):
        if k in node and node[k] is None:
            node[k] = vocab - 1


def _qformer_config(config: Any) -> Any:
    return getattr(config, "qformer_config", None) or config


@rules.input_builder("qformer_input_ids")
def _qformer_input_ids(c: InputContext) -> Any:
    """InstructBLIP: the instruction, tokenized for the Q-Former (ids below its own vocabulary)."""
    vocab = int(getattr(_qformer_config(c.config), "vocab_size", 64) or 64)
    # its own (BERT) vocabulary, not the language model's: ids above the usual special ids 0..2
    return c.torch.randint(3, max(4, min(vocab, 512)), (c.b, c.t), generator=c.gen)


@rules.input_builder("query_embeds")
def _query_embeds(c: InputContext) -> Any:
    """A standalone Q-Former: the learned query embeddings, (batch, queries, hidden)."""
    q = _qformer_config(c.config)
    return c.randn(c.b, int(getattr(c.config, "num_query_tokens", 4) or 4), int(q.hidden_size))


@rules.input_fixup("qformer_inputs")
def _fix_qformer(c: InputContext, inputs: dict) -> None:
    """Q-Former models: placeholder tokens for the query outputs (one set per video frame), the
    instruction mask, and image features for a standalone Q-Former's cross-attention."""
    cfg = c.config
    if "query_embeds" in inputs and getattr(cfg, "encoder_hidden_size", None):
        params = _forward_params(c.model)
        if "encoder_hidden_states" in params and "encoder_hidden_states" not in inputs:
            inputs["encoder_hidden_states"] = c.randn(c.b, 4, int(cfg.encoder_hidden_size))
        return
    if getattr(cfg, "qformer_config", None) is None or not _int(getattr(cfg, "num_query_tokens", None)):
        return
    pixels = inputs.get("pixel_values")
    if pixels is None:
        return
    video = _int(getattr(cfg, "video_token_id", None))
    if video and pixels.dim() == 4:  # video Q-Formers take (batch, frames, channels, h, w)
        pixels = inputs["pixel_values"] = pixels.unsqueeze(1).repeat(1, 2, 1, 1, 1)
    frames = pixels.shape[1] if pixels.dim() == 5 else 1
    if "qformer_input_ids" in inputs and "qformer_attention_mask" in _forward_params(c.model):
        inputs["qformer_attention_mask"] = c.torch.ones_like(inputs["qformer_input_ids"])
    token = cfg.video_token_id if video else getattr(cfg, "image_token_id", None)
    if "input_ids" in inputs and _int(token):
        _with_prefix(c, inputs, token, cfg.num_query_tokens * frames)


# --------------------------------------------------------------------------- Kosmos-2


#: Kosmos-2 resamples the image into ``latent_query_num`` embeddings (64): a few are enough.
rules.model_type_values("kosmos-2", {"latent_query_num": 4})


@rules.input_fixup("image_embeds_position_mask")
def _fix_image_embeds_position_mask(c: InputContext, inputs: dict) -> None:
    """Kosmos-2: the positions of the ``latent_query_num`` image embeddings inside the text (after the
    first token), given as a 0/1 mask over ``input_ids``."""
    n = getattr(c.config, "latent_query_num", None)
    if not (_int(n) and "pixel_values" in inputs and "input_ids" in inputs):
        return
    if "image_embeds_position_mask" not in _forward_params(c.model):
        return
    ids = inputs["input_ids"]
    if ids.shape[-1] < n + 2:
        ids = inputs["input_ids"] = c.torch.cat([ids, c.ids((ids.shape[0], n + 2 - ids.shape[-1]))], dim=-1)
        if "attention_mask" in inputs:
            inputs["attention_mask"] = c.torch.ones_like(ids)
    mask = c.torch.zeros_like(ids)
    mask[:, 1:n + 1] = 1
    inputs["image_embeds_position_mask"] = mask


@rules.input_fixup("answer_decoder_ids")
def _fix_answer_decoder(c: InputContext, inputs: dict) -> None:
    """Visual question answering with an answer decoder (BLIP VQA): inference needs ``decoder_input_ids``."""
    if "pixel_values" not in inputs or "decoder_input_ids" in inputs:
        return
    if type(c.model).__name__.endswith("ForQuestionAnswering") and "decoder_input_ids" in _forward_params(c.model):
        inputs["decoder_input_ids"] = build_input("decoder_input_ids", c)


# --------------------------------------------------------------------------- token-range layouts


#: tiny codebooks of discrete image / audio tokenizers whose codes live in the text vocabulary.
_CODEBOOK = 64


@rules.family_rule("code_token_ranges")
def _rule_code_token_ranges(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Apertus 1.5: image then audio codebook ranges sit at the top of the text vocabulary
    (``image_token_offset + codebook == audio_token_offset``, audio range inside the vocabulary), with the
    image / audio placeholder ids just below them."""
    vision, audio, text = (node.get(k) for k in ("vision_config", "audio_config", "text_config"))
    if not (_int(node.get("image_token_offset")) and _int(node.get("audio_token_offset"))
            and all(isinstance(x, dict) for x in (vision, audio, text)) and _int(text.get("vocab_size"))):
        return
    for sub in (vision, audio):
        if _int(sub.get("codebook_size")):
            sub["codebook_size"] = min(sub["codebook_size"], _CODEBOOK)
    vocab = text["vocab_size"]
    node["audio_token_offset"] = vocab - int(audio.get("codebook_size") or _CODEBOOK)
    node["image_token_offset"] = node["audio_token_offset"] - int(vision.get("codebook_size") or _CODEBOOK)
    for i, k in enumerate(("image_token_id", "audio_token_id")):
        if k in node:
            node[k] = node["image_token_offset"] - 1 - i
    width, groups = audio.get("decoder_hidden_size"), audio.get("decoder_attention_num_groups")
    if _int(width) and _int(groups) and width % groups:  # unless the audio family already made it valid
        audio["decoder_attention_num_groups"] = shrink.divisor_at_most(width, groups)


# --------------------------------------------------------------------------- multimodal RoPE


#: text model types whose modeling code assumes an ``mrope_section`` default the config does not write out.
IMPLICIT_MROPE_SECTIONS: dict[str, list[int]] = {
    "paddleocr_vl_text": [16, 24, 24],
    "ernie4_5_vl_moe_text": [22, 22, 20],  # height and width interleaved: the first two stay equal
}


def _scaled_sections(sections: list[int], half: int) -> list[int]:
    """``sections`` scaled to sum to ``half``; equal height/width sections stay equal."""
    total = sum(sections)
    new = [max(1, s * half // total) for s in sections]
    new[-1 if sections[0] == sections[1] else 0] += half - sum(new)
    return new


@rules.family_rule("implicit_mrope_sections")
def _rule_implicit_mrope(node: dict, ctx: shrink.ShrinkContext) -> None:
    """PaddleOCR-VL / ERNIE-4.5-VL text models: write their implicit ``mrope_section`` scaled to the tiny
    head dim (the modeling code otherwise splits the tiny rotary dim by the full-size sections)."""
    default = IMPLICIT_MROPE_SECTIONS.get(node.get("model_type", ""))
    rope = node.get("rope_parameters")
    if default is None or not isinstance(rope, dict):
        return
    prf = rope.get("partial_rotary_factor") or node.get("partial_rotary_factor") or 1.0
    rope["mrope_section"] = _scaled_sections(default, int(shrink.node_head_dim(node) * prf) // 2)


# --------------------------------------------------------------------------- defaults the modeling code needs


@rules.family_rule("moe_intermediate_fill")
def _rule_moe_intermediate(node: dict, ctx: shrink.ShrinkContext) -> None:
    """MoE text configs whose expert width defaults to None although experts are built (DiffusionGemma)."""
    if node.get("moe_intermediate_size", 0) is None and any(
            _int(node.get(k)) and node[k] > 0 for k in ("num_experts", "n_routed_experts", "num_local_experts")):
        node["moe_intermediate_size"] = shrink.TINY["moe_intermediate"]


#: text model types whose ``mlp_layer_types`` default (None) is indexed by the modeling code: first layer
#: dense, the others sparse (as the released checkpoints).
MLP_LAYER_TYPES_UNSET = frozenset({"deepseek_ocr2_text"})


@rules.family_rule("mlp_layer_types_fill")
def _rule_mlp_layer_types(node: dict, ctx: shrink.ShrinkContext) -> None:
    """DeepSeek-OCR-2 text model: one dense then sparse MLP layers (library default None crashes)."""
    layers = shrink.node_layers(node)
    if node.get("model_type") in MLP_LAYER_TYPES_UNSET and node.get("mlp_layer_types") is None and layers:
        node["mlp_layer_types"] = ["dense"] + ["sparse"] * (layers - 1)


@rules.family_rule("deepstack_window_qformer")
def _rule_deepstack_window_qformer(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Granite 4 Vision: the window Q-Former projectors need a downsample rate dividing the tiny patch grid,
    a deepstack (vision layer, LLM layer) pair and spatial target layers inside the tiny towers."""
    if not ("deepstack_layer_map" in node and "spatial_target_layers" in node and "downsample_rate" in node):
        return
    text, vision = node.get("text_config"), node.get("vision_config")
    llm_layers = shrink.node_layers(text) if isinstance(text, dict) else None
    if not llm_layers:
        return
    node["downsample_rate"] = "1/2"
    # every projector is a Q-Former as wide as the vision tower (>= 64: one head per 64 channels), four of them
    # spatial: one deepstack pair and a one-layer tower keep the model under the size limit
    node["deepstack_layer_map"] = [[-1, llm_layers - 1]]
    node["spatial_target_layers"] = [i % llm_layers for i in range(4)]
    if isinstance(vision, dict) and _int(vision.get("num_hidden_layers")):
        vision["num_hidden_layers"] = 1


#: model type -> values its modeling code needs but its config leaves unset when used on its own:
#: T5Gemma2's encoder text config gets ``dropout_rate`` from the full T5Gemma2 config only; Step3p7's text
#: model builds a sliding-window mask for every forward (library default window: None).
MISSING_VALUES: dict[str, dict[str, Any]] = {
    "t5gemma2_text": {"dropout_rate": 0.0},
    "step3p5": {"sliding_window": 16},
    # Qwen3-Omni's talker builds a shared expert of a width its config class does not declare
    "qwen3_omni_moe_talker_text": {"shared_expert_intermediate_size": shrink.TINY["moe_intermediate"]},
}
for _model_type, _values in MISSING_VALUES.items():
    rules.model_type_values(_model_type, _values)


#: omni "thinker" model types whose multimodal RoPE reads ``vision_start_token_id``, which the config class
#: does not declare (released checkpoints write it into config.json).
VISION_START_UNDECLARED = frozenset({"qwen2_5_omni_thinker", "qwen3_omni_moe_thinker"})


@rules.family_rule("vision_start_token")
def _rule_vision_start_token(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Qwen2.5-Omni / Qwen3-Omni thinkers: a ``vision_start_token_id`` inside the tiny vocabulary, distinct
    from the other special ids."""
    if node.get("model_type") not in VISION_START_UNDECLARED or _int(node.get("vision_start_token_id")):
        return
    vocab = shrink.tree_vocab(node, ctx)
    if not _int(vocab):
        return
    node["vision_start_token_id"] = _free_token_ids(node, ctx, vocab, 1)[0]


@rules.family_rule("talker_spatial_merge")
def _rule_talker_spatial_merge(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Qwen3-Omni: the talker's RoPE index reads a ``spatial_merge_size`` its config does not declare (and
    that serialises without a model type): the thinker vision tower's."""
    talker, thinker = node.get("talker_config"), node.get("thinker_config")
    if not (isinstance(talker, dict) and isinstance(thinker, dict)) or "spatial_merge_size" in talker:
        return
    merge = (thinker.get("vision_config") or {}).get("spatial_merge_size")
    if _int(merge):
        talker["spatial_merge_size"] = merge


# --------------------------------------------------------------------------- Llama 4


@rules.family_rule("pixel_shuffle_width")
def _rule_pixel_shuffle_width(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Llama 4 vision: the adapter MLP takes the pixel-shuffled patches, ``hidden / ratio**2`` wide, through a
    layer declared ``intermediate_size`` wide (equal in released checkpoints, not in the library default)."""
    ratio, hidden = node.get("pixel_shuffle_ratio"), node.get("hidden_size")
    if isinstance(ratio, float) and 0 < ratio < 1 and _int(hidden) and "projector_input_dim" in node:
        node["intermediate_size"] = int(hidden / ratio**2)


# --------------------------------------------------------------------------- images given per text position


@rules.input_fixup("images_per_sample")
def _fix_images_per_sample(c: InputContext, inputs: dict) -> None:
    """IDEFICS (Flamingo-style cross-attention): images come as (batch, images, channels, h, w) with an
    ``image_attention_mask`` (batch, text length, images) saying which text tokens see which image."""
    pixels = inputs.get("pixel_values")
    if pixels is None or pixels.dim() != 4 or "input_ids" not in inputs:
        return
    if "image_attention_mask" not in _forward_params(c.model):
        return
    inputs["pixel_values"] = pixels.unsqueeze(1)
    b, t = inputs["input_ids"].shape[:2]
    inputs["image_attention_mask"] = c.torch.ones(b, t, 1, dtype=c.torch.long)


#: model types whose images come as pre-cropped patch grids with pooling indices that only their own
#: processor produces (Molmo 2): the smoke forward is text-only (pixel_values is optional there).
TEXT_ONLY_SMOKE = frozenset({"molmo2"})


@rules.input_fixup("text_only_smoke")
def _fix_text_only(c: InputContext, inputs: dict) -> None:
    """Molmo 2: drop the CLIP-style ``pixel_values`` the generic inputs add (see :data:`TEXT_ONLY_SMOKE`)."""
    if getattr(c.config, "model_type", None) in TEXT_ONLY_SMOKE and "input_ids" in inputs:
        inputs.pop("pixel_values", None)


# --------------------------------------------------------------------------- robotics policies (PI0)

#: PI0 predicts a chunk of ``chunk_size`` actions (50): a few are enough for a tiny policy.
rules.model_type_values("pi0", {"chunk_size": 4})


@rules.input_builder("state")
def _state(c: InputContext) -> Any:
    """Robot policies (PI0): the proprioceptive state, (batch, ``max_state_dim``)."""
    return c.randn(c.b, int(getattr(c.config, "max_state_dim", 8) or 8))


@rules.input_builder("action_embeds")
def _action_embeds(c: InputContext) -> Any:
    """PI0's backbone: the embedded state token and action chunk, (batch, 1 + chunk, action expert width)."""
    dit = getattr(c.config, "dit_config", None) or c.config
    return c.randn(c.b, 1 + int(getattr(c.config, "chunk_size", 4) or 4), int(dit.hidden_size))


def _camera_inputs(c: InputContext, inputs: dict) -> None:
    """One camera image per sample, (batch, cameras, c, h, w) with its mask, and one placeholder token per
    image feature of the policy's vision-language model (``(image_size / patch_size) ** 2``)."""
    vlm = c.config.vlm_config
    vision = vlm.vision_config
    h, w = configtools.image_size_of(vlm)
    per_image = (h // vision.patch_size) * (w // vision.patch_size)
    inputs["pixel_values"] = c.randn(c.b, 1, int(getattr(vision, "num_channels", 3) or 3), h, w)
    inputs["pixel_attention_mask"] = c.torch.ones(c.b, 1, dtype=c.torch.bool)
    _with_prefix(c, inputs, int(vlm.image_token_id), per_image)


@rules.input_fixup("flow_matching_policy")
def _fix_flow_policy(c: InputContext, inputs: dict) -> None:
    """PI0: a deterministic denoising step (``noise`` over the action chunk and a ``timestep``) and the
    instruction text the vision-language prefix needs."""
    cfg = c.config
    if not ({"state", "action_embeds"} & set(inputs)) or not _int(getattr(cfg, "chunk_size", None)):
        return
    params = _forward_params(c.model)
    if "state" not in params:  # the backbone takes the embedded state (action_embeds) instead
        inputs.pop("state", None)
    if "noise" in params and "state" in inputs:
        inputs.setdefault("noise", c.randn(c.b, cfg.chunk_size, int(cfg.max_action_dim)))
    if "timestep" in params and "state" in inputs:
        inputs.setdefault("timestep", c.torch.full((c.b,), 0.5))
    if "input_ids" in params and "input_ids" not in inputs:
        inputs["input_ids"] = build_input("input_ids", c)
        if "attention_mask" in params:
            inputs["attention_mask"] = c.torch.ones_like(inputs["input_ids"])
    if "pixel_attention_mask" in params and getattr(cfg, "vlm_config", None) is not None:
        _camera_inputs(c, inputs)


# --------------------------------------------------------------------------- Pix2Struct


#: Pix2Struct's vision tower embeds patch rows / columns up to ``seq_len`` (4096: two 1 MB tables at the
#: tiny width); its patches stay 16x16x3 = 768 values, as the library's image processor makes them.
rules.model_type_values("pix2struct_vision_model", {"seq_len": 64, "patch_embed_hidden_size": 768})


@rules.input_builder("flattened_patches")
def _flattened_patches(c: InputContext) -> Any:
    """Pix2Struct: (batch, patches, 2 + patch values), a 4x4 grid of patches with 1-based row / column ids
    in the first two columns."""
    vision = getattr(c.config, "vision_config", None) or c.config
    width = int(getattr(vision, "patch_embed_hidden_size", 768))
    side = 4
    patches = c.randn(c.b, side * side, 2 + width)
    grid = c.torch.arange(side * side)
    patches[:, :, 0] = (grid // side + 1).float()
    patches[:, :, 1] = (grid % side + 1).float()
    return patches


# --------------------------------------------------------------------------- dual encoders (CLIP-like)


def _round_filters(vision: dict, channels: int) -> int:
    """EfficientNet's channel rounding (``round_filters`` of the modeling code) on a config dict."""
    divisor = vision.get("depth_divisor") if _int(vision.get("depth_divisor")) else 8
    n = channels * float(vision.get("width_coefficient", 1.0))
    dim = max(divisor, int(n + divisor / 2) // divisor * divisor)
    return int(dim + divisor if dim < 0.9 * n else dim)


@rules.family_rule("efficientnet_image_embeds")
def _rule_efficientnet_image_embeds(node: dict, ctx: shrink.ShrinkContext) -> None:
    """ALIGN: image embeddings are the EfficientNet tower's pooled last stage, unprojected, so the shared
    ``projection_dim`` is that stage's (rounded, width-scaled) channel count."""
    vision = node.get("vision_config")
    if not (isinstance(vision, dict) and _int(node.get("projection_dim"))):
        return
    out = vision.get("out_channels")
    if isinstance(out, list) and out and _int(out[-1]) and "width_coefficient" in vision:
        node["projection_dim"] = _round_filters(vision, out[-1])


#: ALIGN's tiny EfficientNet tower (a few channels per conv) shrinks activations ~50x per block at the
#: library's init std of 0.02 (sized for full-width fan-ins) until the pooled image embedding underflows and
#: its L2 normalisation gives NaN; a std matched to the tiny fan-ins keeps the activations O(0.01..1).
rules.model_type_values("align_vision_model", {"initializer_range": 0.35})


@rules.family_rule("pooler_follows_hidden")
def _rule_pooler_follows_hidden(node: dict, ctx: shrink.ShrinkContext) -> None:
    """ViT-style poolers whose ``pooler_output_size`` was the hidden size keep following it (dual encoders
    project the pooled output with a layer sized from ``hidden_size``)."""
    old = ctx.old.get(id(node), {})
    if _int(node.get("pooler_output_size")) and old.get("pooler_output_size") == old.get("hidden_size"):
        node["pooler_output_size"] = node.get("hidden_size")


#: ShieldGemma 2 scores the logits of a "Yes" and a "No" token (ids 10784 / 3771 of the Gemma vocabulary
#: unless the config says otherwise).
_VERDICT_TOKENS = ("yes_token_index", "no_token_index")


@rules.family_rule("verdict_tokens")
def _rule_verdict_tokens(node: dict, ctx: shrink.ShrinkContext) -> None:
    """ShieldGemma 2: "Yes" / "No" token ids inside the tiny vocabulary (the modeling defaults are not)."""
    if node.get("model_type") != "shieldgemma2":
        return
    vocab = shrink.tree_vocab(node, ctx)
    if _int(vocab) and not all(_int(node.get(k)) and node[k] < vocab for k in _VERDICT_TOKENS):
        node.update(zip(_VERDICT_TOKENS, _free_token_ids(node, ctx, vocab, 2)))


# --------------------------------------------------------------------------- tiled images (Mllama)


def _vision_of(config: Any) -> Any:
    return getattr(config, "vision_config", None) or config


@rules.input_builder("aspect_ratio_ids")
def _aspect_ratio_ids(c: InputContext) -> Any:
    """Tiled-image vision towers (Mllama): one image per sample with aspect ratio id 1 ([1, 1]: one tile)."""
    return c.torch.ones(c.b, 1, dtype=c.torch.long)


@rules.input_builder("aspect_ratio_mask")
def _aspect_ratio_mask(c: InputContext) -> Any:
    """(batch, images, ``max_num_tiles``): only the first tile of each image is real."""
    tiles = int(getattr(_vision_of(c.config), "max_num_tiles", 4) or 4)
    mask = c.torch.zeros(c.b, 1, tiles, dtype=c.torch.long)
    mask[:, :, 0] = 1
    return mask


@rules.input_fixup("tiled_pixels")
def _fix_tiled_pixels(c: InputContext, inputs: dict) -> None:
    """Mllama vision: pixel values as (batch, images, ``max_num_tiles``, channels, h, w), padding tiles
    zero, matching :func:`_aspect_ratio_ids` / :func:`_aspect_ratio_mask`."""
    pixels = inputs.get("pixel_values")
    if pixels is None or pixels.dim() != 4 or "aspect_ratio_ids" not in inputs:
        return
    tiles = int(getattr(_vision_of(c.config), "max_num_tiles", 4) or 4)
    tiled = c.torch.zeros(pixels.shape[0], 1, tiles, *pixels.shape[1:])
    tiled[:, 0, 0] = pixels
    inputs["pixel_values"] = tiled


# --------------------------------------------------------------------------- size: vision towers with wide mergers

#: vision tower model types whose output merger / downsampler widens the tower by 4-16x (spatial merge,
#: stride-2 convolutions, temporal merge): at the generic width of 64 those layers alone take 1 MB or more.
NARROW_VISION_TOWERS: dict[str, dict[str, int]] = {
    "ernie4_5_vl_moe_vision": {"hidden_size": 32, "intermediate_size": 64},  # resampler: 4x spatial, 2x time
    "step3p5_vision": {"hidden_size": 32, "intermediate_size": 64},  # two channel-doubling convolutions
    "qwen3_omni_moe_vision_encoder": {"hidden_size": 32, "intermediate_size": 64},  # merger + deepstack mergers
}
for _model_type, _values in NARROW_VISION_TOWERS.items():
    rules.model_type_values(_model_type, _values)


#: SAM 3 (and its lite-text variant) stacks a ViT, an FPN neck of 3x3 convolutions per scale, a DETR
#: encoder/decoder, a geometry encoder pooling ``roi_size``x``roi_size`` box features through one conv and
#: a convolutional pixel decoder: at the generic width of 64 that is 4.5 MB, at 32 about a quarter of it.
_SAM3_WIDTHS = {"hidden_size": 32, "fpn_hidden_size": 32, "intermediate_size": 64, "roi_size": 2}
SAM3_TYPES = frozenset({"sam3", "sam3_lite_text"})


@rules.family_rule("sam3_width")
def _rule_sam3_width(node: dict, ctx: shrink.ShrinkContext) -> None:
    """SAM 3: every tower at width 32 and 2x2 box pooling (see :data:`_SAM3_WIDTHS`), consistently."""
    if node.get("model_type") not in SAM3_TYPES:
        return
    stack = [v for v in node.values() if isinstance(v, dict)]
    while stack:
        sub = stack.pop()
        stack.extend(v for v in sub.values() if isinstance(v, dict))
        for k, v in _SAM3_WIDTHS.items():
            if _int(sub.get(k)):
                sub[k] = v


# --------------------------------------------------------------------------- processors that match the tiny model
# A multimodal processor expands each image placeholder into as many tokens as the vision tower gives
# features; the arguments below make the saved processor count them for the tiny tower (the generic part,
# same-named config values and patch / merge sizes, is in build/processors.py).


def _vision_dims(config: Any) -> tuple[int, int]:
    """(image size, patch size) of a config's vision tower (ints; 32 / 8 where unset)."""
    vision = getattr(config, "vision_config", None) or config
    size = getattr(vision, "image_size", None)
    size = min(size) if isinstance(size, (list, tuple)) and size else size
    patch = getattr(vision, "patch_size", None)
    patch = min(patch) if isinstance(patch, (list, tuple)) and patch else patch
    return (size if _int(size) else 32), (patch if _int(patch) else 8)


#: vision towers that prepend a class token to the patch features (CLIP-style): a LLaVA-style processor
#: counts it (``num_additional_image_tokens``) and the "default" feature strategy drops it again.
CLS_TOKEN_TOWERS = frozenset({"clip_vision_model", "clip", "metaclip_2_vision_model", "mlcd_vision_model"})


@rules.processor_kwargs("llava", "video_llava", "granite4_vision")
def _llava_processor(config: Any) -> dict[str, dict[str, Any]]:
    """LLaVA processors: one placeholder per patch, plus the class token of CLIP towers (as the released
    ``processor_config.json`` files say: ``num_additional_image_tokens = 1``)."""
    vision = getattr(config, "vision_config", None)
    cls_token = getattr(vision, "model_type", None) in CLS_TOKEN_TOWERS
    return {"processor": {"num_additional_image_tokens": int(cls_token)}}


@rules.family_rule("pooled_image_tokens")
def _rule_pooled_image_tokens(node: dict, ctx: shrink.ShrinkContext) -> None:
    """Gemma 3 / ShieldGemma 2: ``mm_tokens_per_image`` average-pooled tokens must tile the tiny patch grid
    (the pooling kernel is ``patches per side / tokens per side``): 2 x 2 tokens where the grid allows."""
    vision = node.get("vision_config")
    if not (_int(node.get("mm_tokens_per_image")) and isinstance(vision, dict)):
        return
    size, patch = vision.get("image_size"), vision.get("patch_size")
    if not (_int(size) and _int(patch) and patch > 0):
        return
    side = size // patch
    per_side = 2 if side % 2 == 0 and side >= 2 else side
    node["mm_tokens_per_image"] = per_side * per_side


@rules.processor_kwargs("gemma3", "shieldgemma2", "t5gemma2")
def _gemma3_processor(config: Any) -> dict[str, dict[str, Any]]:
    """Gemma 3: the processor writes ``mm_tokens_per_image`` soft tokens per image."""
    count = getattr(config, "mm_tokens_per_image", None) or getattr(getattr(config, "encoder", None), "mm_tokens_per_image", None)
    return {"processor": {"image_seq_length": int(count)}} if _int(count) else {}


@rules.processor_kwargs("paligemma")
def _paligemma_processor(config: Any) -> dict[str, dict[str, Any]]:
    """PaliGemma: its image processor carries the placeholder count, one per SigLIP patch."""
    size, patch = _vision_dims(config)
    return {"image_processor": {"image_seq_length": (size // patch) ** 2}}


@rules.processor_kwargs("idefics3", "smolvlm")
def _idefics3_processor(config: Any) -> dict[str, dict[str, Any]]:
    """Idefics 3 / SmolVLM: patches pixel-shuffled by ``scale_factor``; images resized to one tiny tile."""
    size, patch = _vision_dims(config)
    scale = getattr(config, "scale_factor", 2) or 2
    return {"processor": {"image_seq_len": int((size // patch) ** 2 / scale**2)},
            "image_processor": {"size": {"longest_edge": size}, "max_image_size": {"longest_edge": size}}}


#: model types whose processor class transformers' auto-mapping does not name (the class their released repos
#: carry): omni "thinker" models use their omni model's processor, Kosmos-2 its own, GLM-OCR GLM-4V's, and the
#: Mistral 4 vision model Pixtral's.
rules.PROCESSOR_CLASS_OF.update({
    "qwen2_5_omni_thinker": "Qwen2_5OmniProcessor",
    "qwen3_omni_moe_thinker": "Qwen3OmniMoeProcessor",
    "kosmos-2": "Kosmos2Processor",
    "kosmos-2.5": "Kosmos2_5Processor",
    "glm_ocr": "Glm4vProcessor",
    "mistral4": "PixtralProcessor",
    "cosmos3_omni": "Cosmos3EdgeProcessor",
})


@rules.processor_kwargs("janus", "deepseek_vl")
def _fixed_count_processor(config: Any) -> dict[str, dict[str, Any]]:
    """Janus / DeepSeek-VL: one placeholder per patch of the (tiny) SigLIP tower."""
    size, patch = _vision_dims(config)
    return {"processor": {"num_image_tokens": (size // patch) ** 2}}


@rules.family_rule("tiny_grid_pinpoints")
def _rule_tiny_grid_pinpoints(node: dict, ctx: shrink.ShrinkContext) -> None:
    """LLaVA-NeXT "anyres": the resolutions an image is tiled into are multiples of the tower's image size
    (336-based by default): one, two and four tiles of the tiny size."""
    vision = node.get("vision_config")
    pinpoints = node.get("image_grid_pinpoints")
    if not (isinstance(pinpoints, list) and pinpoints and isinstance(vision, dict) and _int(vision.get("image_size"))):
        return
    size = vision["image_size"]
    node["image_grid_pinpoints"] = [[size, 2 * size], [2 * size, size], [2 * size, 2 * size]]


@rules.processor_kwargs("llava_next", "llava_next_video", "llava_onevision")
def _anyres_image_processor(config: Any) -> dict[str, dict[str, Any]]:
    """LLaVA-NeXT / OneVision image processors tile with the config's grid pinpoints."""
    pinpoints = getattr(config, "image_grid_pinpoints", None)
    out = _llava_processor(config) if getattr(config, "model_type", None) != "llava_onevision" else {}
    if pinpoints:
        out["image_processor"] = {"image_grid_pinpoints": [list(p) for p in pinpoints]}
    return out
