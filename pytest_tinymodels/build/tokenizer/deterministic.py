"""Deterministic tokenizer training: ``train_new_from_iterator`` with the same bytes in every process.

tokenizers' trainers keep their words and alphabets in hash maps seeded per process (ahash), and two of
them let that order reach the result (huggingface/tokenizers#1794):

* BPE with a continuing-subword prefix or an end-of-word suffix, and WordPiece (a BPE trainer with the
  ``##`` prefix): the affixed characters (``##a``, ``a</w>``) get their ids in the order the word map is
  iterated, and merges of equal count are ordered by id, so the merges, the ids and even the vocabulary
  change from run to run.
* Unigram: the EM sums run over the sentences in hash order (and in chunks per thread), and the penalty
  scores of the required characters are handed out in hash-set order.

Plain BPE (byte-level, SentencePiece-style with byte fallback) and WordLevel are deterministic and are
trained by the library as they are.  For the other two, :func:`train_new_from_iterator` asks the library
for the trained *shell* on an empty corpus (class, special tokens, post-processor ids, trainer settings:
no training work) and fills in a model trained deterministically on the words the tokenizer's own
normalizer and pre-tokenizer make of the corpus:

* affixed BPE / WordPiece (:func:`train_affixed_bpe`): every affixed form of a character gets a
  private-use stand-in character, a *plain* BPE trainer (whose alphabet is sorted by code point: ids and
  ties are deterministic) trains on the encoded words, and its tokens and merges are decoded with the
  affixed trainer's own joining rule (``part_a + part_b`` without ``part_b``'s prefix);
* Unigram (:func:`train_unigram`): sentencepiece's Unigram trainer with one thread, on the words sorted.

The special tokens keep the ids the shell gave them, so the shell's post-processor stays right.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import TYPE_CHECKING, Any, Iterable, Mapping

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "PUA_START",
    "trainer_kind",
    "train_new_from_iterator",
    "pipeline_words",
    "train_affixed_bpe",
    "train_unigram",
]

#: First code point tried for the stand-ins of affixed characters (Supplementary Private Use Area-A);
#: code points the corpus uses are skipped.
PUA_START = 0xF0000
#: ``train_new_from_iterator`` keyword arguments accepted for a replaced trainer: they steer the shell
#: (special tokens) or only the progress display.
_SHELL_KWARGS = frozenset({"new_special_tokens", "special_tokens_map", "show_progress", "length"})
#: sentencepiece settings that make its Unigram trainer train what tokenizers' UnigramTrainer trains (no
#: normalization, words as they are, the same piece length, no script / number boundaries) in one thread.
SPM_SETTINGS: dict[str, Any] = {
    "model_type": "unigram",
    "num_threads": 1,
    "normalization_rule_name": "identity",
    "add_dummy_prefix": False,
    "remove_extra_whitespaces": False,
    "split_by_whitespace": True,
    "split_by_unicode_script": False,
    "split_by_number": False,
    "character_coverage": 1.0,
    "max_sentencepiece_length": 16,
    "hard_vocab_limit": False,
    "input_sentence_size": 0,
    "unk_id": 0,
    "bos_id": -1,
    "eos_id": -1,
    "pad_id": -1,
    "minloglevel": 2,
}


def trainer_kind(tokenizer_json: Mapping[str, Any]) -> str:
    """``"affixed-bpe"`` (WordPiece, BPE with a subword prefix / word suffix), ``"unigram"``, or
    ``"library"`` (the library's own trainer is deterministic for this model)."""
    model = tokenizer_json["model"]
    kind = model.get("type")
    if kind == "WordPiece" or (kind == "BPE" and (model.get("continuing_subword_prefix")
                                                  or model.get("end_of_word_suffix"))):
        return "affixed-bpe"
    if kind == "Unigram":
        return "unigram"
    return "library"


def train_new_from_iterator(tokenizer: "PreTrainedTokenizerBase", text_iterator: Iterable[Any], vocab_size: int,
                            **kwargs: Any) -> "PreTrainedTokenizerBase":
    """``tokenizer.train_new_from_iterator(text_iterator, vocab_size, **kwargs)``, the same in every process.

    ``text_iterator`` yields texts or batches (lists) of texts, as for transformers.  For models whose
    library trainer depends on hash order (module docstring) only ``new_special_tokens``,
    ``special_tokens_map``, ``show_progress`` and ``length`` are accepted; other trainer settings are a
    TypeError rather than silently ignored.
    """
    from tokenizers import Tokenizer

    lines = _flatten(text_iterator)
    tj = json.loads(tokenizer.backend_tokenizer.to_str())
    kind = trainer_kind(tj)
    if kind == "library":
        return tokenizer.train_new_from_iterator(lines, vocab_size, **kwargs)
    unknown = sorted(set(kwargs) - _SHELL_KWARGS)
    if unknown:
        raise TypeError(f"deterministic {tj['model']['type']} training does not take {unknown}")
    shell_kwargs = {k: v for k, v in kwargs.items() if k != "length"}
    shell = tokenizer.train_new_from_iterator([], vocab_size, **shell_kwargs)
    shell_tj = json.loads(shell.backend_tokenizer.to_str())
    words = pipeline_words(tokenizer.backend_tokenizer, lines)
    model = dict(shell_tj["model"])
    leading = _vocab_in_id_order(model["vocab"])
    added = {t["content"] for t in shell_tj.get("added_tokens") or ()}
    if kind == "affixed-bpe":
        specials = [t for t in leading if t in added]
        alphabet = [t for t in leading if t not in added]
        prefix = model.get("continuing_subword_prefix") or ""
        suffix = (model.get("end_of_word_suffix") or "") if model["type"] == "BPE" else ""
        vocab, merges = train_affixed_bpe(words, vocab_size=vocab_size, specials=specials, prefix=prefix,
                                          suffix=suffix, initial_alphabet=alphabet)
        model["vocab"] = vocab
        if model["type"] == "BPE":
            model["merges"] = [list(pair) for pair in merges]
    else:
        model["vocab"] = [list(piece) for piece in train_unigram(words, vocab_size=vocab_size,
                                                                 leading=[tuple(p) for p in model["vocab"]])]
    shell_tj["model"] = model
    # the model is swapped on the shell's own backend object: classes wrap methods of it (CLIP's decode)
    shell.backend_tokenizer.model = Tokenizer.from_str(json.dumps(shell_tj)).model
    return shell


def pipeline_words(backend: Any, lines: Iterable[str]) -> Counter:
    """The words a tokenizers trainer counts: each line through the backend's normalizer, then its
    pre-tokenizer (empty words dropped)."""
    counts: Counter = Counter()
    normalizer, pre_tokenizer = backend.normalizer, backend.pre_tokenizer
    for line in lines:
        text = normalizer.normalize_str(line) if normalizer is not None else line
        if pre_tokenizer is None:
            counts[text] += 1
        else:
            counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(text))
    counts.pop("", None)
    return counts


def train_affixed_bpe(words: Mapping[str, int], *, vocab_size: int, specials: list[str], prefix: str = "",
                      suffix: str = "", initial_alphabet: Iterable[str] = ()) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """(vocab token -> id, merges) of a BPE trained on ``words`` (word -> count) with a continuing-subword
    ``prefix`` and an end-of-word ``suffix``, as tokenizers' BpeTrainer / WordPieceTrainer train it but in
    an order fixed by the data: ``specials`` first, then the characters by code point, then the affixed
    characters by their text, then the merges."""
    from tokenizers import Tokenizer, models, trainers

    chars = sorted({c for w in words for c in w} | {c for c in initial_alphabet})

    def form(c: str, first: bool, last: bool) -> str:
        return ("" if first else prefix) + c + (suffix if last else "")

    forms = sorted({form(c, i == 0, i == len(w) - 1) for w in words for i, c in enumerate(w)} - set(chars))
    used = set(chars)
    stand_ins: dict[str, str] = {}
    point = PUA_START
    for f in forms:
        while chr(point) in used:
            point += 1
        stand_ins[f] = chr(point)
        point += 1
    decoded = {v: k for k, v in stand_ins.items()}

    def encode(word: str) -> str:
        last = len(word) - 1
        return "".join(stand_ins.get(form(c, i == 0, i == last), c) for i, c in enumerate(word))

    encoded: Counter = Counter()
    for word, count in words.items():
        encoded[encode(word)] += count
    plain = Tokenizer(models.BPE())
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(specials), initial_alphabet=chars,
                                  min_frequency=0, show_progress=False)
    plain.train_from_iterator((w for w in sorted(encoded) for _ in range(encoded[w])), trainer=trainer)
    trained = json.loads(plain.to_str())["model"]
    special_set = set(specials)

    def text(token: str) -> str:
        if token in special_set:
            return token
        parts = [decoded.get(ch, ch) for ch in token]
        return parts[0] + "".join(p[len(prefix):] if prefix and p.startswith(prefix) else p for p in parts[1:])

    vocab: dict[str, int] = {}
    for token in _vocab_in_id_order(trained["vocab"]):
        vocab.setdefault(text(token), len(vocab))  # two encodings can decode to one text ("#" + "##"): one id
    merges = [(text(a), text(b)) for a, b in (m if isinstance(m, list) else m.split(" ", 1) for m in trained["merges"])]
    return vocab, merges


def train_unigram(words: Mapping[str, int], *, vocab_size: int,
                  leading: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """A Unigram vocabulary of ``vocab_size`` pieces (more if the characters need it): ``leading`` (the
    special tokens and unk, with their scores) and then the pieces sentencepiece's trainer learns from
    ``words`` (one thread, words in sorted order), by score."""
    import sentencepiece as spm

    if not words:
        return list(leading)
    keep = {piece for piece, _ in leading}
    chars = {c for w in words for c in w}
    # sentencepiece reads " " as a word boundary: a space inside a word travels as a stand-in character
    space = next(chr(p) for p in range(PUA_START, PUA_START + 0x10000) if chr(p) not in chars)
    sentences = [w.replace(" ", space) for w in sorted(words) for _ in range(words[w])]
    # sentencepiece counts its own <unk> (dropped below) and needs room for every character
    size = max(vocab_size - len(leading) + 1, len(chars) + 2)
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=out, vocab_size=size,
                                   **SPM_SETTINGS)
    proc = spm.SentencePieceProcessor(model_proto=out.getvalue())
    pieces = [(proc.id_to_piece(i).replace(space, " "), float(proc.get_score(i)))
              for i in range(proc.get_piece_size()) if not (proc.is_unknown(i) or proc.is_control(i))]
    return list(leading) + [(p, s) for p, s in pieces if p not in keep]


def _flatten(items: Iterable[Any]) -> list[str]:
    out: list[str] = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        else:
            out.extend(item)
    return out


def _vocab_in_id_order(vocab: Any) -> list[str]:
    if isinstance(vocab, list):  # Unigram: [[piece, score], ...]
        return [p for p, _ in vocab]
    return sorted(vocab, key=vocab.__getitem__)
