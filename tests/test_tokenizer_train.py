"""build/tokenizer/train.py: single-letter words are one piece of a SentencePiece-style tiny vocabulary, as in the
real families' vocabularies (peft's test_poly tokenizes the labels "A" and "B" unpadded and expects one length)."""

from __future__ import annotations

import string

import pytest

from pytest_tinymodels.build.corpus import corpus_lines
from pytest_tinymodels.build.tokenizer import train

LETTERS = string.ascii_letters


@pytest.fixture
def fresh_memo(monkeypatch):
    monkeypatch.setattr(train, "_memo", {})


def _pieces_per_letter(tokenizer) -> dict[str, int]:
    return {c: len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in LETTERS}


@pytest.mark.parametrize("model_type", ["t5", "llama", "xlnet"])  # Unigram, SentencePiece-style BPE, Unigram
def test_every_letter_is_one_piece_and_the_vocabulary_keeps_its_size(model_type, fresh_memo, monkeypatch):
    with_rule = train.train_tokenizer(model_type, 512)
    assert set(_pieces_per_letter(with_rule).values()) == {1}
    assert [len(ids) for ids in with_rule(["A", "B", "C", "D"], add_special_tokens=False)["input_ids"]] == [1] * 4

    monkeypatch.setattr(train, "_memo", {})
    monkeypatch.setattr(train, "WORD_PIECES", ())
    without = train.train_tokenizer(model_type, 512)
    assert max(_pieces_per_letter(without).values()) > 1  # the corpus alone leaves letters out: the rule matters
    assert len(with_rule) == len(without)
    kept = {t: i for t, i in without.get_vocab().items() if with_rule.get_vocab().get(t) == i}
    assert len(kept) >= len(without) - 2 * len(LETTERS)  # only the replaced pieces moved; every other id stays
    for line in corpus_lines()[:50]:
        assert with_rule.decode(with_rule(line)["input_ids"], skip_special_tokens=True) == line


def test_byte_level_and_wordpiece_are_left_alone(fresh_memo):
    for model_type in ("gpt2", "bert"):
        tokenizer = train.train_tokenizer(model_type, 512)
        assert train.add_word_pieces(tokenizer, LETTERS) == []


def test_deterministic_and_idempotent(fresh_memo):
    first = train.train_tokenizer("t5", 512)
    assert train.add_word_pieces(first, LETTERS) == []  # already there: nothing to add
    train._memo.clear()
    second = train.train_tokenizer("t5", 512)
    assert first.backend_tokenizer.to_str() == second.backend_tokenizer.to_str()


def test_bpe_merges_written_as_strings(fresh_memo, monkeypatch):
    """Older tokenizer.json files write merges as "a b": the added merges keep that form."""
    import json

    from tokenizers import Tokenizer

    monkeypatch.setattr(train, "WORD_PIECES", ())
    tokenizer = train.train_tokenizer("llama", 512)
    tj = json.loads(tokenizer.backend_tokenizer.to_str())
    tj["model"]["merges"] = [" ".join(pair) for pair in tj["model"]["merges"]]
    tokenizer.backend_tokenizer.model = Tokenizer.from_str(json.dumps(tj)).model
    size = len(tokenizer)
    assert train.add_word_pieces(tokenizer, LETTERS)
    assert len(tokenizer) == size and set(_pieces_per_letter(tokenizer).values()) == {1}
