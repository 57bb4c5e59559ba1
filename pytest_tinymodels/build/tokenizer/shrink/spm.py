"""The ``spm-trim`` recipe: trim a SentencePiece ``ModelProto`` to its most useful pieces.

Keeps unknown / control / user-defined / byte pieces and the best-scoring normal pieces (for BPE models
only pieces reachable from kept pieces: a piece is kept when it splits into two kept pieces), writes a
valid ``.model`` and, next to it, a ``tokenizer.json`` so that transformers can load it without
converting. :func:`restrict_spm`, :func:`spm_aligned` and :func:`validate_spm` are also used by
:mod:`.truncate`, which trims an id-aligned ``.model`` alongside ``tokenizer.json``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from .budget import (CORE_CHARS, Budget, add_extra_chars, check_specials, is_placeholder, protected_tokens, require,
                     select_unigram_pieces)
from .outputs import Step, complete_added_tokens_decoder, write_outputs
from .source import (DEFAULT_SPM_NAME, SPECIAL_ROLES, SPM_BPE, SPM_BYTE, SPM_CONTROL, SPM_NORMAL, SPM_UNIGRAM,
                     SPM_UNKNOWN, SPM_UNUSED, SPM_USER_DEFINED, TOKENIZER_CONFIG, TOKENIZER_JSON, Source,
                     default_spm_config, load_spm, needs_default_config, read_json, spm_proto, write_json)
from .tokenizer_json import post_processor_tokens, restrict_tj, tj_token_ids, tj_vocab, validate_tj


def _spm_protected(src: Source, proto: Any) -> tuple[list[int], list[int]]:
    """(piece ids that must be kept, placeholder piece ids dropped)."""
    referenced = set(src.named_special_tokens().values())
    ts = proto.trainer_spec
    for attr in ("unk_piece", "bos_piece", "eos_piece", "pad_piece"):
        if getattr(ts, attr.replace("piece", "id")) >= 0:
            referenced.add(getattr(ts, attr))
    referenced.update(post_processor_tokens((src.tokenizer_json or {}).get("post_processor")))
    for token_id in src.config_token_ids():
        if token_id < len(proto.pieces):
            referenced.add(proto.pieces[token_id].piece)
    keep, dropped = [], []
    for i, p in enumerate(proto.pieces):
        if p.type in (SPM_UNKNOWN, SPM_CONTROL, SPM_USER_DEFINED):
            if is_placeholder(p.piece) and p.piece not in referenced and p.piece not in src.chat_template:
                dropped.append(i)
            else:
                keep.append(i)
        elif p.type == SPM_BYTE or (p.piece in referenced and p.type != SPM_UNUSED):
            keep.append(i)
    return keep, dropped


def select_spm(src: Source, proto: Any, vocab_size: int) -> tuple[set[int], list[str]]:
    """Choose the pieces of ``proto`` to keep: (kept piece ids, notes); raises :class:`CannotReach`."""
    pieces = proto.pieces
    protected, dropped = _spm_protected(src, proto)
    specials = [i for i in protected if pieces[i].type != SPM_BYTE]
    check_specials(len(specials), vocab_size, (pieces[i].piece for i in specials))
    notes = [f"dropped {len(dropped)} unused placeholder pieces (e.g. {pieces[dropped[0]].piece})"] if dropped else []
    budget = Budget(vocab_size)
    budget.force(pieces[i].piece for i in specials)
    skip = {pieces[i].piece for i in dropped}
    normal = [i for i, p in enumerate(pieces) if p.type == SPM_NORMAL]
    is_normal = set(normal).__contains__
    if proto.trainer_spec.model_type == SPM_BPE:
        required = [pieces[i].piece for i in protected if pieces[i].type == SPM_BYTE]
        chars = sorted((i for i in normal if len(pieces[i].piece) == 1), key=lambda i: (-pieces[i].score, i))
        core = [pieces[i].piece for i in chars if pieces[i].piece in CORE_CHARS]
        require(budget, required, core,
                [f"{len(specials)} special pieces", f"{len(required)} byte pieces", f"{len(core)} core characters"])
        add_extra_chars(budget, ([pieces[i].piece] for i in chars))
        kept_normal = {pieces[i].piece for i in normal if pieces[i].piece in budget.kept}
        for i in sorted((i for i in normal if len(pieces[i].piece) > 1), key=lambda i: (-pieces[i].score, i)):
            if budget.full:
                break
            piece = pieces[i].piece
            if any(piece[:k] in kept_normal and piece[k:] in kept_normal for k in range(1, len(piece))):
                budget.add(piece)
                kept_normal.add(piece)
    else:
        select_unigram_pieces([(p.piece, p.score) for p in pieces], proto.trainer_spec.byte_fallback, budget, skip,
                              normal=lambda i: is_normal(i) or pieces[i].type == SPM_BYTE)
    kept_ids = {i for i, p in enumerate(pieces) if p.piece in budget.kept and p.type != SPM_UNUSED}
    kept_ids.update(i for i in protected)
    return kept_ids, notes


def restrict_spm(proto: Any, kept_ids: set[int]) -> tuple[Any, dict[int, int]]:
    """A copy of ``proto`` with only the ``kept_ids`` pieces (in order) and its trainer spec fixed; (proto, old->new)."""
    new = spm_proto()
    new.CopyFrom(proto)
    del new.pieces[:]
    order = sorted(kept_ids)
    for i in order:
        new.pieces.add().CopyFrom(proto.pieces[i])
    id_map = {old: n for n, old in enumerate(order)}
    ts = new.trainer_spec
    ts.vocab_size = len(order)
    names = {p.piece: n for n, p in enumerate(new.pieces)}
    for attr in ("unk", "bos", "eos", "pad"):
        if getattr(ts, f"{attr}_id") >= 0:
            setattr(ts, f"{attr}_id", names.get(getattr(ts, f"{attr}_piece"), -1))
    for attr in ("control_symbols", "user_defined_symbols"):
        kept = [s for s in getattr(ts, attr) if s in names]
        del getattr(ts, attr)[:]
        getattr(ts, attr).extend(kept)
    return new, id_map


def validate_spm(data: bytes) -> Any | None:
    """Load a serialized model with sentencepiece (raises when invalid); None where sentencepiece is missing."""
    try:
        import sentencepiece as spm
    except ImportError:
        return None
    return spm.SentencePieceProcessor(model_proto=data)


def spm_aligned(proto: Any, tj: dict) -> bool:
    """True when the tokenizer.json model vocabulary numbers the pieces exactly like the .model."""
    vocab = tj_vocab(tj)
    if len(vocab) != len(proto.pieces):
        return False
    return all(vocab.get(p.piece) == i for i, p in enumerate(proto.pieces))


def spm_trim(src: Source, dest: Path, vocab_size: int, notes: list[str]) -> Step:
    """The ``spm-trim`` recipe: write the trimmed ``.model`` (and a matching tokenizer.json) into ``dest``."""
    if src.spm_path is None:
        raise ValueError(f"method='spm-trim' needs a SentencePiece .model file, {src.path} has none")
    proto = load_spm(src.spm_path)
    tj = src.tokenizer_json if src.tokenizer_json is not None and spm_aligned(proto, src.tokenizer_json) else None
    extra: list[str] = []  # tokens added after the pieces in tokenizer.json (e.g. a <pad> at id 32000)
    if tj is not None:
        vocab = tj_vocab(tj)
        id_to_token = {i: t for t, i in tj_token_ids(tj).items()}
        added = [t["content"] for t in sorted(tj.get("added_tokens") or (), key=lambda t: t["id"])]
        extra = [t for t in protected_tokens(src, added, set(vocab), id_to_token)[0] if t not in vocab]
    kept_ids, more = select_spm(src, proto, vocab_size - len(extra))
    notes.extend(more)
    new_proto, id_map = restrict_spm(proto, kept_ids)
    spm_bytes = new_proto.SerializeToString()
    validate_spm(spm_bytes)
    spm_name = src.spm_path.name if src.directory is not None else DEFAULT_SPM_NAME
    kind = "Unigram" if proto.trainer_spec.model_type == SPM_UNIGRAM else "BPE"
    old_id_to_token = {i: p.piece for i, p in enumerate(proto.pieces)}
    new_tj = None
    if tj is not None:
        new_tj, id_map = restrict_tj(tj, {p.piece for p in new_proto.pieces} | set(extra))
        old_id_to_token = {i: t for t, i in tj_token_ids(tj).items()}
        validate_tj(new_tj)
    tokenizer_config = default_spm_config(new_proto) if needs_default_config(src) else src.tokenizer_config
    table = write_outputs(src, dest, tj=new_tj, id_map=id_map, old_id_to_token=old_id_to_token,
                          original_size=len(proto.pieces), spm_bytes=spm_bytes, spm_name=spm_name,
                          tokenizer_config=tokenizer_config)
    if new_tj is None:
        if src.tokenizer_json is not None:
            notes.append("tokenizer.json does not number pieces like the .model: regenerated from the trimmed model")
        _add_fast_tokenizer(dest)
    return kind, id_map, len(proto.pieces), table


def _add_fast_tokenizer(dest: Path) -> None:
    """Convert the SentencePiece model in ``dest`` to a tokenizer.json with transformers."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(dest))
    with tempfile.TemporaryDirectory() as tmp:
        tok.save_pretrained(tmp)
        shutil.copyfile(Path(tmp) / TOKENIZER_JSON, dest / TOKENIZER_JSON)
        cfg = read_json(dest / TOKENIZER_CONFIG) if (dest / TOKENIZER_CONFIG).is_file() else {}
        complete_added_tokens_decoder(cfg, read_json(dest / TOKENIZER_JSON))
        for role in SPECIAL_ROLES:  # named while converting the .model; tokenizer.json alone does not say
            if getattr(tok, role, None) is not None and role not in cfg:
                cfg[role] = str(getattr(tok, role))
        write_json(dest / TOKENIZER_CONFIG, cfg)
