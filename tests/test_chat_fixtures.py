"""Chat models built as fixtures behave like their family: chat template, special tokens, config and
generation-config ids (issue 14).

A sample of chat model types is built exactly as a fixture is (``get_fixture`` on a parametrized manifest),
then loaded from the cache; each gets the conversation of :mod:`chatcheck` (system, tools, a tool call,
a tool result, a final answer) through its own tokenizer, and a short ``generate`` from the prompt.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chatcheck import ANSWER, QUESTION, SYSTEM, TOOL_RESULT, TOOLS, conversation, expected_assistant_spans, masked_runs
from pytest_tinymodels.build.tokenizer import chat
from pytest_tinymodels.errors import ManifestError
from pytest_tinymodels.manifest import parse_manifest_text

#: chat model types of different families (and formats) built as fixtures.
SAMPLE = ("qwen2", "qwen3", "llama", "mistral", "gemma2", "gemma3_text", "phi3", "gpt_oss", "deepseek_v3", "cohere",
          "granite", "olmo2", "smollm3")
#: built-in fixtures -> their chat format (None: not a chat model).
BUILTINS = {"tiny_llama": "llama3", "tiny_gpt2": "chatml", "tiny_bert": None, "tiny_t5": None}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chat-cache")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("chat-manifest") / "fixtures.toml"
    path.write_text('[fixtures.chat]\ntask = "causal-lm"\narchitectures = [%s]\n' % ", ".join(f'"{m}"' for m in SAMPLE))
    return path


def _get(name: str, manifest: Path | None, cache_dir: Path, variant: str | None = None) -> Any:
    from pytest_tinymodels import get_fixture

    return get_fixture(name, manifest=str(manifest) if manifest else None, cache_dir=str(cache_dir), variant=variant)


def _text_config(config: Any) -> Any:
    return config.get_text_config(decoder=True)


def _check_ids_agree(triple: Any, fmt: chat.ChatFormat) -> None:
    """config ids == tokenizer ids; the generation config stops at the format's end-of-turn tokens."""
    tokenizer, config = triple.tokenizer, triple.model.config
    text = _text_config(config)
    assert text.vocab_size == len(tokenizer)
    assert tokenizer.eos_token == fmt.eos
    assert text.eos_token_id == tokenizer.eos_token_id
    assert text.pad_token_id == tokenizer.pad_token_id is not None
    if fmt.pad is not None:
        assert tokenizer.pad_token == fmt.pad
    if fmt.bos is not None:
        assert tokenizer.bos_token == fmt.bos and text.bos_token_id == tokenizer.bos_token_id
    generation = json.loads((triple.path / "generation_config.json").read_text())
    stops = chat.stop_token_ids(tokenizer, fmt)
    assert generation["eos_token_id"] == (stops[0] if len(stops) == 1 else stops)
    assert generation["pad_token_id"] == tokenizer.pad_token_id
    for attribute, token in fmt.media:  # placeholders a text model may never use still get one id each
        assert tokenizer.convert_tokens_to_ids(token) == getattr(tokenizer, f"{attribute}_id")


def _check_conversation(tokenizer: Any, fmt: chat.ChatFormat) -> None:
    """Every template token one id (special, or plain added text), the mask exactly the assistant spans."""
    messages = conversation()
    text = tokenizer.apply_chat_template(messages, tools=TOOLS, tokenize=False)
    for content in (SYSTEM, QUESTION, TOOL_RESULT, ANSWER, "get_weather", '"city"'):
        assert content in text
    ids = tokenizer.apply_chat_template(messages, tools=TOOLS, return_dict=False)
    special = set(tokenizer.all_special_tokens)
    used = [token for token in chat.format_tokens(fmt) if token in text]
    assert len(used) >= 2
    for token in used:
        token_ids = tokenizer.encode(token, add_special_tokens=False)
        assert len(token_ids) == 1 and ids.count(token_ids[0]) == text.count(token), token
        assert (token in special) == (token not in fmt.text_tokens), token
    expected = expected_assistant_spans(tokenizer, messages)
    _, runs = masked_runs(tokenizer, messages)
    assert [covered for covered, _ in runs] == expected
    assert ANSWER in tokenizer.decode(runs[-1][1]) and QUESTION not in tokenizer.decode(runs[-1][1])


def _check_generate_stops(triple: Any, fmt: chat.ChatFormat) -> None:
    """``generate`` from the generation prompt with the saved generation config ends at the end of turn."""
    import torch

    tokenizer, model = triple.tokenizer, triple.model
    # system + user: with the tool list the prompt outgrows GPT-2's 256 tiny positions
    prompt = tokenizer.apply_chat_template(conversation()[:2], add_generation_prompt=True, return_dict=True,
                                           return_tensors="pt")
    end_of_turn = chat.stop_token_ids(tokenizer, fmt)[0]
    with torch.no_grad():  # eos / pad come from the repo's generation config, not from arguments
        out = model.generate(**prompt, max_new_tokens=10, min_new_tokens=2, do_sample=False,
                             sequence_bias={(end_of_turn,): 100.0})  # a random model never ends a turn by itself
    new = out[0, prompt["input_ids"].shape[1]:].tolist()
    assert new[-1] == end_of_turn and len(new) == 3, tokenizer.convert_ids_to_tokens(new)


@pytest.mark.parametrize("model_type", SAMPLE)
def test_chat_model_type_built_as_fixture(model_type: str, manifest: Path, cache_dir: Path) -> None:
    triple = _get("chat", manifest, cache_dir, model_type)
    fmt = chat.chat_format_for(model_type)
    assert fmt is not None
    assert triple.recipe["tokenizer"]["chat_format"] == fmt.name
    assert triple.tokenizer.chat_template == chat.format_template(fmt)
    _check_conversation(triple.tokenizer, fmt)
    _check_ids_agree(triple, fmt)
    _check_generate_stops(triple, fmt)


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin_fixtures(name: str, cache_dir: Path) -> None:
    triple = _get(name, None, cache_dir)
    expected = BUILTINS[name]
    if expected is None:
        assert triple.tokenizer.chat_template is None and "chat_format" not in triple.recipe["tokenizer"]
        return
    fmt = chat.chat_format_for(triple.recipe["model_type"])  # the format as the family gets it
    assert fmt.name == triple.recipe["tokenizer"]["chat_format"] == expected
    _check_conversation(triple.tokenizer, fmt)
    _check_ids_agree(triple, fmt)
    _check_generate_stops(triple, fmt)


def test_saved_config_writes_head_dim(manifest: Path, cache_dir: Path) -> None:
    """Qwen3-MoE's config class declares no head_dim; hub configs (and code written against them) have it."""
    triple = _get("chat", manifest, cache_dir, "qwen3")
    saved = json.loads((triple.path / "config.json").read_text())
    assert saved["head_dim"] == saved["hidden_size"] // saved["num_attention_heads"]
    from pytest_tinymodels.build import shrink

    moe = shrink.shrink_config(shrink.base_config("qwen3_moe"), vocab_size=300)
    assert "head_dim" not in type(moe).__init__.__code__.co_varnames  # the class does not declare it ...
    assert moe.head_dim == moe.hidden_size // moe.num_attention_heads  # ... the tiny config writes it all the same
    assert "head_dim" in moe.to_dict()
    bert = shrink.shrink_config(shrink.base_config("bert"), vocab_size=300)
    assert "head_dim" not in bert.to_dict()  # BERT's modeling code never reads one


# ----------------------------------------------------------------------------- manifest: tokenizer.chat_template


def _fixture(tmp_path: Path, tokenizer: str, model_type: str = "qwen3", extra: str = "") -> Path:
    path = tmp_path / "fixtures.toml"
    path.write_text(f'[fixtures.tiny_chat]\nmodel_type = "{model_type}"\ntask = "causal-lm"\n'
                    f"tokenizer = {{ {tokenizer} }}\n{extra}")
    return path


def _parse(path: Path) -> Any:
    return parse_manifest_text(path.read_text(), path)["tiny_chat"]


@pytest.mark.parametrize(
    ("tokenizer", "match", "field"),
    [
        ('chat_template = "lama3"', r"did you mean 'llama3'\?", "tokenizer.chat_template"),
        ('chat_template = "templates/mine.jinja"', "does not exist", "tokenizer.chat_template"),
        ('chat_template = "mine.jinj"', "unknown chat format", "tokenizer.chat_template"),
        ("chat_template = true", "format name, a .jinja file or false", "tokenizer.chat_template"),
        ('chat_template = "gemma", thinking = true', "thinking does not apply", "tokenizer.thinking"),
        ("chat_template = false, thinking = false", "thinking does not apply", "tokenizer.thinking"),
        ("chat_templates = false", r"did you mean 'chat_template'\?", "tokenizer.chat_templates"),
    ],
)
def test_manifest_chat_template_errors(tmp_path: Path, tokenizer: str, match: str, field: str) -> None:
    path = _fixture(tmp_path, tokenizer)
    with pytest.raises(ManifestError, match=match) as info:
        _parse(path)
    error = info.value
    assert error.fixture == "tiny_chat" and error.field == field and Path(error.path) == path


def test_manifest_template_file_typo_suggests_the_sibling(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "mine.jinja").write_text("{{ messages[0].content }}")
    with pytest.raises(ManifestError, match=r"did you mean 'mine.jinja'\?"):
        _parse(_fixture(tmp_path, 'chat_template = "templates/mien.jinja"'))


def test_manifest_format_false_and_thinking(tmp_path: Path, cache_dir: Path) -> None:
    from pytest_tinymodels import get_fixture

    path = _fixture(tmp_path, 'chat_template = "chatml"')
    triple = get_fixture("tiny_chat", manifest=str(path), cache_dir=str(cache_dir))
    assert triple.recipe["tokenizer"]["chat_format"] == "chatml" and "<think>" not in triple.tokenizer.chat_template
    _check_conversation(triple.tokenizer, chat.get_format("chatml"))

    path = _fixture(tmp_path, "thinking = false")
    off = get_fixture("tiny_chat", manifest=str(path), cache_dir=str(cache_dir)).tokenizer
    prompt = off.apply_chat_template([{"role": "user", "content": QUESTION}], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<think>\n\n</think>\n\n")  # the -NoThink variant: an empty reasoning block

    path = _fixture(tmp_path, "chat_template = false")
    assert get_fixture("tiny_chat", manifest=str(path), cache_dir=str(cache_dir)).tokenizer.chat_template is None


def test_manifest_template_file_relative_to_the_manifest(tmp_path: Path, cache_dir: Path) -> None:
    from pytest_tinymodels import get_fixture
    from pytest_tinymodels.build import key_fields

    (tmp_path / "templates").mkdir()
    template = tmp_path / "templates" / "mine.jinja"
    template.write_text("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}")
    path = _fixture(tmp_path, 'chat_template = "templates/mine.jinja"')
    triple = get_fixture("tiny_chat", manifest=str(path), cache_dir=str(cache_dir))
    assert triple.tokenizer.chat_template == template.read_text()
    text = triple.tokenizer.apply_chat_template([{"role": "user", "content": QUESTION}], tokenize=False)
    assert text == f"<|im_start|>user\n{QUESTION}<|im_end|>\n"
    assert len(triple.tokenizer.encode("<|im_start|>", add_special_tokens=False)) == 1  # the family's tokens
    before = key_fields(_parse(path))
    template.write_text(template.read_text() + "\n")
    assert key_fields(_parse(path))["chat_template_file"] != before["chat_template_file"]  # editing it rebuilds


def test_source_fixture_keeps_the_real_template(tmp_path: Path, cache_dir: Path) -> None:
    """A fixture shrunk from a real repo keeps that repo's chat template (not the family's format)."""
    from transformers import AutoConfig

    from pytest_tinymodels import get_fixture
    from pytest_tinymodels.build.tokenizer.train import train_tokenizer

    source = tmp_path / "real"
    real_template = "{% for m in messages %}### {{ m.role }}: {{ m.content }}\n{% endfor %}"
    tokenizer = train_tokenizer("qwen2", 400)
    tokenizer.chat_template = real_template
    tokenizer.save_pretrained(source)
    AutoConfig.for_model("qwen2", hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2,
                         intermediate_size=128, vocab_size=len(tokenizer)).save_pretrained(source)
    path = tmp_path / "fixtures.toml"
    path.write_text('[fixtures.tiny_chat]\nsource = "real"\ntokenizer = { vocab_size = 300 }\n')
    triple = get_fixture("tiny_chat", manifest=str(path), cache_dir=str(cache_dir))
    assert triple.tokenizer.chat_template == real_template
    assert "chat_format" not in triple.recipe["tokenizer"]
    path.write_text('[fixtures.tiny_chat]\nsource = "real"\ntokenizer = { vocab_size = 300, chat_template = "qwen3" }\n')
    chosen = get_fixture("tiny_chat", manifest=str(path), cache_dir=str(cache_dir))
    assert chosen.recipe["tokenizer"]["chat_format"] == "qwen3"
    _check_conversation(chosen.tokenizer, chat.get_format("qwen3"))
