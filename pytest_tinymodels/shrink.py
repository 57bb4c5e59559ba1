"""Generic config shrinker: any transformers config -> a consistent tiny config.

The shrinker works on the config's dict form (``to_dict()``), walking nested sub-configs
(``text_config``, ``vision_config``, ``encoder``/``decoder``, any dict with a ``model_type``),
and rebuilds the config with its own class so the library's validation runs again.

It is driven by **data**:

* :data:`KEY_RULES` maps attribute names to a *kind* of quantity (hidden size, layer count,
  head count, ...), and :data:`TINY` gives the tiny value of each kind;
* per-layer lists (``layer_types``, ...) are cut to the new layer count keeping one layer of each
  distinct type; per-stage lists (``depths``, ``hidden_sizes``, ...) keep their length and are
  scaled by one power of two per config;
* integer attributes whose *name* looks like a dimension and whose *value* equals an old hidden or
  intermediate size anywhere in the tree are mapped to the new one (``mm_hidden_size``...);
* the few families the generic rules cannot handle have small named rules in :data:`FAMILY_RULES`.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import TinyModelsError

if TYPE_CHECKING:
    from transformers import PretrainedConfig

__all__ = [
    "TINY",
    "KEY_RULES",
    "FAMILY_RULES",
    "ShrinkError",
    "shrink_config",
    "shrink_dict",
    "base_config",
    "check_config",
]


class ShrinkError(TinyModelsError):
    """The shrunk config is inconsistent (usually because of user overrides)."""


#: Tiny value of each kind of quantity.
TINY: dict[str, int] = {
    "hidden": 64,
    "heads": 4,
    "kv_heads": 2,
    "head_dim": 16,
    "layers": 2,
    "intermediate": 128,
    "moe_intermediate": 64,
    "positions": 256,
    "vocab": 1024,
    "image_size": 32,
    "patch_size": 8,
    "experts": 4,
    "experts_per_tok": 2,
    "shared_experts": 1,
    "mel_bins": 16,
    "conv_dim": 32,
    "lora_rank": 16,
    "stage_max_dim": 64,
    "max_per_layer_types": 4,
}

_K = "kind"
#: attribute name -> kind of quantity.  Order does not matter; names are exact.
KEY_RULES: dict[str, str] = {}


def _register(kind: str, *names: str) -> None:
    for n in names:
        KEY_RULES[n] = kind


_register(
    "hidden",
    "hidden_size", "d_model", "n_embd", "n_embed", "embed_dim", "dim", "model_dim", "d_embed",
    "word_embed_proj_dim", "embedding_dim", "text_embed_dim", "vision_embed_dim", "hidden_dim_model",
    "encoder_hidden_size", "decoder_hidden_size", "d_hidden",
)
_register(
    "layers",
    "num_hidden_layers", "num_layers", "n_layer", "n_layers", "encoder_layers", "decoder_layers",
    "num_decoder_layers", "num_encoder_layers", "encoder_num_layers", "decoder_num_layers",
    "text_layers", "vision_layers", "num_text_layers", "num_vision_layers", "depth",
)
_register(
    "heads",
    "num_attention_heads", "n_head", "num_heads", "encoder_attention_heads", "decoder_attention_heads",
    "n_heads", "num_decoder_attention_heads", "num_encoder_attention_heads", "encoder_num_attention_heads",
    "decoder_num_attention_heads", "attention_heads", "num_attention_head",
)
_register(
    "kv_heads",
    "num_key_value_heads", "n_kv_heads", "num_kv_heads", "multi_query_group_num", "n_head_kv",
    "num_kv_attention_heads", "decoder_num_key_value_heads", "encoder_num_key_value_heads",
)
_register(
    "head_dim",
    "head_dim", "d_kv", "attention_head_dim", "kv_channels", "attention_head_size", "head_size",
    "qk_nope_head_dim", "v_head_dim", "qk_rope_head_dim", "qk_head_dim",
)
_register(
    "intermediate",
    "intermediate_size", "d_ff", "n_inner", "ffn_dim", "encoder_ffn_dim", "decoder_ffn_dim",
    "ffn_hidden_size", "mlp_dim", "dim_feedforward", "intermediate_dim", "d_inner", "ff_dim",
    "decoder_intermediate_size", "encoder_intermediate_size", "feed_forward_size",
)
_register(
    "moe_intermediate",
    "moe_intermediate_size", "shared_expert_intermediate_size", "expert_intermediate_size",
    "moe_ffn_hidden_size", "shared_intermediate_size", "moe_dim",
)
_register(
    "positions",
    "max_position_embeddings", "n_positions", "max_target_positions", "n_ctx", "max_source_positions",
    "max_seq_len", "max_sequence_length", "max_text_positions", "max_length_positions",
    "max_2d_position_embeddings", "original_max_position_embeddings",
)
_register("image_size", "image_size", "img_size", "input_size")
_register("patch_size", "patch_size")
_register("experts", "num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts")
_register(
    "experts_per_tok",
    "num_experts_per_tok", "num_experts_per_token", "moe_topk", "num_selected_experts", "moe_k",
    "top_k_experts",
)
_register("shared_experts", "n_shared_experts", "num_shared_experts", "moe_num_shared_experts")
_register("groups_one", "n_group", "topk_group", "num_expert_group", "topk_groups")
_register("mel_bins", "num_mel_bins")
_register("lora_rank", "kv_lora_rank", "q_lora_rank", "o_lora_rank")
_register("first_dense", "first_k_dense_replace", "num_dense_layers")
_register("small_conv", "num_conv_pos_embeddings")
_register("conv_groups", "num_conv_pos_embedding_groups")
_register("conv_dim", "conv_dim", "tdnn_dim", "output_hidden_size")

#: lists with one entry per *stage* (kept length, shrunk values).
STAGE_DEPTH_KEYS = frozenset({"depths", "num_layers_per_stage", "stage_depths", "encoder_depths", "blocks"})
STAGE_DIM_KEYS = frozenset(
    {"hidden_sizes", "embed_dims", "embed_dim", "dims", "widths", "neck_hidden_sizes", "stage_dims",
     "hidden_dims", "channels", "encoder_hidden_sizes", "decoder_hidden_sizes", "embedding_dims"}
)
STAGE_HEAD_KEYS = frozenset({"num_heads", "num_attention_heads", "heads", "encoder_attention_heads"})

#: lists of layer *indices* (remapped when layers are removed).
LAYER_INDEX_KEYS = frozenset(
    {"global_attn_indexes", "full_attn_idxs", "attn_layer_indices", "full_attention_layers",
     "sliding_window_layers", "linear_attention_layers", "cross_attention_layers", "swa_layers",
     "moe_layers", "dense_layers", "global_attention_layers", "fullatt_block_indexes", "attn_layer_idx"}
)
#: keys that are never touched by the dimension heuristics.
_NEVER = frozenset(
    {"vocab_size", "type_vocab_size", "num_labels", "num_channels", "transformers_version", "model_type",
     "initializer_range", "pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id",
     "decoder_start_token_id", "chunk_size_feed_forward", "num_beams", "max_length", "min_length",
     "sampling_rate", "d_state", "conv_kernel", "state_size"}
)
_DIMISH = re.compile(r"(^|_)(dim|dims|size|hidden|embd|embed|width|channels|proj|features)(_|$)")
_DIMISH_DENY = re.compile(r"kernel|stride|window|pool|bucket|group|vocab|image|patch|batch|chunk|token|label|max_|position|rank|num_|ratio|scale|eps|dropout|factor|codebook_size|sampling|frames|length|rate|bins|freq")
_SUBCONFIG_SKIP = frozenset({"id2label", "label2id", "rope_parameters", "rope_scaling", "quantization_config",
                            "task_specific_params", "auto_map", "generation_config"})


# --------------------------------------------------------------------------- helpers


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_config_dict(key: str, value: Any) -> bool:
    if not isinstance(value, dict) or key in _SUBCONFIG_SKIP:
        return False
    return "model_type" in value or key.endswith("_config") or key in {"encoder", "decoder"}


def _pow2_factor(largest: int, target: int) -> int:
    if largest <= target:
        return 1
    return 2 ** math.ceil(math.log2(largest / target))


def _divisor_at_most(n: int, k: int) -> int:
    """Largest divisor of ``n`` that is <= ``k`` (>= 1)."""
    for d in range(max(1, min(k, n)), 0, -1):
        if n % d == 0:
            return d
    return 1


def _representative(values: list[Any], n: int) -> list[int]:
    """Indices of ``n`` layers of ``values`` keeping one layer of each distinct value (first occurrences)."""
    firsts: dict[Any, int] = {}
    for i, v in enumerate(values):
        key = repr(v)
        firsts.setdefault(key, i)
    chosen = sorted(firsts.values())[: max(n, 1)]
    i = 0
    while len(chosen) < n and i < len(values):
        if i not in chosen:
            chosen.append(i)
        i += 1
    return sorted(chosen)


@dataclass
class _Ctx:
    """Mappings collected over the whole tree before shrinking."""

    value_map: dict[int, int]  # old hidden/intermediate sizes -> new ones
    vocab_size: int | None
    special: dict[str, int | None]


# --------------------------------------------------------------------------- named family rules


def _rule_mrope_sections(node: dict, ctx: _Ctx) -> None:
    """Multimodal RoPE (qwen2-vl family): ``mrope_section`` must sum to head_dim // 2."""
    for rope_key in ("rope_parameters", "rope_scaling"):
        rope = node.get(rope_key)
        if not isinstance(rope, dict):
            continue
        sec = rope.get("mrope_section")
        if isinstance(sec, list) and sec:
            half = _node_head_dim(node) // 2
            total = sum(sec)
            new = [max(1, s * half // total) for s in sec]
            new[0] += half - sum(new)
            rope["mrope_section"] = new


def _rule_rope_factor_lists(node: dict, ctx: _Ctx) -> None:
    """LongRoPE ``short_factor`` / ``long_factor`` lists have rotary_dim // 2 entries."""
    for rope_key in ("rope_parameters", "rope_scaling"):
        rope = node.get(rope_key)
        if not isinstance(rope, dict):
            continue
        prf = node.get("partial_rotary_factor") or rope.get("partial_rotary_factor") or 1.0
        half = int(_node_head_dim(node) * prf) // 2
        for k in ("short_factor", "long_factor"):
            if isinstance(rope.get(k), list) and rope[k]:
                rope[k] = (rope[k] * (half // len(rope[k]) + 1))[:half]
        if _is_int(rope.get("original_max_position_embeddings")):
            rope["original_max_position_embeddings"] = min(
                rope["original_max_position_embeddings"], TINY["positions"] // 2
            )


def _rule_whisper_like_suppress(node: dict, ctx: _Ctx) -> None:
    """Token-id lists (``suppress_tokens``...) must stay inside the tiny vocabulary."""
    vocab = node.get("vocab_size") or ctx.vocab_size
    if not _is_int(vocab):
        return
    for k, v in list(node.items()):
        if not (isinstance(v, list) and all(_is_int(t) for t in v)):
            continue
        if k.endswith("suppress_tokens"):
            node[k] = [t for t in v if t < vocab]
        elif k.endswith("_token_ids"):
            node[k] = [t if t < vocab else vocab - 1 for t in v]


def _rule_period_offsets(node: dict, ctx: _Ctx) -> None:
    """Jamba-style ``*_layer_period`` / ``*_layer_offset``: keep every kind of layer present."""
    layers = _node_layers(node)
    if layers is None:
        return
    for k in list(node):
        if k.endswith("_layer_period") and _is_int(node[k]):
            node[k] = min(node[k], layers)
            off = k.replace("_period", "_offset")
            if _is_int(node.get(off)):
                node[off] = min(node[off], node[k] - 1)


FAMILY_RULES: dict[str, Callable[[dict, _Ctx], None]] = {
    "mrope_sections": _rule_mrope_sections,
    "rope_factor_lists": _rule_rope_factor_lists,
    "token_id_lists": _rule_whisper_like_suppress,
    "layer_period_offsets": _rule_period_offsets,
}


# --------------------------------------------------------------------------- node shrinking


def _node_layers(node: dict) -> int | None:
    for k, kind in KEY_RULES.items():
        if kind == "layers" and _is_int(node.get(k)):
            return node[k]
    return None


def _node_head_dim(node: dict) -> int:
    hd = node.get("head_dim")
    if _is_int(hd):
        return hd
    hidden = next((node[k] for k in ("hidden_size", "d_model", "n_embd") if _is_int(node.get(k))), TINY["hidden"])
    heads = next(
        (node[k] for k in ("num_attention_heads", "n_head", "num_heads") if _is_int(node.get(k)) and node[k]),
        TINY["heads"],
    )
    return max(2, hidden // heads)


def _collect(node: dict, ctx: _Ctx) -> None:
    """First pass: old hidden / intermediate sizes anywhere in the tree -> tiny ones."""
    for k, v in node.items():
        if _is_config_dict(k, v):
            _collect(v, ctx)
        elif _is_int(v) and v > 0:
            kind = KEY_RULES.get(k)
            if kind == "hidden":
                ctx.value_map.setdefault(v, TINY["hidden"])
            elif kind == "intermediate":
                ctx.value_map.setdefault(v, TINY["intermediate"])


def _shrink_stage_lists(node: dict) -> bool:
    """Hierarchical (multi-stage) configs: per-stage lists keep their length, dims shrink by 2^k."""
    dim_lists = {k: v for k, v in node.items() if k in STAGE_DIM_KEYS and isinstance(v, list) and v
                 and all(_is_int(x) for x in v)}
    depth_lists = {k: v for k, v in node.items() if k in STAGE_DEPTH_KEYS and isinstance(v, list) and v
                   and all(_is_int(x) for x in v)}
    if not dim_lists and not depth_lists:
        return False
    largest = max([max(v) for v in dim_lists.values()] + [1])
    scalar_dims = [k for k, v in node.items() if KEY_RULES.get(k) == "hidden" and _is_int(v)]
    largest = max([largest] + [node[k] for k in scalar_dims if not dim_lists])
    f = _pow2_factor(largest, TINY["stage_max_dim"])
    for k, v in dim_lists.items():
        node[k] = [max(1, x // f) for x in v]
    for k in scalar_dims:
        node[k] = max(1, node[k] // f)
    for k, v in depth_lists.items():
        node[k] = [min(x, 1) for x in v]
    # per-stage head lists must divide the per-stage dims
    stage_dims = next(iter(dim_lists.values()), None)
    for k in STAGE_HEAD_KEYS:
        heads = node.get(k)
        if isinstance(heads, list) and heads and all(_is_int(x) for x in heads):
            if stage_dims is None or len(stage_dims) != len(heads):
                base = next((node[s] for s in scalar_dims), None)
                dims = [base * 2**i for i in range(len(heads))] if base else None
            else:
                dims = stage_dims
            node[k] = [_divisor_at_most(d, h) if dims else h for h, d in zip(heads, dims or heads)]
    return True


def _shrink_per_layer(node: dict, old_layers: int, new_layers: int) -> int:
    """Cut lists with one entry per layer; return the resulting layer count."""
    per_layer = {k: v for k, v in node.items() if isinstance(v, list) and len(v) == old_layers
                 and k not in STAGE_DEPTH_KEYS | STAGE_DIM_KEYS | STAGE_HEAD_KEYS | LAYER_INDEX_KEYS
                 and old_layers > new_layers}
    index_lists = {k: v for k, v in node.items() if k in LAYER_INDEX_KEYS and isinstance(v, list)
                   and all(_is_int(x) for x in v)}
    if not per_layer and not index_lists:
        return new_layers
    # a synthetic "type" per layer: the tuple of its entries in every per-layer list + index-list membership
    types = [
        tuple(repr(v[i]) for v in per_layer.values()) + tuple(i in set(lst) for lst in index_lists.values())
        for i in range(old_layers)
    ]
    n_distinct = len(set(types))
    target = max(new_layers, min(n_distinct, TINY["max_per_layer_types"]))
    keep = _representative(types, min(target, old_layers))
    for k, v in per_layer.items():
        node[k] = [v[i] for i in keep]
    for k, v in index_lists.items():
        pos = {old: new for new, old in enumerate(keep)}
        node[k] = [pos[i] for i in v if i in pos]
    return len(keep)


def _shrink_value(kind: str, key: str, value: Any, node: dict, ctx: _Ctx) -> Any:
    if not _is_int(value):
        if kind == "image_size" and isinstance(value, list) and all(_is_int(x) for x in value):
            return [TINY["image_size"]] * len(value)
        if kind == "patch_size" and isinstance(value, list) and all(_is_int(x) for x in value):
            return [min(x, TINY["patch_size"]) for x in value]
        return value
    if kind == "hidden":
        return min(value, TINY["hidden"])
    if kind == "layers":
        return min(value, TINY["layers"])
    if kind == "heads":
        return min(value, TINY["heads"])
    if kind == "intermediate":
        return min(value, TINY["intermediate"])
    if kind == "moe_intermediate":
        return min(value, TINY["moe_intermediate"])
    if kind == "positions":
        return min(value, TINY["positions"])
    if kind == "image_size":
        return min(value, TINY["image_size"])
    if kind == "patch_size":
        return min(value, TINY["patch_size"])
    if kind == "experts":
        return min(value, TINY["experts"])
    if kind == "shared_experts":
        return min(value, TINY["shared_experts"])
    if kind == "groups_one":
        return min(value, 1)
    if kind == "mel_bins":
        return min(value, TINY["mel_bins"])
    if kind == "lora_rank":
        return min(value, TINY["lora_rank"])
    if kind == "first_dense":
        return min(value, 1)
    if kind == "small_conv":
        return min(value, 16)
    if kind == "conv_groups":
        return min(value, 4)
    if kind == "conv_dim":
        return min(value, TINY["conv_dim"])
    return value


def _shrink_node(node: dict, ctx: _Ctx, *, top: bool) -> None:
    """Shrink one config dict in place (sub-configs first)."""
    for k, v in list(node.items()):
        if _is_config_dict(k, v):
            _shrink_node(v, ctx, top=False)

    old = dict(node)
    hierarchical = _shrink_stage_lists(node)
    done = set()
    if hierarchical:
        done |= {k for k in node if k in STAGE_DIM_KEYS | STAGE_DEPTH_KEYS | STAGE_HEAD_KEYS}
        done |= {k for k, v in old.items() if KEY_RULES.get(k) == "hidden" and _is_int(v)}

    # explicit kinds
    for k, v in list(node.items()):
        if k in done or k in _NEVER:
            continue
        kind = KEY_RULES.get(k)
        if kind in (None, "kv_heads", "head_dim", "experts_per_tok"):
            continue
        if isinstance(v, list) and kind not in ("image_size", "patch_size"):
            if all(_is_int(x) for x in v) and v:
                node[k] = [_shrink_value(kind, k, x, node, ctx) for x in v]
            continue
        node[k] = _shrink_value(kind, k, v, node, ctx)
        done.add(k)

    # heads / kv heads / head dims, coherent with the hidden size
    hidden = next((node[k] for k in node if KEY_RULES.get(k) == "hidden" and _is_int(node[k])), None)
    for k, v in list(node.items()):
        if KEY_RULES.get(k) == "heads" and _is_int(v) and v > 0 and hidden and k not in done - {k}:
            node[k] = _divisor_at_most(hidden, node[k])
    heads = next((node[k] for k in node if KEY_RULES.get(k) == "heads" and _is_int(node[k]) and node[k]), None)
    old_heads = next((old[k] for k in old if KEY_RULES.get(k) == "heads" and _is_int(old[k]) and old[k]), None)
    for k, v in list(node.items()):
        if KEY_RULES.get(k) == "kv_heads" and _is_int(v) and heads:
            if v == 1 and (old_heads or 0) > 1:  # multi-query attention stays multi-query
                node[k] = 1
            else:
                node[k] = _divisor_at_most(heads, max(1, min(v, TINY["kv_heads"])))
    for k, v in list(node.items()):
        if KEY_RULES.get(k) == "head_dim" and _is_int(v):
            if hidden and heads and k in ("head_dim", "d_kv", "attention_head_dim", "kv_channels", "head_size",
                                           "attention_head_size"):
                node[k] = max(2, hidden // heads)
            else:
                node[k] = min(v, TINY["head_dim"])
    experts = next((node[k] for k in node if KEY_RULES.get(k) == "experts" and _is_int(node[k])), None)
    for k, v in list(node.items()):
        if KEY_RULES.get(k) == "experts_per_tok" and _is_int(v):
            node[k] = min(v, TINY["experts_per_tok"], experts or v)

    # per-layer lists, then layer count keys follow the cut lists
    for k, v in list(old.items()):
        if KEY_RULES.get(k) == "layers" and _is_int(v) and _is_int(node.get(k)):
            n = _shrink_per_layer(node, v, node[k])
            node[k] = n

    # value-correlated dims (mm_hidden_size, projection_dim...)
    for k, v in list(node.items()):
        if k in done or k in _NEVER or k in KEY_RULES or not _is_int(v) or v <= TINY["hidden"]:
            continue
        if not _DIMISH.search(k) or _DIMISH_DENY.search(k):
            continue
        if v in ctx.value_map:
            node[k] = ctx.value_map[v]
        elif v % 2 == 0 and v >= 256:
            node[k] = max(TINY["hidden"], v // _pow2_factor(v, TINY["intermediate"]))

    # vocabulary and token ids
    if "vocab_size" in node and _is_int(node["vocab_size"]) and (top or _texty(node)):
        node["vocab_size"] = ctx.vocab_size if ctx.vocab_size is not None else min(node["vocab_size"], TINY["vocab"])
    vocab = node.get("vocab_size") if _is_int(node.get("vocab_size")) else _tree_vocab(node, ctx)
    for k, v in list(node.items()):
        if k in ctx.special:
            node[k] = ctx.special[k]
    if _is_int(vocab):
        _fit_token_ids(node, vocab, ctx)

    for rule in FAMILY_RULES.values():
        rule(node, ctx)


def _texty(node: dict) -> bool:
    return any(KEY_RULES.get(k) == "layers" for k in node) and "num_channels" not in node


def _tree_vocab(node: dict, ctx: _Ctx) -> int | None:
    for k in ("text_config", "decoder", "language_config", "llm_config", "text_model_config"):
        sub = node.get(k)
        if isinstance(sub, dict) and _is_int(sub.get("vocab_size")):
            return sub["vocab_size"]
    return ctx.vocab_size


def _fit_token_ids(node: dict, vocab: int, ctx: _Ctx) -> None:
    """Special token ids outside the tiny vocabulary are moved to the top of it (distinct ids)."""
    used: dict[int, int] = {}
    nxt = vocab - 1
    for k in sorted(node):
        v = node[k]
        if not (k.endswith("_token_id") or k.endswith("_token_index") or k.endswith("_id") and "token" in k):
            continue
        if k in ctx.special:
            continue
        if _is_int(v) and v >= vocab:
            if v not in used:
                used[v] = nxt
                nxt -= 1
            node[k] = used[v]
        elif isinstance(v, list) and all(_is_int(x) for x in v):
            new = []
            for x in v:
                if x >= vocab:
                    if x not in used:
                        used[x] = nxt
                        nxt -= 1
                    x = used[x]
                new.append(x)
            node[k] = new


def _apply_overrides(node: dict, overrides: Mapping[str, Any], path: str = "") -> None:
    for k, v in overrides.items():
        if isinstance(v, Mapping) and isinstance(node.get(k), dict) and k not in ("id2label", "label2id"):
            _apply_overrides(node[k], v, f"{path}{k}.")
        else:
            node[k] = copy.deepcopy(v) if not isinstance(v, Mapping) else dict(v)


# --------------------------------------------------------------------------- public API


def shrink_dict(
    config_dict: Mapping[str, Any],
    *,
    vocab_size: int | None = None,
    special_token_ids: Mapping[str, int | None] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Shrink a config *dict* (as from ``config.to_dict()``); pure Python, returns a new dict."""
    node = copy.deepcopy(dict(config_dict))
    ctx = _Ctx(value_map={}, vocab_size=vocab_size, special=dict(special_token_ids or {}))
    _collect(node, ctx)
    _shrink_node(node, ctx, top=True)
    if overrides:
        _apply_overrides(node, overrides)
    return node


def shrink_config(
    config: PretrainedConfig,
    *,
    vocab_size: int | None = None,
    special_token_ids: Mapping[str, int | None] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> PretrainedConfig:
    """Return a new tiny, consistent config of the same class as ``config``.

    ``vocab_size``: the tokenizer's size (default: the smaller of the original and 1024).
    ``special_token_ids``: e.g. ``{"pad_token_id": 0, "bos_token_id": 1}``; set where the config has them.
    ``overrides``: nested dict applied last (``{"text_config": {"num_hidden_layers": 1}}``).
    Raises :class:`ShrinkError` if the result is inconsistent (typically from overrides).
    """
    d = config.to_dict()
    small = shrink_dict(d, vocab_size=vocab_size, special_token_ids=special_token_ids, overrides=overrides)
    for k in ("transformers_version",):
        small.pop(k, None)
    try:
        new = type(config).from_dict(small)
    except Exception as exc:  # the library's own validation
        raise ShrinkError(
            f"{type(config).__name__}: the tiny config is rejected by transformers: {_one_line(exc)}"
            + (" (check the `overrides`)" if overrides else "")
        ) from exc
    if special_token_ids:
        _set_special(new, special_token_ids)
    problems = check_config(new)
    if problems:
        raise ShrinkError(
            f"{type(config).__name__}: inconsistent tiny config: {'; '.join(problems)}"
            + (" — fix the `overrides`" if overrides else "")
        )
    return new


def _set_special(config: Any, special: Mapping[str, int | None]) -> None:
    for k, v in special.items():
        if hasattr(config, k) or k in ("pad_token_id", "bos_token_id", "eos_token_id"):
            try:
                setattr(config, k, v)
            except Exception:
                pass
    try:
        text = config.get_text_config(decoder=True)
    except Exception:
        text = None
    if text is not None and text is not config:
        _set_special(text, special)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _sub_configs(config: Any) -> list[tuple[str, Any]]:
    from transformers import PretrainedConfig

    out = []
    for k, v in vars(config).items():
        if isinstance(v, PretrainedConfig):
            out.append((k, v))
    return out


def check_config(config: PretrainedConfig, path: str = "") -> list[str]:
    """Invariants of a (tiny) config and its sub-configs; returns a list of problems (empty = fine)."""
    problems: list[str] = []
    d = {k: getattr(config, k, None) for k in dir(config) if not k.startswith("_")} if False else vars(config)
    hidden = next((d[k] for k in ("hidden_size", "d_model", "n_embd") if _is_int(d.get(k))), None)
    heads = next((d[k] for k in ("num_attention_heads", "n_head", "num_heads") if _is_int(d.get(k))), None)
    kv = next((d[k] for k in ("num_key_value_heads", "n_kv_heads", "num_kv_heads") if _is_int(d.get(k))), None)
    explicit_head_dim = _is_int(d.get("head_dim")) or _is_int(d.get("d_kv"))
    if hidden and heads and hidden % heads and not explicit_head_dim:
        problems.append(f"{path}hidden size {hidden} is not divisible by {heads} heads")
    if heads and kv and heads % kv:
        problems.append(f"{path}{heads} attention heads are not divisible by {kv} key/value heads")
    hd = d.get("head_dim")
    rope = d.get("rope_parameters") or {}
    prf = (rope.get("partial_rotary_factor") if isinstance(rope, dict) else None) or d.get("partial_rotary_factor")
    if _is_int(hd) and isinstance(prf, (int, float)) and int(hd * prf) % 2:
        problems.append(f"{path}rotary dimension {hd}*{prf} is odd")
    layers = next((d[k] for k in ("num_hidden_layers", "num_layers", "n_layer") if _is_int(d.get(k))), None)
    for key in ("layer_types", "mlp_layer_types"):
        lt = d.get(key)
        if isinstance(lt, list) and layers is not None and len(lt) != layers:
            problems.append(f"{path}{key} has {len(lt)} entries for {layers} layers")
    for k, sub in _sub_configs(config):
        problems.extend(check_config(sub, f"{path}{k}."))
    return problems


def base_config(model_type: str) -> PretrainedConfig:
    """The library's default config of ``model_type`` (``AutoConfig.for_model``)."""
    from transformers import AutoConfig

    try:
        return AutoConfig.for_model(model_type)
    except ValueError as exc:
        from .architectures import ArchitectureError, _all_model_types, _close

        raise ArchitectureError(
            "model_type",
            f"no config class for model type {model_type!r}.{_close(model_type, _all_model_types())}",
        ) from exc
