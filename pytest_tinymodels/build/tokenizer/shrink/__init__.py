"""Shrink a *real* tokenizer to a tiny vocabulary while keeping its behaviour.

Three recipes, picked per tokenizer type by ``method="auto"`` (or forced with ``method=``):

``truncate``
    Surgery on ``tokenizer.json`` (the ``tokenizers`` library serialization):

    * **BPE** — keep special/added tokens, the byte-fallback ``<0xNN>`` tokens (when the model
      has ``byte_fallback``), the base alphabet (all 256 byte-level characters for byte-level
      BPE; printable ASCII, ``▁`` and some further characters otherwise), then add merges in
      rank order whose two parts are kept, until the size is reached.  The merges list keeps
      only merges whose parts and result survive.
    * **WordPiece** — special tokens, single characters and their ``##`` forms, then the other
      words by original id (``[unusedN]`` placeholders are skipped).
    * **Unigram** — special pieces (unk ...), byte pieces, core characters, then the other
      pieces by score, highest first.

    Kept tokens are renumbered densely in their original order; special-token ids are fixed in
    ``added_tokens``, the post-processor, padding, ``tokenizer_config.json``,
    ``special_tokens_map.json``, ``added_tokens.json`` and a copied ``config.json``; ``vocab.txt``,
    ``vocab.json``/``merges.txt`` and an id-aligned SentencePiece ``.model`` are rewritten to match.
``spm-trim``
    Trims a SentencePiece ``ModelProto``: keeps unknown/control/user-defined/byte pieces and the
    best-scoring normal pieces (for BPE models only pieces reachable from kept pieces), writes a
    valid ``.model`` and, next to it, a ``tokenizer.json`` so that transformers can load it
    without converting.
``retrain``
    ``train_new_from_iterator`` of the source tokenizer on a corpus (default: the package corpus).

``auto`` truncates when a ``tokenizer.json`` exists, trims the ``.model`` when only a
SentencePiece model exists, and falls back to ``retrain`` when truncation cannot reach the
requested size (the base alphabet alone is larger), saying so in :attr:`ShrinkResult.notes`.

Reserved placeholder tokens (``[unusedN]``, ``[control_N]``, ``<unusedN>``,
``<|reserved_special_token_N|>`` ...) are dropped unless something refers to them (a named special
token, the post-processor, ``config.json`` ids or the chat template).

One module per concern, listed in import order (each imports only modules listed before it; none imports
this one):

* :mod:`.source` — reading a source: :class:`~.source.Source`, the JSON / ``ModelProto`` readers, the
  ``tokenizer_config.json`` a bare ``.model`` implies, conversion of a source without ``tokenizer.json``;
* :mod:`.tokenizer_json` — the ``tokenizer.json`` format: reading, restricting to kept tokens, validating;
* :mod:`.budget` — what must be kept (protected tokens, placeholders) and the budget of ids (core
  characters, the share of extra characters, Unigram selection by score);
* :mod:`.outputs` — writing the files, fixing ``tokenizer_config.json``, the special-token maps and the
  model ``config.json`` ids;
* :mod:`.spm` — the ``spm-trim`` recipe (and the ``.model`` trimming :mod:`.truncate` reuses);
* :mod:`.truncate` — the ``truncate`` recipe, one selection rule per ``tokenizer.json`` model kind;
* :mod:`.retrain` — the ``retrain`` recipe;
* this module — the public entry points: :func:`shrink_tokenizer`, :func:`inspect_tokenizer`,
  :func:`minimum_vocab_size`, :class:`ShrinkResult`, :class:`TokenizerInfo`, :data:`METHODS`.

Only the standard library is imported at module level; ``tokenizers`` is used to validate the
result, ``sentencepiece``/``protobuf`` for ``.model`` files and ``transformers`` only where a
SentencePiece model must be converted or a tokenizer retrained.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .budget import CannotReach
from .outputs import Step, clear_dest, output_files
from .retrain import retrain
from .source import (SPECIAL_ROLES, SPECIAL_TOKENS_MAP, SPM_CONTROL, SPM_UNIGRAM, SPM_UNKNOWN, TOKENIZER_CONFIG,
                     TOKENIZER_JSON, Source, convert_to_tokenizer_json, load_spm, read_json, token_content)
from .spm import select_spm, spm_trim
from .tokenizer_json import tj_byte_level, tj_model_type, tj_total_size
from .truncate import select_tj, truncate

__all__ = [
    "METHODS",
    "ShrinkResult",
    "TokenizerInfo",
    "inspect_tokenizer",
    "minimum_vocab_size",
    "shrink_tokenizer",
]

#: Accepted values of ``method``.
METHODS = ("auto", "truncate", "retrain", "spm-trim")


@dataclass
class ShrinkResult:
    """What :func:`shrink_tokenizer` did.

    ``vocab_size`` is the number of ids of the new tokenizer (model vocabulary plus added tokens,
    ids are dense ``0..vocab_size-1``): the embedding size a model built for it needs.
    ``special_tokens`` maps every kept special/added token to its new id, ``special_token_ids``
    maps roles (``"pad_token"``, ``"bos_token"``, ...) to new ids, ``id_map`` maps old ids to new
    ids (for ``retrain`` only the tokens whose text exists in both vocabularies).
    """

    method: str
    requested_method: str
    model_type: str
    original_vocab_size: int
    vocab_size: int
    special_tokens: dict[str, int]
    special_token_ids: dict[str, int]
    id_map: dict[int, int]
    dest: Path
    files: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def fell_back(self) -> bool:
        """True when ``auto`` could not use the preferred recipe and retrained instead."""
        return self.requested_method == "auto" and self.method == "retrain"

    def new_id(self, old_id: int) -> int | None:
        """The new id of the token that had ``old_id``, or None where it was dropped."""
        return self.id_map.get(int(old_id))

    def config_updates(self) -> dict[str, int]:
        """``vocab_size`` and ``<role>_token_id`` values a model config should take."""
        out = {"vocab_size": self.vocab_size}
        for role, token_id in self.special_token_ids.items():
            out[f"{role}_id"] = token_id
        return out

    @property
    def total_bytes(self) -> int:
        return sum(self.files.values())


@dataclass
class TokenizerInfo:
    """What :func:`inspect_tokenizer` found in a source."""

    kind: str  # "tokenizer.json" | "sentencepiece" | "vocab-files"
    model_type: str  # BPE | WordPiece | Unigram | WordLevel
    vocab_size: int
    byte_level: bool = False
    byte_fallback: bool = False
    special_tokens: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------- public API


def inspect_tokenizer(src: str | os.PathLike) -> TokenizerInfo:
    """Describe the tokenizer in ``src`` (a directory or a ``.model`` file) without changing it."""
    s = Source.load(src)
    if s.tokenizer_json is not None:
        tj = s.tokenizer_json
        return TokenizerInfo(
            kind="tokenizer.json",
            model_type=tj_model_type(tj),
            vocab_size=tj_total_size(tj),
            byte_level=tj_byte_level(tj),
            byte_fallback=bool(tj["model"].get("byte_fallback")),
            special_tokens=[t["content"] for t in tj.get("added_tokens") or () if t.get("special")],
        )
    if s.spm_path is not None:
        proto = load_spm(s.spm_path)
        return TokenizerInfo(
            kind="sentencepiece",
            model_type="Unigram" if proto.trainer_spec.model_type == SPM_UNIGRAM else "BPE",
            vocab_size=len(proto.pieces),
            byte_fallback=bool(proto.trainer_spec.byte_fallback),
            special_tokens=[p.piece for p in proto.pieces if p.type in (SPM_UNKNOWN, SPM_CONTROL)],
        )
    kind = "WordPiece" if s.vocab_txt is not None else "BPE"
    return TokenizerInfo(kind="vocab-files", model_type=kind, vocab_size=-1)


def minimum_vocab_size(src: str | os.PathLike, method: str = "auto") -> int:
    """The smallest ``vocab_size`` that ``truncate``/``spm-trim`` can reach for ``src``."""
    s = Source.load(src)
    use = _pick_method(s, method)
    if use == "retrain":
        raise ValueError("minimum_vocab_size() answers for 'truncate' and 'spm-trim'; retraining depends on the corpus")
    tj = proto = None
    if use == "spm-trim":
        if s.spm_path is None:
            raise ValueError(f"method='spm-trim' needs a SentencePiece .model file, {s.path} has none")
        proto = load_spm(s.spm_path)
    else:
        tj = s.tokenizer_json if s.tokenizer_json is not None else convert_to_tokenizer_json(s)[0]
    size = 0
    for _ in range(4):  # each failure names the need of one more stage (specials, alphabet)
        try:
            if proto is not None:
                select_spm(s, proto, size)
            else:
                select_tj(s, tj, size)
            return size
        except CannotReach as e:
            size = e.minimum
    return size


def _pick_method(src: Source, method: str) -> str:
    if method != "auto":
        return method
    if src.tokenizer_json is not None:
        return "truncate"
    if src.spm_path is not None:
        return "spm-trim"
    return "truncate"  # vocab.txt / vocab.json + merges.txt: converted to tokenizer.json first


def shrink_tokenizer(
    src: str | os.PathLike,
    dest: str | os.PathLike,
    vocab_size: int,
    *,
    method: str = "auto",
    corpus: Iterable[str] | None = None,
) -> ShrinkResult:
    """Write a copy of the tokenizer in ``src`` with at most ``vocab_size`` ids into ``dest``.

    ``src`` is a directory of tokenizer files as found in a Hugging Face model repo
    (``tokenizer.json``, ``tokenizer_config.json``, ``vocab.txt``, ``*.model``, ``config.json`` ...)
    or a single SentencePiece ``.model`` file.  ``dest`` becomes loadable with
    ``transformers.AutoTokenizer.from_pretrained(dest)``.  ``method`` is one of :data:`METHODS`;
    ``corpus`` (lines of text) is used by ``retrain`` (default: the package corpus).

    Raises ``ValueError`` when the request cannot be met, naming the numbers (e.g. a
    ``vocab_size`` smaller than the special tokens that must be kept).
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {', '.join(METHODS)}")
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < 1:
        raise ValueError(f"vocab_size must be a positive integer, got {vocab_size!r}")
    s = Source.load(src)
    dest = Path(dest)
    if s.directory is not None and dest.resolve() == s.directory.resolve():
        raise ValueError(f"dest {dest} is the source directory; write the shrunk tokenizer elsewhere")
    use = _pick_method(s, method)
    notes: list[str] = []
    if use == "spm-trim" and s.spm_path is None:
        raise ValueError(f"method='spm-trim' needs a SentencePiece .model file, {s.path} has none")
    clear_dest(dest)
    try:
        try:
            kind, id_map, original, table = _run(s, dest, vocab_size, use, corpus, notes)
        except CannotReach as e:
            if e.hard:
                raise
            if method != "auto":
                raise ValueError(
                    f"method={use!r} cannot shrink {s.path} to vocab_size={vocab_size}: {e.detail}; "
                    f"use vocab_size >= {e.minimum} or method='retrain'"
                ) from None
            notes.append(f"{use} cannot reach vocab_size={vocab_size} ({e.detail}): retrained on the corpus instead")
            use = "retrain"
            kind, id_map, original, table = _run(s, dest, vocab_size, use, corpus, notes)
    except CannotReach as e:
        raise ValueError(f"cannot shrink {s.path} to vocab_size={vocab_size}: {e.detail}; "
                         f"ask for vocab_size >= {e.minimum}") from None
    return _result(s, dest, use, method, kind, id_map, original, table, notes)


def _run(s: Source, dest: Path, vocab_size: int, use: str, corpus: Iterable[str] | None,
         notes: list[str]) -> Step:
    if use == "retrain":
        return retrain(s, dest, vocab_size, corpus, notes)
    if use == "spm-trim":
        return spm_trim(s, dest, vocab_size, notes)
    tj, cfg = s.tokenizer_json, None
    if tj is None:
        tj, cfg = convert_to_tokenizer_json(s)
        notes.append("converted the source to tokenizer.json with transformers before truncating")
    return truncate(s, dest, vocab_size, tj, notes, tokenizer_config=cfg)


def _result(s: Source, dest: Path, use: str, method: str, kind: str, id_map: dict[int, int], original: int,
            table: dict[str, int], notes: list[str]) -> ShrinkResult:
    new_size = max(table.values()) + 1
    cfg = read_json(dest / TOKENIZER_CONFIG) if (dest / TOKENIZER_CONFIG).is_file() else {}
    stm = read_json(dest / SPECIAL_TOKENS_MAP) if (dest / SPECIAL_TOKENS_MAP).is_file() else {}
    roles: dict[str, int] = {}
    for source in (stm, cfg):
        for role in SPECIAL_ROLES:
            text = token_content(source.get(role))
            if text is not None and text in table and role not in roles:
                roles[role] = table[text]
    specials: dict[str, int] = {}
    if (dest / TOKENIZER_JSON).is_file():
        tj = read_json(dest / TOKENIZER_JSON)
        specials = {t["content"]: t["id"] for t in tj.get("added_tokens") or ()}
    else:
        for entry in (cfg.get("added_tokens_decoder") or {}).values():
            text = token_content(entry)
            if text in table:
                specials[text] = table[text]
    for role, token_id in roles.items():
        specials.setdefault(next(t for t, i in table.items() if i == token_id), token_id)
    files = output_files(dest)
    return ShrinkResult(
        method=use,
        requested_method=method,
        model_type=kind,
        original_vocab_size=original,
        vocab_size=new_size,
        special_tokens=dict(sorted(specials.items(), key=lambda kv: kv[1])),
        special_token_ids=roles,
        id_map=id_map,
        dest=dest,
        files=files,
        notes=notes,
    )
