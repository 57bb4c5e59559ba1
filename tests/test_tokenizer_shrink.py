"""Shrinking real tokenizers: MiniLM WordPiece, Mistral SentencePiece, botchan BPE/Unigram, byte-level BPE."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import realfiles
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_tinymodels.build.tokenizer.shrink import ShrinkResult, inspect_tokenizer, minimum_vocab_size, shrink_tokenizer

ENGLISH = [
    "The quick brown fox jumps over the lazy dog.",
    "It was a bright cold day in April, and the clocks were striking thirteen.",
    "Tiny models make tests fast: 42 checks ran in 3 seconds, and nobody waited.",
    "She sells sea shells by the sea shore; the shells she sells are surely seashells.",
]
EMOJI_TEXT = "Pizza \U0001f355 tastes good"


def _auto(path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def _roles(tok) -> dict[str, int]:
    return {role: getattr(tok, f"{role}_id") for role in
            ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
            if getattr(tok, role, None) is not None}


def check_consistent(result: ShrinkResult, requested: int, original=None):
    """Sizes, dense ids, special ids and (where present) the .model agree; returns the loaded tokenizer."""
    from tokenizers import Tokenizer

    tok = _auto(result.dest)
    vocab = tok.get_vocab()
    assert len(tok) <= requested
    assert result.vocab_size == len(tok) == len(vocab)
    assert sorted(vocab.values()) == list(range(result.vocab_size)), "ids must be dense 0..vocab_size-1"
    backend = Tokenizer.from_file(str(result.dest / "tokenizer.json"))
    assert backend.get_vocab_size(with_added_tokens=True) == result.vocab_size
    for token, token_id in result.special_tokens.items():
        assert vocab[token] == token_id, token
    assert _roles(tok) == result.special_token_ids
    for role, token_id in result.special_token_ids.items():
        assert token_id < result.vocab_size, role
    for path in result.dest.glob("*.model"):
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(path))
        assert sp.get_piece_size() <= result.vocab_size
        assert [sp.id_to_piece(i) for i in range(sp.get_piece_size())] == tok.convert_ids_to_tokens(
            list(range(sp.get_piece_size()))), "the .model and tokenizer.json must number pieces alike"
    if original is not None:  # the id map joins old and new ids of the same token text
        assert result.id_map, "id_map is empty"
        old = sorted(result.id_map)
        assert original.convert_ids_to_tokens(old) == tok.convert_ids_to_tokens([result.id_map[i] for i in old])
    assert result.files == {p.name: p.stat().st_size for p in result.dest.iterdir() if p.is_file()}
    return tok


# ----------------------------------------------------------------------------------- MiniLM (WordPiece)


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    dest = tmp_path_factory.mktemp("minilm") / "tok"
    start = time.perf_counter()
    result = shrink_tokenizer(realfiles.minilm_dir(), dest, 1000)
    return result, time.perf_counter() - start


def _english_for(original) -> list[str]:
    """English texts the original tokenizer itself round-trips (lowercased), at least 10 of them."""
    texts = [t for t in ENGLISH + realfiles.botchan_sentences(40)
             if original.decode(original.encode(t), skip_special_tokens=True) == t.lower()]
    assert len(texts) >= 10
    return texts


def test_minilm_wordpiece_roundtrip(minilm):
    result, _ = minilm
    original = _auto(realfiles.minilm_dir())
    tok = check_consistent(result, 1000, original)
    assert result.method == "truncate" and result.model_type == "WordPiece"
    assert result.original_vocab_size == 30522 and result.vocab_size == 1000
    assert type(tok).__name__ == type(original).__name__ == "BertTokenizer"
    for text in _english_for(original):
        ids = tok.encode(text)
        assert tok.unk_token_id not in ids, text
        assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
        assert tok.decode(ids, skip_special_tokens=True) == text.lower()
    # the special tokens keep their roles with their new ids
    for role, token in (("pad", "[PAD]"), ("unk", "[UNK]"), ("cls", "[CLS]"), ("sep", "[SEP]"), ("mask", "[MASK]")):
        assert tok.convert_ids_to_tokens(getattr(tok, f"{role}_token_id")) == token
        assert result.special_token_ids[f"{role}_token"] == tok.convert_tokens_to_ids(token) < result.vocab_size
    pair = tok("hello there", "general kenobi")
    assert pair["input_ids"].count(tok.sep_token_id) == 2 and set(pair["token_type_ids"]) == {0, 1}
    batch = tok(["a", "a longer sentence"], padding=True)
    assert batch["input_ids"][0][-1] == tok.pad_token_id
    assert tok.mask_token_id in tok.encode("paris is the [MASK] of france")
    # common words survive as whole tokens: the vocabulary was not filled with characters only
    assert {"the", "and", "was"} <= set(tok.tokenize("the cat and the dog was here"))


def test_minilm_side_files_agree(minilm):
    result, _ = minilm
    dest = result.dest
    vocab_txt = (dest / "vocab.txt").read_text(encoding="utf-8").splitlines()
    tok = _auto(dest)
    assert vocab_txt == tok.convert_ids_to_tokens(list(range(len(tok))))
    config = json.loads((dest / "config.json").read_text())
    assert config["model_type"] == "bert"
    assert config["vocab_size"] == result.vocab_size == result.config_updates()["vocab_size"]
    assert config["pad_token_id"] == result.special_token_ids["pad_token"]
    processor = json.loads((dest / "tokenizer.json").read_text())["post_processor"]
    assert processor["special_tokens"]["[CLS]"]["ids"] == [tok.cls_token_id]
    assert processor["special_tokens"]["[SEP]"]["ids"] == [tok.sep_token_id]
    assert not any(t.startswith("[unused") for t in vocab_txt)


def test_minilm_shrink_is_fast_cold(tmp_path):
    """A fresh interpreter shrinks MiniLM to 1000 tokens (imports included) well under 2 s."""
    code = textwrap.dedent(f"""
        import time
        start = time.perf_counter()
        from pytest_tinymodels.build.tokenizer.shrink import shrink_tokenizer
        shrink_tokenizer({str(realfiles.minilm_dir())!r}, {str(tmp_path / 'tok')!r}, 1000)
        print(time.perf_counter() - start)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    seconds = float(out.stdout.strip().splitlines()[-1])
    print(f"cold shrink of MiniLM to 1000: {seconds:.3f} s")
    assert seconds < 2.0


def test_minilm_files_are_small(minilm):
    result, _ = minilm
    original = (realfiles.minilm_dir() / "tokenizer.json").stat().st_size
    print("shrunk MiniLM files:", result.files, f"(tokenizer.json was {original} bytes)")
    assert result.files["tokenizer.json"] < original / 10


# ----------------------------------------------------------------------------- Mistral (SentencePiece)


MISTRAL_VERSIONS = ["v1", "v2", "v3", "v7"]


@pytest.fixture(scope="module")
def mistral_shrunk(tmp_path_factory):
    cache: dict[tuple[str, str], ShrinkResult] = {}

    def get(version: str, method: str) -> ShrinkResult:
        if (version, method) not in cache:
            dest = tmp_path_factory.mktemp(f"mistral-{version}-{method}") / "tok"
            cache[version, method] = shrink_tokenizer(realfiles.mistral_sp_model(version), dest, 1000, method=method)
        return cache[version, method]

    return get


@pytest.mark.parametrize("method", ["auto", "truncate"])
@pytest.mark.parametrize("version", MISTRAL_VERSIONS)
def test_mistral_sentencepiece_roundtrip(mistral_shrunk, version, method):
    import sentencepiece as spm

    result = mistral_shrunk(version, method)
    assert result.method == ("spm-trim" if method == "auto" else "truncate")
    assert result.model_type == "BPE" and result.original_vocab_size in (32000, 32768)
    tok = check_consistent(result, 1000)
    assert result.vocab_size > 900, "the budget should be used, not wasted"
    assert type(tok).__name__ == "LlamaTokenizer"
    vocab = tok.get_vocab()
    assert (tok.unk_token, tok.bos_token, tok.eos_token) == ("<unk>", "<s>", "</s>")
    expected = {"unk_token": vocab["<unk>"], "bos_token": vocab["<s>"], "eos_token": vocab["</s>"]}
    assert result.special_token_ids == expected
    sp = spm.SentencePieceProcessor(model_file=str(result.dest / "tokenizer.model"))
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id()) == (tok.unk_token_id, tok.bos_token_id, tok.eos_token_id)
    for text in ENGLISH + realfiles.botchan_sentences(20):
        ids = tok.encode(text)
        assert ids[0] == tok.bos_token_id and tok.unk_token_id not in ids[1:]
        decoded = tok.decode(ids, skip_special_tokens=True)
        assert decoded == text and "\u2581" not in decoded
        assert sp.encode(text) == ids[1:], "the trimmed .model and tokenizer.json must tokenize alike"
    # byte fallback: the emoji is not a piece, it travels as four <0xNN> byte tokens
    tokens = tok.tokenize(EMOJI_TEXT)
    assert ["<0xF0>", "<0x9F>", "<0x8D>", "<0x95>"] == [t for t in tokens if t.startswith("<0x")]
    assert tok.decode(tok.encode(EMOJI_TEXT), skip_special_tokens=True) == EMOJI_TEXT
    assert sp.decode(sp.encode(EMOJI_TEXT)) == EMOJI_TEXT


def test_mistral_control_tokens_survive(mistral_shrunk):
    result = mistral_shrunk("v3", "auto")
    tok = _auto(result.dest)
    ids = tok.encode("[INST] hello [/INST]", add_special_tokens=False)
    assert ids[0] == tok.convert_tokens_to_ids("[INST]") == result.special_tokens["[INST]"]
    assert ids[-1] == result.special_tokens["[/INST]"]
    # named control tokens and user-defined pieces stay; reserved [control_N] placeholders go
    assert "[TOOL_CALLS]" in result.special_tokens and "[REFERENCE_DOC_0]" in result.special_tokens
    assert not any(t.startswith("[control_") for t in tok.get_vocab())
    assert any("placeholder" in note for note in result.notes)


def test_shrunk_llama_repo_shrinks_again(mistral_shrunk, tmp_path):
    """A HF-style directory with tokenizer.json + an id-aligned tokenizer.model: both are trimmed alike."""
    import sentencepiece as spm

    first = mistral_shrunk("v1", "truncate")
    result = shrink_tokenizer(first.dest, tmp_path / "tok", 500)
    assert result.method == "truncate" and result.original_vocab_size == first.vocab_size
    tok = check_consistent(result, 500)
    sp = spm.SentencePieceProcessor(model_file=str(result.dest / "tokenizer.model"))
    for text in ENGLISH + [EMOJI_TEXT]:
        assert sp.encode(text) == tok.encode(text)[1:]
        assert tok.decode(tok.encode(text), skip_special_tokens=True) == text


# --------------------------------------------------------------------------- botchan (SentencePiece)


@pytest.mark.parametrize("size", [300, 700])
@pytest.mark.parametrize("method", ["spm-trim", "truncate"])
@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_botchan_models_roundtrip(tmp_path, kind, method, size):
    import sentencepiece as spm

    src = realfiles.botchan_files()[kind]
    result = shrink_tokenizer(src, tmp_path / "tok", size, method=method)
    assert result.method == method
    assert result.model_type == ("BPE" if kind == "bpe" else "Unigram")
    tok = check_consistent(result, size)
    assert result.vocab_size == size
    sp = spm.SentencePieceProcessor(model_file=str(result.dest / "tokenizer.model"))
    original = spm.SentencePieceProcessor(model_file=str(src))
    # botchan models cover 69 characters (no '3', 'Q' ...): use the lines the original encodes without <unk>
    texts = [t for t in realfiles.botchan_sentences(60) if original.unk_id() not in original.encode(t)]
    assert len(texts) >= 30
    for text in texts:
        ids = tok.encode(text)
        assert tok.unk_token_id not in ids
        assert tok.decode(ids, skip_special_tokens=True) == text
        assert sp.encode(text) == ids
        assert sp.decode(ids) == original.decode(original.encode(text)) == text
    # the trimmed model tokenizes with fewer, shorter pieces but still prefers whole frequent words
    assert "\u2581the" in tok.tokenize("the")


def test_botchan_auto_uses_spm_trim(tmp_path):
    result = shrink_tokenizer(realfiles.botchan_files()["unigram"], tmp_path / "tok", 400)
    assert result.method == "spm-trim" and result.requested_method == "auto" and not result.fell_back
    assert inspect_tokenizer(realfiles.botchan_files()["unigram"]).model_type == "Unigram"


# ---------------------------------------------------------------------------------- byte-level BPE


@pytest.fixture(scope="module")
def byte_level_source(tmp_path_factory) -> Path:
    """A GPT-2-style byte-level BPE tokenizer (5000 tokens) trained on botchan.txt."""
    from tokenizers import ByteLevelBPETokenizer

    src = tmp_path_factory.mktemp("bytelevel-src")
    trainer = ByteLevelBPETokenizer()
    trainer.train([str(realfiles.botchan_files()["text"])], vocab_size=5000, min_frequency=2,
                  special_tokens=["<|endoftext|>"], show_progress=False)
    trainer.save(str(src / "tokenizer.json"))
    (src / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "GPT2Tokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "add_prefix_space": False, "model_max_length": 1024,
    }))
    (src / "config.json").write_text(json.dumps({"model_type": "gpt2", "vocab_size": 5000,
                                                 "bos_token_id": 0, "eos_token_id": 0}))
    return src


@pytest.fixture(scope="module", params=[300, 1000])
def byte_level(request, byte_level_source, tmp_path_factory):
    dest = tmp_path_factory.mktemp(f"bytelevel-{request.param}") / "tok"
    return shrink_tokenizer(byte_level_source, dest, request.param), request.param


def test_byte_level_bpe_shrinks(byte_level, byte_level_source):
    result, size = byte_level
    original = _auto(byte_level_source)
    tok = check_consistent(result, size, original)
    assert result.method == "truncate" and result.model_type == "BPE" and result.vocab_size == size
    tj = json.loads((result.dest / "tokenizer.json").read_text())
    vocab = tj["model"]["vocab"]
    from tokenizers.pre_tokenizers import ByteLevel

    assert set(ByteLevel.alphabet()) <= set(vocab), "all 256 byte-level characters are kept"
    for a, b in (m if isinstance(m, list) else m.split(" ") for m in tj["model"]["merges"]):
        assert a in vocab and b in vocab and a + b in vocab
    assert len(tj["model"]["merges"]) == size - 256 - 1, "every non-alphabet token is reachable by a merge"
    config = json.loads((result.dest / "config.json").read_text())
    assert config["vocab_size"] == size and config["eos_token_id"] == tok.eos_token_id == 0
    for text in ENGLISH:
        assert tok.decode(tok.encode(text)) == text
        assert len(tok.encode(text)) >= len(original.encode(text))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(text=st.text(max_size=60))
def test_byte_level_bpe_roundtrips_any_unicode(byte_level, text):
    result, _ = byte_level
    tok = _byte_level_tokenizer(result.dest)
    assert tok.decode(tok.encode(text).ids) == text


_loaded: dict[Path, object] = {}


def _byte_level_tokenizer(path: Path):
    from tokenizers import Tokenizer

    if path not in _loaded:
        _loaded[path] = Tokenizer.from_file(str(path / "tokenizer.json"))
    return _loaded[path]


def test_byte_level_bpe_transformers_roundtrip(byte_level):
    result, _ = byte_level
    tok = _auto(result.dest)
    texts = ["Grüße aus Köln — ½ € \U0001f355", "日本語のテキスト", "tabs\tand\nnewlines  and  spaces ", "\x00\x7f\u200b"]
    for text in texts:
        assert tok.decode(tok.encode(text)) == text


# -------------------------------------------------------------------------- methods and impossible asks


def test_method_override_retrain(tmp_path):
    result = shrink_tokenizer(realfiles.minilm_dir(), tmp_path / "tok", 800, method="retrain")
    assert result.method == "retrain" and result.requested_method == "retrain" and not result.fell_back
    tok = check_consistent(result, 800)
    assert type(tok).__name__ == "BertTokenizer"
    for text in _english_for(_auto(realfiles.minilm_dir())):
        ids = tok.encode(text)
        assert tok.decode(ids, skip_special_tokens=True) == text.lower() and tok.unk_token_id not in ids
    assert tok.convert_ids_to_tokens(result.special_token_ids["cls_token"]) == "[CLS]"


def test_auto_falls_back_to_retrain_below_the_alphabet(tmp_path):
    # MiniLM needs 5 specials + 136 ASCII characters and ## forms to truncate: 120 is too small
    assert minimum_vocab_size(realfiles.minilm_dir()) == 141
    corpus = [t.lower() for t in ENGLISH] * 3
    result = shrink_tokenizer(realfiles.minilm_dir(), tmp_path / "tok", 120, corpus=corpus)
    assert result.method == "retrain" and result.fell_back
    assert any("truncate cannot reach vocab_size=120" in note and "141" in note for note in result.notes)
    tok = check_consistent(result, 120)
    for text in ENGLISH[:2]:
        assert tok.decode(tok.encode(text), skip_special_tokens=True) == text.lower()


def test_explicit_truncate_below_the_alphabet_raises(tmp_path):
    with pytest.raises(ValueError, match=r"vocab_size=120.*141|141.*vocab_size=120"):
        shrink_tokenizer(realfiles.minilm_dir(), tmp_path / "tok", 120, method="truncate")


def test_fewer_ids_than_special_tokens_raises(tmp_path):
    with pytest.raises(ValueError, match=r"vocab_size=3 is smaller than the 5 special"):
        shrink_tokenizer(realfiles.minilm_dir(), tmp_path / "a", 3)
    # Mistral v3: <unk> <s> </s>, 11 named control tokens and 20 user-defined pieces
    with pytest.raises(ValueError, match=r"vocab_size=20 is smaller than the 34 special"):
        shrink_tokenizer(realfiles.mistral_sp_model("v3"), tmp_path / "b", 20)


def test_below_the_byte_alphabet_raises(tmp_path, byte_level_source):
    with pytest.raises(ValueError, match=r"vocab_size=200 is smaller than the 259 tokens .*256 byte pieces"):
        shrink_tokenizer(realfiles.mistral_sp_model("v1"), tmp_path / "a", 200)
    with pytest.raises(ValueError, match=r"vocab_size=256 is smaller than the 257 tokens .*256 byte-level"):
        shrink_tokenizer(byte_level_source, tmp_path / "b", 256)
    assert minimum_vocab_size(byte_level_source) == 257


def test_wrong_method_and_size_raise(tmp_path):
    with pytest.raises(ValueError, match="spm-trim.*needs a SentencePiece"):
        shrink_tokenizer(realfiles.minilm_dir(), tmp_path / "a", 500, method="spm-trim")
    with pytest.raises(ValueError, match="method='bogus' is not one of"):
        shrink_tokenizer(realfiles.minilm_dir(), tmp_path / "b", 500, method="bogus")
    with pytest.raises(ValueError, match="positive integer"):
        shrink_tokenizer(realfiles.minilm_dir(), tmp_path / "c", 0)


def test_word_level_keeps_specials_and_first_words(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = sorted({w.strip(".,;:").lower() for t in ENGLISH for w in t.split()} - {""})
    vocab = {"[UNK]": 0, "[PAD]": 1, **{w: i + 2 for i, w in enumerate(words)}}
    vocab["<|reserved_special_token_0|>"] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.add_special_tokens(["[UNK]", "[PAD]", "<|reserved_special_token_0|>"])
    src = tmp_path / "src"
    src.mkdir()
    backend.save(str(src / "tokenizer.json"))
    (src / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "TokenizersBackend", "unk_token": "[UNK]", "pad_token": "[PAD]"}))
    result = shrink_tokenizer(src, tmp_path / "tok", 12)
    assert result.model_type == "WordLevel" and result.vocab_size == 12
    tok = check_consistent(result, 12)
    assert tok.convert_ids_to_tokens(list(range(12))) == ["[UNK]", "[PAD]"] + words[:10]
    assert result.special_token_ids == {"unk_token": 0, "pad_token": 1}
    assert tok.encode(f"{words[0]} zebra", add_special_tokens=False) == [2, 0]


def test_truncate_without_sentencepiece_skips_the_model_file(mistral_shrunk, tmp_path, monkeypatch):
    """tokenizer.json + tokenizer.model sources still truncate where no SentencePiece reader is installed."""
    from pytest_tinymodels.build.tokenizer.shrink import source as shrink_source

    def missing():
        raise ImportError("no sentencepiece")

    source = mistral_shrunk("v1", "truncate").dest  # built (or reused) before SentencePiece goes missing
    monkeypatch.setattr(shrink_source, "spm_pb2", missing)
    result = shrink_tokenizer(source, tmp_path / "tok", 600)
    assert "tokenizer.model" not in result.files and any("tokenizer.model not written" in n for n in result.notes)
    tok = check_consistent(result, 600)
    assert tok.decode(tok.encode(EMOJI_TEXT), skip_special_tokens=True) == EMOJI_TEXT


def test_repo_with_only_a_model_file_and_config(tmp_path):
    """A Hub-style repo with tokenizer.model and config.json (model_type llama), no tokenizer_config."""
    import shutil

    src = tmp_path / "src"
    src.mkdir()
    shutil.copyfile(realfiles.mistral_sp_model("v1"), src / "tokenizer.model")
    (src / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": 32000, "bos_token_id": 1,
                                                 "eos_token_id": 2, "pad_token_id": None}))
    original = _auto(src)
    result = shrink_tokenizer(src, tmp_path / "tok", 700)
    assert result.method == "spm-trim"
    tok = check_consistent(result, 700)
    assert type(tok) is type(original)  # whatever class transformers maps model_type llama to
    config = json.loads((result.dest / "config.json").read_text())
    assert config["vocab_size"] == result.vocab_size
    assert (config["bos_token_id"], config["eos_token_id"]) == (tok.bos_token_id, tok.eos_token_id)
    for text in ENGLISH:
        assert tok.decode(tok.encode(text), skip_special_tokens=True) == text
        # BOS handling is the source's, and so is the tokenization of text made of kept pieces
        assert (tok.encode(text)[0] == tok.bos_token_id) == (original.encode(text)[0] == original.bos_token_id)
    assert original.tokenize("of the and") == tok.tokenize("of the and") == ["\u2581of", "\u2581the", "\u2581and"]


@pytest.mark.parametrize("method", ["spm-trim", "truncate"])
def test_added_token_after_the_pieces_is_kept(mistral_shrunk, tmp_path, method):
    """A Llama-style repo whose tokenizer.json adds <pad> after the SentencePiece pieces."""
    import shutil

    from tokenizers import Tokenizer

    src = tmp_path / "src"
    shutil.copytree(mistral_shrunk("v1", "truncate").dest, src)
    backend = Tokenizer.from_file(str(src / "tokenizer.json"))
    backend.add_special_tokens(["<pad>"])
    backend.save(str(src / "tokenizer.json"))
    config = json.loads((src / "tokenizer_config.json").read_text())
    config["pad_token"] = "<pad>"
    config["added_tokens_decoder"]["1000"] = {"content": "<pad>", "lstrip": False, "normalized": False,
                                              "rstrip": False, "single_word": False, "special": True}
    (src / "tokenizer_config.json").write_text(json.dumps(config))
    result = shrink_tokenizer(src, tmp_path / "tok", 500, method=method)
    tok = check_consistent(result, 500)
    assert result.vocab_size == 500
    assert tok.pad_token_id == result.special_tokens["<pad>"] == result.special_token_ids["pad_token"] == 499
    assert result.new_id(1000) == 499 and result.new_id(0) == 0
    assert tok(["a", "a b c"], padding=True)["input_ids"][0][0] == 499  # Llama pads on the left


def test_retrain_below_the_corpus_alphabet_raises(tmp_path):
    with pytest.raises(ValueError, match=r"cannot retrain .* vocab_size=20"):
        shrink_tokenizer(realfiles.botchan_files()["unigram"], tmp_path / "tok", 20, method="retrain")


def test_minilm_larger_size_keeps_every_character(tmp_path):
    """At 5000 ids all 997 characters of BERT's vocabulary and their ## forms fit, so none becomes [UNK]."""
    original = _auto(realfiles.minilm_dir())
    original_vocab = original.get_vocab()
    chars = [t for t in original_vocab if len(t) == 1]
    result = shrink_tokenizer(realfiles.minilm_dir(), tmp_path / "tok", 5000)
    tok = check_consistent(result, 5000)
    vocab = tok.get_vocab()
    assert all(c in vocab for c in chars) and all(f"##{c}" in vocab for c in chars if f"##{c}" in original_vocab)
    text = "東京 straße ½ ω"
    assert original.unk_token_id not in original.encode(text) and tok.unk_token_id not in tok.encode(text)
    # at 1000 ids only the first characters fit: rarer ones become [UNK], as the budget requires
    small = check_consistent(shrink_tokenizer(realfiles.minilm_dir(), tmp_path / "small", 1000), 1000)
    assert small.unk_token_id in small.encode("東京")
