"""Chat templates in each family's own conversation format, installed on a trained tiny tokenizer.

One Jinja template per conversation *format* lives in ``chat_templates/<name>.jinja`` (written for this
project from the families' documented formats).  Every template supports system messages,
``add_generation_prompt``, tools (a ``tools`` list, assistant ``tool_calls``, ``tool`` messages), content given as
a string or as a list of parts (``text`` / ``image`` / ``video`` / ``audio``, rendered as the format's
placeholder tokens) and wraps what the model generates in ``{% generation %}`` so that
``apply_chat_template(..., return_assistant_tokens_mask=True, return_dict=True)`` masks exactly the
assistant spans.  Formats with reasoning read ``enable_thinking`` (their default is written into the
installed template) and the messages' ``reasoning_content``.

Everything a family needs is data: :data:`FORMATS` (the :class:`ChatFormat` records),
:data:`FAMILY_FORMATS` (model type -> format), :data:`VARIANTS` (fixture-id suffix rules such as ``-2`` for
Llama 2 or ``-NoThink``) and :data:`NOT_CHAT_MODEL_TYPES`.  Pure python at import time; transformers is
imported only by the functions that need it.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "CHAT_TASKS",
    "FAMILY_FORMATS",
    "FORMATS",
    "NOT_CHAT_MODEL_TYPES",
    "TEMPLATE_DIR",
    "VARIANTS",
    "ChatFormat",
    "ChatTemplateError",
    "Variant",
    "chat_format_for",
    "format_template",
    "format_tokens",
    "get_format",
    "install_chat_template",
    "is_chat_model_type",
    "load_template",
    "stop_token_ids",
    "template_literal_text",
    "tokenizer_options",
    "variant_format",
]

#: Folder of the shipped ``<format>.jinja`` templates.
TEMPLATE_DIR = Path(__file__).parent / "chat_templates"

#: Default format of chat-capable model types that :data:`FAMILY_FORMATS` does not name.
DEFAULT_FORMAT = "chatml"

#: Tasks (the project's task names) whose models get a chat template.
CHAT_TASKS = frozenset({"causal-lm", "text-generation", "image-text-to-text", "multimodal-lm"})


class ChatTemplateError(ValueError):
    """A chat format or template is unknown, or cannot be installed on the given tokenizer."""


class ChatFormat(NamedTuple):
    """One conversation format: its template file and the tokens the template relies on.

    ``special_tokens`` become special tokens (one id each, never split, dropped by
    ``skip_special_tokens``); ``text_tokens`` become non-special added tokens (one id each, never split,
    kept when decoding with ``skip_special_tokens``, as the families do for ``<think>`` or ``<tool_call>``).
    ``bos`` / ``eos`` / ``pad`` are the tokenizer's tokens as the family sets them (``None``: the family
    has none, the tokenizer keeps its own).  ``stop`` are the tokens that end an assistant turn
    (``generation_config.eos_token_id``), the first one being the token the template ends a generated turn
    with.  ``media`` maps tokenizer attributes (``image_token``, ``boi_token``, ...) to the family's
    multimodal placeholder tokens (they become special tokens and named attributes of the tokenizer).
    """

    name: str
    template: str
    special_tokens: tuple[str, ...]
    text_tokens: tuple[str, ...] = ()
    bos: str | None = None
    eos: str | None = None
    pad: str | None = None
    stop: tuple[str, ...] = ()
    media: tuple[tuple[str, str], ...] = ()
    supports_thinking: bool = False
    thinking_default: bool = False
    description: str = ""


_QWEN_VISION = (
    ("vision_start_token", "<|vision_start|>"),
    ("vision_end_token", "<|vision_end|>"),
    ("image_token", "<|image_pad|>"),
    ("video_token", "<|video_pad|>"),
)
_HERMES_TOOLS = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>")

#: Every shipped format, by name.
FORMATS: dict[str, ChatFormat] = {
    fmt.name: fmt
    for fmt in (
        ChatFormat(
            name="chatml",
            template="chatml.jinja",
            special_tokens=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
            text_tokens=_HERMES_TOOLS,
            eos="<|im_end|>",
            pad="<|endoftext|>",
            stop=("<|im_end|>", "<|endoftext|>"),
            media=_QWEN_VISION
            + (("audio_bos_token", "<|audio_bos|>"), ("audio_token", "<|AUDIO|>"), ("audio_eos_token", "<|audio_eos|>")),
            description="ChatML (Qwen2/2.5, Qwen2-VL, Qwen2-Audio; default), Hermes tools",
        ),
        ChatFormat(
            name="qwen3",
            template="qwen3.jinja",
            special_tokens=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
            text_tokens=_HERMES_TOOLS + ("<think>", "</think>"),
            eos="<|im_end|>",
            pad="<|endoftext|>",
            stop=("<|im_end|>", "<|endoftext|>"),
            media=_QWEN_VISION
            + (("audio_start_token", "<|audio_start|>"), ("audio_token", "<|audio_pad|>"), ("audio_end_token", "<|audio_end|>")),
            supports_thinking=True,
            thinking_default=True,
            description="ChatML with <think> reasoning (Qwen3, Qwen3-VL/Omni, QwQ, OLMo 3)",
        ),
        ChatFormat(
            name="smollm3",
            template="smollm3.jinja",
            special_tokens=("<|im_start|>", "<|im_end|>", "<|finetune_right_pad_id|>"),
            text_tokens=_HERMES_TOOLS + ("<think>", "</think>"),
            eos="<|im_end|>",
            pad="<|finetune_right_pad_id|>",
            stop=("<|im_end|>",),
            media=(("image_token", "<image>"), ("video_token", "<video>")),
            supports_thinking=True,
            thinking_default=True,
            description="SmolLM3: ChatML with a metadata system turn and /think, /no_think",
        ),
        ChatFormat(
            name="llama2",
            template="llama2.jinja",
            special_tokens=("<s>", "</s>", "<unk>"),
            bos="<s>",
            eos="</s>",
            stop=("</s>",),
            media=(("image_token", "<image>"),),
            description="Llama 2 chat [INST] <<SYS>> format",
        ),
        ChatFormat(
            name="llama3",
            template="llama3.jinja",
            special_tokens=(
                "<|begin_of_text|>",
                "<|end_of_text|>",
                "<|start_header_id|>",
                "<|end_header_id|>",
                "<|eot_id|>",
                "<|eom_id|>",
                "<|python_tag|>",
                "<|finetune_right_pad_id|>",
            ),
            bos="<|begin_of_text|>",
            eos="<|eot_id|>",
            pad="<|finetune_right_pad_id|>",
            stop=("<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"),
            media=(("image_token", "<|image|>"),),
            description="Llama 3.x header format (Llama 3.1/3.2/3.3, Llama 3.2 Vision)",
        ),
        ChatFormat(
            name="llama4",
            template="llama4.jinja",
            special_tokens=(
                "<|begin_of_text|>",
                "<|end_of_text|>",
                "<|header_start|>",
                "<|header_end|>",
                "<|eot|>",
                "<|eom|>",
                "<|python_start|>",
                "<|python_end|>",
                "<|finetune_right_pad|>",
            ),
            bos="<|begin_of_text|>",
            eos="<|eot|>",
            pad="<|finetune_right_pad|>",
            stop=("<|eot|>", "<|eom|>", "<|end_of_text|>"),
            media=(
                ("image_token", "<|image|>"),
                ("start_of_image_token", "<|image_start|>"),
                ("end_of_image_token", "<|image_end|>"),
                ("patch_token", "<|patch|>"),
                ("tile_x_separator_token", "<|tile_x_separator|>"),
                ("tile_y_separator_token", "<|tile_y_separator|>"),
            ),
            description="Llama 4 header format",
        ),
        ChatFormat(
            name="mistral",
            template="mistral.jinja",
            special_tokens=(
                "<s>",
                "</s>",
                "<unk>",
                "<pad>",
                "[INST]",
                "[/INST]",
                "[SYSTEM_PROMPT]",
                "[/SYSTEM_PROMPT]",
                "[AVAILABLE_TOOLS]",
                "[/AVAILABLE_TOOLS]",
                "[TOOL_CALLS]",
                "[ARGS]",
                "[TOOL_RESULTS]",
                "[/TOOL_RESULTS]",
                "[THINK]",
                "[/THINK]",
            ),
            bos="<s>",
            eos="</s>",
            pad="<pad>",
            stop=("</s>",),
            media=(
                ("image_token", "[IMG]"),
                ("image_break_token", "[IMG_BREAK]"),
                ("image_end_token", "[IMG_END]"),
                ("audio_token", "[AUDIO]"),
                ("begin_audio_token", "[BEGIN_AUDIO]"),
            ),
            supports_thinking=True,
            thinking_default=False,
            description="Mistral [INST] format with control tokens (Mistral/Mixtral/Ministral, Pixtral, Voxtral, Magistral [THINK])",
        ),
        ChatFormat(
            name="gemma",
            template="gemma.jinja",
            special_tokens=("<bos>", "<eos>", "<pad>", "<start_of_turn>", "<end_of_turn>"),
            bos="<bos>",
            eos="<eos>",
            pad="<pad>",
            stop=("<end_of_turn>", "<eos>"),
            media=(
                ("boi_token", "<start_of_image>"),
                ("image_token", "<image_soft_token>"),
                ("eoi_token", "<end_of_image>"),
                ("boa_token", "<start_of_audio>"),
                ("audio_token", "<audio_soft_token>"),
                ("eoa_token", "<end_of_audio>"),
            ),
            description="Gemma <start_of_turn> user/model turns (Gemma 1-3, Gemma 3n)",
        ),
        ChatFormat(
            name="phi3",
            template="phi3.jinja",
            special_tokens=(
                "<|endoftext|>",
                "<|system|>",
                "<|user|>",
                "<|assistant|>",
                "<|end|>",
                "<|tool|>",
                "<|/tool|>",
                "<|tool_call|>",
                "<|/tool_call|>",
                "<|tool_response|>",
            ),
            eos="<|endoftext|>",
            pad="<|endoftext|>",
            stop=("<|end|>", "<|endoftext|>"),
            media=(("image_token", "<|image|>"), ("audio_token", "<|audio|>")),
            description="Phi-3 / Phi-4 <|user|> ... <|end|> turns",
        ),
        ChatFormat(
            name="gpt_oss",
            template="gpt_oss.jinja",
            special_tokens=(
                "<|startoftext|>",
                "<|endoftext|>",
                "<|start|>",
                "<|end|>",
                "<|message|>",
                "<|channel|>",
                "<|constrain|>",
                "<|return|>",
                "<|call|>",
            ),
            bos="<|startoftext|>",
            eos="<|return|>",
            pad="<|endoftext|>",
            stop=("<|return|>", "<|call|>", "<|endoftext|>"),
            supports_thinking=True,
            thinking_default=True,
            description="gpt-oss harmony format (channels analysis/commentary/final)",
        ),
        ChatFormat(
            name="deepseek",
            template="deepseek.jinja",
            special_tokens=(
                "<｜begin▁of▁sentence｜>",
                "<｜end▁of▁sentence｜>",
                "<｜▁pad▁｜>",
                "<｜User｜>",
                "<｜Assistant｜>",
                "<｜tool▁calls▁begin｜>",
                "<｜tool▁calls▁end｜>",
                "<｜tool▁call▁begin｜>",
                "<｜tool▁call▁end｜>",
                "<｜tool▁sep｜>",
                "<｜tool▁output▁begin｜>",
                "<｜tool▁output▁end｜>",
            ),
            text_tokens=("<think>", "</think>"),
            bos="<｜begin▁of▁sentence｜>",
            eos="<｜end▁of▁sentence｜>",
            pad="<｜▁pad▁｜>",
            stop=("<｜end▁of▁sentence｜>",),
            media=(("image_token", "<image>"),),
            supports_thinking=True,
            thinking_default=False,
            description="DeepSeek V2/V3/V3.1/R1 <｜User｜><｜Assistant｜> format",
        ),
        ChatFormat(
            name="cohere",
            template="cohere.jinja",
            special_tokens=(
                "<BOS_TOKEN>",
                "<EOS_TOKEN>",
                "<PAD>",
                "<|START_OF_TURN_TOKEN|>",
                "<|END_OF_TURN_TOKEN|>",
                "<|SYSTEM_TOKEN|>",
                "<|USER_TOKEN|>",
                "<|CHATBOT_TOKEN|>",
                "<|START_RESPONSE|>",
                "<|END_RESPONSE|>",
                "<|START_ACTION|>",
                "<|END_ACTION|>",
                "<|START_TOOL_RESULT|>",
                "<|END_TOOL_RESULT|>",
                "<|START_THINKING|>",
                "<|END_THINKING|>",
            ),
            bos="<BOS_TOKEN>",
            eos="<|END_OF_TURN_TOKEN|>",
            pad="<PAD>",
            stop=("<|END_OF_TURN_TOKEN|>", "<EOS_TOKEN>"),
            media=(
                ("image_token", "<image>"),
                ("start_of_img_token", "<|START_OF_IMG|>"),
                ("end_of_img_token", "<|END_OF_IMG|>"),
                ("img_patch_token", "<|IMG_PATCH|>"),
                ("img_line_break_token", "<|IMG_LINE_BREAK|>"),
            ),
            supports_thinking=True,
            thinking_default=False,
            description="Cohere Command-R / Command-A turns (Aya Vision)",
        ),
        ChatFormat(
            name="granite",
            template="granite.jinja",
            special_tokens=("<|end_of_text|>", "<|start_of_role|>", "<|end_of_role|>", "<|tool_call|>"),
            bos="<|end_of_text|>",
            eos="<|end_of_text|>",
            pad="<|end_of_text|>",
            stop=("<|end_of_text|>",),
            media=(("image_token", "<image>"), ("audio_token", "<|audio|>")),
            description="IBM Granite <|start_of_role|> turns (Granite 3.x/4.x, Granite Vision/Speech)",
        ),
        ChatFormat(
            name="tulu",
            template="tulu.jinja",
            special_tokens=("<|endoftext|>", "<|pad|>"),
            text_tokens=("<|system|>", "<|user|>", "<|assistant|>"),
            bos="<|endoftext|>",
            eos="<|endoftext|>",
            pad="<|pad|>",
            stop=("<|endoftext|>",),
            media=(("image_token", "<image>"),),
            description="Tulu <|user|>/<|assistant|> format (OLMo 2, OLMoE instruct)",
        ),
    )
}

#: Model type -> format name (data).  Chat-capable model types not named here use ``DEFAULT_FORMAT``.
FAMILY_FORMATS: dict[str, str] = {
    # ChatML / Qwen2 family
    **dict.fromkeys(
        (
            "qwen2",
            "qwen2_moe",
            "qwen2_vl",
            "qwen2_5_vl",
            "qwen2_audio",
            "qwen2_5_omni",
            "qwen2_5_omni_thinker",
            "internlm3",
            "internvl",
            "falcon_h1",
            "llava_onevision",
        ),
        "chatml",
    ),
    # Qwen3 and other ChatML + <think> families
    **dict.fromkeys(
        (
            "qwen3",
            "qwen3_moe",
            "qwen3_next",
            "qwen3_vl",
            "qwen3_vl_moe",
            "qwen3_5",
            "qwen3_5_text",
            "qwen3_5_moe",
            "qwen3_5_moe_text",
            "qwen3_omni_moe",
            "qwen3_omni_moe_thinker",
            "olmo3",
        ),
        "qwen3",
    ),
    "smollm3": "smollm3",
    # Meta Llama
    "llama": "llama3",
    "mllama": "llama3",
    "llama4": "llama4",
    "llama4_text": "llama4",
    # Mistral AI
    **dict.fromkeys(
        ("mistral", "mixtral", "ministral", "ministral3", "mistral3", "mistral4", "mistral_large4", "voxtral"),
        "mistral",
    ),
    # Google Gemma
    **dict.fromkeys(
        ("gemma", "gemma2", "gemma3", "gemma3_text", "gemma3n", "gemma3n_text", "recurrent_gemma", "vaultgemma",
         "shieldgemma2"),
        "gemma",
    ),
    # Microsoft Phi-3 / Phi-4
    **dict.fromkeys(("phi3", "phimoe", "phi4_multimodal"), "phi3"),
    "gpt_oss": "gpt_oss",
    **dict.fromkeys(("deepseek_v2", "deepseek_v3", "deepseek_v32"), "deepseek"),
    **dict.fromkeys(("cohere", "cohere2", "aya_vision", "cohere2_vision"), "cohere"),
    **dict.fromkeys(
        ("granite", "granitemoe", "granitemoeshared", "granitemoehybrid", "granite_speech"),
        "granite",
    ),
    **dict.fromkeys(("olmo", "olmo2", "olmoe"), "tulu"),
}

#: Model types of the causal-LM / image-text-to-text mappings that are not chat models (encoder-decoders,
#: decoders of encoder-decoder pairs, music / speech generators).  Encoders with an LM head and seq2seq
#: models are recognised from the library's mappings (see :func:`is_chat_model_type`).
NOT_CHAT_MODEL_TYPES = frozenset(
    {
        "bert-generation",
        "trocr",
        "musicgen",
        "musicgen_melody",
        "moshi",
        "vision-encoder-decoder",
        "pix2struct",
        "florence2",
        "udop",
        "t5gemma2",
        "blip",
        "kosmos-2",  # grounding / OCR models with fairseq position tables indexed by the pad id
        "kosmos-2.5",
        "blip-2",  # captioning / instruction models whose processors write their own query placeholders
        "instructblip",
        "instructblipvideo",
        "git",
        "fuyu",
    }
)


class Variant(NamedTuple):
    """A fixture-id suffix rule: a dash-separated part of the suffix matching ``part`` (a case-insensitive
    glob), for ``model_types`` (empty: any), selects ``format`` (``None``: keep) and sets ``thinking``
    (``None``: keep)."""

    part: str
    model_types: frozenset[str] = frozenset()
    format: str | None = None
    thinking: bool | None = None


#: Suffix rules, applied in order (a later matching rule overrides an earlier one).
VARIANTS: tuple[Variant, ...] = (
    Variant("2", frozenset({"llama"}), "llama2"),
    Variant("3", frozenset({"llama"}), "llama3"),
    Variant("3.*", frozenset({"llama"}), "llama3"),
    Variant("v0.[12]", frozenset({"mistral"}), "llama2"),
    Variant("smollm*", frozenset({"llama"}), "chatml"),
    Variant("tulu*", frozenset({"llama"}), "tulu"),
    Variant("qwq", frozenset({"qwen2"}), "qwen3", True),
    Variant("r1*", frozenset({"deepseek_v3", "llama", "qwen2"}), "deepseek", True),
    Variant("magistral", frozenset({"mistral", "mistral3"}), None, True),
    # Qwen3 "-Instruct" releases (2507, Qwen3-VL, Qwen3-Next) do not reason; "-Thinking" ones do
    Variant("instruct", frozenset({"qwen3", "qwen3_moe", "qwen3_next", "qwen3_vl", "qwen3_vl_moe"}), None, False),
    Variant("think", thinking=True),
    Variant("thinking", thinking=True),
    Variant("reasoning", thinking=True),
    Variant("nothink", thinking=False),
    Variant("no_think", thinking=False),
    Variant("non?thinking", thinking=False),
)


def get_format(name: str | ChatFormat) -> ChatFormat:
    """The :class:`ChatFormat` called ``name`` (a record is returned as is)."""
    if isinstance(name, ChatFormat):
        return name
    try:
        return FORMATS[name]
    except KeyError:
        raise ChatTemplateError(_unknown_format_message(name)) from None


def _unknown_format_message(name: str) -> str:
    close = difflib.get_close_matches(name, list(FORMATS), n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"unknown chat format {name!r}: {hint}valid formats are {', '.join(sorted(FORMATS))} "
        "(or give the path of a .jinja file)"
    )


def load_template(name_or_path: str | Path) -> str:
    """The Jinja source of the format ``name_or_path``, or of the ``.jinja`` file at that path."""
    text = str(name_or_path)
    if text in FORMATS:
        return (TEMPLATE_DIR / FORMATS[text].template).read_text(encoding="utf-8")
    path = Path(text).expanduser()
    if path.is_file():
        return path.read_text(encoding="utf-8")
    if path.suffix == ".jinja" or path.parent != Path("."):
        raise ChatTemplateError(f"chat template file {str(path)!r} does not exist ({_unknown_format_message(path.stem)})")
    raise ChatTemplateError(_unknown_format_message(text))


def variant_format(model_type: str, suffix: str | None) -> tuple[str, dict[str, Any]]:
    """The format name and options (``{"thinking": bool}`` where a rule sets it) for a model type whose
    fixture id carries ``suffix`` (``"-3.2"``, ``"-NoThink"``, ``"-2-7b-chat"``...).

    The thinking option is only kept for formats that support reasoning.
    """
    fmt = FAMILY_FORMATS.get(model_type, DEFAULT_FORMAT)
    thinking: bool | None = None
    parts = [p.lower() for p in re.split(r"[-/]", suffix or "") if p]
    for rule in VARIANTS:
        if rule.model_types and model_type not in rule.model_types:
            continue
        if not any(fnmatch.fnmatchcase(part, rule.part.lower()) for part in parts):
            continue
        if rule.format is not None:
            fmt = rule.format
        if rule.thinking is not None:
            thinking = rule.thinking
    options: dict[str, Any] = {}
    if thinking is not None and FORMATS[fmt].supports_thinking:
        options["thinking"] = thinking
    return fmt, options


def tokenizer_options(model_type: str, suffix: str | None = None) -> dict[str, Any]:
    """The manifest ``tokenizer`` table entries that select the variant a fixture-id ``suffix`` names:
    ``{"chat_template": format, "thinking": bool}`` (only what differs from the model type's default), or
    ``{}`` where the suffix changes nothing or the model type is not a chat one.

    ``tokenizer_options("qwen3", "-NoThink") == {"thinking": False}``;
    ``tokenizer_options("llama", "-2-7b-chat") == {"chat_template": "llama2"}``.
    """
    if not is_chat_model_type(model_type):
        return {}
    default = FAMILY_FORMATS.get(model_type, DEFAULT_FORMAT)
    name, options = variant_format(model_type, suffix)
    out: dict[str, Any] = {}
    if name != default:
        out["chat_template"] = name
    if "thinking" in options and options["thinking"] != FORMATS[name].thinking_default:
        out["thinking"] = options["thinking"]
    return out


def is_chat_model_type(model_type: str) -> bool:
    """Whether ``model_type`` gets a chat template: a model type named in :data:`FAMILY_FORMATS`, or a
    decoder of the installed transformers' causal-LM / image-text-to-text / multimodal-LM mappings that is
    not also a masked-LM or seq2seq model and not in :data:`NOT_CHAT_MODEL_TYPES`."""
    if model_type in FAMILY_FORMATS:
        return True
    if model_type in NOT_CHAT_MODEL_TYPES:
        return False
    from transformers.models.auto import modeling_auto as auto

    def names(*tables: str) -> set[str]:
        found: set[str] = set()
        for table in tables:
            found |= set(getattr(auto, table, {}))
        return found

    generative = names(
        "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
        "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES",
        "MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES",
    )
    not_decoders = names(
        "MODEL_FOR_MASKED_LM_MAPPING_NAMES",
        "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
        "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES",
    )
    return model_type in generative and model_type not in not_decoders


def chat_format_for(model_type: str, suffix: str | None = None, *, task: str | None = None) -> ChatFormat | None:
    """The chat format of ``model_type`` (with the fixture-id ``suffix`` rules applied), or ``None`` where
    the model type, or the ``task`` when given, is not a chat one (encoders, seq2seq, classifiers...).

    The returned record's ``thinking_default`` already reflects a ``-Think`` / ``-NoThink`` style suffix.  A
    model type that no family names gets :data:`DEFAULT_FORMAT` with its bos / pad left to the tokenizer (its
    own vocabulary's conventions: XGLM indexes a fairseq position table by the pad id).
    """
    if task is not None and task not in CHAT_TASKS:
        return None
    if not is_chat_model_type(model_type):
        return None
    name, options = variant_format(model_type, suffix)
    fmt = FORMATS[name]
    if model_type not in FAMILY_FORMATS and name == DEFAULT_FORMAT:
        # not the family's own format: its bos / pad and its media placeholders stay the family's (LLaVA's
        # processor reads "<image>", not Qwen's "<|image_pad|>"; see bind_media)
        fmt = fmt._replace(bos=None, pad=None, media=())
    if "thinking" in options:
        fmt = fmt._replace(thinking_default=options["thinking"])
    return fmt


def format_tokens(fmt: ChatFormat | str) -> tuple[str, ...]:
    """Every token of the format that must be one id: special, text and media tokens, in a fixed order."""
    fmt = get_format(fmt)
    tokens = [*fmt.special_tokens, *(t for t in (fmt.bos, fmt.eos, fmt.pad) if t), *fmt.stop, *fmt.text_tokens]
    tokens += [token for _, token in fmt.media]
    return tuple(dict.fromkeys(tokens))


_THINKING_DEFAULT = re.compile(r"(\{%-? set default_thinking = )(true|false)( -?%\})")


def format_template(fmt: ChatFormat | str, thinking: bool | None = None) -> str:
    """The Jinja source :func:`install_chat_template` installs for ``fmt`` (reasoning default ``thinking``)."""
    fmt = get_format(fmt)
    source = load_template(fmt.name)
    if not fmt.supports_thinking:
        if thinking is not None:
            raise ChatTemplateError(
                f"chat format {fmt.name!r} has no reasoning mode: leave thinking=None "
                f"(formats with one: {', '.join(n for n, f in FORMATS.items() if f.supports_thinking)})"
            )
        return source
    value = fmt.thinking_default if thinking is None else thinking
    source, count = _THINKING_DEFAULT.subn(lambda m: m.group(1) + ("true" if value else "false") + m.group(3), source, count=1)
    if count != 1:
        raise ChatTemplateError(f"template {fmt.template!r} lacks its `set default_thinking` line")
    return source


def install_chat_template(
    tokenizer: "PreTrainedTokenizerBase",
    fmt: ChatFormat | str,
    *,
    thinking: bool | None = None,
    template: str | None = None,
) -> dict[str, int | None]:
    """Install ``fmt`` on a trained transformers tokenizer, in place; return the ids a config must agree with.

    Adds the format's tokens (each one id that never splits: special tokens, non-special ``text_tokens``
    and the multimodal placeholders, which also become named attributes such as ``tokenizer.image_token``),
    sets bos / eos / pad as the family does (keeping the tokenizer's own where the family has none), adds
    the characters the template writes that the vocabulary cannot encode (such as ``"\\n"`` for a
    tokenizer trained on single lines) as single-character tokens, and sets ``tokenizer.chat_template``
    with the reasoning default ``thinking`` (``None``: the format's default).  ``template``: a Jinja source
    installed instead of the format's own (a user's file); the format still gives the tokens.

    Returns ``bos_token_id``, ``eos_token_id``, ``pad_token_id`` (``None`` where the tokenizer has none)
    and ``<attribute>_id`` for every media token (``image_token_id``, ``boi_token_id``...).  The model's
    ``vocab_size`` must be at least ``len(tokenizer)`` afterwards; the stop tokens for
    ``generation_config.eos_token_id`` are :func:`stop_token_ids`.  Deterministic: the same tokenizer
    and format give the same ids and byte-identical ``save_pretrained`` files.
    """
    from tokenizers import AddedToken

    fmt = get_format(fmt)
    if template is None:
        template = format_template(fmt, thinking)
    elif thinking is not None:
        raise ChatTemplateError("thinking= sets the reasoning default of a shipped format, not of a template file")

    named = {"bos_token": fmt.bos, "eos_token": fmt.eos, "pad_token": fmt.pad}
    named = {key: AddedToken(value, special=True, normalized=False) for key, value in named.items() if value}
    present_extra = set(tokenizer.extra_special_tokens)
    special = [t for t in (*fmt.special_tokens, *fmt.stop) if t not in present_extra and t not in _named_values(named)]
    extra = [AddedToken(t, special=True, normalized=False) for t in dict.fromkeys(special)]
    tokenizer.add_special_tokens({**named, "extra_special_tokens": extra}, replace_extra_special_tokens=False)

    add_media_tokens(tokenizer, fmt.media)
    if fmt.text_tokens:
        tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in fmt.text_tokens])

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    _add_missing_characters(tokenizer, _literal_characters(template, format_tokens(fmt)))
    tokenizer.chat_template = template
    _check_single_ids(tokenizer, fmt)

    ids: dict[str, int | None] = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    for attribute, token in fmt.media:
        ids[f"{attribute}_id"] = tokenizer.convert_tokens_to_ids(token)
    return ids


def add_media_tokens(tokenizer: "PreTrainedTokenizerBase", media: tuple[tuple[str, str], ...]) -> dict[str, int]:
    """Each ``(attribute, token)`` of ``media`` one special token, named ``tokenizer.<attribute>``; returns
    ``{"<attribute>_id": id}``."""
    from tokenizers import AddedToken

    if not media:
        return {}
    named = dict(media)
    new = {name: token for name, token in named.items() if getattr(tokenizer, name, None) != token}
    if new:  # the runtime form of tokenizer_config's extra_special_tokens={name: token} in transformers 5
        tokenizer._set_model_specific_special_tokens(special_tokens=new)
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in named.values()], special_tokens=True)
    return {f"{name}_id": tokenizer.convert_tokens_to_ids(token) for name, token in media}


_MEDIA_VARIABLE = re.compile(r"\b(\w+_token)\s*\|\s*default\(")


def bind_media(tokenizer: "PreTrainedTokenizerBase") -> dict[str, str]:
    """Make the installed template write the tokenizer's own media placeholders: each ``NAME | default(...)`` the
    template reads becomes ``tokenizer.NAME`` where the tokenizer has that named token, and an empty string for a
    wrapper it lacks (``vision_start_token``...), by ``{%- set NAME = ... -%}`` lines before the template.  For a
    family whose format is not its own (LLaVA under the default ChatML): its processor's ``<image>`` is what an
    image part renders.  Returns the bound names; a template that reads none is left as it is."""
    template = tokenizer.chat_template
    if not isinstance(template, str):
        return {}
    bound: dict[str, str] = {}
    for name in dict.fromkeys(_MEDIA_VARIABLE.findall(template)):
        try:
            value = getattr(tokenizer, name, None)
        except Exception:  # noqa: BLE001 - a tokenizer's __getattr__ may raise for unknown names
            value = None
        if isinstance(value, str) and value:
            bound[name] = value
        elif any(part in name for part in ("start", "end", "bos", "eos")):
            bound[name] = ""
    if bound:
        header = "".join("{%- set " + name + " = " + json.dumps(value) + " -%}\n" for name, value in bound.items())
        tokenizer.chat_template = header + template
    return bound


def _named_values(named: Mapping[str, Any]) -> set[str]:
    return {str(value) for value in named.values()}


def stop_token_ids(tokenizer: "PreTrainedTokenizerBase", fmt: ChatFormat | str) -> list[int]:
    """Ids of the tokens that end an assistant turn (for ``generation_config.eos_token_id``), in the
    format's order; the first is the token the template ends a generated turn with."""
    fmt = get_format(fmt)
    return [tokenizer.convert_tokens_to_ids(token) for token in fmt.stop]


def template_literal_text(source: str) -> str:
    """The text a template writes itself: its raw text and string constants, joined by NUL characters."""
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(extensions=[_generation_extension(), "jinja2.ext.loopcontrols"])
    ast = env.parse(source)
    pieces = [node.data for node in ast.find_all(nodes.TemplateData)]
    pieces += [node.value for node in ast.find_all(nodes.Const) if isinstance(node.value, str)]
    return "\0".join(pieces)


def _literal_characters(template: str, tokens: tuple[str, ...]) -> str:
    """The characters of the text a template writes itself, the format's tokens removed."""
    text = template_literal_text(template).replace("\0", "")
    for token in sorted(tokens, key=len, reverse=True):
        text = text.replace(token, "")
    return "".join(sorted(set(text)))


def _generation_extension() -> type:
    """A parse-only stand-in for transformers' ``{% generation %}`` tag, to read a template's AST."""
    from jinja2 import nodes
    from jinja2.ext import Extension

    class GenerationTag(Extension):
        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.Scope(body).set_lineno(lineno)

    return GenerationTag


def _add_missing_characters(tokenizer: "PreTrainedTokenizerBase", characters: str) -> None:
    """Add the characters the vocabulary cannot encode (dropped or unknown) as single-character tokens."""
    from tokenizers import AddedToken

    unk = tokenizer.unk_token_id
    missing = []
    for char in characters:
        if char == " ":
            continue
        ids = tokenizer.encode(char, add_special_tokens=False)
        if not ids or (unk is not None and unk in ids) or tokenizer.decode(ids) != char:
            missing.append(AddedToken(char, special=False, normalized=False))
    if missing:
        tokenizer.add_tokens(missing)


def _check_single_ids(tokenizer: "PreTrainedTokenizerBase", fmt: ChatFormat) -> None:
    for token in format_tokens(fmt):
        ids = tokenizer.encode(token, add_special_tokens=False)
        if len(ids) != 1 or tokenizer.convert_ids_to_tokens(ids[0]) != token:
            raise ChatTemplateError(
                f"chat format {fmt.name!r}: token {token!r} encodes to {tokenizer.convert_ids_to_tokens(ids)} "
                f"with {type(tokenizer).__name__}, not to one id; the tokenizer must accept added tokens"
            )
