"""build/tokenizer/deterministic.py: tokenizer training with the same bytes in every process (issue 12).

tokenizers' WordPiece, prefix/suffix BPE and Unigram trainers depend on per-process hash order; the
module trains those deterministically.  These tests train in separate processes (hash seed and thread
settings varied) and check what the trained tokenizers keep of their class (special-token ids, post-
processor, the class's own decode) and the invariants of the two trainers.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter

import pytest

pytest.importorskip("tokenizers")
pytest.importorskip("transformers")
pytest.importorskip("sentencepiece")

from pytest_tinymodels.build.tokenizer.deterministic import (  # noqa: E402
    train_affixed_bpe,
    train_new_from_iterator,
    train_unigram,
    trainer_kind,
)

#: Tokenizer classes whose library trainer depends on hash order, and one that does not.
CLASSES = ("BertTokenizer", "CLIPTokenizer", "OpenAIGPTTokenizer", "T5Tokenizer", "XLNetTokenizer", "GPT2Tokenizer")
#: Environments of the training processes: what must not change a trained tokenizer.
ENVS = (
    {"PYTHONHASHSEED": "11", "RAYON_NUM_THREADS": "1"},
    {"PYTHONHASHSEED": "12", "RAYON_NUM_THREADS": "2", "TOKENIZERS_PARALLELISM": "false"},
    {"PYTHONHASHSEED": "13", "RAYON_NUM_THREADS": "4", "OMP_NUM_THREADS": "3"},
)
_TRAIN_ALL = """
import hashlib, json, sys
from transformers.models.auto.tokenization_auto import tokenizer_class_from_name
from pytest_tinymodels.build.corpus import corpus_lines
from pytest_tinymodels.build.tokenizer.deterministic import train_new_from_iterator
lines = list(corpus_lines())
out = {}
for name in sys.argv[1:]:
    tok = train_new_from_iterator(tokenizer_class_from_name(name)(), lines, 600, show_progress=False)
    out[name] = hashlib.sha256(tok.backend_tokenizer.to_str().encode()).hexdigest()
print(json.dumps(out))
"""


def _tokenizer(name: str):
    from transformers.models.auto.tokenization_auto import tokenizer_class_from_name

    return tokenizer_class_from_name(name)()


def _lines() -> list[str]:
    from pytest_tinymodels.build.corpus import corpus_lines

    return list(corpus_lines())[:300]


def test_same_bytes_in_every_process() -> None:
    digests = []
    for env in ENVS:
        full = {k: v for k, v in os.environ.items() if k not in ("PYTHONHASHSEED", "RAYON_NUM_THREADS",
                                                                 "TOKENIZERS_PARALLELISM", "OMP_NUM_THREADS")}
        proc = subprocess.run([sys.executable, "-c", _TRAIN_ALL, *CLASSES], capture_output=True, text=True,
                              env={**full, **env}, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        digests.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    for name in CLASSES:
        assert len({d[name] for d in digests}) == 1, f"{name}: {[d[name][:12] for d in digests]}"


@pytest.mark.parametrize(("name", "kind"), [("BertTokenizer", "affixed-bpe"), ("CLIPTokenizer", "affixed-bpe"),
                                            ("OpenAIGPTTokenizer", "affixed-bpe"), ("T5Tokenizer", "unigram"),
                                            ("GPT2Tokenizer", "library"), ("LlamaTokenizer", "library")])
def test_trainer_kind(name: str, kind: str) -> None:
    assert trainer_kind(json.loads(_tokenizer(name).backend_tokenizer.to_str())) == kind


def test_a_deterministic_library_trainer_is_used_as_it_is() -> None:
    lines = _lines()
    ours = train_new_from_iterator(_tokenizer("GPT2Tokenizer"), lines, 400)
    library = _tokenizer("GPT2Tokenizer").train_new_from_iterator(lines, 400)
    assert ours.backend_tokenizer.to_str() == library.backend_tokenizer.to_str()


def test_wordpiece_keeps_its_class_special_ids_and_post_processor() -> None:
    tok = train_new_from_iterator(_tokenizer("BertTokenizer"), _lines(), 500, show_progress=False)
    assert type(tok).__name__ == "BertTokenizer"
    assert len(tok) == 500
    vocab = tok.get_vocab()
    assert [vocab[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 1, 2, 3, 4]
    ids = tok("The cat sat on the hotel counter.")["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id and tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == "the cat sat on the hotel counter."
    assert any(t.startswith("##") for t in vocab)


def test_suffix_bpe_keeps_the_class_decode() -> None:
    """CLIPTokenizer wraps its backend's decode (end-of-word suffix -> space): the model is swapped in place."""
    tok = train_new_from_iterator(_tokenizer("CLIPTokenizer"), _lines(), 600)
    ids = tok("the cat sat")["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == "the cat sat"
    tj = json.loads(tok.backend_tokenizer.to_str())
    assert tj["model"]["end_of_word_suffix"] == "</w>" and tj["model"]["merges"]
    assert tj["post_processor"]["cls"] == ["<|startoftext|>", 0] and tj["post_processor"]["sep"] == ["<|endoftext|>", 1]


def test_unigram_keeps_special_tokens_and_unk() -> None:
    blank = _tokenizer("T5Tokenizer")
    specials = json.loads(blank.train_new_from_iterator([], 400).backend_tokenizer.to_str())["model"]["vocab"]
    tok = train_new_from_iterator(blank, _lines(), 400)
    tj = json.loads(tok.backend_tokenizer.to_str())
    assert tj["model"]["vocab"][:len(specials)] == specials
    assert tj["model"]["vocab"][tj["model"]["unk_id"]][0] == "<unk>"
    assert len(tok) <= 400
    text = "The cat sat on the hotel counter."
    ids = tok(text)["input_ids"]
    assert tok.unk_token_id not in ids and ids[-1] == tok.eos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == text


def test_batches_and_texts_train_the_same() -> None:
    lines = _lines()
    flat = train_new_from_iterator(_tokenizer("BertTokenizer"), lines, 400)
    batched = train_new_from_iterator(_tokenizer("BertTokenizer"), [lines[i:i + 50] for i in range(0, len(lines), 50)], 400)
    assert flat.backend_tokenizer.to_str() == batched.backend_tokenizer.to_str()


def test_trainer_settings_it_would_ignore_are_an_error() -> None:
    with pytest.raises(TypeError, match="limit_alphabet"):
        train_new_from_iterator(_tokenizer("BertTokenizer"), _lines(), 400, limit_alphabet=10)


WORDS = Counter({"lower": 5, "lowest": 3, "newer": 6, "wider": 2, "new": 4, "low": 7, "#a": 1, "x": 1})


@pytest.mark.parametrize(("prefix", "suffix"), [("##", ""), ("", "</w>")])
def test_affixed_bpe_invariants(prefix: str, suffix: str) -> None:
    vocab, merges = train_affixed_bpe(WORDS, vocab_size=40, specials=["[UNK]", "[PAD]"], prefix=prefix, suffix=suffix)
    assert sorted(vocab.values()) == list(range(len(vocab))) and len(vocab) <= 40
    order = sorted(vocab, key=vocab.__getitem__)
    chars = sorted({c for w in WORDS for c in w})
    assert order[:2 + len(chars)] == ["[UNK]", "[PAD]", *chars]  # specials, then characters by code point
    for a, b in merges:
        assert a in vocab and b in vocab
        assert a + (b[len(prefix):] if prefix and b.startswith(prefix) else b) in vocab
    for word in WORDS:  # every affixed character of the corpus is a token
        for i, c in enumerate(word):
            assert ("" if i == 0 else prefix) + c + (suffix if i == len(word) - 1 else "") in vocab
    assert len(merges) > 5
    reordered = Counter(dict(reversed(list(WORDS.items()))))
    assert train_affixed_bpe(reordered, vocab_size=40, specials=["[UNK]", "[PAD]"], prefix=prefix,
                             suffix=suffix) == (vocab, merges)


def test_affixed_bpe_stand_ins_avoid_the_corpus_characters() -> None:
    """A corpus using private-use characters itself still decodes to its own characters."""
    words = Counter({"\U000f0000\U000f0001": 3, "ab": 2})
    vocab, _ = train_affixed_bpe(words, vocab_size=30, specials=[], prefix="##")
    assert {"\U000f0000", "##\U000f0001", "a", "##b"} <= set(vocab)


def test_unigram_invariants() -> None:
    words = Counter({"\u2581the": 9, "\u2581cat": 4, "\u2581sat": 3, "\u2581on": 5, "\u2581mat": 2, "a b": 2, "\u2581x\ny": 1})
    leading = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces = train_unigram(words, vocab_size=40, leading=leading)
    assert pieces[:3] == leading
    texts = [p for p, _ in pieces]
    assert len(texts) == len(set(texts)) and len(texts) <= 40
    assert {c for w in words for c in w} <= set(texts)  # every character, "\n" and " " included
    assert all(isinstance(s, float) and s <= 0.0 for _, s in pieces[3:])
    assert train_unigram(Counter(dict(reversed(list(words.items())))), vocab_size=40, leading=leading) == pieces
    digest = hashlib.sha256(json.dumps(pieces).encode()).hexdigest()
    assert digest == hashlib.sha256(json.dumps(train_unigram(words, vocab_size=40, leading=leading)).encode()).hexdigest()
