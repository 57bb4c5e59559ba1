"""Train a tiny tokenizer of the model type's own class on the shipped corpus.

transformers 5 tokenizer classes define their pipeline (normalizer, pre-tokenizer, model type,
decoder, post-processor) in code, so ``TokenizerClass()`` gives an empty tokenizer of the right
algorithm — byte-level BPE for gpt2, SentencePiece-style BPE for llama, WordPiece for bert,
Unigram for t5 — that ``train_new_from_iterator`` trains on our corpus (through
:func:`.deterministic.train_new_from_iterator`: the same bytes in every process).

Model types whose own class cannot be trained this way (no class registered, the generic
``TokenizersBackend``, ``MistralCommonBackend`` which needs another library, or Python-only
tokenizers) fall back by small named rules in :data:`TOKENIZER_RULES` and then to
:data:`FALLBACK_TOKENIZER`.
"""

from __future__ import annotations

import copy
import string
import threading
from typing import TYPE_CHECKING, Any, Iterable

from ..corpus import corpus_lines
from .deterministic import train_new_from_iterator

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

#: Tokenizer class used where the model type's own class cannot be trained.
FALLBACK_TOKENIZER = "LlamaTokenizer"

#: Model type -> tokenizer class, where the library's mapping has none or an untrainable one.
TOKENIZER_RULES: dict[str, str] = {
    "llama": "LlamaTokenizer",
    "mistral": "LlamaTokenizer",
    "mixtral": "LlamaTokenizer",
    "ministral": "LlamaTokenizer",
    "pixtral": "LlamaTokenizer",
}

#: One training line more than the corpus: every printable ASCII character and "\n", so that each trained
#: vocabulary encodes chat templates, tool JSON and multi-line text (a SentencePiece-style BPE drops, and
#: Gemma's maps to <unk>, every character it never saw).
TRAINING_ALPHABET = string.printable

#: Words a SentencePiece-style vocabulary of a real family holds as one piece each ("▁A", "▁B", ...): tests feed
#: letters as labels and answer choices and expect one token per letter, as with the real tokenizer.  A 512-piece
#: vocabulary trained on the corpus keeps only the frequent ones ("▁A", "▁I"), so :func:`add_word_pieces` adds
#: the rest.  Digits are left alone: families differ there (Llama splits every digit).
WORD_PIECES = tuple(string.ascii_letters)
METASPACE = "\u2581"

#: Class names the library maps to that are not trainable from scratch.
UNTRAINABLE_CLASSES = frozenset({"TokenizersBackend", "MistralCommonBackend", "PreTrainedTokenizerFast", "PythonBackend"})

_memo: dict[tuple[str, int, int | None], "PreTrainedTokenizerBase"] = {}
_memo_lock = threading.Lock()


def tokenizer_class_name(model_type: str) -> str:
    """The tokenizer class trained for ``model_type`` (rules first, then the library's mapping)."""
    if model_type in TOKENIZER_RULES:
        return TOKENIZER_RULES[model_type]
    from transformers.models.auto.tokenization_auto import TOKENIZER_MAPPING_NAMES

    name = TOKENIZER_MAPPING_NAMES.get(model_type)
    if isinstance(name, (tuple, list)):
        name = next((n for n in reversed(name) if n), None)
    if not name or name in UNTRAINABLE_CLASSES:
        return FALLBACK_TOKENIZER
    return name


def train_tokenizer(
    model_type: str,
    vocab_size: int,
    *,
    corpus: Iterable[str] | None = None,
    model_max_length: int | None = None,
) -> "PreTrainedTokenizerBase":
    """A tokenizer of ``model_type``'s class trained on ``corpus`` (default: the shipped corpus).

    The result is a fresh object the caller may modify.  Trainings on the default corpus are
    memoized in-process (many model types share one tokenizer class).  The actual vocabulary can
    exceed ``vocab_size`` when the base alphabet and special tokens need more room; callers must
    use ``len(tokenizer)``.
    """
    class_name = tokenizer_class_name(model_type)
    memo_key = (class_name, vocab_size, model_max_length)
    if corpus is None:
        with _memo_lock:
            cached = _memo.get(memo_key)
        if cached is not None:
            return copy.deepcopy(cached)
    lines = list(corpus) if corpus is not None else [*corpus_lines(), TRAINING_ALPHABET]
    tokenizer = _train(class_name, vocab_size, lines)
    if class_name != FALLBACK_TOKENIZER and tokenizer is None:
        tokenizer = _train(FALLBACK_TOKENIZER, vocab_size, lines)
    if tokenizer is None:
        raise RuntimeError(f"could not train a tokenizer for model type {model_type!r}")
    add_word_pieces(tokenizer, WORD_PIECES)
    ensure_pad(tokenizer)
    if model_max_length is not None:
        tokenizer.model_max_length = model_max_length
    if corpus is None:
        with _memo_lock:
            _memo[memo_key] = copy.deepcopy(tokenizer)
    return tokenizer


def add_word_pieces(tokenizer: Any, words: Iterable[str]) -> list[str]:
    """Make each of ``words`` one piece (``"▁" + word``) of a SentencePiece-style Unigram or BPE vocabulary,
    in place of its least useful learned pieces: the vocabulary keeps its size and every other token its id.

    Unigram: a missing piece takes the slot of the lowest-scored learned piece (never a special token or a
    single character), scored just above the two pieces it replaces in a word.  BPE: the last merges (whose
    results no later merge uses) give their tokens' ids to the new pieces, each made by a merge ``"▁" + word``
    appended last.  Byte-level BPE and WordPiece (no ``▁``) are left as they are.  Returns the pieces added.
    """
    import json

    from tokenizers import Tokenizer

    words = frozenset(words)  # (a str of letters is a set of one-letter words, not a substring test)
    backend = tokenizer.backend_tokenizer
    tj = json.loads(backend.to_str())
    if METASPACE not in json.dumps([tj.get("pre_tokenizer"), tj.get("normalizer")], ensure_ascii=False):
        return []
    model = tj["model"]
    specials = {t["content"] for t in tj.get("added_tokens") or ()}
    if model["type"] == "Unigram":
        index = {piece: i for i, (piece, _) in enumerate(model["vocab"])}
        missing = [METASPACE + w for w in sorted(words) if METASPACE + w not in index]
        spare = sorted((score, -i) for i, (piece, score) in enumerate(model["vocab"])
                       if piece not in specials and len(piece) > 1 and not _is_word_piece(piece, words))
        lowest = min((score for _, score in model["vocab"]), default=0.0)
        for piece, (_, neg_i) in zip(missing, spare):
            parts = [model["vocab"][index[p]][1] for p in (METASPACE, piece[1:]) if p in index]
            score = sum(parts) + 0.5 if len(parts) == 2 else lowest
            model["vocab"][-neg_i] = [piece, score]
        added = missing[:len(spare)]
    elif model["type"] == "BPE" and isinstance(model.get("vocab"), dict):
        vocab, merges = model["vocab"], list(model.get("merges") or ())
        missing = [METASPACE + w for w in sorted(words)
                   if METASPACE + w not in vocab and METASPACE in vocab and w in vocab]
        as_pairs = not merges or isinstance(merges[0], list)  # tokenizers writes [a, b]; older files "a b"
        freed: list[int] = []
        while len(freed) < len(missing) and merges:
            left, right = merges.pop() if as_pairs else merges.pop().split(" ", 1)
            result = left + right
            if result in vocab and result not in specials:
                freed.append(vocab.pop(result))
        added = missing[:len(freed)]
        for piece, token_id in zip(added, sorted(freed)):
            vocab[piece] = token_id
            merges.append([METASPACE, piece[1:]] if as_pairs else f"{METASPACE} {piece[1:]}")
        model["merges"] = merges
    else:
        return []
    if added:
        backend.model = Tokenizer.from_str(json.dumps(tj)).model
    return added


def _is_word_piece(piece: str, words: frozenset[str]) -> bool:
    return piece.startswith(METASPACE) and piece[1:] in words


def _train(class_name: str, vocab_size: int, lines: list[str]) -> "PreTrainedTokenizerBase | None":
    from transformers.models.auto.tokenization_auto import tokenizer_class_from_name

    cls = tokenizer_class_from_name(class_name)
    if cls is None or not hasattr(cls, "train_new_from_iterator"):
        return None
    try:
        blank = cls()
        return train_new_from_iterator(blank, lines, vocab_size, length=len(lines), show_progress=False)
    except Exception:  # noqa: BLE001 - any failure means "use the fallback class"
        if class_name == FALLBACK_TOKENIZER:
            raise
        return None


def ensure_pad(tokenizer: Any) -> None:
    """Give the tokenizer a pad token if it has none (batched tests need one): eos, else unk."""
    if tokenizer.pad_token is None:
        for name in ("eos_token", "unk_token", "sep_token"):
            token = getattr(tokenizer, name, None)
            if token is not None:
                tokenizer.pad_token = token
                return


def special_token_ids(tokenizer: Any) -> dict[str, int | None]:
    """The ids a model config must agree with (``pad_token_id``, ``bos_token_id``, ...)."""
    ids = {}
    for name in ("pad", "bos", "eos", "unk", "sep", "cls", "mask"):
        ids[f"{name}_token_id"] = getattr(tokenizer, f"{name}_token_id", None)
    return ids
