"""Conformance tests of the chat formats (pytest_tinymodels/build/tokenizer/chat.py).

Every format is installed on a tiny tokenizer trained here on the shipped corpus, then a conversation
with a system message, tools, an assistant tool call, a tool result and a final answer is rendered.
The assistant spans the mask must cover are derived independently of ``{% generation %}``: the text
that rendering ``messages[:i + 1]`` adds to the generation prompt of ``messages[:i]``.
"""

from __future__ import annotations

import ast
import copy
import re
import string
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

import pytest_tinymodels
from pytest_tinymodels.build.tokenizer import chat
from chatcheck import (
    ANSWER,
    ANSWER_REASONING,
    CALL_REASONING,
    QUESTION,
    SYSTEM,
    TOOL_RESULT,
    TOOLS,
    conversation,
    expected_assistant_spans,
    masked_runs,
)

CORPUS = Path(pytest_tinymodels.__file__).parent / "data" / "corpus.txt"
#: A line with every printable ASCII character (and "\n"), so that tool JSON is encodable.
ALPHABET = string.printable

#: The tokenizer class each format's family trains (TokenizersBackend: a byte-level BPE tokenizer.json).
FAMILY_TOKENIZER = {
    "chatml": "Qwen2Tokenizer",
    "qwen3": "Qwen2Tokenizer",
    "smollm3": "GPT2Tokenizer",
    "llama2": "LlamaTokenizer",
    "llama3": "TokenizersBackend",
    "llama4": "TokenizersBackend",
    "mistral": "LlamaTokenizer",
    "gemma": "GemmaTokenizer",
    "phi3": "LlamaTokenizer",
    "gpt_oss": "GPT2Tokenizer",
    "deepseek": "TokenizersBackend",
    "cohere": "TokenizersBackend",
    "granite": "GPT2Tokenizer",
    "tulu": "GPT2Tokenizer",
}
TOKENIZER_CLASSES = ("LlamaTokenizer", "GPT2Tokenizer", "Qwen2Tokenizer", "GemmaTokenizer", "TokenizersBackend")
FORMAT_NAMES = sorted(chat.FORMATS)
THINKING_FORMATS = [name for name in FORMAT_NAMES if chat.FORMATS[name].supports_thinking]


def _train(class_name: str, lines: list[str]) -> Any:
    """A tiny tokenizer of ``class_name`` trained on ``lines`` (vocab 400)."""
    import transformers

    if class_name == "TokenizersBackend":
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        backend = Tokenizer(models.BPE())
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
        )
        backend.train_from_iterator(lines, trainer)
        return transformers.PreTrainedTokenizerFast(tokenizer_object=backend)
    blank = getattr(transformers, class_name)()
    return blank.train_new_from_iterator(lines, vocab_size=400, length=len(lines), show_progress=False)


@pytest.fixture(scope="session")
def corpus_lines() -> list[str]:
    return [line for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def trained(corpus_lines: list[str]) -> Callable[[str], Any]:
    """``trained(class_name)``: a fresh copy of a tokenizer trained once per session."""
    memo: dict[str, Any] = {}

    def get(class_name: str) -> Any:
        if class_name not in memo:
            memo[class_name] = _train(class_name, [*corpus_lines, ALPHABET])
        return copy.deepcopy(memo[class_name])

    return get


@pytest.fixture(scope="session")
def installed(trained: Callable[[str], Any]) -> Callable[..., tuple[Any, dict[str, int | None]]]:
    """``installed(format, class_name=None, thinking=None)``: (tokenizer with the format, config ids)."""
    memo: dict[tuple[str, str, bool | None], tuple[Any, dict[str, int | None]]] = {}

    def get(name: str, class_name: str | None = None, thinking: bool | None = None) -> tuple[Any, dict[str, int | None]]:
        key = (name, class_name or FAMILY_TOKENIZER[name], thinking)
        if key not in memo:
            tokenizer = trained(key[1])
            memo[key] = (tokenizer, chat.install_chat_template(tokenizer, name, thinking=thinking))
        tokenizer, ids = memo[key]
        return copy.deepcopy(tokenizer), dict(ids)

    return get


# --------------------------------------------------------------------------------------------- data


def test_every_format_template_exists_and_compiles_in_the_sandbox() -> None:
    from transformers.utils.chat_template_utils import _compile_jinja_template

    shipped = sorted(path.name for path in chat.TEMPLATE_DIR.glob("*.jinja"))
    assert shipped == sorted(fmt.template for fmt in chat.FORMATS.values())
    for name, fmt in chat.FORMATS.items():
        assert fmt.name == name
        source = chat.load_template(name)
        assert "{%- generation -%}" in source and "endgeneration" in source, name
        _compile_jinja_template(source)  # raises on a syntax error
        assert fmt.eos in fmt.special_tokens or fmt.eos in fmt.stop, name
        assert fmt.stop and all(token in chat.format_tokens(fmt) for token in fmt.stop), name
        assert ("set default_thinking" in source) == fmt.supports_thinking, name


#: Markers that look like control tokens but are plain text in the family's vocabulary.
PLAIN_TEXT_MARKERS = {
    "chatml": {"<tools>", "</tools>"},
    "qwen3": {"<tools>", "</tools>"},
    "smollm3": {"<tools>", "</tools>"},
    "llama2": {"[INST]", "[/INST]", "<<SYS>>", "<</SYS>>", "[TOOL_RESULT]"},
    "tulu": {"<functions>", "</functions>", "<function_calls>", "</function_calls>", "<function_results>", "</function_results>"},
}
MARKER = re.compile(r"<\|[^<>|\s\x00]+\|>|<｜[^｜]+｜>|\[/?[A-Z][A-Z_]*\]|</?[a-z_]+>|<[A-Z_]+>|<</?SYS>>")


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_every_control_marker_a_template_writes_is_a_format_token(name: str) -> None:
    literal = chat.template_literal_text(chat.load_template(name))
    markers = set(MARKER.findall(literal))
    assert markers, name
    missing = markers - set(chat.format_tokens(name)) - PLAIN_TEXT_MARKERS.get(name, set())
    assert not missing, f"{name}: the template writes {sorted(missing)} but the format does not add them as tokens"


def test_family_formats_name_real_model_types_and_formats() -> None:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    assert len(chat.FAMILY_FORMATS) >= 50
    unknown = sorted(set(chat.FAMILY_FORMATS) - set(CONFIG_MAPPING_NAMES))
    assert not unknown, f"not model types of the installed transformers: {unknown}"
    assert set(chat.FAMILY_FORMATS.values()) <= set(chat.FORMATS)
    assert not set(chat.FAMILY_FORMATS) & chat.NOT_CHAT_MODEL_TYPES
    assert all(rule.format is None or rule.format in chat.FORMATS for rule in chat.VARIANTS)
    # every format except the variant-only llama2 is some family's format
    assert set(chat.FORMATS) - set(chat.FAMILY_FORMATS.values()) == {"llama2"}


@pytest.mark.parametrize(
    ("model_type", "suffix", "task", "expected", "thinking"),
    [
        ("llama", None, None, "llama3", False),
        ("llama", "-2-7b-chat", None, "llama2", False),
        ("llama", "-3.2", None, "llama3", False),
        ("llama", "-SmolLM2", None, "chatml", False),
        ("qwen3", None, "causal-lm", "qwen3", True),
        ("qwen3", "-NoThink", None, "qwen3", False),
        ("qwen3_vl", "-8B-Instruct", None, "qwen3", False),
        ("qwen3_moe", "-30B-A3B-Thinking-2507", None, "qwen3", True),
        ("qwen2", "-QwQ", None, "qwen3", True),
        ("deepseek_v3", None, None, "deepseek", False),
        ("deepseek_v3", "-R1", None, "deepseek", True),
        ("mistral", "-Think", None, "mistral", True),
        ("gemma3", "-Think", "image-text-to-text", "gemma", False),  # no reasoning mode: option dropped
        ("gpt2", None, None, "chatml", False),  # a decoder without a family entry: the default
        ("gpt_oss", None, None, "gpt_oss", True),
        ("olmo2", None, None, "tulu", False),
        ("bert", None, None, None, None),  # encoder with an LM head
        ("bart", None, None, None, None),  # seq2seq
        ("whisper", None, None, None, None),
        ("trocr", None, None, None, None),
        ("vit", None, None, None, None),
        ("llama", None, "sequence-classification", None, None),
    ],
)
def test_chat_format_for(model_type: str, suffix: str | None, task: str | None, expected: str | None, thinking: bool | None) -> None:
    fmt = chat.chat_format_for(model_type, suffix, task=task)
    if expected is None:
        assert fmt is None
        return
    assert fmt is not None and fmt.name == expected
    assert fmt.thinking_default is thinking


def test_variant_format_returns_options_as_data() -> None:
    assert chat.variant_format("qwen3", "-NoThink") == ("qwen3", {"thinking": False})
    assert chat.variant_format("llama", "-3.1-8B-Instruct") == ("llama3", {})
    assert chat.variant_format("some_new_decoder", None) == ("chatml", {})


def test_module_imports_only_the_standard_library_at_top_level() -> None:
    tree = ast.parse(Path(chat.__file__).read_text(encoding="utf-8"))
    top = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            top.add((node.module or "").split(".")[0])
    assert top <= set(sys.stdlib_module_names) | {"__future__"}, top


def test_load_template_typo_suggests_the_format() -> None:
    with pytest.raises(chat.ChatTemplateError, match=r"did you mean 'llama3'\?.*chatml, cohere"):
        chat.load_template("lama3")
    with pytest.raises(chat.ChatTemplateError, match="does not exist"):
        chat.load_template("templates/missing.jinja")


def test_load_template_reads_a_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.jinja"
    path.write_text("{{ messages[0].content }}", encoding="utf-8")
    assert chat.load_template(path) == "{{ messages[0].content }}"
    assert chat.load_template(str(path)) == "{{ messages[0].content }}"


# ------------------------------------------------------------------------------- format conformance


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_format_tokens_are_single_ids_in_the_rendered_chat(name: str, installed: Callable[..., Any]) -> None:
    tokenizer, _ = installed(name)
    text = tokenizer.apply_chat_template(conversation(), tools=TOOLS, tokenize=False)
    ids = tokenizer.apply_chat_template(conversation(), tools=TOOLS, return_dict=False)
    used = [token for token in chat.format_tokens(name) if token in text]
    assert len(used) >= 2, f"{name}: the rendered chat uses too few of the format's tokens: {used}"
    for token in used:
        token_ids = tokenizer.encode(token, add_special_tokens=False)
        assert len(token_ids) == 1, f"{name}: {token!r} -> {tokenizer.convert_ids_to_tokens(token_ids)}"
        assert ids.count(token_ids[0]) == text.count(token), f"{name}: {token!r} split in context"
    fmt = chat.FORMATS[name]
    special = set(tokenizer.all_special_tokens)
    assert set(fmt.special_tokens) <= special
    assert not set(fmt.text_tokens) & special, "text tokens must stay non-special (kept by skip_special_tokens)"
    assert tokenizer.eos_token == fmt.eos and tokenizer.convert_tokens_to_ids(fmt.eos) == tokenizer.eos_token_id
    for key, value in (("bos_token", fmt.bos), ("pad_token", fmt.pad)):
        if value is not None:
            assert getattr(tokenizer, key) == value
    for content in (SYSTEM, QUESTION, TOOL_RESULT, ANSWER, "get_weather", '"city"', "Paris"):
        assert content in text


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_assistant_mask_covers_exactly_the_assistant_spans(name: str, installed: Callable[..., Any]) -> None:
    tokenizer, _ = installed(name)
    messages = conversation()
    expected = expected_assistant_spans(tokenizer, messages)
    text, runs = masked_runs(tokenizer, messages)
    assert [covered for covered, _ in runs] == expected
    fmt = chat.FORMATS[name]
    assert expected[0].endswith(tuple(fmt.stop)) and expected[1].endswith(fmt.stop[0])
    assert "get_weather" in expected[0] and '"Paris"' in expected[0]
    assert ANSWER in expected[1]
    for token in (SYSTEM, QUESTION, TOOL_RESULT):
        assert all(token not in covered for covered, _ in runs)
    # the decoded ids of a run hold what the assistant said
    assert ANSWER in tokenizer.decode(runs[1][1])
    assert "get_weather" in tokenizer.decode(runs[0][1])


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_arguments_as_json_string_render_like_a_dict(name: str, installed: Callable[..., Any]) -> None:
    tokenizer, _ = installed(name)
    as_dict = tokenizer.apply_chat_template(conversation(), tools=TOOLS, tokenize=False)
    as_string = tokenizer.apply_chat_template(conversation('{"city": "Paris"}'), tools=TOOLS, tokenize=False)
    assert as_dict == as_string


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_without_tools_and_system(name: str, installed: Callable[..., Any]) -> None:
    tokenizer, _ = installed(name)
    messages = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": ANSWER}]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert "get_weather" not in text and QUESTION in text and ANSWER in text
    prompt = tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert text.startswith(prompt)
    out = tokenizer.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
    masked = [i for i, bit in zip(out["input_ids"], out["assistant_masks"]) if bit]
    assert ANSWER in tokenizer.decode(masked) and QUESTION not in tokenizer.decode(masked)


@pytest.mark.parametrize("name", THINKING_FORMATS)
def test_thinking_on_and_off(name: str, installed: Callable[..., Any]) -> None:
    fmt = chat.FORMATS[name]
    on, _ = installed(name, thinking=True)
    off, _ = installed(name, thinking=False)
    default, _ = installed(name)
    messages = conversation()
    text_on = on.apply_chat_template(messages, tools=TOOLS, tokenize=False)
    text_off = off.apply_chat_template(messages, tools=TOOLS, tokenize=False)
    assert ANSWER_REASONING in text_on and CALL_REASONING in text_on
    assert ANSWER_REASONING not in text_off and CALL_REASONING not in text_off
    # the reasoning is generated: inside the assistant mask
    _, runs = masked_runs(on, messages)
    assert ANSWER_REASONING in runs[1][0] and CALL_REASONING in runs[0][0]
    assert [covered for covered, _ in runs] == expected_assistant_spans(on, messages)
    # the installed default follows the format, and enable_thinking overrides it per call
    expected_default = text_on if fmt.thinking_default else text_off
    assert default.apply_chat_template(messages, tools=TOOLS, tokenize=False) == expected_default
    assert on.apply_chat_template(messages, tools=TOOLS, tokenize=False, enable_thinking=False) == text_off
    assert off.apply_chat_template(messages, tools=TOOLS, tokenize=False, enable_thinking=True) == text_on


def test_thinking_prompts_of_qwen3_and_deepseek(installed: Callable[..., Any]) -> None:
    messages = [{"role": "user", "content": QUESTION}]
    qwen_off, _ = installed("qwen3", thinking=False)
    assert qwen_off.apply_chat_template(messages, tokenize=False, add_generation_prompt=True).endswith(
        "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )
    deepseek_on, _ = installed("deepseek", thinking=True)
    assert deepseek_on.apply_chat_template(messages, tokenize=False, add_generation_prompt=True).endswith(
        "<｜Assistant｜><think>"
    )
    smol, _ = installed("smollm3")
    no_think = [{"role": "system", "content": "Be brief. /no_think"}, *messages]
    assert "Reasoning Mode: /no_think" in smol.apply_chat_template(no_think, tokenize=False)


def test_thinking_on_a_format_without_reasoning_is_an_error(trained: Callable[[str], Any]) -> None:
    with pytest.raises(chat.ChatTemplateError, match="no reasoning mode"):
        chat.install_chat_template(trained("LlamaTokenizer"), "llama3", thinking=True)


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_media_parts_render_as_single_placeholder_ids(name: str, installed: Callable[..., Any]) -> None:
    fmt = chat.FORMATS[name]
    tokenizer, ids = installed(name)
    media = dict(fmt.media)
    if not media:
        with pytest.raises(Exception, match="no placeholder for image"):
            tokenizer.apply_chat_template([{"role": "user", "content": [{"type": "image"}]}], tokenize=False)
        return
    for attribute, token in media.items():
        assert getattr(tokenizer, attribute) == token
        assert ids[f"{attribute}_id"] == tokenizer.convert_tokens_to_ids(token) != tokenizer.unk_token_id
    kinds = [kind for kind in ("image", "video", "audio") if f"{kind}_token" in media]
    parts = [{"type": kind} for kind in kinds] + [{"type": "text", "text": QUESTION}]
    text = tokenizer.apply_chat_template([{"role": "user", "content": parts}], tokenize=False)
    encoded = tokenizer.apply_chat_template([{"role": "user", "content": parts}], return_dict=False)
    placeholder_ids = {ids[f"{attribute}_id"] for attribute in media if media[attribute] in text}
    assert placeholder_ids and placeholder_ids <= set(encoded)
    assert QUESTION in text


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_save_reload_keeps_template_tokens_and_ids(name: str, installed: Callable[..., Any], tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer, ids = installed(name)
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded.chat_template == tokenizer.chat_template
    assert len(reloaded) == len(tokenizer)
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        assert getattr(reloaded, key) == ids[key]
    for attribute, token in chat.FORMATS[name].media:
        assert getattr(reloaded, attribute) == token
    for token in chat.format_tokens(name):
        assert reloaded.encode(token, add_special_tokens=False) == tokenizer.encode(token, add_special_tokens=False)
    before = tokenizer.apply_chat_template(conversation(), tools=TOOLS, return_dict=True, return_assistant_tokens_mask=True)
    after = reloaded.apply_chat_template(conversation(), tools=TOOLS, return_dict=True, return_assistant_tokens_mask=True)
    assert after["input_ids"] == before["input_ids"] and after["assistant_masks"] == before["assistant_masks"]


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_generate_stops_at_the_end_of_turn(name: str, installed: Callable[..., Any]) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer, ids = installed(name)
    config = LlamaConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=64,
        vocab_size=len(tokenizer),
        bos_token_id=ids["bos_token_id"],
        eos_token_id=ids["eos_token_id"],
        pad_token_id=ids["pad_token_id"],
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    inputs = tokenizer.apply_chat_template(
        conversation()[:4], tools=TOOLS, add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )
    stops = chat.stop_token_ids(tokenizer, name)
    assert tokenizer.convert_ids_to_tokens(stops) == list(chat.FORMATS[name].stop)
    end_of_turn = stops[0]
    with torch.no_grad():
        output = model.generate(
            **inputs,
            max_new_tokens=12,
            min_new_tokens=3,
            do_sample=False,
            eos_token_id=stops,
            pad_token_id=ids["pad_token_id"],
            sequence_bias={(end_of_turn,): 100.0},  # a random model never ends a turn by itself
        )
    new = output[0, inputs["input_ids"].shape[1] :].tolist()
    assert len(new) == 4 and new[-1] == end_of_turn, tokenizer.convert_ids_to_tokens(new)
    assert all(token not in stops for token in new[:-1])


# ------------------------------------------------------------------- every tokenizer class we train


@pytest.mark.parametrize("class_name", TOKENIZER_CLASSES)
@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_install_on_every_trained_tokenizer_class(name: str, class_name: str, installed: Callable[..., Any]) -> None:
    tokenizer, ids = installed(name, class_name)
    for token in chat.format_tokens(name):
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1, (class_name, token)
    assert ids["eos_token_id"] == tokenizer.convert_tokens_to_ids(chat.FORMATS[name].eos)
    assert ids["pad_token_id"] is not None
    messages = conversation()
    expected = expected_assistant_spans(tokenizer, messages)
    _, runs = masked_runs(tokenizer, messages)
    assert [covered for covered, _ in runs] == expected


def test_install_adds_characters_the_vocabulary_lacks(corpus_lines: list[str]) -> None:
    # trained on single lines only: the vocabulary has no "\n", which every template writes
    tokenizer = _train("LlamaTokenizer", corpus_lines)
    assert "\n" not in tokenizer.decode(tokenizer.encode("a\nb", add_special_tokens=False))
    chat.install_chat_template(tokenizer, "chatml")
    assert tokenizer.decode(tokenizer.encode("a\nb", add_special_tokens=False)) == "a\nb"
    text = tokenizer.apply_chat_template([{"role": "user", "content": QUESTION}], tokenize=False)
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


def test_install_is_deterministic(trained: Callable[[str], Any], tmp_path: Path) -> None:
    for attempt in ("a", "b"):
        tokenizer = trained("GPT2Tokenizer")
        chat.install_chat_template(tokenizer, "qwen3", thinking=False)
        tokenizer.save_pretrained(tmp_path / attempt)
    files = sorted(path.name for path in (tmp_path / "a").iterdir())
    assert "chat_template.jinja" in files
    assert files == sorted(path.name for path in (tmp_path / "b").iterdir())
    for file in files:
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file


def test_install_twice_adds_nothing_new(installed: Callable[..., Any]) -> None:
    tokenizer, ids = installed("gemma")
    size = len(tokenizer)
    assert chat.install_chat_template(tokenizer, "gemma") == ids
    assert len(tokenizer) == size


def test_unknown_format_on_install(trained: Callable[[str], Any]) -> None:
    with pytest.raises(chat.ChatTemplateError, match="did you mean 'gemma'"):
        chat.install_chat_template(trained("GPT2Tokenizer"), "gema")
