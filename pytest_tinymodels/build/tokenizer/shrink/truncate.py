"""The ``truncate`` recipe: surgery on ``tokenizer.json``, one selection rule per tokenizer model kind.

After the protected tokens (:func:`.budget.protected_tokens`):

* **BPE** — the byte-fallback ``<0xNN>`` tokens (when the model has ``byte_fallback``), the base alphabet
  (all 256 byte-level characters for byte-level BPE; printable ASCII, ``▁`` and some further characters
  otherwise), then merges in rank order whose two parts are kept, until the size is reached. The merges
  list keeps only merges whose parts and result survive.
* **WordPiece** — single characters and their ``##`` forms, then the other words by original id.
* **Unigram** — byte pieces, core characters, then the other pieces by score, highest first.
* **WordLevel** — the words by original id.

Reserved placeholders of the vocabulary are skipped. Kept tokens are renumbered densely in their original
order (:func:`.tokenizer_json.restrict_tj`); an id-aligned SentencePiece ``.model`` is trimmed alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .budget import (CORE_CHARS, Budget, add_extra_chars, check_specials, is_placeholder, protected_tokens, require,
                     select_unigram_pieces)
from .outputs import Step, write_outputs
from .source import DEFAULT_SPM_NAME, Source, load_spm
from .spm import restrict_spm, spm_aligned, validate_spm
from .tokenizer_json import (BYTE_FALLBACK_TOKENS, BYTE_LEVEL_ALPHABET, restrict_tj, tj_byte_level, tj_merges,
                             tj_model_type, tj_token_ids, tj_total_size, tj_vocab, validate_tj)

#: ``select(tj, vocab, by_id, budget, skip)``: fill ``budget`` from the model vocabulary of ``tj``
#: (``vocab`` token -> id, ``by_id`` its tokens in id order), never taking a token of ``skip``.
Selector = Callable[[dict, dict[str, int], list[str], Budget, set[str]], None]


def _char_of(token: str, prefix: str | None, suffix: str | None) -> str | None:
    core = token
    if prefix and core.startswith(prefix) and len(core) > len(prefix):
        core = core[len(prefix):]
    if suffix and core.endswith(suffix) and len(core) > len(suffix):
        core = core[: -len(suffix)]
    return core if len(core) == 1 else None


def _select_bpe(tj: dict, vocab: dict[str, int], by_id: list[str], budget: Budget, skip: set[str]) -> None:
    model = tj["model"]
    prefix = model.get("continuing_subword_prefix") or None
    suffix = model.get("end_of_word_suffix") or None
    cut = len(prefix) if prefix else 0
    merges = tj_merges(tj)
    results = {a + b[cut:] for a, b in merges}
    required: set[str] = set()
    what = [f"{len(budget.kept)} special tokens"]
    if tj_byte_level(tj):
        alphabet = [t for t in by_id if t in BYTE_LEVEL_ALPHABET]
        required.update(alphabet)
        what.append(f"{len(alphabet)} byte-level alphabet tokens")
    if model.get("byte_fallback"):
        present = [t for t in BYTE_FALLBACK_TOKENS if t in vocab]
        required.update(present)
        what.append(f"{len(present)} byte-fallback tokens")
    chars = [t for t in by_id if t not in results and t not in skip and _char_of(t, prefix, suffix) is not None]
    core = [t for t in chars if _char_of(t, prefix, suffix) in CORE_CHARS]
    what.append(f"{len(core)} core characters")
    require(budget, required, core, what)
    add_extra_chars(budget, ([t] for t in chars))
    for a, b in merges:
        if budget.full:
            break
        if a in budget.kept and b in budget.kept:
            r = a + b[cut:]
            if r in vocab and r not in skip:
                budget.add(r)


def _select_wordpiece(tj: dict, vocab: dict[str, int], by_id: list[str], budget: Budget, skip: set[str]) -> None:
    prefix = tj["model"].get("continuing_subword_prefix") or "##"
    groups = []
    for token in by_id:
        if len(token) == 1 and token not in skip:
            groups.append([token] + ([prefix + token] if prefix + token in vocab else []))
    core = [t for g in groups if g[0] in CORE_CHARS for t in g]
    require(budget, (), core,
            [f"{len(budget.kept)} special tokens", f"{len(core)} core characters and their {prefix} forms"])
    add_extra_chars(budget, groups)
    char_tokens = {t for g in groups for t in g}
    for token in by_id:
        if budget.full:
            break
        if token not in skip and token not in char_tokens:
            budget.add(token)


def _select_unigram(tj: dict, vocab: dict[str, int], by_id: list[str], budget: Budget, skip: set[str]) -> None:
    model = tj["model"]
    select_unigram_pieces([(p[0], p[1]) for p in model["vocab"]], bool(model.get("byte_fallback")), budget, skip,
                          normal=lambda i: True)


def _select_word_level(tj: dict, vocab: dict[str, int], by_id: list[str], budget: Budget, skip: set[str]) -> None:
    for token in by_id:
        if budget.full:
            break
        if token not in skip:
            budget.add(token)


#: The selection rule per ``tokenizer.json`` model type.
SELECTORS: dict[str, Selector] = {
    "BPE": _select_bpe,
    "WordPiece": _select_wordpiece,
    "Unigram": _select_unigram,
    "WordLevel": _select_word_level,
}


def select_tj(src: Source, tj: dict, vocab_size: int) -> tuple[set[str], list[str]]:
    """Choose the tokens of ``tj`` to keep: (kept token texts, notes); raises :class:`.budget.CannotReach`."""
    kind = tj_model_type(tj)
    vocab = tj_vocab(tj)
    by_id = sorted(vocab, key=vocab.__getitem__)
    id_to_token = {i: t for t, i in vocab.items()}
    added = [t["content"] for t in sorted(tj.get("added_tokens") or (), key=lambda t: t["id"])]
    for t in tj.get("added_tokens") or ():
        id_to_token.setdefault(t["id"], t["content"])
    protected, dropped = protected_tokens(src, added, set(vocab), id_to_token)
    check_specials(len(protected), vocab_size, protected)
    notes = []
    if dropped:
        notes.append(f"dropped {len(dropped)} unused placeholder tokens (e.g. {dropped[0]})")
    budget = Budget(vocab_size)
    budget.force(protected)
    skip = set(dropped) | {t for t in vocab if is_placeholder(t) and t not in budget.kept}
    if len(skip) > len(dropped):
        notes.append(f"skipped {len(skip) - len(dropped)} placeholder tokens of the vocabulary")
    select = SELECTORS.get(kind)
    if select is None:
        raise ValueError(f"cannot truncate a tokenizer.json with model type {kind!r}")
    select(tj, vocab, by_id, budget, skip)
    return budget.kept, notes


def truncate(src: Source, dest: Path, vocab_size: int, tj: dict, notes: list[str],
             tokenizer_config: dict | None = None) -> Step:
    """The ``truncate`` recipe: write ``tj`` cut to ``vocab_size`` ids (and an aligned ``.model``) into ``dest``."""
    kept, more = select_tj(src, tj, vocab_size)
    notes.extend(more)
    new_tj, id_map = restrict_tj(tj, kept)
    validate_tj(new_tj)
    old_id_to_token = {i: t for t, i in tj_token_ids(tj).items()}
    spm_bytes = spm_name = None
    proto = None
    if src.spm_path is not None:
        try:
            proto = load_spm(src.spm_path)
        except ImportError:
            notes.append(f"{src.spm_path.name} not written: reading it needs sentencepiece or protobuf")
    if proto is not None:
        if spm_aligned(proto, tj):
            kept_ids = {i for i, p in enumerate(proto.pieces) if p.piece in kept}
            new_proto, _ = restrict_spm(proto, kept_ids)
            spm_bytes = new_proto.SerializeToString()
            validate_spm(spm_bytes)
            spm_name = src.spm_path.name if src.directory is not None else DEFAULT_SPM_NAME
        else:
            notes.append(f"{src.spm_path.name} does not number pieces like tokenizer.json: not copied")
    table = write_outputs(src, dest, tj=new_tj, id_map=id_map, old_id_to_token=old_id_to_token,
                          original_size=tj_total_size(tj), spm_bytes=spm_bytes, spm_name=spm_name,
                          tokenizer_config=tokenizer_config)
    return tj_model_type(tj), id_map, tj_total_size(tj), table
