"""The ``tokenizer.json`` format (the ``tokenizers`` library's serialization), read and rewritten as plain dicts.

Reading: the model type, vocabulary, merges, byte-level pipeline, post-processor tokens and total size.
Rewriting: :func:`restrict_tj` keeps a set of tokens, renumbers them densely in their original order and
fixes every id that refers to them (model, added tokens, post-processor, padding); :func:`validate_tj`
loads the result with ``tokenizers`` (imported inside the function).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Iterator


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (256 characters)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


#: The 256 characters of byte-level BPE vocabularies.
BYTE_LEVEL_ALPHABET = frozenset(bytes_to_unicode().values())
#: The byte-fallback tokens ``<0x00>`` ... ``<0xFF>`` of BPE / SentencePiece models, in byte order.
BYTE_FALLBACK_TOKENS = tuple(f"<0x{b:02X}>" for b in range(256))
BYTE_TOKEN = re.compile(r"<0x[0-9A-F]{2}>")


def _walk_components(node: Any, key: str) -> Iterator[dict]:
    """Yield ``node`` and the components nested in a ``Sequence`` (``key`` names its list)."""
    if isinstance(node, dict):
        yield node
        for child in node.get(key) or ():
            yield from _walk_components(child, key)


# ------------------------------------------------------------------------------------------ reading


def tj_model_type(tj: dict) -> str:
    """``BPE`` | ``WordPiece`` | ``Unigram`` | ``WordLevel`` (guessed from the fields when untyped)."""
    model = tj["model"]
    kind = model.get("type")
    if kind:
        return kind
    if "merges" in model:
        return "BPE"
    if isinstance(model.get("vocab"), list):
        return "Unigram"
    if "continuing_subword_prefix" in model or "max_input_chars_per_word" in model:
        return "WordPiece"
    return "WordLevel"


def tj_vocab(tj: dict) -> dict[str, int]:
    """Model vocabulary token -> id."""
    vocab = tj["model"]["vocab"]
    if isinstance(vocab, list):
        return {item[0]: i for i, item in enumerate(vocab)}
    return dict(vocab)


def tj_token_ids(tj: dict) -> dict[str, int]:
    """Every token -> id: the model vocabulary plus the added tokens."""
    out = tj_vocab(tj)
    out.update({t["content"]: t["id"] for t in tj.get("added_tokens") or ()})
    return out


def tj_byte_level(tj: dict) -> bool:
    """True for a byte-level pipeline (a ``ByteLevel`` pre-tokenizer or decoder)."""
    for key, part in (("pre_tokenizers", "pre_tokenizer"), ("decoders", "decoder")):
        for node in _walk_components(tj.get(part), key):
            if node.get("type") == "ByteLevel":
                return True
    return False


def tj_merges(tj: dict) -> list[tuple[str, str]]:
    """The BPE merges as pairs, in rank order (either serialization: ``"a b"`` strings or lists)."""
    out = []
    for m in tj["model"].get("merges") or ():
        if isinstance(m, str):
            a, _, b = m.partition(" ")
            out.append((a, b))
        else:
            out.append((m[0], m[1]))
    return out


def post_processor_tokens(node: Any) -> set[str]:
    """Tokens a post-processor inserts (template special tokens, ``sep`` / ``cls``)."""
    tokens: set[str] = set()
    for proc in _walk_components(node, "processors"):
        for spec in (proc.get("special_tokens") or {}).values():
            tokens.update(spec.get("tokens") or ())
        for key in ("sep", "cls"):
            if isinstance(proc.get(key), list) and proc[key]:
                tokens.add(proc[key][0])
    return tokens


def tj_total_size(tj: dict) -> int:
    """Number of ids (highest id + 1) over the model vocabulary and the added tokens."""
    ids = set(tj_vocab(tj).values())
    ids.update(t["id"] for t in tj.get("added_tokens") or ())
    return max(ids) + 1 if ids else 0


# ---------------------------------------------------------------------------------------- rewriting


def restrict_tj(tj: dict, kept: set[str]) -> tuple[dict, dict[int, int]]:
    """Rewrite ``tj`` to the ``kept`` tokens, ids dense in original order. Returns (new tj, old->new)."""
    kind = tj_model_type(tj)
    model = tj["model"]
    vocab = tj_vocab(tj)
    model_ids = sorted(i for t, i in vocab.items() if t in kept)
    added = sorted(tj.get("added_tokens") or (), key=lambda t: t["id"])
    in_model = set(vocab.values())
    added_only = sorted({t["id"] for t in added if t["id"] not in in_model and t["content"] in kept})
    id_map = {old: new for new, old in enumerate(model_ids + added_only)}
    new = {k: v for k, v in tj.items() if k != "model"}
    new_model = {k: v for k, v in model.items() if k not in ("vocab", "merges")}
    if kind == "Unigram":
        new_model["vocab"] = [list(model["vocab"][i]) for i in model_ids]
        if model.get("unk_id") is not None:
            new_model["unk_id"] = id_map[model["unk_id"]]
    else:
        id_to_token = {i: t for t, i in vocab.items()}
        new_model["vocab"] = {id_to_token[i]: id_map[i] for i in model_ids}
    if kind == "BPE":
        cut = len(model.get("continuing_subword_prefix") or "")
        kept_model = set(new_model["vocab"])
        merges = []
        for m in model.get("merges") or ():
            a, b = (m.split(" ", 1) if isinstance(m, str) else m[:2])
            if a in kept_model and b in kept_model and a + b[cut:] in kept_model:
                merges.append(m)
        new_model["merges"] = merges
    if model.get("unk_token") and model["unk_token"] not in kept and kind in ("BPE", "WordPiece", "WordLevel"):
        raise AssertionError(f"unk token {model['unk_token']!r} was dropped")  # protected: cannot happen
    # keep key order of the original model section
    new["model"] = {k: new_model[k] for k in model if k in new_model}
    new["added_tokens"] = [dict(t, id=id_map[t["id"]]) for t in added if t["id"] in id_map and t["content"] in kept]
    token_to_new = {t: id_map[i] for t, i in vocab.items() if i in id_map}
    token_to_new.update({t["content"]: t["id"] for t in new["added_tokens"]})
    new["post_processor"] = fix_post_processor(tj.get("post_processor"), token_to_new)
    padding = tj.get("padding")
    if isinstance(padding, dict) and padding.get("pad_token") in token_to_new:
        new["padding"] = dict(padding, pad_id=token_to_new[padding["pad_token"]])
    return {k: new[k] for k in tj}, id_map


def fix_post_processor(node: Any, token_to_new: dict[str, int]) -> Any:
    """A copy of the post-processor ``node`` with its special-token ids taken from ``token_to_new``."""
    if not isinstance(node, dict):
        return node
    node = copy.deepcopy(node)
    for proc in _walk_components(node, "processors"):
        for spec in (proc.get("special_tokens") or {}).values():
            spec["ids"] = [token_to_new[t] for t in spec.get("tokens") or ()]
        for key in ("sep", "cls"):
            if isinstance(proc.get(key), list) and proc[key]:
                proc[key] = [proc[key][0], token_to_new[proc[key][0]]]
    return node


def validate_tj(tj: dict) -> None:
    """Load ``tj`` with the tokenizers library: raises on an inconsistent file (e.g. a merge out of vocab)."""
    from tokenizers import Tokenizer

    Tokenizer.from_str(json.dumps(tj, ensure_ascii=False))
