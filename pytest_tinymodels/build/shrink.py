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
* the few families the generic rules cannot handle have small named rules: generic ones here
  (:data:`GENERIC_RULES`), family-specific ones registered by :mod:`.families` through the extension
  points of :mod:`.rules` (``family_rule``), and model types whose defaults the rules cannot fix get
  a nested dict of values there (``model_type_values``).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..errors import TinyModelsError
from . import rules

if TYPE_CHECKING:
    from transformers import PretrainedConfig

__all__ = [
    "TINY",
    "DEFAULT_TINY",
    "check_sizes",
    "tiny_sizes",
    "KEY_RULES",
    "GENERIC_RULES",
    "ShrinkError",
    "shrink_config",
    "shrink_dict",
    "base_config",
    "check_config",
    "config_for_class",
    "set_special_ids",
    # helpers for family rules (pytest_tinymodels/families): the context a rule gets, and small utilities
    "ShrinkContext",
    "key_kind",
    "is_int",
    "is_config_dict",
    "first_int",
    "pow2_factor",
    "divisor_at_most",
    "node_layers",
    "node_head_dim",
    "shrink_per_layer",
    "tree_vocab",
]


class ShrinkError(TinyModelsError):
    """The shrunk config is inconsistent (usually because of user overrides)."""


#: Tiny value of each kind of quantity (the default; :func:`tiny_sizes` changes it for one build).
DEFAULT_TINY: Mapping[str, int] = MappingProxyType({
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
})

_SIZES: ContextVar[Mapping[str, int]] = ContextVar("tiny_sizes", default=MappingProxyType({}))


class _TinySizes(Mapping[str, int]):
    """:data:`DEFAULT_TINY` with the values of the innermost :func:`tiny_sizes` block of this thread/context."""

    def __getitem__(self, kind: str) -> int:
        return _SIZES.get().get(kind, DEFAULT_TINY[kind])

    def __iter__(self) -> Iterator[str]:
        return iter(DEFAULT_TINY)

    def __len__(self) -> int:
        return len(DEFAULT_TINY)

    def __repr__(self) -> str:
        return f"TINY({dict(self)})"


#: The tiny value of each kind of quantity in effect (read by the rules): :data:`DEFAULT_TINY` unless a
#: :func:`tiny_sizes` block sets some.
TINY: Mapping[str, int] = _TinySizes()


def check_sizes(values: Mapping[str, Any]) -> list[str]:
    """Problems of a ``size`` table (kinds of :data:`DEFAULT_TINY` -> positive integers), one line each."""
    import difflib

    problems = []
    for kind, value in values.items():
        if kind not in DEFAULT_TINY:
            close = difflib.get_close_matches(kind, list(DEFAULT_TINY), n=1)
            problems.append(f"{kind!r} is not a kind of size" + (f" (did you mean {close[0]!r}?)" if close else "")
                            + f"; kinds: {', '.join(DEFAULT_TINY)}")
        elif not is_int(value) or value < 1:
            problems.append(f"{kind} must be a positive integer, got {value!r}")
    return problems


@contextmanager
def tiny_sizes(values: Mapping[str, int] | None) -> Iterator[None]:
    """Within the block, :data:`TINY` gives ``values`` for their kinds (``{"hidden": 8}``): the shrinker cuts
    each quantity to at most that value. Blocks nest; each thread or asyncio task sees its own."""
    if not values:
        yield
        return
    problems = check_sizes(values)
    if problems:
        raise ShrinkError("; ".join(problems))
    token = _SIZES.set(MappingProxyType({**_SIZES.get(), **values}))
    try:
        yield
    finally:
        _SIZES.reset(token)


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
    "encoder_hidden_size", "decoder_hidden_size", "d_hidden", "image_token_embed_dim",
)
_register(
    "layers",
    "num_hidden_layers", "num_layers", "n_layer", "n_layers", "encoder_layers", "decoder_layers",
    "num_decoder_layers", "num_encoder_layers", "encoder_num_layers", "decoder_num_layers",
    "text_layers", "vision_layers", "num_text_layers", "num_vision_layers", "depth", "num_blocks", "layers",
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
    "num_kv_attention_heads", "decoder_num_key_value_heads", "encoder_num_key_value_heads", "num_query_groups",
)
_register(
    "head_dim",
    "head_dim", "d_kv", "attention_head_dim", "kv_channels", "attention_head_size", "head_size",
    "qk_nope_head_dim", "v_head_dim", "qk_rope_head_dim", "qk_head_dim", "d_head",
)
_register(
    "intermediate",
    "intermediate_size", "d_ff", "n_inner", "ffn_dim", "encoder_ffn_dim", "decoder_ffn_dim",
    "ffn_hidden_size", "mlp_dim", "dim_feedforward", "intermediate_dim", "d_inner", "ff_dim",
    "decoder_intermediate_size", "encoder_intermediate_size", "feed_forward_size", "dff",
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
    "max_2d_position_embeddings", "original_max_position_embeddings", "max_num_patches", "num_position_embeddings",
)
_register("image_size", "image_size", "img_size", "input_size", "max_img_size")
_register("patch_size", "patch_size")
_register("experts", "num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts")
_register("groups_one", "zero_expert_num")
_register(
    "experts_per_tok",
    "num_experts_per_tok", "num_experts_per_token", "moe_topk", "num_selected_experts", "moe_k",
    "top_k_experts",
)
_register("shared_experts", "n_shared_experts", "num_shared_experts", "moe_num_shared_experts")
_register("groups_one", "n_group", "topk_group", "num_expert_group", "topk_groups", "n_groups", "mamba_n_groups",
          "mamba_ngroups")
_register("ssm_state", "state_size", "ssm_state_size", "mamba_d_state", "d_state")
_register("dt_rank", "time_step_rank", "mamba_dt_rank", "dt_rank")
_register("rotary_dim", "rotary_dim", "rotary_emb_base_dim")
_register("kv_shared_layers", "num_kv_shared_layers")
_register("mel_bins", "num_mel_bins", "n_mel_bins")
_register("lora_rank", "kv_lora_rank", "q_lora_rank", "o_lora_rank")
_register("first_dense", "first_k_dense_replace", "num_dense_layers")
_register("small_conv", "num_conv_pos_embeddings")
_register("conv_groups", "num_conv_pos_embedding_groups")
_register("conv_dim", "conv_dim", "tdnn_dim", "output_hidden_size")
_register("base_channels", "base_channels")
_register("window", "window_size")
_register("queries", "num_queries", "num_object_queries", "two_stage_num_proposals")
_register("hash_buckets", "num_hash_buckets")
_register("attn_window", "attention_window")
_register("image_size", "max_image_size", "min_image_size")
_register("positions", "max_vit_seq_len", "position_embedding_size", "img_max_token_num")
_register("hidden", "d_latents", "qk_channels", "v_channels", "class_expand")
_register("layers", "l_layers", "x_layers", "r_layers", "speech_encoder_layers", "t2u_encoder_layers",
          "t2u_decoder_layers")
_register("heads", "speech_encoder_attention_heads", "t2u_encoder_attention_heads", "t2u_decoder_attention_heads")
_register("positions", "max_pos_emb", "context_length")
_register("vocoder_channels", "upsample_initial_channel", "duration_predictor_filter_channels", "output_quantile_len",
          "duration_predictor_channels", "speech_decoder_postnet_units")
_register("layers", "num_self_attends_per_block")
_register("res_blocks", "num_res_blocks")
_register("latents", "latent_query_num", "num_latents")

#: attribute-name patterns -> kind, for names not in KEY_RULES (first match wins).
KEY_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^type_vocab_size$|^num_labels$"), "keep"),
    (re.compile(r"(kv|key_value)_heads$"), "kv_heads"),
    (re.compile(r"(^|_)(n|num)_\w*heads$|^\w+_n_heads$|_heads_per_\w+$"), "heads"),
    (re.compile(r"(head_dim|d_head|headdim|head_size)$"), "free_head_dim"),
    (re.compile(r"(moe|expert)\w*(intermediate_size|ffn_hidden_size)$"), "moe_intermediate"),
    (re.compile(r"intermediate_size$|ffn_dim$|ffn_hidden_size$"), "intermediate"),
    (re.compile(r"^(?!num_|n_)\w*hidden_size$"), "hidden"),
    (re.compile(r"vocab|^num_embeddings$|^codebook_size$"), "vocab"),
    (re.compile(r"(lowrank|lora_rank|adapter_rank|laurel_rank)$"), "lora_rank"),
    (re.compile(r"^num_\w+_labels$"), "small_labels"),
    (re.compile(r"^max_\w*position_embeddings$"), "positions"),
    (re.compile(r"(^|_)(num|n)_\w*layers$"), "layers"),
    (re.compile(r"linear_units$"), "intermediate"),
    (re.compile(r"(^|_)(num_experts|n_experts|num_routed_experts)$"), "experts"),
]


def key_kind(key: str) -> str | None:
    """The kind of quantity a config key holds (``hidden``, ``heads``, ``layers``, ``vocab`` ...), or None."""
    kind = KEY_RULES.get(key)
    if kind is not None:
        return kind
    for pat, k in KEY_PATTERNS:
        if pat.search(key):
            return None if k == "keep" else k
    return None


#: lists with one entry per *stage* (kept length, shrunk values).
STAGE_DEPTH_KEYS = frozenset({"depths", "num_layers_per_stage", "stage_depths", "encoder_depths", "blocks",
                              "blocks_per_stage", "num_block_repeats", "block_sizes"})
STAGE_DIM_KEYS = frozenset(
    {"hidden_sizes", "embed_dims", "embed_dim", "dims", "widths", "neck_hidden_sizes", "stage_dims",
     "hidden_dims", "channels", "encoder_hidden_sizes", "decoder_hidden_sizes", "embedding_dims",
     "downsample_channels", "embed_dim_per_stage", "backbone_channel_list", "stem_channels", "stage_in_channels", "stage_mid_channels", "stage_out_channels",
     }
)
STAGE_HEAD_KEYS = frozenset({"num_heads", "num_attention_heads", "heads", "encoder_attention_heads",
                             "num_attention_heads_per_stage"})

#: lists of layer *indices* (remapped when layers are removed).
LAYER_INDEX_KEYS = frozenset(
    {"global_attn_indexes", "full_attn_idxs", "attn_layer_indices", "full_attention_layers",
     "sliding_window_layers", "linear_attention_layers", "cross_attention_layers", "swa_layers",
     "moe_layers", "dense_layers", "global_attention_layers", "fullatt_block_indexes", "attn_layer_idx",
     "hybrid_layer_ids", "deepstack_visual_indexes", "intermediate_layers_indices", "index_layers",
     "mlp_only_layers"}
)
#: per-layer lists whose entries are themselves layer indices (layer ``i`` reads the K/V of layer ``v[i]``):
#: cut like per-layer lists, and their values remapped (a source not kept becomes the layer itself).
LAYER_SOURCE_KEYS = frozenset({"kv_source_layers"})
#: keys that are never touched by the dimension heuristics.
_NEVER = frozenset(
    {"vocab_size", "type_vocab_size", "num_labels", "num_channels", "transformers_version", "model_type",
     "initializer_range", "pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id",
     "decoder_start_token_id", "chunk_size_feed_forward", "num_beams", "max_length", "min_length",
     "sampling_rate", "d_state", "conv_kernel", "state_size"}
)
_DIMISH = re.compile(r"(^|_)(dim|dims|size|hidden|embd|embed|width|channel|channels|proj|features)(_|$)")
_DIMISH_DENY = re.compile(r"kernel|stride|window|pool|bucket|group|vocab|image|patch|batch|chunk|token|label|max_|position|rank|num_|ratio|scale|eps|dropout|factor|codebook_size|sampling|frames|length|rate|bins|freq")
_SUBCONFIG_SKIP = frozenset({"id2label", "label2id", "rope_parameters", "rope_scaling", "quantization_config",
                            "task_specific_params", "auto_map", "generation_config"})


# --------------------------------------------------------------------------- helpers


def is_int(v: Any) -> bool:
    """An int that is not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_config_dict(key: str, value: Any) -> bool:
    """Whether ``value`` under ``key`` is a nested sub-config (shrunk like the top level)."""
    if not isinstance(value, dict) or key in _SUBCONFIG_SKIP:
        return False
    return "model_type" in value or key.endswith("_config") or key in {"encoder", "decoder"}


def pow2_factor(largest: int, target: int) -> int:
    """The power of two that brings ``largest`` down to ``target`` or below (1 if already there)."""
    if largest <= target:
        return 1
    return 2 ** math.ceil(math.log2(largest / target))


def divisor_at_most(n: int, k: int) -> int:
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
class ShrinkContext:
    """Mappings collected over the whole tree before shrinking."""

    value_map: dict[int, int]  # old hidden/intermediate sizes -> new ones
    vocab_size: int | None
    special: dict[str, int | None]
    old: dict[int, dict] = field(default_factory=dict)  # id(node) -> node before shrinking


# --------------------------------------------------------------------------- node helpers

#: the attribute holding a config's main hidden size, in order of preference.
PRIMARY_HIDDEN = ("hidden_size", "d_model", "n_embd", "n_embed", "embed_dim", "dim", "model_dim", "d_embed",
                  "embedding_dim")
PRIMARY_HEADS = ("num_attention_heads", "n_head", "num_heads", "n_heads", "encoder_attention_heads",
                 "decoder_attention_heads", "attention_heads")


def first_int(node: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    """The first positive int among ``keys`` of ``node``."""
    return next((node[k] for k in keys if is_int(node.get(k)) and node[k] > 0), None)


def node_layers(node: dict) -> int | None:
    """The layer count of a config node (its first ``layers``-kind key)."""
    for k, kind in KEY_RULES.items():
        if kind == "layers" and is_int(node.get(k)):
            return node[k]
    return None


def node_head_dim(node: dict) -> int:
    """The head dimension of a config node (``head_dim`` or hidden size / heads)."""
    hd = node.get("head_dim")
    if is_int(hd):
        return hd
    hidden = first_int(node, PRIMARY_HIDDEN) or TINY["hidden"]
    heads = first_int(node, PRIMARY_HEADS) or TINY["heads"]
    return max(2, hidden // heads)


# --------------------------------------------------------------------------- named family rules


def _rule_mrope_sections(node: dict, ctx: ShrinkContext) -> None:
    """Multimodal RoPE (qwen2-vl family): ``mrope_section`` must sum to head_dim // 2."""
    for rope in _rope_dicts(node):
        sec = rope.get("mrope_section")
        if isinstance(sec, list) and sec:
            prf = rope.get("partial_rotary_factor") or node.get("partial_rotary_factor") or 1.0
            rot = node["qk_rope_head_dim"] if is_int(node.get("qk_rope_head_dim")) else node_head_dim(node)
            half = int(rot * prf) // 2
            total = sum(sec)
            new = [max(1, s * half // total) for s in sec]
            new[0] += half - sum(new)
            rope["mrope_section"] = new


def _rope_dicts(node: dict) -> list[dict]:
    out = []
    for key in ("rope_parameters", "rope_scaling"):
        rope = node.get(key)
        if isinstance(rope, dict):
            # per layer-type rope dicts ({"full_attention": {...}, "sliding_attention": {...}})
            nested = [v for v in rope.values() if isinstance(v, dict)]
            out.extend(nested or [rope])
    return out


def _rule_rope_factor_lists(node: dict, ctx: ShrinkContext) -> None:
    """LongRoPE ``short_factor`` / ``long_factor`` lists have rotary_dim // 2 entries."""
    for rope in _rope_dicts(node):
        prf = node.get("partial_rotary_factor") or rope.get("partial_rotary_factor") or 1.0
        half = int(node_head_dim(node) * prf) // 2
        for k in ("short_factor", "long_factor"):
            if isinstance(rope.get(k), list) and rope[k]:
                rope[k] = (rope[k] * (half // len(rope[k]) + 1))[:half]
        if is_int(rope.get("original_max_position_embeddings")):
            rope["original_max_position_embeddings"] = min(
                rope["original_max_position_embeddings"], TINY["positions"] // 2
            )


def _rule_token_id_lists(node: dict, ctx: ShrinkContext) -> None:
    """Token-id lists (``suppress_tokens``...) must stay inside the tiny vocabulary."""
    vocab = node.get("vocab_size") or ctx.vocab_size
    if not is_int(vocab):
        return
    for k, v in list(node.items()):
        if not (isinstance(v, list) and all(is_int(t) for t in v)):
            continue
        if k.endswith("suppress_tokens"):
            node[k] = [t for t in v if t < vocab]
        elif k.endswith("_token_ids"):
            node[k] = [t if t < vocab else vocab - 1 for t in v]


def _rule_period_offsets(node: dict, ctx: ShrinkContext) -> None:
    """Jamba-style ``*_layer_period`` / ``*_layer_offset``: keep every kind of layer present."""
    layers = node_layers(node)
    if layers is None:
        return
    for k in list(node):
        if k.endswith("_layer_period") and is_int(node[k]):
            node[k] = min(node[k], layers)
            off = k.replace("_period", "_offset")
            if is_int(node.get(off)):
                node[off] = min(node[off], node[k] - 1)


def _rule_mla(node: dict, ctx: ShrinkContext) -> None:
    """Multi-head latent attention (deepseek-v2/v3 family): kv heads = heads, qk = nope + rope dims."""
    if "kv_lora_rank" not in node:
        return
    heads = first_int(node, PRIMARY_HEADS)
    for k in ("num_key_value_heads",):
        if is_int(node.get(k)) and heads:
            node[k] = heads
    if is_int(node.get("qk_rope_head_dim")):
        old = ctx.old.get(id(node), {})
        rope = 8 if old.get("qk_rope_head_dim") else 0  # NoPE stays NoPE
        nope = 8
        old_head_dim_is_rope = old.get("head_dim") == old.get("qk_rope_head_dim")
        node["qk_rope_head_dim"] = rope
        if is_int(node.get("qk_nope_head_dim")):
            node["qk_nope_head_dim"] = nope
        if "qk_head_dim" in node:
            node["qk_head_dim"] = rope + (nope if is_int(node.get("qk_nope_head_dim")) else 0)
        if is_int(node.get("v_head_dim")):
            node["v_head_dim"] = 16
        if is_int(node.get("head_dim")) and old_head_dim_is_rope:
            node["head_dim"] = rope


def _rule_mamba_heads(node: dict, ctx: ShrinkContext) -> None:
    """Mamba-2 style SSM mixers: ``heads * head_dim == expand * hidden`` (and ``d_ssm`` when explicit)."""
    if not any(k in node for k in ("state_size", "ssm_state_size", "mamba_d_state")):
        return
    expand = first_int(node, ("mamba_expand", "expand")) or 2
    hidden = first_int(node, PRIMARY_HIDDEN)
    heads_key = next((k for k in ("mamba_n_heads", "mamba_num_heads", "n_mamba_heads", "num_heads")
                      if is_int(node.get(k))), None)
    dim_key = next((k for k in ("mamba_d_head", "mamba_head_dim", "mamba_headdim", "head_dim")
                    if is_int(node.get(k))), None)
    if not hidden or not heads_key:
        return
    inner = expand * hidden
    if is_int(node.get("mamba_d_ssm")):
        node["mamba_d_ssm"] = inner
    node[heads_key] = divisor_at_most(inner, node[heads_key])
    if dim_key and (dim_key != "head_dim" or heads_key == "num_heads"):
        node[dim_key] = inner // node[heads_key]


def _rule_per_layer_overrides(node: dict, ctx: ShrinkContext) -> None:
    """Heterogeneous configs: ``per_layer_config`` overrides are shrunk relative to the shrunk node."""
    plc = node.get("per_layer_config")
    if not isinstance(plc, dict):
        return
    old = ctx.old.get(id(node), {})
    for layer, over in plc.items():
        if not isinstance(over, dict):
            continue
        for k, v in list(over.items()):
            cur, was = node.get(k), old.get(k)
            if not (is_int(v) and is_int(cur) and is_int(was)):
                continue
            if v == was or key_kind(k) in ("head_dim", "free_head_dim"):
                over[k] = cur
            elif v > was:
                over[k] = cur * 2
            else:
                over[k] = max(1, cur // 2)


def _rule_kv_shared_layers(node: dict, ctx: ShrinkContext) -> None:
    """Gemma-3n style KV sharing: the shared tail must leave one cache-producing layer of each type."""
    if not is_int(node.get("num_kv_shared_layers")):
        return
    layers = node_layers(node) or 0
    types = node.get("layer_types")
    n_types = len(set(types)) if isinstance(types, list) else 1
    node["num_kv_shared_layers"] = max(0, min(node["num_kv_shared_layers"], layers - n_types))


def _rule_cyclic_block_pattern(node: dict, ctx: ShrinkContext) -> None:
    """A cyclic per-layer pattern (``block_types``) needs enough layers to contain each block type."""
    pattern = node.get("block_types")
    if not (isinstance(pattern, list) and pattern):
        return
    for k in ("num_hidden_layers", "num_layers"):
        if is_int(node.get(k)) and node[k] < len(pattern):
            node[k] = min(len(pattern), TINY["max_per_layer_types"])


def _rule_layer_parts(node: dict, ctx: ShrinkContext) -> None:
    """Configs whose layer count is the sum of parts (``n_input_layers + n_recurrent_layers + ...``).

    Dory serialises each layer as an (attention, "mlp") pair, doubling every count: kept that way.
    """
    parts = [k for k in ("n_input_layers", "n_recurrent_layers", "n_output_layers") if is_int(node.get(k))]
    if len(parts) < 2 or not is_int(node.get("num_hidden_layers")):
        return
    old_lt = ctx.old.get(id(node), {}).get("layer_types")
    paired = isinstance(old_lt, list) and len(old_lt) >= 2 and all(x == "mlp" for x in old_lt[1::2])
    unit = 2 if paired else 1
    for k in parts:
        node[k] = unit
    node["num_hidden_layers"] = unit * len(parts)
    if paired:
        attn = list(dict.fromkeys(old_lt[0::2]))
        attn = (attn * len(parts))[: len(parts)]
        node["layer_types"] = [b for t in attn for b in (t, "mlp")]


def _rule_indexer_defaults(node: dict, ctx: ShrinkContext) -> None:
    """Indexed (sparse-selection) attention layers need every ``indexer_*`` field or none."""
    keys = [k for k in node if k.startswith("indexer_")]
    lt = node.get("layer_types")
    if not keys or not (isinstance(lt, list) and "indexed_attention" in lt):
        return
    tiny = {"indexer_n_heads": 2, "indexer_kv_heads": 1, "indexer_head_dim": TINY["head_dim"],
            "indexer_budget": 4, "indexer_compress_ratio": 2}
    for k in keys:
        if k in tiny:
            node[k] = tiny[k] if node[k] is None else min(node[k], tiny[k])


def _rule_index_heads(node: dict, ctx: ShrinkContext) -> None:
    """An indexer's heads read one key head's query group: at most ``heads // kv_heads`` (Kolibri)."""
    heads, kv = node.get("num_attention_heads"), node.get("num_key_value_heads")
    if is_int(node.get("index_num_heads")) and is_int(heads) and is_int(kv) and kv > 0:
        node["index_num_heads"] = max(1, min(node["index_num_heads"], heads // kv))


def _rule_rotary_dim(node: dict, ctx: ShrinkContext) -> None:
    """``rotary_dim`` (gpt-j, codegen...) must be even and at most the head dim."""
    if is_int(node.get("rotary_dim")):
        node["rotary_dim"] = max(2, min(node["rotary_dim"], node_head_dim(node) // 2) // 2 * 2)


def _rule_axial_positions(node: dict, ctx: ShrinkContext) -> None:
    """Reformer: axial position embedding dims sum to the hidden size, shape multiplies to the max length."""
    dims = node.get("axial_pos_embds_dim")
    hidden = first_int(node, PRIMARY_HIDDEN)
    if isinstance(dims, list) and len(dims) == 2 and hidden:
        node["axial_pos_embds_dim"] = [hidden // 2, hidden - hidden // 2]
    shape = node.get("axial_pos_shape")
    if isinstance(shape, list) and len(shape) == 2:
        chunk = node.get("lsh_attn_chunk_length") or node.get("local_attn_chunk_length") or 64
        chunk = min(chunk, 16)
        for k in ("lsh_attn_chunk_length", "local_attn_chunk_length"):
            if is_int(node.get(k)):
                node[k] = chunk
        node["axial_pos_shape"] = [16, 16]
        node["max_position_embeddings"] = 256
        if is_int(node.get("num_buckets")):
            node["num_buckets"] = 16


def _rule_fill_missing(node: dict, ctx: ShrinkContext) -> None:
    """Defaults left ``None`` that the modeling code needs (head_dim, kv heads, expert counts)."""
    hidden, heads = first_int(node, PRIMARY_HIDDEN), first_int(node, PRIMARY_HEADS)
    if not hidden or not heads:
        return
    fills = {"head_dim": hidden // heads, "kv_heads": min(heads, TINY["kv_heads"]), "experts": TINY["experts"],
             "experts_per_tok": TINY["experts_per_tok"], "shared_experts": TINY["shared_experts"]}
    if "vocab_size" in node and node["vocab_size"] is None and _texty(node):
        node["vocab_size"] = ctx.vocab_size or TINY["vocab"]
    for k, v in list(node.items()):
        kind = key_kind(k)
        if k.startswith("indexer_"):
            continue
        if v is None and kind in fills and (kind != "head_dim" or k == "head_dim"):
            if kind == "experts_per_tok" and not any(key_kind(x) == "experts" for x in node):
                continue
            node[k] = fills[kind]


def _rule_hybrid_attention_layer(node: dict, ctx: ShrinkContext) -> None:
    """SSM/attention hybrids whose tiny layer pattern lost every attention layer get the last one back."""
    if not any(k in node for k in ("mamba_d_state", "ssm_state_size", "mamba_n_heads")):
        return
    if "attn_layer_indices" in node and not node["attn_layer_indices"]:
        layers = node_layers(node) or 1
        node["attn_layer_indices"] = [layers - 1]
    lt = node.get("layer_types")
    if isinstance(lt, list) and lt and all(x in ("linear_attention", "mamba") for x in lt):
        node["layer_types"] = lt[:-1] + ["full_attention"]


def _rule_rope_per_layer_type(node: dict, ctx: ShrinkContext) -> None:
    """Configs with ``layer_types`` whose default ``rope_parameters`` is empty need one entry per type."""
    lt, rope = node.get("layer_types"), node.get("rope_parameters")
    if isinstance(lt, list) and lt and rope == {}:
        node["rope_parameters"] = {t: {"rope_type": "default", "rope_theta": 10000.0} for t in dict.fromkeys(lt)}


def _rule_recurrent_stacks(node: dict, ctx: ShrinkContext) -> None:
    """HRM: ``num_hidden_layers = num_layers_per_stack * H_cycles * (L_cycles + 1)``; one layer per stack."""
    if "num_layers_per_stack" not in node or not is_int(node.get("H_cycles")):
        return
    node["H_cycles"], node["L_cycles"] = 1, 1
    if isinstance(node.get("L_bp_cycles"), list):
        node["L_bp_cycles"] = [1]
    node["num_layers_per_stack"] = None
    node["num_hidden_layers"] = 1


def _rule_default_language(node: dict, ctx: ShrinkContext) -> None:
    """X-MOD: adapters need a default language, else forward refuses to run."""
    langs = node.get("languages")
    if isinstance(langs, list) and langs and "default_language" in node and not node["default_language"]:
        node["default_language"] = langs[0]


def _rule_attn_config_rope(node: dict, ctx: ShrinkContext) -> None:
    """DBRX: the attention sub-config must carry ``rope_theta`` and ``clip_qkv`` (library default lacks them)."""
    attn = node.get("attn_config")
    rope = node.get("rope_parameters")
    if isinstance(attn, dict) and "kv_n_heads" in attn:
        if "rope_theta" not in attn and isinstance(rope, dict):
            attn["rope_theta"] = rope.get("rope_theta", 10000.0)
        if attn.get("clip_qkv") is None:
            attn["clip_qkv"] = 8.0


def _rule_dim_factors(node: dict, ctx: ShrinkContext) -> None:
    """xLSTM: ``hidden * qk_dim_factor`` is rounded up to a multiple of 64 in one place and not in another;
    a factor of 1 keeps both equal at the tiny hidden size."""
    hidden = first_int(node, PRIMARY_HIDDEN)
    for k in ("qk_dim_factor", "v_dim_factor"):
        f = node.get(k)
        if hidden and isinstance(f, (int, float)) and (hidden * f) % 64:
            node[k] = 1.0


def _rule_backbone_stages(node: dict, ctx: ShrinkContext) -> None:
    """Backbones whose stages are layers (ViT-style): stage names follow the new layer count and
    ``out_indices`` / ``out_features`` are clamped into it."""
    names = node.get("stage_names")
    if not isinstance(names, list):
        return
    layers = node_layers(node)
    old_layers = node_layers(ctx.old.get(id(node), {}))
    if layers is not None and old_layers is not None and len(names) == old_layers + 1:
        names = ["stem"] + [f"stage{i}" for i in range(1, layers + 1)]
        node["stage_names"] = names
    n = len(names)
    idx = node.get("out_indices")
    if isinstance(idx, (list, tuple)) and idx:
        new = []
        for i in idx:
            j = i if i >= 0 else i + n
            j = min(max(j, 0), n - 1)
            if j not in new:
                new.append(j)
        node["out_indices"] = sorted(new)
        if isinstance(node.get("out_features"), list):
            node["out_features"] = [names[j] for j in node["out_indices"]]
    elif isinstance(node.get("out_features"), list):
        feats = [f for f in node["out_features"] if f in names] or [names[-1]]
        node["out_features"] = feats


def _rule_group_norm_groups(node: dict, ctx: ShrinkContext) -> None:
    """Group-norm group counts must divide the (shrunk) channel counts."""
    dims = [x for k in STAGE_DIM_KEYS if isinstance(node.get(k), list) for x in node[k] if is_int(x)]
    dims += [node[k] for k in PRIMARY_HIDDEN if is_int(node.get(k))]
    if not dims:
        return
    smallest = min(dims)
    for k in ("num_groups", "norm_num_groups", "num_group_norm_groups", "group_norm_groups"):
        if is_int(node.get(k)) and node[k] > 1:
            node[k] = divisor_at_most(smallest, min(node[k], 4))


def _rule_time_series_lengths(node: dict, ctx: ShrinkContext) -> None:
    """Time-series transformers need a ``prediction_length`` (library default: None)."""
    if "prediction_length" in node and node["prediction_length"] is None:
        node["prediction_length"] = 4
    if "context_length" in node and node.get("context_length") is None and "prediction_length" in node:
        node["context_length"] = 8
    if isinstance(node.get("lags_sequence"), list) and node["lags_sequence"]:
        node["lags_sequence"] = [x for x in node["lags_sequence"] if is_int(x) and x <= 3] or [1]


def _rule_shared_hybrid_blocks(node: dict, ctx: ShrinkContext) -> None:
    """Zamba: "hybrid" layers share one transformer block tied across them, so keep at least two."""
    lt = node.get("layers_block_type")
    if isinstance(lt, list) and lt.count("hybrid") == 1:
        node["layers_block_type"] = lt + ["hybrid"]
        for k in ("num_hidden_layers", "num_layers"):
            if is_int(node.get(k)):
                node[k] = len(node["layers_block_type"])
        if isinstance(node.get("hybrid_layer_ids"), list):
            node["hybrid_layer_ids"] = [i for i, t in enumerate(node["layers_block_type"]) if t == "hybrid"]


def _rule_attention_hidden_size(node: dict, ctx: ShrinkContext) -> None:
    """``attention_hidden_size`` (zamba) keeps its ratio to the hidden size; head dims follow it."""
    old = ctx.old.get(id(node), {})
    ah, oh, h = old.get("attention_hidden_size"), first_int(old, PRIMARY_HIDDEN), first_int(node, PRIMARY_HIDDEN)
    if not (is_int(ah) and oh and h and ah % oh == 0):
        return
    node["attention_hidden_size"] = h * (ah // oh)
    heads = first_int(node, PRIMARY_HEADS)
    if heads and is_int(node.get("attention_head_dim")):
        node["attention_head_dim"] = node["attention_hidden_size"] // heads


def _rule_channel_multipliers(node: dict, ctx: ShrinkContext) -> None:
    """VQ-VAE encoders (chameleon, emu3, janus): per-resolution channel multipliers become 1 (the number of
    resolutions, hence the downsampling factor, is kept); group norms there use 32 groups."""
    for k in ("channel_multiplier", "ch_mult", "channel_mult"):
        v = node.get(k)
        if isinstance(v, list) and v and all(is_int(x) for x in v):
            node[k] = [1] * len(v)


def _rule_mel_source_positions(node: dict, ctx: ShrinkContext) -> None:
    """Whisper-style encoders take exactly ``2 * max_source_positions`` mel frames; 50 positions = 100 frames
    = one second at 16 kHz / hop 160, so the feature extractor's padding length is a whole number of seconds."""
    if is_int(node.get("num_mel_bins")) and is_int(node.get("max_source_positions")):
        node["max_source_positions"] = min(node["max_source_positions"], 50)


def _rule_depth_per_stage(node: dict, ctx: ShrinkContext) -> None:
    """CvT indexes a per-stage drop-path list of ``depth[stage]`` entries with the stage index: depth[i] > i."""
    depth = node.get("depth")
    if isinstance(depth, list) and depth and all(is_int(x) for x in depth):
        node["depth"] = [max(x, i + 1) for i, x in enumerate(depth)]


def _rule_feature_layer_indices(node: dict, ctx: ShrinkContext) -> None:
    """Indices into the vision tower's layers (``vision_feature_layer`` ...) must exist in the tiny tower."""
    vision = node.get("vision_config")
    layers = node_layers(vision) if isinstance(vision, dict) else None
    if not layers:
        return
    targets = [node] + [v for k, v in node.items() if isinstance(v, dict) and k not in _SUBCONFIG_SKIP]
    for t in targets:
        for k in ("vision_feature_layer", "vision_feature_layers", "feature_layers", "select_layer",
                  "vision_feature_layer_ids"):
            v = t.get(k)
            if is_int(v) and not -(layers + 1) <= v <= layers:
                t[k] = -1 if v < 0 else layers - 1
            elif isinstance(v, list) and v and all(is_int(x) for x in v):
                if all(-(layers + 1) <= x <= layers for x in v):
                    continue
                order = sorted(set(v), reverse=True)
                t[k] = [(layers - 1 - order.index(x)) % (layers + 1) if x >= 0 else max(x, -(layers + 1)) for x in v]


def _rule_window_stages(node: dict, ctx: ShrinkContext) -> None:
    """Swin-style windowed stages: the window tiles the last stage's feature map exactly (as at full size),
    using a smaller patch when the tiny image would leave a 1x1 last stage."""
    depths = node.get("depths")
    if not (is_int(node.get("window_size")) and isinstance(depths, list) and depths):
        return
    image, patch = node.get("image_size"), node.get("patch_size")
    if not (is_int(image) and is_int(patch)):
        return
    shrink = 2 ** (len(depths) - 1)
    if (image // patch) // shrink < 2 and image // 2 // shrink >= 2:
        node["patch_size"] = patch = 2
    node["window_size"] = max(1, (image // patch) // shrink)


def _rule_fixed_stride_stem(node: dict, ctx: ShrinkContext) -> None:
    """LeViT's stem always downsamples 16x (four stride-2 convs) whatever ``patch_size`` says, and its
    attention biases are sized from ``image_size // patch_size``: keep the patch size, use 64x64 images."""
    if "down_ops" in node and is_int(ctx.old.get(id(node), {}).get("patch_size")):
        node["patch_size"] = ctx.old[id(node)]["patch_size"]
        node["image_size"] = max(TINY["image_size"], 4 * node["patch_size"])


def _rule_backbone_channels(node: dict, ctx: ShrinkContext) -> None:
    """Detection heads over a CNN backbone: ``encoder_in_channels`` are the backbone's output channels."""
    bb = node.get("backbone_config")
    if not (isinstance(bb, dict) and isinstance(node.get("encoder_in_channels"), list)):
        return
    widths = bb.get("stage_out_channels") or bb.get("hidden_sizes")
    idx = bb.get("out_indices")
    if isinstance(widths, list) and isinstance(idx, list) and all(is_int(i) and 1 <= i <= len(widths) for i in idx):
        node["encoder_in_channels"] = [widths[i - 1] for i in idx]


def _rule_codec_channels(node: dict, ctx: ShrinkContext) -> None:
    """Neural audio codecs (encodec, dac, mimi...): channels double at every down/up-sampling ratio from a
    base width, so the base width (``num_filters``...) is what must be tiny."""
    if not any(isinstance(node.get(k), list) for k in ("upsampling_ratios", "downsampling_ratios")):
        return
    for k in ("num_filters", "n_filters", "encoder_hidden_size", "decoder_hidden_size", "encoder_n_filters",
              "decoder_n_filters"):
        if is_int(node.get(k)):
            node[k] = min(ctx.old.get(id(node), {}).get(k, node[k]), 4)
    if isinstance(node.get("target_bandwidths"), list) and len(node["target_bandwidths"]) > 2:
        node["target_bandwidths"] = node["target_bandwidths"][:2]  # fewer residual quantizers
    for k, tiny in (("codebook_size", 64),):
        if is_int(node.get(k)):
            node[k] = min(node[k], tiny)
    if is_int(node.get("upsample_groups")) and is_int(node.get("hidden_size")):
        node["upsample_groups"] = node["hidden_size"]


def _rule_width_multipliers(node: dict, ctx: ShrinkContext) -> None:
    """EfficientNet / MobileNet scale every stage by width and depth multipliers: make them small."""
    for k in ("width_coefficient", "depth_multiplier", "width_multiplier"):
        if isinstance(node.get(k), (int, float)) and not isinstance(node.get(k), bool):
            node[k] = min(float(node[k]), 0.25)
    if isinstance(node.get("depth_coefficient"), (int, float)):
        node["depth_coefficient"] = min(float(node["depth_coefficient"]), 0.5)
    w = node.get("width_coefficient")
    if isinstance(w, float) and is_int(node.get("hidden_dim")):  # EfficientNet: hidden_dim = round_filters(1280)
        divisor = node.get("depth_divisor") if is_int(node.get("depth_divisor")) else 8
        n = 1280 * w
        dim = max(divisor, int(n + divisor / 2) // divisor * divisor)
        node["hidden_dim"] = dim + divisor if dim < 0.9 * n else dim


def _rule_global_blocks(node: dict, ctx: ShrinkContext) -> None:
    """Hiera: ``global_attention_blocks`` index the blocks of all stages; keep them inside the tiny total."""
    blocks, per_stage = node.get("global_attention_blocks"), node.get("blocks_per_stage")
    if isinstance(blocks, list) and isinstance(per_stage, list) and per_stage:
        total = sum(per_stage)
        node["global_attention_blocks"] = sorted({min(b, total - 1) for b in blocks if is_int(b)})


def _rule_neck_feature_count(node: dict, ctx: ShrinkContext) -> None:
    """DPT-style necks take one backbone feature map per ``neck_hidden_sizes`` entry: the (tiny) backbone
    keeps that many layers and outputs each of them."""
    neck = node.get("neck_hidden_sizes")
    if not (isinstance(neck, list) and neck):
        return
    n = len(neck)
    if isinstance(node.get("backbone_out_indices"), list):
        layers = max(node_layers(node) or n, n)
        for k in ("num_hidden_layers",):
            if is_int(node.get(k)):
                node[k] = layers
        node["backbone_out_indices"] = list(range(layers - n, layers))
    bb = node.get("backbone_config")
    if isinstance(bb, dict) and isinstance(bb.get("out_indices"), list) and is_int(bb.get("num_hidden_layers")):
        layers = max(bb["num_hidden_layers"], n)
        bb["num_hidden_layers"] = layers
        bb["stage_names"] = ["stem"] + [f"stage{i}" for i in range(1, layers + 1)]
        bb["out_indices"] = list(range(layers - n + 1, layers + 1))
        if isinstance(bb.get("out_features"), list):
            bb["out_features"] = [bb["stage_names"][i] for i in bb["out_indices"]]


def _rule_layout_box_dims(node: dict, ctx: ShrinkContext) -> None:
    """LayoutLMv3-style 2D position embeddings concatenate x0, x1, y0, y1 (``coordinate_size`` each) and
    height, width (``shape_size`` each) into the hidden size."""
    hidden = first_int(node, PRIMARY_HIDDEN)
    if hidden and is_int(node.get("coordinate_size")) and is_int(node.get("shape_size")):
        coord = hidden // 6
        node["coordinate_size"] = coord
        node["shape_size"] = (hidden - 4 * coord) // 2


def _rule_xpath_embeddings(node: dict, ctx: ShrinkContext) -> None:
    """MarkupLM: xpath embeddings are (tag / subscript vocab) x unit size x ``max_depth``: shrink all three."""
    if not is_int(node.get("xpath_unit_hidden_size")):
        return
    node["xpath_unit_hidden_size"] = min(node["xpath_unit_hidden_size"], 8)
    for k in ("max_xpath_tag_unit_embeddings", "max_xpath_subs_unit_embeddings"):
        if is_int(node.get(k)):
            node[k] = min(node[k], 16)
    if is_int(node.get("max_depth")):
        node["max_depth"] = min(node["max_depth"], 4)
    for pad, size in (("tag_pad_id", "max_xpath_tag_unit_embeddings"), ("subs_pad_id", "max_xpath_subs_unit_embeddings")):
        if is_int(node.get(pad)) and is_int(node.get(size)):
            node[pad] = min(node[pad], node[size] - 1)


def _rule_pixel_window(node: dict, ctx: ShrinkContext) -> None:
    """Qwen2.5-VL style vision towers give ``window_size`` in pixels: a whole number of merged patches."""
    patch, merge = node.get("patch_size"), node.get("spatial_merge_size")
    if is_int(node.get("window_size")) and is_int(patch) and is_int(merge):
        node["window_size"] = patch * merge * 2


def _rule_vocabulary_map(node: dict, ctx: ShrinkContext) -> None:
    """Chameleon / Emu3 map VQ codes to text tokens through ``vocabulary_map`` (None in the library default):
    a small map with the image placeholder and a few image-code tokens at the top of the tiny vocabulary."""
    if "vocabulary_map" not in node or node["vocabulary_map"] is not None:
        return
    vocab = tree_vocab(node, ctx) or (node.get("vocab_size") if is_int(node.get("vocab_size")) else None)
    if not is_int(vocab):
        return
    vmap = {"<image>": vocab - 1, "<|extra_200|>": vocab - 2}
    for i in range(8):
        vmap[f"IMGIMG{chr(ord('A') + i)}Z"] = vocab - 3 - i  # chameleon image-code tokens
        vmap[f"<|visual token{i:06d}|>"] = vocab - 11 - i  # emu3 image-code tokens
    node["vocabulary_map"] = vmap


def _rule_six_part_layout(node: dict, ctx: ShrinkContext) -> None:
    """LiLT splits the layout stream (hidden / ``channel_shrink_ratio``) into six box embeddings: the hidden
    size must be a multiple of 6 * ratio (and of the head count)."""
    ratio = node.get("channel_shrink_ratio")
    heads = first_int(node, PRIMARY_HEADS)
    if is_int(ratio) and is_int(node.get("hidden_size")) and heads:
        unit = 6 * ratio * heads // math.gcd(6 * ratio, heads)
        node["hidden_size"] = max(unit, node["hidden_size"] // unit * unit)


def _rule_output_stride(node: dict, ctx: ShrinkContext) -> None:
    """Conv nets with a fixed total stride (MobileViTV2: 32) need images of at least twice that size, or
    their last 3x3 convolutions see a 1x1 map."""
    stride = node.get("output_stride")
    if is_int(stride) and is_int(node.get("image_size")):
        node["image_size"] = max(node["image_size"], 2 * stride)


def _rule_conv_layer_types(node: dict, ctx: ShrinkContext) -> None:
    """LFM2-MoE: ``layer_types`` defaults to None but the model indexes it; one conv + one attention layer."""
    if "conv_L_cache" in node and node.get("layer_types", 0) is None:
        layers = node_layers(node) or 2
        node["layer_types"] = ["conv"] * (layers - 1) + ["full_attention"]


#: The shrinker's own named rules, in order; the families' rules (:data:`.rules.FAMILY_RULES`) run after them.
GENERIC_RULES: dict[str, Callable[[dict, ShrinkContext], None]] = {
    "mla": _rule_mla,  # before mrope_sections: MLA picks the rope dim the sections must sum to (HY-V4-VL)
    "mrope_sections": _rule_mrope_sections,
    "rope_factor_lists": _rule_rope_factor_lists,
    "token_id_lists": _rule_token_id_lists,
    "layer_period_offsets": _rule_period_offsets,
    "mamba_heads": _rule_mamba_heads,
    "per_layer_overrides": _rule_per_layer_overrides,
    "kv_shared_layers": _rule_kv_shared_layers,
    "cyclic_block_pattern": _rule_cyclic_block_pattern,
    "layer_parts": _rule_layer_parts,
    "rotary_dim": _rule_rotary_dim,
    "axial_positions": _rule_axial_positions,
    "fill_missing": _rule_fill_missing,
    "hybrid_attention_layer": _rule_hybrid_attention_layer,
    "rope_per_layer_type": _rule_rope_per_layer_type,
    "recurrent_stacks": _rule_recurrent_stacks,
    "default_language": _rule_default_language,
    "attn_config_rope": _rule_attn_config_rope,
    "indexer_defaults": _rule_indexer_defaults,
    "index_heads": _rule_index_heads,
    "conv_layer_types": _rule_conv_layer_types,
    "dim_factors": _rule_dim_factors,
    "backbone_stages": _rule_backbone_stages,
    "group_norm_groups": _rule_group_norm_groups,
    "time_series_lengths": _rule_time_series_lengths,
    "shared_hybrid_blocks": _rule_shared_hybrid_blocks,
    "attention_hidden_size": _rule_attention_hidden_size,
    "channel_multipliers": _rule_channel_multipliers,
    "mel_source_positions": _rule_mel_source_positions,
    "depth_per_stage": _rule_depth_per_stage,
    "feature_layer_indices": _rule_feature_layer_indices,
    "window_stages": _rule_window_stages,
    "fixed_stride_stem": _rule_fixed_stride_stem,
    "backbone_channels": _rule_backbone_channels,
    "codec_channels": _rule_codec_channels,
    "width_multipliers": _rule_width_multipliers,
    "global_blocks": _rule_global_blocks,
    "neck_feature_count": _rule_neck_feature_count,
    "layout_box_dims": _rule_layout_box_dims,
    "xpath_embeddings": _rule_xpath_embeddings,
    "pixel_window": _rule_pixel_window,
    "vocabulary_map": _rule_vocabulary_map,
    "six_part_layout": _rule_six_part_layout,
    "output_stride": _rule_output_stride,
}


def _apply_model_type_config(node: dict) -> None:
    for k, v in node.items():
        if is_config_dict(k, v):
            _apply_model_type_config(v)
    values = rules.MODEL_TYPE_CONFIG.get(node.get("model_type", ""))
    if values:
        _apply_overrides(node, values)


# --------------------------------------------------------------------------- node shrinking


def _collect(node: dict, ctx: ShrinkContext) -> None:
    """First pass: old hidden / intermediate sizes anywhere in the tree -> tiny ones."""
    for k, v in node.items():
        if is_config_dict(k, v):
            _collect(v, ctx)
        elif is_int(v) and v > 0:
            kind = key_kind(k)
            if kind == "hidden":
                ctx.value_map.setdefault(v, TINY["hidden"])
            elif kind == "intermediate":
                ctx.value_map.setdefault(v, TINY["intermediate"])


def _stage_count(node: dict) -> int | None:
    for k in STAGE_DEPTH_KEYS | {"depth"}:
        v = node.get(k)
        if isinstance(v, list) and v:
            return len(v)
    return None


def _shrink_stage_lists(node: dict) -> bool:
    """Hierarchical (multi-stage) configs: per-stage lists keep their length, dims shrink by 2^k."""
    dim_lists = {k: v for k, v in node.items() if k in STAGE_DIM_KEYS and isinstance(v, list) and v
                 and all(is_int(x) for x in v)}
    depth_lists = {k: v for k, v in node.items() if k in STAGE_DEPTH_KEYS and isinstance(v, list) and v
                   and all(is_int(x) for x in v)}
    if not dim_lists and not depth_lists:
        return False
    scalar_dims = [k for k, v in node.items() if key_kind(k) == "hidden" and is_int(v)]
    largest = max([max(v) for v in dim_lists.values()] + [node[k] for k in scalar_dims] + [1])
    f = pow2_factor(largest, TINY["stage_max_dim"])
    scalar_heads = first_int(node, PRIMARY_HEADS)
    m = min(scalar_heads, TINY["heads"]) if scalar_heads and not isinstance(node.get("num_heads"), list) else 1
    for k, v in dim_lists.items():  # tiny entries (input channels: 3) are kept
        node[k] = [x if x < 16 else max(8, m, -(-(x // f) // m) * m) for x in v]
    for k in scalar_dims:
        node[k] = max(8, m, -(-(node[k] // f) // m) * m)
    # other channel-like scalars (stem / embedding channels) shrink by the same factor, keeping stage widths
    for k, v in list(node.items()):
        if (k not in scalar_dims and is_int(v) and v >= 16 and f > 1 and v % f == 0 and _DIMISH.search(k)
                and not _DIMISH_DENY.search(k) and k not in _NEVER and key_kind(k) in (None, "conv_dim")):
            node[k] = max(8, v // f)
    for k, v in depth_lists.items():
        node[k] = [min(x, 1) for x in v]
    # per-stage head lists must divide the per-stage dims
    stage_dims = next(iter(dim_lists.values()), None)
    base = next((node[s] for s in scalar_dims), None)
    for k in STAGE_HEAD_KEYS:
        heads = node.get(k)
        if isinstance(heads, list) and heads and all(is_int(x) for x in heads):
            if stage_dims is not None and len(stage_dims) == len(heads):
                dims = stage_dims
            elif base:
                dims = [base] * len(heads)  # stage dims are multiples of the base dim
            else:
                continue
            node[k] = [divisor_at_most(d, h) for h, d in zip(heads, dims)]
    return True


def shrink_per_layer(node: dict, old_layers: int, new_layers: int) -> int:
    """Cut lists with one entry per layer (and per-layer dicts); return the resulting layer count."""
    if old_layers <= new_layers:
        return new_layers
    excluded = STAGE_DEPTH_KEYS | STAGE_DIM_KEYS | STAGE_HEAD_KEYS | LAYER_INDEX_KEYS
    per_layer = {k: v for k, v in node.items() if isinstance(v, list) and len(v) == old_layers and k not in excluded}
    sources = {k: per_layer.pop(k) for k in list(per_layer) if k in LAYER_SOURCE_KEYS and all(is_int(x) for x in per_layer[k])}
    index_lists = {k: v for k, v in node.items() if k in LAYER_INDEX_KEYS and isinstance(v, list)
                   and all(is_int(x) for x in v)}
    index_dicts = {k: v for k, v in node.items() if k == "per_layer_config" and isinstance(v, dict)}
    if not per_layer and not index_lists and not index_dicts and not sources:
        return new_layers
    # a synthetic "type" per layer: its entries in every per-layer list + index-list membership + overrides
    types = [
        tuple(repr(v[i]) for v in per_layer.values())
        + tuple(i in set(lst) for lst in index_lists.values())
        + tuple(repr(_layer_entry(d, i)) for d in index_dicts.values())
        + tuple(v[i] == i for v in sources.values())
        for i in range(old_layers)
    ]
    n_distinct = len(set(types))
    target = max(new_layers, min(n_distinct, TINY["max_per_layer_types"]))
    keep = _representative(types, min(target, old_layers))
    pos = {old: new for new, old in enumerate(keep)}
    for k, v in per_layer.items():
        node[k] = [v[i] for i in keep]
    for k, v in index_lists.items():
        node[k] = [pos[i] for i in v if i in pos]
    for k, v in sources.items():
        node[k] = [pos.get(v[i], pos[i]) for i in keep]
    for k, d in index_dicts.items():
        width = max((len(str(x)) for x in d), default=1)
        node[k] = {str(pos[i]).zfill(width) if isinstance(next(iter(d)), str) else pos[i]: _layer_entry(d, i)
                   for i in keep if _layer_entry(d, i) is not None}
    return len(keep)


def _layer_entry(d: dict, i: int) -> Any:
    for key in d:
        try:
            if int(key) == i:
                return d[key]
        except (TypeError, ValueError):
            continue
    return None


def _shrink_value(kind: str, value: Any, ctx: ShrinkContext, top_text: bool) -> Any:
    if not is_int(value):
        if kind == "image_size" and isinstance(value, list) and all(is_int(x) for x in value):
            return [TINY["image_size"]] * len(value)
        if kind == "patch_size" and isinstance(value, list) and all(is_int(x) for x in value):
            return [min(x, TINY["patch_size"]) for x in value]
        return value
    simple = {
        "hidden": "hidden", "layers": "layers", "heads": "heads", "intermediate": "intermediate",
        "moe_intermediate": "moe_intermediate", "positions": "positions", "image_size": "image_size",
        "patch_size": "patch_size", "experts": "experts", "shared_experts": "shared_experts",
        "mel_bins": "mel_bins", "lora_rank": "lora_rank", "conv_dim": "conv_dim",
    }
    if kind in simple:
        return min(value, TINY[simple[kind]])
    if kind == "vocab":
        return min(value, ctx.vocab_size if ctx.vocab_size is not None else TINY["vocab"])
    fixed = {"vocoder_channels": 32, "attn_window": 4, "small_labels": 16, "hash_buckets": 256, "queries": 8, "window": 4, "base_channels": 32, "res_blocks": 1, "latents": 64, "groups_one": 1, "first_dense": 1, "small_conv": 16, "conv_groups": 4, "ssm_state": 16,
             "dt_rank": 8, "free_head_dim": TINY["head_dim"]}
    if kind in fixed:
        return min(value, fixed[kind])
    return value


#: kinds handled after the simple pass (they depend on the shrunk hidden size / head count).
_DEFERRED = frozenset({"kv_heads", "head_dim", "experts_per_tok", "rotary_dim", "kv_shared_layers"})


#: sub-config keys holding the text model (their ``vocab_size`` is the tokenizer's).
TEXT_SUBCONFIG_KEYS = frozenset({"text_config", "decoder", "language_config", "llm_config", "text_model_config",
                                 "thinker_config", "talker_config", "lm_config", "generator", "text_encoder"})


def _shrink_node(node: dict, ctx: ShrinkContext, *, top: bool, key: str = "") -> None:
    """Shrink one config dict in place (sub-configs first)."""
    for k, v in list(node.items()):
        if is_config_dict(k, v):
            _shrink_node(v, ctx, top=False, key=k)

    old = dict(node)
    ctx.old[id(node)] = old
    done: set[str] = set()
    if _shrink_stage_lists(node):
        done |= {k for k in node if k in STAGE_DIM_KEYS | STAGE_DEPTH_KEYS | STAGE_HEAD_KEYS}
        done |= {k for k, v in old.items() if key_kind(k) == "hidden" and is_int(v)}
    text_node = top or key in TEXT_SUBCONFIG_KEYS or _texty(node)
    stages = _stage_count(old)
    if stages is not None:  # in multi-stage configs a layer count equal to the stage count is the stage count
        done |= {k for k, v in old.items() if key_kind(k) == "layers" and v == stages}

    # simple kinds
    for k, v in list(node.items()):
        if k in done or k in _NEVER and k != "vocab_size":
            continue
        kind = key_kind(k)
        if kind is None or kind in _DEFERRED:
            continue
        if kind == "vocab" and k == "vocab_size":
            if is_int(v):
                node[k] = ctx.vocab_size if (text_node and ctx.vocab_size is not None) else min(v, TINY["vocab"])
            continue
        if isinstance(v, list) and kind not in ("image_size", "patch_size"):
            if v and all(is_int(x) for x in v):
                node[k] = [_shrink_value(kind, x, ctx, False) for x in v]
            continue
        node[k] = _shrink_value(kind, v, ctx, False)
        done.add(k)
    vocab_now = node.get("vocab_size")
    if is_int(vocab_now):
        for k, v in list(node.items()):
            if k != "vocab_size" and key_kind(k) == "vocab" and is_int(v) and v > vocab_now and "unpadded" in k:
                node[k] = vocab_now

    # heads / kv heads / head dims, coherent with the hidden size
    hidden = first_int(node, PRIMARY_HIDDEN)
    for k in PRIMARY_HEADS:
        if is_int(node.get(k)) and node[k] > 0 and hidden and k not in done - {k}:
            node[k] = divisor_at_most(hidden, node[k])
    heads = first_int(node, PRIMARY_HEADS)
    old_heads = first_int(old, PRIMARY_HEADS)
    for k, v in list(node.items()):
        if key_kind(k) == "kv_heads" and is_int(v) and heads:
            if v == 1 and (old_heads or 0) > 1:  # multi-query attention stays multi-query
                node[k] = 1
            else:
                node[k] = divisor_at_most(heads, max(1, min(v, TINY["kv_heads"])))
    for k, v in list(node.items()):
        if key_kind(k) == "head_dim" and is_int(v):
            if hidden and heads and k in ("head_dim", "d_kv", "attention_head_dim", "kv_channels", "head_size",
                                           "attention_head_size", "d_head"):
                # hidden // heads; a narrower hidden size (a ``size`` table) keeps the tiny head dim, as narrow
                # real repos keep their class's explicit head dim
                node[k] = max(2, hidden // heads, min(v, TINY["head_dim"]))
            else:
                node[k] = min(v, TINY["head_dim"])
    experts = next((node[k] for k in node if key_kind(k) == "experts" and is_int(node[k])), None)
    for k, v in list(node.items()):
        if key_kind(k) == "experts_per_tok" and is_int(v):
            node[k] = min(v, TINY["experts_per_tok"], experts or v)

    # per-layer lists, then layer count keys follow the cut lists
    for k, v in list(old.items()):
        if key_kind(k) == "layers" and is_int(v) and is_int(node.get(k)):
            node[k] = shrink_per_layer(node, v, node[k])

    # value-correlated dims (mm_hidden_size, projection_dim...)
    for k, v in list(node.items()):
        if k in done or k in _NEVER or key_kind(k) is not None or not is_int(v) or v <= TINY["hidden"]:
            continue
        if not _DIMISH.search(k) or _DIMISH_DENY.search(k):
            continue
        if v in ctx.value_map:
            node[k] = ctx.value_map[v]
        elif any(v == m * old_v for old_v in ctx.value_map for m in (2, 3, 4, 8)):
            old_v, m = next((o, m) for o in ctx.value_map for m in (2, 3, 4, 8) if v == m * o)
            node[k] = ctx.value_map[old_v] * m
        elif v % 2 == 0 and v >= 128:
            node[k] = max(TINY["hidden"], v // pow2_factor(v, TINY["hidden"]))

    # token ids
    vocab = node.get("vocab_size") if is_int(node.get("vocab_size")) else tree_vocab(node, ctx)
    for k in list(node):
        if k in ctx.special:
            node[k] = ctx.special[k]
    if is_int(vocab):
        _fit_token_ids(node, vocab, ctx)

    for rule in (*GENERIC_RULES.values(), *rules.FAMILY_RULES.values()):
        rule(node, ctx)


def _texty(node: dict) -> bool:
    return any(key_kind(k) == "layers" for k in node) and "num_channels" not in node


def tree_vocab(node: dict, ctx: ShrinkContext) -> int | None:
    """The text vocabulary size of a (multimodal) config tree."""
    for k in ("text_config", "decoder", "language_config", "llm_config", "text_model_config"):
        sub = node.get(k)
        if isinstance(sub, dict) and is_int(sub.get("vocab_size")):
            return sub["vocab_size"]
    return ctx.vocab_size


def _fit_token_ids(node: dict, vocab: int, ctx: ShrinkContext) -> None:
    """Special token ids outside the tiny vocabulary are moved to the top of it (distinct ids)."""
    used: dict[int, int] = {}
    nxt = vocab - 1
    for k in sorted(node):
        v = node[k]
        if not (k.endswith("_token_id") or k.endswith("_token_index") or k.endswith("_id") and "token" in k):
            continue
        if k in ctx.special:
            continue
        if is_int(v) and v >= vocab:
            if v not in used:
                used[v] = nxt
                nxt -= 1
            node[k] = used[v]
        elif isinstance(v, list) and all(is_int(x) for x in v):
            new = []
            for x in v:
                if x >= vocab:
                    if x not in used:
                        used[x] = nxt
                        nxt -= 1
                    x = used[x]
                new.append(x)
            node[k] = new


#: what a modeling file falls back on when its config has no ``head_dim`` (hub configs write it out).
HEAD_DIM_FALLBACK = re.compile(r"""getattr\(\s*(?:self\.)?config\s*,\s*["']head_dim["']""")


@lru_cache(maxsize=None)
def _reads_head_dim_fallback(model_type: str) -> bool:
    """Whether the modeling code of ``model_type`` reads ``getattr(config, "head_dim", hidden // heads)``
    (its source files are read, nothing is imported)."""
    import importlib.util
    from pathlib import Path

    try:
        from transformers.models.auto.configuration_auto import model_type_to_module_name

        spec = importlib.util.find_spec(f"transformers.models.{model_type_to_module_name(model_type)}")
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.origin:
        return False
    files = sorted(Path(spec.origin).parent.glob("modeling_*.py"))
    return any(HEAD_DIM_FALLBACK.search(f.read_text(encoding="utf-8")) for f in files)


def _write_head_dims(node: dict) -> None:
    """Explicit ``head_dim = hidden_size // num_attention_heads`` on every (sub-)config without one whose
    modeling code falls back on that quotient, as hub configs write it (``Qwen3MoeConfig`` declares no
    ``head_dim``, yet code written against the hub's configs reads ``config.head_dim``)."""
    for k, v in node.items():
        if isinstance(v, dict) and is_config_dict(k, v):
            _write_head_dims(v)
    hidden, heads = node.get("hidden_size"), node.get("num_attention_heads")
    if ("head_dim" in node or not is_int(hidden) or not is_int(heads) or heads <= 0 or hidden % heads
            or not isinstance(node.get("model_type"), str)):
        return
    if any(key_kind(k) in ("head_dim", "free_head_dim") and v is not None for k, v in node.items()):
        return  # the node names its head width otherwise (d_kv, kv_channels, ...)
    if _reads_head_dim_fallback(node["model_type"]) and not _derives_head_dim(node["model_type"]):
        node["head_dim"] = hidden // heads


@lru_cache(maxsize=None)
def _derives_head_dim(model_type: str) -> bool:
    """Whether ``model_type``'s config class computes ``head_dim`` itself (a read-only property: Falcon)."""
    try:
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING

        cls = CONFIG_MAPPING[model_type]
    except (ImportError, KeyError):
        return False
    return isinstance(getattr(cls, "head_dim", None), property)


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
    rules.load_families()
    node = copy.deepcopy(dict(config_dict))
    ctx = ShrinkContext(value_map={}, vocab_size=vocab_size, special=dict(special_token_ids or {}))
    _collect(node, ctx)
    _shrink_node(node, ctx, top=True)
    _apply_model_type_config(node)
    if overrides:
        _apply_overrides(node, overrides)
    _write_head_dims(node)
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
    _declare_implicit_mrope(config, d)
    small = shrink_dict(d, vocab_size=vocab_size, special_token_ids=special_token_ids, overrides=overrides)
    for k in ("transformers_version",):
        small.pop(k, None)
    try:
        try:
            new = type(config).from_dict(small)
        except Exception as first:
            if "key_value" not in str(first) and "grouped-query" not in str(first):
                raise
            new = type(config).from_dict(_without_gqa(small))  # family that rejects GQA: kv heads = heads
    except Exception as exc:  # the library's own validation
        raise ShrinkError(
            f"{type(config).__name__}: the tiny config is rejected by transformers: {_one_line(exc)}"
            + (" (check the `overrides`)" if overrides else "")
        ) from exc
    if special_token_ids:
        set_special_ids(new, special_token_ids)
    problems = check_config(new)
    if problems:
        raise ShrinkError(
            f"{type(config).__name__}: inconsistent tiny config: {'; '.join(problems)}"
            + (" — fix the `overrides`" if overrides else "")
        )
    return new


def _without_gqa(node: dict) -> dict:
    out = {}
    for k, v in node.items():
        if isinstance(v, dict) and is_config_dict(k, v):
            v = _without_gqa(v)
        out[k] = v
    heads = first_int(out, PRIMARY_HEADS)
    if heads:
        for k, v in out.items():
            if key_kind(k) == "kv_heads" and is_int(v) and v != 1:
                out[k] = heads
    return out


def _declare_implicit_mrope(config: Any, d: dict) -> None:
    """Configs that accept ``mrope_section`` but leave it to the modeling code's default (qwen2-vl: 16/24/24
    for head_dim 128) get it written out, so the ``mrope_sections`` rule can scale it to the tiny head dim."""
    rope = d.get("rope_parameters")
    if "mrope_section" in getattr(type(config), "ignore_keys_at_rope_validation", ()) and isinstance(rope, dict):
        flat = rope and not any(isinstance(v, dict) for v in rope.values())
        if "mrope_section" not in rope and flat and ("rope_type" in rope or "rope_theta" in rope):
            rope["mrope_section"] = [16, 24, 24]
    for k, sub in _sub_configs(config):
        if isinstance(d.get(k), dict):
            _declare_implicit_mrope(sub, d[k])


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


#: ids :func:`set_special_ids` sets on the (text) config itself only, never on other sub-configs.
_STANDARD_IDS = frozenset({"pad_token_id", "bos_token_id", "eos_token_id", "unk_token_id", "sep_token_id",
                           "cls_token_id", "mask_token_id", "decoder_start_token_id"})


def set_special_ids(config: Any, ids: Mapping[str, int | None]) -> None:
    """Set token ids on a built config: every key the config (or its text config) has, and the non-standard
    ones (``image_token_id``...) on every nested sub-config that declares them (an omni model's thinker)."""
    _set_special(config, ids)
    extra = {k: v for k, v in ids.items() if k not in _STANDARD_IDS and v is not None}
    stack = [sub for _, sub in _sub_configs(config)]
    while stack and extra:
        sub = stack.pop()
        stack.extend(s for _, s in _sub_configs(sub))
        for k, v in extra.items():
            if k in vars(sub):
                try:
                    setattr(sub, k, v)
                except Exception:  # noqa: BLE001 - a read-only / validated attribute keeps its value
                    pass


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
    hidden = next((d[k] for k in ("hidden_size", "d_model", "n_embd") if is_int(d.get(k))), None)
    heads = next((d[k] for k in ("num_attention_heads", "n_head", "num_heads") if is_int(d.get(k))), None)
    kv = next((d[k] for k in ("num_key_value_heads", "n_kv_heads", "num_kv_heads") if is_int(d.get(k))), None)
    explicit_head_dim = is_int(d.get("head_dim")) or is_int(d.get("d_kv"))
    if hidden and heads and hidden % heads and not explicit_head_dim:
        problems.append(f"{path}hidden size {hidden} is not divisible by {heads} heads")
    if heads and kv and heads % kv:
        problems.append(f"{path}{heads} attention heads are not divisible by {kv} key/value heads")
    hd = d.get("head_dim")
    rope = d.get("rope_parameters") or {}
    prf = (rope.get("partial_rotary_factor") if isinstance(rope, dict) else None) or d.get("partial_rotary_factor")
    if is_int(hd) and isinstance(prf, (int, float)) and int(hd * prf) % 2:
        problems.append(f"{path}rotary dimension {hd}*{prf} is odd")
    layers = next((d[k] for k in ("num_hidden_layers", "num_layers", "n_layer") if is_int(d.get(k))), None)
    for key in ("layer_types", "mlp_layer_types"):
        lt = d.get(key)
        if isinstance(lt, list) and layers is not None and len(lt) != layers:
            problems.append(f"{path}{key} has {len(lt)} entries for {layers} layers")
    for k, sub in _sub_configs(config):
        problems.extend(check_config(sub, f"{path}{k}."))
    return problems


def config_for_class(config: PretrainedConfig, model_class: type) -> PretrainedConfig:
    """The config ``model_class`` expects: ``config`` itself, or its sub-config of the class's
    ``config_class`` (e.g. ``Emu3ForCausalLM`` takes the text config of an ``Emu3Config``)."""
    expected = getattr(model_class, "config_class", None)
    if expected is None or isinstance(config, expected):
        return config
    for _, sub in _sub_configs(config):
        if isinstance(sub, expected):
            return sub
    copied = HEAD_CONFIGS.get(expected.__name__)
    if copied is not None:  # a head config that reads this config as its text_config
        text = config.get_text_config()
        return expected(text_config=config.to_dict(), **{k: getattr(text, k) for k in copied})
    return config


#: head configs that wrap the config of the checkpoint they ship next to as their ``text_config`` (decision
#: heads: ``JevForDecision`` is registered for qwen2, gemma4, qwen3_5...) -> attributes taken from its text config.
HEAD_CONFIGS: dict[str, tuple[str, ...]] = {"JevConfig": ("hidden_size",)}


#: model types whose library-default config fails the library's own validation, with the fewest
#: arguments that make it valid (used only when the plain default is rejected).
BASE_CONFIG_FIXES: dict[str, dict[str, Any]] = {
    # a draft model: its text config must not carry the per-layer inputs / MoE of the full Gemma 4
    "gemma4_assistant": {"text_config": {"model_type": "gemma4_text", "hidden_size_per_layer_input": 0,
                                         "vocab_size_per_layer_input": 0, "enable_moe_block": False,
                                         "use_double_wide_mlp": False}},
}


def base_config(model_type: str) -> PretrainedConfig:
    """The library's default config of ``model_type`` (``AutoConfig.for_model``); for the few model types
    whose default is invalid, the default with :data:`BASE_CONFIG_FIXES` applied."""
    from transformers import AutoConfig

    try:
        try:
            return AutoConfig.for_model(model_type)
        except Exception:
            if model_type not in BASE_CONFIG_FIXES:
                raise
            return AutoConfig.for_model(model_type, **copy.deepcopy(BASE_CONFIG_FIXES[model_type]))
    except ValueError as exc:
        from .architectures import ArchitectureError, all_model_types, did_you_mean

        raise ArchitectureError(
            "model_type",
            f"no config class for model type {model_type!r}.{did_you_mean(model_type, all_model_types())}",
        ) from exc

