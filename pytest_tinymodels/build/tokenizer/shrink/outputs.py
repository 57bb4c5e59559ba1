"""Writing a shrunk tokenizer: its files, and every id the source's other files name, fixed to the new ids.

:func:`write_outputs` writes ``tokenizer.json``, the ``.model``, ``tokenizer_config.json`` (its
``added_tokens_decoder`` renumbered and completed), ``special_tokens_map.json``, ``added_tokens.json``,
a copied ``config.json`` (``vocab_size`` and ``*_token_id`` fixed), the side vocab files
(``vocab.txt``, ``vocab.json``/``merges.txt``) and the chat template files.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

from .source import (ADDED_TOKENS_JSON, COPIED_FILES, DEFAULT_SPM_NAME, MODEL_CONFIG, SPECIAL_TOKENS_MAP,
                     TOKENIZER_CONFIG, TOKENIZER_JSON, Source, is_token_id_key, spm_proto, token_content, write_json)
from .tokenizer_json import tj_merges, tj_model_type, tj_token_ids, tj_vocab

#: Tokenizer files a shrink writes (removed from ``dest`` first, so none is stale).
OUTPUT_FILES = (TOKENIZER_JSON, TOKENIZER_CONFIG, SPECIAL_TOKENS_MAP, ADDED_TOKENS_JSON,
                "vocab.txt", "vocab.json", "merges.txt") + COPIED_FILES

#: What each recipe returns: (model type, old id -> new id, original size, token -> new id).
Step = tuple[str, dict[int, int], int, dict[str, int]]


def clear_dest(dest: Path) -> None:
    """Remove the tokenizer files a previous shrink left in ``dest`` (nothing else)."""
    if not dest.is_dir():
        return
    for path in dest.iterdir():
        if path.is_file() and (path.name in OUTPUT_FILES or path.suffix == ".model"):
            path.unlink()


def output_files(dest: Path) -> dict[str, int]:
    """name -> size of the files a shrink wrote into ``dest``."""
    names = set(OUTPUT_FILES) | {MODEL_CONFIG}
    return {p.name: p.stat().st_size for p in sorted(dest.iterdir())
            if p.is_file() and (p.name in names or p.suffix == ".model")}


# ------------------------------------------------------------------------- config files rewriting


def fix_tokenizer_config(cfg: dict, old_id_to_token: dict[int, str], token_to_new: dict[str, int]) -> dict:
    """A copy of ``cfg`` with ``added_tokens_decoder`` renumbered and dropped tokens left out of its lists."""
    cfg = copy.deepcopy(cfg)
    decoder = cfg.get("added_tokens_decoder")
    if isinstance(decoder, dict):
        fixed = {}
        for old, entry in decoder.items():
            text = token_content(entry) or old_id_to_token.get(int(old))
            if text in token_to_new:
                fixed[str(token_to_new[text])] = entry
        cfg["added_tokens_decoder"] = dict(sorted(fixed.items(), key=lambda kv: int(kv[0])))
    filter_token_lists(cfg, token_to_new)
    return cfg


def complete_added_tokens_decoder(cfg: dict, tj: dict) -> None:
    """List every added token of ``tj`` in ``cfg["added_tokens_decoder"]``.

    transformers 5 classes with their own ``__init__`` rebuild the backend from the vocabulary
    and take added tokens from this table, not from tokenizer.json.
    """
    decoder = dict(cfg.get("added_tokens_decoder") or {})
    for t in tj.get("added_tokens") or ():
        decoder.setdefault(str(t["id"]), {
            "content": t["content"],
            "lstrip": bool(t.get("lstrip", False)),
            "normalized": bool(t.get("normalized", False)),
            "rstrip": bool(t.get("rstrip", False)),
            "single_word": bool(t.get("single_word", False)),
            "special": bool(t.get("special", False)),
        })
    if decoder:
        cfg["added_tokens_decoder"] = dict(sorted(decoder.items(), key=lambda kv: int(kv[0])))


def filter_token_lists(cfg: dict, token_to_new: dict[str, int]) -> None:
    """Drop tokens not in ``token_to_new`` from ``cfg``'s additional / extra special-token lists (in place)."""
    for key in ("additional_special_tokens", "extra_special_tokens"):
        value = cfg.get(key)
        if isinstance(value, list):
            cfg[key] = [t for t in value if token_content(t) in token_to_new]
        elif isinstance(value, dict):  # v5 named extra special tokens
            cfg[key] = {k: t for k, t in value.items() if token_content(t) in token_to_new}


def _fix_model_config(cfg: dict, id_map: dict[int, int], original_size: int, new_size: int) -> dict:
    cfg = copy.deepcopy(cfg)

    def visit(node: dict) -> None:
        for key, value in list(node.items()):
            if key == "vocab_size" and isinstance(value, int) and value > new_size:
                node[key] = new_size
            elif is_token_id_key(key):
                if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                    node[key] = id_map.get(value, value if value < new_size else None)
                elif isinstance(value, list):
                    node[key] = [id_map.get(v, v) if isinstance(v, int) else v for v in value]
            elif isinstance(value, dict):
                visit(value)

    visit(cfg)
    return cfg


# ------------------------------------------------------------------------------------------ writing


def write_outputs(
    src: Source,
    dest: Path,
    *,
    tj: dict | None,
    id_map: dict[int, int],
    old_id_to_token: dict[int, str],
    original_size: int,
    spm_bytes: bytes | None,
    spm_name: str | None,
    tokenizer_config: dict | None,
) -> dict[str, int]:
    """Write the shrunk tokenizer files into ``dest``; returns the token -> new id table."""
    dest.mkdir(parents=True, exist_ok=True)
    token_to_new = tj_token_ids(tj) if tj is not None else {}
    if tj is not None:
        write_json(dest / TOKENIZER_JSON, tj)
    if spm_bytes is not None:
        (dest / (spm_name or DEFAULT_SPM_NAME)).write_bytes(spm_bytes)
        if not token_to_new:
            proto = spm_proto(spm_bytes)
            token_to_new = {p.piece: i for i, p in enumerate(proto.pieces)}
    new_size = max(token_to_new.values()) + 1
    cfg = tokenizer_config if tokenizer_config is not None else src.tokenizer_config
    if cfg is not None:
        cfg = fix_tokenizer_config(cfg, old_id_to_token, token_to_new)
        if tj is not None:
            complete_added_tokens_decoder(cfg, tj)
        if spm_bytes is None and isinstance(cfg.get("vocab_file"), str) and cfg["vocab_file"].endswith(".model"):
            cfg.pop("vocab_file")
        write_json(dest / TOKENIZER_CONFIG, cfg)
    if src.special_tokens_map is not None:
        stm = copy.deepcopy(src.special_tokens_map)
        filter_token_lists(stm, token_to_new)
        write_json(dest / SPECIAL_TOKENS_MAP, stm)
    if src.added_tokens_json is not None:
        fixed = {t: token_to_new[t] for t in src.added_tokens_json if t in token_to_new}
        if fixed:
            write_json(dest / ADDED_TOKENS_JSON, fixed)
    if src.config is not None:
        write_json(dest / MODEL_CONFIG, _fix_model_config(src.config, id_map, original_size, new_size))
    by_new_id = sorted(token_to_new, key=token_to_new.__getitem__)
    if src.vocab_txt is not None:
        (dest / "vocab.txt").write_text("".join(t + "\n" for t in by_new_id), encoding="utf-8")
    if src.vocab_json is not None and tj is not None:
        write_json(dest / "vocab.json", tj_vocab(tj), indent=None)
    if src.merges_txt is not None and tj is not None and tj_model_type(tj) == "BPE":
        lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in tj_merges(tj)]
        (dest / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if src.directory is not None:
        for name in COPIED_FILES:
            if (src.directory / name).is_file():
                shutil.copyfile(src.directory / name, dest / name)
    return token_to_new
