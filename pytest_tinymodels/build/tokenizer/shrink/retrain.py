"""The ``retrain`` recipe: ``train_new_from_iterator`` of the source tokenizer on a corpus (deterministic:
:func:`..deterministic.train_new_from_iterator`).

The source's own class (from its tokenizer_config/config) is trained, so the pipeline (normalizer,
pre-tokenizer, decoder, post-processor) stays the source's; unused placeholder tokens are dropped first
so that the trainer does not re-add them. The default corpus is the package corpus (:mod:`...corpus`).
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

from ..deterministic import train_new_from_iterator
from .budget import check_specials, protected_tokens
from .outputs import Step, filter_token_lists, fix_tokenizer_config, write_outputs
from .source import (MODEL_CONFIG, SPECIAL_TOKENS_MAP, TOKENIZER_CONFIG, TOKENIZER_JSON, Source,
                     convert_to_tokenizer_json, read_json, write_json)
from .tokenizer_json import (BYTE_FALLBACK_TOKENS, fix_post_processor, restrict_tj, tj_model_type, tj_token_ids,
                             tj_total_size, tj_vocab, validate_tj)


def _default_corpus() -> list[str]:
    from ...corpus import corpus_lines

    return list(corpus_lines())


def retrain(src: Source, dest: Path, vocab_size: int, corpus: Iterable[str] | None,
            notes: list[str]) -> Step:
    """``train_new_from_iterator`` on the corpus, after dropping unused placeholder tokens.

    The source's own class (from its tokenizer_config/config) is trained, so the pipeline
    (normalizer, pre-tokenizer, decoder, post-processor) stays the source's.  Byte-fallback BPE
    models get their 256 ``<0xNN>`` tokens back after training (the trainer does not make them).
    """
    from transformers import AutoTokenizer

    cfg = src.tokenizer_config
    if src.tokenizer_json is not None:
        tj = src.tokenizer_json
    else:
        tj, cfg = convert_to_tokenizer_json(src)
    lines = [line for line in (corpus if corpus is not None else _default_corpus()) if line and line.strip()]
    if not lines:
        raise ValueError("retraining a tokenizer needs a non-empty corpus")
    original_vocab = tj_token_ids(tj)
    original_size = tj_total_size(tj)
    old_id_to_token = {i: t for t, i in original_vocab.items()}
    # Drop placeholders first (everything else kept), so the trainer does not re-add them.
    added = [t["content"] for t in sorted(tj.get("added_tokens") or (), key=lambda t: t["id"])]
    protected, dropped = protected_tokens(src, added, set(tj_vocab(tj)), old_id_to_token)
    check_specials(len(protected), vocab_size, protected)
    if dropped:
        notes.append(f"dropped {len(dropped)} unused placeholder tokens (e.g. {dropped[0]})")
    pruned, _ = restrict_tj(tj, set(original_vocab) - set(dropped))
    byte_fallback = tj_model_type(tj) == "BPE" and bool(tj["model"].get("byte_fallback"))
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "src"
        stage.mkdir()
        write_json(stage / TOKENIZER_JSON, pruned)
        if cfg is not None:
            stage_cfg = fix_tokenizer_config(cfg, old_id_to_token, tj_token_ids(pruned))
            stage_cfg.pop("vocab_file", None)
            write_json(stage / TOKENIZER_CONFIG, stage_cfg)
        if src.special_tokens_map is not None:
            stm = copy.deepcopy(src.special_tokens_map)
            filter_token_lists(stm, tj_token_ids(pruned))
            write_json(stage / SPECIAL_TOKENS_MAP, stm)
        if src.config is not None and cfg is None:
            write_json(stage / MODEL_CONFIG, src.config)
        tok = AutoTokenizer.from_pretrained(str(stage))
        out = Path(tmp) / "out"
        target = vocab_size - (256 if byte_fallback else 0)
        new_tj: dict | None = None
        for _attempt in range(4):  # the class may add tokens the trainer did not count: aim lower
            if target <= 0:
                break
            try:
                trained = train_new_from_iterator(tok, lines, target)
            except Exception as e:  # the Rust trainers raise plain Exceptions
                raise ValueError(f"cannot retrain {src.path} to vocab_size={vocab_size} (trainer target {target}): "
                                 f"{e}; ask for a larger vocab_size") from e
            if out.exists():
                shutil.rmtree(out)
            trained.save_pretrained(str(out))
            new_tj = read_json(out / TOKENIZER_JSON)
            if byte_fallback:
                new_tj = _with_byte_tokens(new_tj)
            size = tj_total_size(new_tj)
            if size <= vocab_size or size - vocab_size >= target:
                break
            target -= size - vocab_size
        if new_tj is None or tj_total_size(new_tj) > vocab_size:
            got = tj_total_size(new_tj) if new_tj is not None else f"more than {vocab_size}"
            raise ValueError(
                f"cannot retrain to vocab_size={vocab_size}: the special tokens plus the corpus alphabet"
                f"{' plus 256 byte-fallback tokens' if byte_fallback else ''} need {got} ids; "
                "ask for a larger vocab_size"
            )
        new_cfg = read_json(out / TOKENIZER_CONFIG)
        if cfg is not None:  # keep the source's settings, with the retrained ids
            merged = copy.deepcopy(cfg)
            merged.pop("vocab_file", None)
            merged["added_tokens_decoder"] = new_cfg.get("added_tokens_decoder", {})
            new_cfg = merged
    new_vocab = tj_token_ids(new_tj)
    id_map = {i: new_vocab[t] for i, t in old_id_to_token.items() if t in new_vocab}
    validate_tj(new_tj)
    table = write_outputs(src, dest, tj=new_tj, id_map=id_map, old_id_to_token=old_id_to_token,
                          original_size=original_size, spm_bytes=None, spm_name=None,
                          tokenizer_config=new_cfg)
    if src.spm_path is not None:
        notes.append(f"{src.spm_path.name} not written: a retrained tokenizer has no SentencePiece model")
    return tj_model_type(new_tj), id_map, original_size, table


def _with_byte_tokens(tj: dict) -> dict:
    """Insert the 256 ``<0xNN>`` byte-fallback tokens after the leading special tokens of a BPE vocab."""
    vocab = tj_vocab(tj)
    missing = [t for t in BYTE_FALLBACK_TOKENS if t not in vocab]
    if not missing:
        return tj
    specials = {t["content"] for t in tj.get("added_tokens") or ()}
    order = sorted(vocab, key=vocab.__getitem__)
    lead = 0
    while lead < len(order) and order[lead] in specials:
        lead += 1
    new_order = order[:lead] + missing + order[lead:]
    new_vocab = {t: i for i, t in enumerate(new_order)}
    tj = copy.deepcopy(tj)
    tj["model"]["vocab"] = new_vocab
    tj["model"]["byte_fallback"] = True
    for t in tj.get("added_tokens") or ():
        t["id"] = new_vocab.get(t["content"], t["id"] + len(missing))
    table = tj_token_ids(tj)
    tj["post_processor"] = fix_post_processor(tj.get("post_processor"), table)
    return tj
