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

Only the standard library is imported at module level; ``tokenizers`` is used to validate the
result, ``sentencepiece``/``protobuf`` for ``.model`` files and ``transformers`` only where a
SentencePiece model must be converted or a tokenizer retrained.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

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

TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
SPECIAL_TOKENS_MAP = "special_tokens_map.json"
ADDED_TOKENS_JSON = "added_tokens.json"
MODEL_CONFIG = "config.json"
#: Extra files copied verbatim from the source directory when present.
COPIED_FILES = ("chat_template.jinja", "chat_template.json")
#: Tokenizer files this module writes (removed from ``dest`` first, so none is stale).
OUTPUT_FILES = (TOKENIZER_JSON, TOKENIZER_CONFIG, SPECIAL_TOKENS_MAP, ADDED_TOKENS_JSON,
                "vocab.txt", "vocab.json", "merges.txt") + COPIED_FILES
#: File name of the SentencePiece model written when the source was a bare ``.model`` file.
DEFAULT_SPM_NAME = "tokenizer.model"

#: Printable ASCII plus the SentencePiece word-boundary mark: characters always kept.
CORE_CHARS = frozenset(chr(c) for c in range(32, 127)) | {"\u2581"}
#: Extra (non-core) characters are all kept when they fit in this share of the room left after
#: the required tokens; otherwise the first of them (lowest id / best score) fill EXTRA_CHAR_SHARE.
ALL_CHARS_SHARE = 0.5
EXTRA_CHAR_SHARE = 0.25

#: Reserved placeholder tokens that carry no meaning and are dropped unless referenced.
PLACEHOLDER_PATTERNS = tuple(
    re.compile(p)
    for p in (
        r"\[unused\d+\]",
        r"\[control_\d+\]",
        r"<unused\d+>",
        r"<unused_\d+>",
        r"<\|unused_?\d+\|>",
        r"<\|reserved_special_token_\d+\|>",
        r"<\|reserved_\d+\|>",
        r"<\|reserved_token_\d+\|>",
        r"<SPECIAL_\d+>",
        r"\[UNUSED_TOKEN_\d+\]",
        r"<\|place\u2581holder\u2581no\u2581\d+\|>",
    )
)

#: Named special-token attributes of transformers tokenizers.
SPECIAL_ROLES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")

_BYTE_TOKEN = re.compile(r"<0x[0-9A-F]{2}>")

# SentencePiece piece types (sentencepiece_model.proto).
SPM_NORMAL, SPM_UNKNOWN, SPM_CONTROL, SPM_USER_DEFINED, SPM_UNUSED, SPM_BYTE = 1, 2, 3, 4, 5, 6
SPM_UNIGRAM, SPM_BPE = 1, 2


#: What each recipe returns: (model type, old id -> new id, original size, token -> new id).
_Step = tuple[str, dict[int, int], int, dict[str, int]]


class _CannotReach(Exception):
    """The recipe cannot reach the requested size (its required tokens alone are more).

    ``hard`` requirements (special tokens, the byte alphabet) bind every recipe, retraining
    included; the others (the core character alphabet of the source) only bind truncation.
    """

    def __init__(self, minimum: int, detail: str, *, hard: bool = False) -> None:
        super().__init__(detail)
        self.minimum = minimum
        self.detail = detail
        self.hard = hard


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


# --------------------------------------------------------------------------------------- helpers


def _is_placeholder(token: str) -> bool:
    return any(p.fullmatch(token) for p in PLACEHOLDER_PATTERNS)


def _bytes_to_unicode() -> dict[int, str]:
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


BYTE_LEVEL_ALPHABET = frozenset(_bytes_to_unicode().values())
BYTE_FALLBACK_TOKENS = tuple(f"<0x{b:02X}>" for b in range(256))


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _write_json(path: Path, data: Any, *, indent: int | None = 2) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=indent)
    path.write_text(text + "\n", encoding="utf-8")


def _token_content(value: Any) -> str | None:
    """Text of a special-token entry (a string or an AddedToken dict)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _walk_components(node: Any, key: str) -> Iterator[dict]:
    """Yield ``node`` and the components nested in a ``Sequence`` (``key`` names its list)."""
    if isinstance(node, dict):
        yield node
        for child in node.get(key) or ():
            yield from _walk_components(child, key)


def _spm_pb2() -> Any:
    """The SentencePiece ``ModelProto`` module: sentencepiece's own, else the one transformers ships."""
    try:
        from sentencepiece import sentencepiece_model_pb2

        return sentencepiece_model_pb2
    except ImportError:
        pass
    try:
        import google.protobuf  # noqa: F401
    except ImportError:
        raise ImportError(
            "reading a SentencePiece .model file needs `sentencepiece` or `protobuf`: pip install sentencepiece"
        ) from None
    try:
        from transformers.utils import sentencepiece_model_pb2_new as pb2
    except ImportError:  # old protobuf
        from transformers.utils import sentencepiece_model_pb2 as pb2
    return pb2


def _load_spm(path: Path) -> Any:
    proto = _spm_pb2().ModelProto()
    proto.ParseFromString(path.read_bytes())
    if not len(proto.pieces):
        raise ValueError(f"{path} is not a SentencePiece model (no pieces)")
    return proto


# --------------------------------------------------------------------------------------- source


@dataclass
class _Source:
    """The tokenizer files of a source directory (or a bare ``.model`` file)."""

    path: Path
    directory: Path | None
    tokenizer_json: dict | None = None
    spm_path: Path | None = None
    tokenizer_config: dict | None = None
    special_tokens_map: dict | None = None
    added_tokens_json: dict | None = None
    config: dict | None = None
    vocab_txt: Path | None = None
    vocab_json: Path | None = None
    merges_txt: Path | None = None
    chat_template: str = ""

    @classmethod
    def load(cls, src: str | os.PathLike) -> "_Source":
        path = Path(src)
        if path.is_file():
            if path.name == TOKENIZER_JSON:
                return cls.load(path.parent)
            try:
                _load_spm(path)
            except ImportError:
                raise
            except Exception:
                raise ValueError(
                    f"source {path} is a file but neither a SentencePiece model nor tokenizer.json"
                ) from None
            return cls(path=path, directory=None, spm_path=path)
        if not path.is_dir():
            raise FileNotFoundError(f"tokenizer source {path} does not exist")
        s = cls(path=path, directory=path)
        if (path / TOKENIZER_JSON).is_file():
            s.tokenizer_json = _read_json(path / TOKENIZER_JSON)
        for name, attr in (
            (TOKENIZER_CONFIG, "tokenizer_config"),
            (SPECIAL_TOKENS_MAP, "special_tokens_map"),
            (ADDED_TOKENS_JSON, "added_tokens_json"),
            (MODEL_CONFIG, "config"),
        ):
            if (path / name).is_file():
                setattr(s, attr, _read_json(path / name))
        models = sorted(p for p in path.glob("*.model") if p.is_file())
        if models:
            preferred = [p for p in models if p.name == DEFAULT_SPM_NAME]
            s.spm_path = (preferred or models)[0]
            vocab_file = (s.tokenizer_config or {}).get("vocab_file")
            if isinstance(vocab_file, str) and (path / vocab_file).is_file() and vocab_file.endswith(".model"):
                s.spm_path = path / vocab_file
        for name, attr in (("vocab.txt", "vocab_txt"), ("vocab.json", "vocab_json"), ("merges.txt", "merges_txt")):
            if (path / name).is_file():
                setattr(s, attr, path / name)
        texts = []
        template = (s.tokenizer_config or {}).get("chat_template")
        if isinstance(template, str):
            texts.append(template)
        elif isinstance(template, list):
            texts.extend(str(t.get("template", "")) for t in template if isinstance(t, dict))
        for name in COPIED_FILES:
            if (path / name).is_file():
                texts.append((path / name).read_text(encoding="utf-8"))
        s.chat_template = "\n".join(texts)
        if s.tokenizer_json is None and s.spm_path is None and s.vocab_txt is None and s.vocab_json is None:
            raise ValueError(
                f"{path} has no tokenizer files (tokenizer.json, *.model, vocab.txt or vocab.json/merges.txt)"
            )
        return s

    def named_special_tokens(self) -> dict[str, str]:
        """role -> token text, from tokenizer_config.json and special_tokens_map.json."""
        out: dict[str, str] = {}
        for source in (self.special_tokens_map or {}, self.tokenizer_config or {}):
            for role in SPECIAL_ROLES:
                text = _token_content(source.get(role))
                if text is not None:
                    out.setdefault(role, text)
        return out

    def config_token_ids(self) -> set[int]:
        ids: set[int] = set()

        def visit(node: Any) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    if _is_token_id_key(key):
                        for v in value if isinstance(value, list) else [value]:
                            if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
                                ids.add(v)
                    elif isinstance(value, dict):
                        visit(value)

        visit(self.config or {})
        return ids


def _is_token_id_key(key: str) -> bool:
    return key.endswith("_token_id") or key.endswith("_token_ids") or key.endswith("_token_index")


# ------------------------------------------------------------------------- tokenizer.json: reading


def _tj_model_type(tj: dict) -> str:
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


def _tj_vocab(tj: dict) -> dict[str, int]:
    """Model vocabulary token -> id."""
    vocab = tj["model"]["vocab"]
    if isinstance(vocab, list):
        return {item[0]: i for i, item in enumerate(vocab)}
    return dict(vocab)


def _tj_byte_level(tj: dict) -> bool:
    for key, part in (("pre_tokenizers", "pre_tokenizer"), ("decoders", "decoder")):
        for node in _walk_components(tj.get(part), key):
            if node.get("type") == "ByteLevel":
                return True
    return False


def _tj_merges(tj: dict) -> list[tuple[str, str]]:
    out = []
    for m in tj["model"].get("merges") or ():
        if isinstance(m, str):
            a, _, b = m.partition(" ")
            out.append((a, b))
        else:
            out.append((m[0], m[1]))
    return out


def _post_processor_tokens(node: Any) -> set[str]:
    tokens: set[str] = set()
    for proc in _walk_components(node, "processors"):
        for spec in (proc.get("special_tokens") or {}).values():
            tokens.update(spec.get("tokens") or ())
        for key in ("sep", "cls"):
            if isinstance(proc.get(key), list) and proc[key]:
                tokens.add(proc[key][0])
    return tokens


def _tj_total_size(tj: dict) -> int:
    ids = set(_tj_vocab(tj).values())
    ids.update(t["id"] for t in tj.get("added_tokens") or ())
    return max(ids) + 1 if ids else 0


# ------------------------------------------------------------------------ selection (shared rules)


def _protected_tokens(
    src: _Source, added: Iterable[str], vocab_tokens: set[str], id_to_token: dict[int, str]
) -> tuple[list[str], list[str]]:
    """(tokens that must be kept, placeholder tokens dropped) among added tokens + referenced ones."""
    referenced = set(src.named_special_tokens().values())
    referenced.update(_post_processor_tokens((src.tokenizer_json or {}).get("post_processor")))
    if src.tokenizer_json:
        model = src.tokenizer_json["model"]
        if isinstance(model.get("unk_token"), str):
            referenced.add(model["unk_token"])
        if model.get("unk_id") is not None and isinstance(model.get("vocab"), list):
            referenced.add(model["vocab"][model["unk_id"]][0])
        padding = src.tokenizer_json.get("padding")
        if isinstance(padding, dict) and isinstance(padding.get("pad_token"), str):
            referenced.add(padding["pad_token"])
    for token_id in src.config_token_ids():
        if token_id in id_to_token:
            referenced.add(id_to_token[token_id])
    keep, dropped = [], []
    seen: set[str] = set()
    added = list(added)
    added_set = set(added)
    for token in added + sorted(referenced):
        if token in seen or (token not in vocab_tokens and token not in added_set):
            continue
        seen.add(token)
        if _is_placeholder(token) and token not in referenced and token not in src.chat_template:
            dropped.append(token)
        else:
            keep.append(token)
    return keep, dropped


def _check_specials(n_special: int, vocab_size: int, examples: Iterable[str]) -> None:
    if n_special > vocab_size:
        shown = ", ".join(list(examples)[:8])
        raise _CannotReach(
            n_special,
            f"vocab_size={vocab_size} is smaller than the {n_special} special/added tokens that must be kept "
            f"({shown}{', ...' if n_special > 8 else ''})",
            hard=True,
        )


def _char_of(token: str, prefix: str | None, suffix: str | None) -> str | None:
    core = token
    if prefix and core.startswith(prefix) and len(core) > len(prefix):
        core = core[len(prefix):]
    if suffix and core.endswith(suffix) and len(core) > len(suffix):
        core = core[: -len(suffix)]
    return core if len(core) == 1 else None


class _Budget:
    """An ordered set of kept tokens with a size limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept: set[str] = set()

    def force(self, tokens: Iterable[str]) -> None:
        self.kept.update(tokens)

    def add(self, token: str) -> bool:
        if token in self.kept:
            return True
        if len(self.kept) >= self.limit:
            return False
        self.kept.add(token)
        return True

    @property
    def full(self) -> bool:
        return len(self.kept) >= self.limit

    @property
    def room(self) -> int:
        return self.limit - len(self.kept)


def _require(budget: _Budget, hard: Iterable[str], soft: Iterable[str], what: list[str]) -> None:
    """Force the required tokens in; raise _CannotReach when they do not fit.

    ``what`` describes (kept specials, hard requirement, soft requirement) for the messages.
    """
    needed = set(hard) | budget.kept
    if len(needed) > budget.limit:
        raise _CannotReach(len(needed), f"vocab_size={budget.limit} is smaller than the {len(needed)} tokens "
                                        f"every tokenizer of this kind needs ({' + '.join(what[:-1])})", hard=True)
    needed.update(soft)
    if len(needed) > budget.limit:
        raise _CannotReach(len(needed), f"truncation needs at least {len(needed)} tokens ({' + '.join(what)}) "
                                        f"but vocab_size={budget.limit}")
    budget.force(needed)


def _add_extra_chars(budget: _Budget, chars: Iterable[Iterable[str]]) -> None:
    """Add character groups (a char with its prefixed forms): all of them when they take at most
    ALL_CHARS_SHARE of the room, else the first ones up to EXTRA_CHAR_SHARE of it."""
    groups = [g for g in ([t for t in group if t not in budget.kept] for group in chars) if g]
    total = sum(len(g) for g in groups)
    share = ALL_CHARS_SHARE if total <= budget.room * ALL_CHARS_SHARE else EXTRA_CHAR_SHARE
    allowance = int(budget.room * share)
    for group in groups:
        if len(group) > allowance:
            break
        budget.force(group)
        allowance -= len(group)


# ------------------------------------------------------------------- selection per tokenizer.json model


def _select_tj(src: _Source, tj: dict, vocab_size: int) -> tuple[set[str], list[str]]:
    """Choose the tokens of ``tj`` to keep: (kept token texts, notes)."""
    kind = _tj_model_type(tj)
    vocab = _tj_vocab(tj)
    by_id = sorted(vocab, key=vocab.__getitem__)
    id_to_token = {i: t for t, i in vocab.items()}
    added = [t["content"] for t in sorted(tj.get("added_tokens") or (), key=lambda t: t["id"])]
    for t in tj.get("added_tokens") or ():
        id_to_token.setdefault(t["id"], t["content"])
    protected, dropped = _protected_tokens(src, added, set(vocab), id_to_token)
    _check_specials(len(protected), vocab_size, protected)
    notes = []
    if dropped:
        notes.append(f"dropped {len(dropped)} unused placeholder tokens (e.g. {dropped[0]})")
    budget = _Budget(vocab_size)
    budget.force(protected)
    skip = set(dropped) | {t for t in vocab if _is_placeholder(t) and t not in budget.kept}
    if len(skip) > len(dropped):
        notes.append(f"skipped {len(skip) - len(dropped)} placeholder tokens of the vocabulary")
    model = tj["model"]
    if kind == "BPE":
        _select_bpe(tj, vocab, by_id, budget, skip)
    elif kind == "WordPiece":
        _select_wordpiece(model, vocab, by_id, budget, skip)
    elif kind == "Unigram":
        _select_unigram_pieces(
            [(p[0], p[1]) for p in model["vocab"]], bool(model.get("byte_fallback")), budget, skip,
            normal=lambda i: True,
        )
    elif kind == "WordLevel":
        for token in by_id:
            if budget.full:
                break
            if token not in skip:
                budget.add(token)
    else:
        raise ValueError(f"cannot truncate a tokenizer.json with model type {kind!r}")
    return budget.kept, notes


def _select_bpe(tj: dict, vocab: dict[str, int], by_id: list[str], budget: _Budget, skip: set[str]) -> None:
    model = tj["model"]
    prefix = model.get("continuing_subword_prefix") or None
    suffix = model.get("end_of_word_suffix") or None
    cut = len(prefix) if prefix else 0
    merges = _tj_merges(tj)
    results = {a + b[cut:] for a, b in merges}
    required: set[str] = set()
    what = [f"{len(budget.kept)} special tokens"]
    if _tj_byte_level(tj):
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
    _require(budget, required, core, what)
    _add_extra_chars(budget, ([t] for t in chars))
    for a, b in merges:
        if budget.full:
            break
        if a in budget.kept and b in budget.kept:
            r = a + b[cut:]
            if r in vocab and r not in skip:
                budget.add(r)


def _select_wordpiece(model: dict, vocab: dict[str, int], by_id: list[str], budget: _Budget, skip: set[str]) -> None:
    prefix = model.get("continuing_subword_prefix") or "##"
    groups = []
    for token in by_id:
        if len(token) == 1 and token not in skip:
            groups.append([token] + ([prefix + token] if prefix + token in vocab else []))
    core = [t for g in groups if g[0] in CORE_CHARS for t in g]
    _require(budget, (), core,
             [f"{len(budget.kept)} special tokens", f"{len(core)} core characters and their {prefix} forms"])
    _add_extra_chars(budget, groups)
    char_tokens = {t for g in groups for t in g}
    for token in by_id:
        if budget.full:
            break
        if token not in skip and token not in char_tokens:
            budget.add(token)


def _select_unigram_pieces(
    pieces: list[tuple[str, float]], byte_fallback: bool, budget: _Budget, skip: set[str], normal: Any
) -> None:
    """Unigram selection over (piece, score) pairs; ``normal(i)`` says whether piece i may be dropped."""
    required = [p for p, _ in pieces if _BYTE_TOKEN.fullmatch(p)] if byte_fallback else []
    core = [p for i, (p, _) in enumerate(pieces) if len(p) == 1 and p in CORE_CHARS and normal(i) and p not in skip]
    _require(budget, required, core,
             [f"{len(budget.kept)} special pieces", f"{len(required)} byte pieces", f"{len(core)} core characters"])
    candidates = (i for i, (p, _) in enumerate(pieces) if normal(i) and p not in skip)
    order = sorted(candidates, key=lambda i: (-pieces[i][1], i))
    for i in order:
        if budget.full:
            break
        budget.add(pieces[i][0])


# ------------------------------------------------------------------------- tokenizer.json: rewriting


def _apply_keep_tj(tj: dict, kept: set[str]) -> tuple[dict, dict[int, int]]:
    """Rewrite ``tj`` to the ``kept`` tokens, ids dense in original order. Returns (new tj, old->new)."""
    kind = _tj_model_type(tj)
    model = tj["model"]
    vocab = _tj_vocab(tj)
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
    new["post_processor"] = _fix_post_processor(tj.get("post_processor"), token_to_new)
    padding = tj.get("padding")
    if isinstance(padding, dict) and padding.get("pad_token") in token_to_new:
        new["padding"] = dict(padding, pad_id=token_to_new[padding["pad_token"]])
    return {k: new[k] for k in tj}, id_map


def _fix_post_processor(node: Any, token_to_new: dict[str, int]) -> Any:
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


def _validate_tj(tj: dict) -> None:
    """Load ``tj`` with the tokenizers library: raises on an inconsistent file (e.g. a merge out of vocab)."""
    from tokenizers import Tokenizer

    Tokenizer.from_str(json.dumps(tj, ensure_ascii=False))


# ----------------------------------------------------------------------------- SentencePiece trimming


def _spm_protected(src: _Source, proto: Any) -> tuple[list[int], list[int]]:
    """(piece ids that must be kept, placeholder piece ids dropped)."""
    referenced = set(src.named_special_tokens().values())
    ts = proto.trainer_spec
    for attr in ("unk_piece", "bos_piece", "eos_piece", "pad_piece"):
        if getattr(ts, attr.replace("piece", "id")) >= 0:
            referenced.add(getattr(ts, attr))
    referenced.update(_post_processor_tokens((src.tokenizer_json or {}).get("post_processor")))
    for token_id in src.config_token_ids():
        if token_id < len(proto.pieces):
            referenced.add(proto.pieces[token_id].piece)
    keep, dropped = [], []
    for i, p in enumerate(proto.pieces):
        if p.type in (SPM_UNKNOWN, SPM_CONTROL, SPM_USER_DEFINED):
            if _is_placeholder(p.piece) and p.piece not in referenced and p.piece not in src.chat_template:
                dropped.append(i)
            else:
                keep.append(i)
        elif p.type == SPM_BYTE or (p.piece in referenced and p.type != SPM_UNUSED):
            keep.append(i)
    return keep, dropped


def _select_spm(src: _Source, proto: Any, vocab_size: int) -> tuple[set[int], list[str]]:
    pieces = proto.pieces
    protected, dropped = _spm_protected(src, proto)
    specials = [i for i in protected if pieces[i].type != SPM_BYTE]
    _check_specials(len(specials), vocab_size, (pieces[i].piece for i in specials))
    notes = [f"dropped {len(dropped)} unused placeholder pieces (e.g. {pieces[dropped[0]].piece})"] if dropped else []
    budget = _Budget(vocab_size)
    budget.force(pieces[i].piece for i in specials)
    skip = {pieces[i].piece for i in dropped}
    normal = [i for i, p in enumerate(pieces) if p.type == SPM_NORMAL]
    is_normal = set(normal).__contains__
    if proto.trainer_spec.model_type == SPM_BPE:
        required = [pieces[i].piece for i in protected if pieces[i].type == SPM_BYTE]
        chars = sorted((i for i in normal if len(pieces[i].piece) == 1), key=lambda i: (-pieces[i].score, i))
        core = [pieces[i].piece for i in chars if pieces[i].piece in CORE_CHARS]
        _require(budget, required, core,
                 [f"{len(specials)} special pieces", f"{len(required)} byte pieces", f"{len(core)} core characters"])
        _add_extra_chars(budget, ([pieces[i].piece] for i in chars))
        kept_normal = {pieces[i].piece for i in normal if pieces[i].piece in budget.kept}
        for i in sorted((i for i in normal if len(pieces[i].piece) > 1), key=lambda i: (-pieces[i].score, i)):
            if budget.full:
                break
            piece = pieces[i].piece
            if any(piece[:k] in kept_normal and piece[k:] in kept_normal for k in range(1, len(piece))):
                budget.add(piece)
                kept_normal.add(piece)
    else:
        _select_unigram_pieces([(p.piece, p.score) for p in pieces], proto.trainer_spec.byte_fallback, budget, skip,
                               normal=lambda i: is_normal(i) or pieces[i].type == SPM_BYTE)
    kept_ids = {i for i, p in enumerate(pieces) if p.piece in budget.kept and p.type != SPM_UNUSED}
    kept_ids.update(i for i in protected)
    return kept_ids, notes


def _apply_keep_spm(proto: Any, kept_ids: set[int]) -> tuple[Any, dict[int, int]]:
    new = _spm_pb2().ModelProto()
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


def _validate_spm(data: bytes) -> Any | None:
    try:
        import sentencepiece as spm
    except ImportError:
        return None
    return spm.SentencePieceProcessor(model_proto=data)


def _spm_aligned(proto: Any, tj: dict) -> bool:
    """True when the tokenizer.json model vocabulary numbers the pieces exactly like the .model."""
    vocab = _tj_vocab(tj)
    if len(vocab) != len(proto.pieces):
        return False
    return all(vocab.get(p.piece) == i for i, p in enumerate(proto.pieces))


# ------------------------------------------------------------------------- config files rewriting


def _fix_tokenizer_config(cfg: dict, old_id_to_token: dict[int, str], token_to_new: dict[str, int]) -> dict:
    cfg = copy.deepcopy(cfg)
    decoder = cfg.get("added_tokens_decoder")
    if isinstance(decoder, dict):
        fixed = {}
        for old, entry in decoder.items():
            text = _token_content(entry) or old_id_to_token.get(int(old))
            if text in token_to_new:
                fixed[str(token_to_new[text])] = entry
        cfg["added_tokens_decoder"] = dict(sorted(fixed.items(), key=lambda kv: int(kv[0])))
    _filter_token_lists(cfg, token_to_new)
    return cfg


def _complete_added_tokens_decoder(cfg: dict, tj: dict) -> None:
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


def _filter_token_lists(cfg: dict, token_to_new: dict[str, int]) -> None:
    for key in ("additional_special_tokens", "extra_special_tokens"):
        value = cfg.get(key)
        if isinstance(value, list):
            cfg[key] = [t for t in value if _token_content(t) in token_to_new]
        elif isinstance(value, dict):  # v5 named extra special tokens
            cfg[key] = {k: t for k, t in value.items() if _token_content(t) in token_to_new}


def _fix_model_config(cfg: dict, id_map: dict[int, int], original_size: int, new_size: int) -> dict:
    cfg = copy.deepcopy(cfg)

    def visit(node: dict) -> None:
        for key, value in list(node.items()):
            if key == "vocab_size" and isinstance(value, int) and value > new_size:
                node[key] = new_size
            elif _is_token_id_key(key):
                if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                    node[key] = id_map.get(value, value if value < new_size else None)
                elif isinstance(value, list):
                    node[key] = [id_map.get(v, v) if isinstance(v, int) else v for v in value]
            elif isinstance(value, dict):
                visit(value)

    visit(cfg)
    return cfg


# ------------------------------------------------------------------------------------- main steps


def _new_vocab_of_tj(tj: dict) -> dict[str, int]:
    out = _tj_vocab(tj)
    out.update({t["content"]: t["id"] for t in tj.get("added_tokens") or ()})
    return out


def _write_outputs(
    src: _Source,
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
    token_to_new = _new_vocab_of_tj(tj) if tj is not None else {}
    if tj is not None:
        _write_json(dest / TOKENIZER_JSON, tj)
    if spm_bytes is not None:
        (dest / (spm_name or DEFAULT_SPM_NAME)).write_bytes(spm_bytes)
        if not token_to_new:
            proto = _spm_pb2().ModelProto()
            proto.ParseFromString(spm_bytes)
            token_to_new = {p.piece: i for i, p in enumerate(proto.pieces)}
    new_size = max(token_to_new.values()) + 1
    cfg = tokenizer_config if tokenizer_config is not None else src.tokenizer_config
    if cfg is not None:
        cfg = _fix_tokenizer_config(cfg, old_id_to_token, token_to_new)
        if tj is not None:
            _complete_added_tokens_decoder(cfg, tj)
        if spm_bytes is None and isinstance(cfg.get("vocab_file"), str) and cfg["vocab_file"].endswith(".model"):
            cfg.pop("vocab_file")
        _write_json(dest / TOKENIZER_CONFIG, cfg)
    if src.special_tokens_map is not None:
        stm = copy.deepcopy(src.special_tokens_map)
        _filter_token_lists(stm, token_to_new)
        _write_json(dest / SPECIAL_TOKENS_MAP, stm)
    if src.added_tokens_json is not None:
        fixed = {t: token_to_new[t] for t in src.added_tokens_json if t in token_to_new}
        if fixed:
            _write_json(dest / ADDED_TOKENS_JSON, fixed)
    if src.config is not None:
        _write_json(dest / MODEL_CONFIG, _fix_model_config(src.config, id_map, original_size, new_size))
    by_new_id = sorted(token_to_new, key=token_to_new.__getitem__)
    if src.vocab_txt is not None:
        (dest / "vocab.txt").write_text("".join(t + "\n" for t in by_new_id), encoding="utf-8")
    if src.vocab_json is not None and tj is not None:
        _write_json(dest / "vocab.json", _tj_vocab(tj), indent=None)
    if src.merges_txt is not None and tj is not None and _tj_model_type(tj) == "BPE":
        lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in _tj_merges(tj)]
        (dest / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if src.directory is not None:
        for name in COPIED_FILES:
            if (src.directory / name).is_file():
                shutil.copyfile(src.directory / name, dest / name)
    return token_to_new


def _truncate(src: _Source, dest: Path, vocab_size: int, tj: dict, notes: list[str],
              tokenizer_config: dict | None = None) -> _Step:
    kept, more = _select_tj(src, tj, vocab_size)
    notes.extend(more)
    new_tj, id_map = _apply_keep_tj(tj, kept)
    _validate_tj(new_tj)
    old_id_to_token = {i: t for t, i in _new_vocab_of_tj(tj).items()}
    spm_bytes = spm_name = None
    proto = None
    if src.spm_path is not None:
        try:
            proto = _load_spm(src.spm_path)
        except ImportError:
            notes.append(f"{src.spm_path.name} not written: reading it needs sentencepiece or protobuf")
    if proto is not None:
        if _spm_aligned(proto, tj):
            kept_ids = {i for i, p in enumerate(proto.pieces) if p.piece in kept}
            new_proto, _ = _apply_keep_spm(proto, kept_ids)
            spm_bytes = new_proto.SerializeToString()
            _validate_spm(spm_bytes)
            spm_name = src.spm_path.name if src.directory is not None else DEFAULT_SPM_NAME
        else:
            notes.append(f"{src.spm_path.name} does not number pieces like tokenizer.json: not copied")
    table = _write_outputs(src, dest, tj=new_tj, id_map=id_map, old_id_to_token=old_id_to_token,
                           original_size=_tj_total_size(tj), spm_bytes=spm_bytes, spm_name=spm_name,
                           tokenizer_config=tokenizer_config)
    return _tj_model_type(tj), id_map, _tj_total_size(tj), table


def _spm_trim(src: _Source, dest: Path, vocab_size: int, notes: list[str]) -> _Step:
    if src.spm_path is None:
        raise ValueError(f"method='spm-trim' needs a SentencePiece .model file, {src.path} has none")
    proto = _load_spm(src.spm_path)
    tj = src.tokenizer_json if src.tokenizer_json is not None and _spm_aligned(proto, src.tokenizer_json) else None
    extra: list[str] = []  # tokens added after the pieces in tokenizer.json (e.g. a <pad> at id 32000)
    if tj is not None:
        vocab = _tj_vocab(tj)
        id_to_token = {i: t for t, i in _new_vocab_of_tj(tj).items()}
        added = [t["content"] for t in sorted(tj.get("added_tokens") or (), key=lambda t: t["id"])]
        extra = [t for t in _protected_tokens(src, added, set(vocab), id_to_token)[0] if t not in vocab]
    kept_ids, more = _select_spm(src, proto, vocab_size - len(extra))
    notes.extend(more)
    new_proto, id_map = _apply_keep_spm(proto, kept_ids)
    spm_bytes = new_proto.SerializeToString()
    _validate_spm(spm_bytes)
    spm_name = src.spm_path.name if src.directory is not None else DEFAULT_SPM_NAME
    kind = "Unigram" if proto.trainer_spec.model_type == SPM_UNIGRAM else "BPE"
    old_id_to_token = {i: p.piece for i, p in enumerate(proto.pieces)}
    new_tj = None
    if tj is not None:
        new_tj, id_map = _apply_keep_tj(tj, {p.piece for p in new_proto.pieces} | set(extra))
        old_id_to_token = {i: t for t, i in _new_vocab_of_tj(tj).items()}
        _validate_tj(new_tj)
    tokenizer_config = _default_spm_config(new_proto) if _needs_default_config(src) else src.tokenizer_config
    table = _write_outputs(src, dest, tj=new_tj, id_map=id_map, old_id_to_token=old_id_to_token,
                           original_size=len(proto.pieces), spm_bytes=spm_bytes, spm_name=spm_name,
                           tokenizer_config=tokenizer_config)
    if new_tj is None:
        if src.tokenizer_json is not None:
            notes.append("tokenizer.json does not number pieces like the .model: regenerated from the trimmed model")
        _add_fast_tokenizer(dest)
    return kind, id_map, len(proto.pieces), table


def _needs_default_config(src: _Source) -> bool:
    """A SentencePiece source that names no tokenizer class (no tokenizer_config, no model_type)."""
    return (src.spm_path is not None and src.tokenizer_config is None
            and not (src.config or {}).get("model_type"))


def _default_spm_config(proto: Any) -> dict:
    """tokenizer_config.json for a bare SentencePiece model.

    Llama/Mistral-style models (BPE, byte fallback, no normalization) get ``LlamaTokenizer`` with a
    BOS token added; any other model the generic ``TokenizersBackend``, which follows the model's
    own normalizer spec.
    """
    ts, ns = proto.trainer_spec, proto.normalizer_spec
    llama_like = ts.model_type == SPM_BPE and ts.byte_fallback and ns.name in ("identity", "")
    cfg: dict[str, Any] = {"tokenizer_class": "LlamaTokenizer" if llama_like else "TokenizersBackend"}
    pieces = {p.piece for p in proto.pieces}
    for role in ("unk", "bos", "eos", "pad"):
        piece = getattr(ts, f"{role}_piece")
        if getattr(ts, f"{role}_id") >= 0 and piece in pieces:
            cfg[f"{role}_token"] = piece
    if llama_like:
        cfg.update(add_bos_token="bos_token" in cfg, add_eos_token=False, legacy=False)
    cfg["clean_up_tokenization_spaces"] = False
    return cfg


def _add_fast_tokenizer(dest: Path) -> None:
    """Convert the SentencePiece model in ``dest`` to a tokenizer.json with transformers."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(dest))
    with tempfile.TemporaryDirectory() as tmp:
        tok.save_pretrained(tmp)
        shutil.copyfile(Path(tmp) / TOKENIZER_JSON, dest / TOKENIZER_JSON)
        cfg = _read_json(dest / TOKENIZER_CONFIG) if (dest / TOKENIZER_CONFIG).is_file() else {}
        _complete_added_tokens_decoder(cfg, _read_json(dest / TOKENIZER_JSON))
        for role in SPECIAL_ROLES:  # named while converting the .model; tokenizer.json alone does not say
            if getattr(tok, role, None) is not None and role not in cfg:
                cfg[role] = str(getattr(tok, role))
        _write_json(dest / TOKENIZER_CONFIG, cfg)


def _convert_to_tokenizer_json(src: _Source) -> tuple[dict, dict | None]:
    """A tokenizer.json (and tokenizer_config) for a source without one, converted by transformers."""
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "src"
        stage.mkdir()
        cfg = src.tokenizer_config
        if src.directory is not None:
            for p in src.directory.iterdir():
                if p.is_file() and (p.suffix in (".json", ".txt", ".model", ".jinja") or p == src.spm_path):
                    shutil.copyfile(p, stage / p.name)
        else:
            shutil.copyfile(src.spm_path, stage / DEFAULT_SPM_NAME)
        if _needs_default_config(src):
            cfg = _default_spm_config(_load_spm(src.spm_path))
            _write_json(stage / TOKENIZER_CONFIG, cfg)
        tok = AutoTokenizer.from_pretrained(str(stage))
        out = Path(tmp) / "out"
        tok.save_pretrained(str(out))
        tj = _read_json(out / TOKENIZER_JSON)
        if src.tokenizer_config is None:  # our defaults plus the token tables transformers derived
            saved = _read_json(out / TOKENIZER_CONFIG)
            cfg = dict(cfg or {})
            for key in ("added_tokens_decoder", "extra_special_tokens", "additional_special_tokens"):
                if key in saved:
                    cfg[key] = saved[key]
    return tj, cfg


def _default_corpus() -> list[str]:
    from ..corpus import corpus_lines

    return list(corpus_lines())


def _retrain(src: _Source, dest: Path, vocab_size: int, corpus: Iterable[str] | None,
             notes: list[str]) -> _Step:
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
        tj, cfg = _convert_to_tokenizer_json(src)
    lines = [line for line in (corpus if corpus is not None else _default_corpus()) if line and line.strip()]
    if not lines:
        raise ValueError("retraining a tokenizer needs a non-empty corpus")
    original_vocab = _new_vocab_of_tj(tj)
    original_size = _tj_total_size(tj)
    old_id_to_token = {i: t for t, i in original_vocab.items()}
    # Drop placeholders first (everything else kept), so the trainer does not re-add them.
    added = [t["content"] for t in sorted(tj.get("added_tokens") or (), key=lambda t: t["id"])]
    protected, dropped = _protected_tokens(src, added, set(_tj_vocab(tj)), old_id_to_token)
    _check_specials(len(protected), vocab_size, protected)
    if dropped:
        notes.append(f"dropped {len(dropped)} unused placeholder tokens (e.g. {dropped[0]})")
    pruned, _ = _apply_keep_tj(tj, set(original_vocab) - set(dropped))
    byte_fallback = _tj_model_type(tj) == "BPE" and bool(tj["model"].get("byte_fallback"))
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "src"
        stage.mkdir()
        _write_json(stage / TOKENIZER_JSON, pruned)
        if cfg is not None:
            stage_cfg = _fix_tokenizer_config(cfg, old_id_to_token, _new_vocab_of_tj(pruned))
            stage_cfg.pop("vocab_file", None)
            _write_json(stage / TOKENIZER_CONFIG, stage_cfg)
        if src.special_tokens_map is not None:
            stm = copy.deepcopy(src.special_tokens_map)
            _filter_token_lists(stm, _new_vocab_of_tj(pruned))
            _write_json(stage / SPECIAL_TOKENS_MAP, stm)
        if src.config is not None and cfg is None:
            _write_json(stage / MODEL_CONFIG, src.config)
        tok = AutoTokenizer.from_pretrained(str(stage))
        out = Path(tmp) / "out"
        target = vocab_size - (256 if byte_fallback else 0)
        new_tj: dict | None = None
        for _attempt in range(4):  # the class may add tokens the trainer did not count: aim lower
            if target <= 0:
                break
            try:
                trained = tok.train_new_from_iterator([lines[i:i + 1000] for i in range(0, len(lines), 1000)], target)
            except Exception as e:  # the Rust trainers raise plain Exceptions
                raise ValueError(f"cannot retrain {src.path} to vocab_size={vocab_size} (trainer target {target}): "
                                 f"{e}; ask for a larger vocab_size") from e
            if out.exists():
                shutil.rmtree(out)
            trained.save_pretrained(str(out))
            new_tj = _read_json(out / TOKENIZER_JSON)
            if byte_fallback:
                new_tj = _with_byte_tokens(new_tj)
            size = _tj_total_size(new_tj)
            if size <= vocab_size or size - vocab_size >= target:
                break
            target -= size - vocab_size
        if new_tj is None or _tj_total_size(new_tj) > vocab_size:
            got = _tj_total_size(new_tj) if new_tj is not None else f"more than {vocab_size}"
            raise ValueError(
                f"cannot retrain to vocab_size={vocab_size}: the special tokens plus the corpus alphabet"
                f"{' plus 256 byte-fallback tokens' if byte_fallback else ''} need {got} ids; "
                "ask for a larger vocab_size"
            )
        new_cfg = _read_json(out / TOKENIZER_CONFIG)
        if cfg is not None:  # keep the source's settings, with the retrained ids
            merged = copy.deepcopy(cfg)
            merged.pop("vocab_file", None)
            merged["added_tokens_decoder"] = new_cfg.get("added_tokens_decoder", {})
            new_cfg = merged
    new_vocab = _new_vocab_of_tj(new_tj)
    id_map = {i: new_vocab[t] for i, t in old_id_to_token.items() if t in new_vocab}
    _validate_tj(new_tj)
    table = _write_outputs(src, dest, tj=new_tj, id_map=id_map, old_id_to_token=old_id_to_token,
                           original_size=original_size, spm_bytes=None, spm_name=None,
                           tokenizer_config=new_cfg)
    if src.spm_path is not None:
        notes.append(f"{src.spm_path.name} not written: a retrained tokenizer has no SentencePiece model")
    return _tj_model_type(new_tj), id_map, original_size, table


def _with_byte_tokens(tj: dict) -> dict:
    """Insert the 256 ``<0xNN>`` byte-fallback tokens after the leading special tokens of a BPE vocab."""
    vocab = _tj_vocab(tj)
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
    table = _new_vocab_of_tj(tj)
    tj["post_processor"] = _fix_post_processor(tj.get("post_processor"), table)
    return tj


# ------------------------------------------------------------------------------------- public API


def inspect_tokenizer(src: str | os.PathLike) -> TokenizerInfo:
    """Describe the tokenizer in ``src`` (a directory or a ``.model`` file) without changing it."""
    s = _Source.load(src)
    if s.tokenizer_json is not None:
        tj = s.tokenizer_json
        return TokenizerInfo(
            kind="tokenizer.json",
            model_type=_tj_model_type(tj),
            vocab_size=_tj_total_size(tj),
            byte_level=_tj_byte_level(tj),
            byte_fallback=bool(tj["model"].get("byte_fallback")),
            special_tokens=[t["content"] for t in tj.get("added_tokens") or () if t.get("special")],
        )
    if s.spm_path is not None:
        proto = _load_spm(s.spm_path)
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
    s = _Source.load(src)
    use = _pick_method(s, method)
    if use == "retrain":
        raise ValueError("minimum_vocab_size() answers for 'truncate' and 'spm-trim'; retraining depends on the corpus")
    tj = proto = None
    if use == "spm-trim":
        if s.spm_path is None:
            raise ValueError(f"method='spm-trim' needs a SentencePiece .model file, {s.path} has none")
        proto = _load_spm(s.spm_path)
    else:
        tj = s.tokenizer_json if s.tokenizer_json is not None else _convert_to_tokenizer_json(s)[0]
    size = 0
    for _ in range(4):  # each failure names the need of one more stage (specials, alphabet)
        try:
            if proto is not None:
                _select_spm(s, proto, size)
            else:
                _select_tj(s, tj, size)
            return size
        except _CannotReach as e:
            size = e.minimum
    return size


def _pick_method(src: _Source, method: str) -> str:
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
    s = _Source.load(src)
    dest = Path(dest)
    if s.directory is not None and dest.resolve() == s.directory.resolve():
        raise ValueError(f"dest {dest} is the source directory; write the shrunk tokenizer elsewhere")
    use = _pick_method(s, method)
    notes: list[str] = []
    if use == "spm-trim" and s.spm_path is None:
        raise ValueError(f"method='spm-trim' needs a SentencePiece .model file, {s.path} has none")
    _clear_dest(dest)
    try:
        try:
            kind, id_map, original, table = _run(s, dest, vocab_size, use, corpus, notes)
        except _CannotReach as e:
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
    except _CannotReach as e:
        raise ValueError(f"cannot shrink {s.path} to vocab_size={vocab_size}: {e.detail}; "
                         f"ask for vocab_size >= {e.minimum}") from None
    return _result(s, dest, use, method, kind, id_map, original, table, notes)


def _clear_dest(dest: Path) -> None:
    if not dest.is_dir():
        return
    for path in dest.iterdir():
        if path.is_file() and (path.name in OUTPUT_FILES or path.suffix == ".model"):
            path.unlink()


def _output_files(dest: Path) -> dict[str, int]:
    names = set(OUTPUT_FILES) | {MODEL_CONFIG}
    return {p.name: p.stat().st_size for p in sorted(dest.iterdir())
            if p.is_file() and (p.name in names or p.suffix == ".model")}


def _run(s: _Source, dest: Path, vocab_size: int, use: str, corpus: Iterable[str] | None,
         notes: list[str]) -> _Step:
    if use == "retrain":
        return _retrain(s, dest, vocab_size, corpus, notes)
    if use == "spm-trim":
        return _spm_trim(s, dest, vocab_size, notes)
    tj, cfg = s.tokenizer_json, None
    if tj is None:
        tj, cfg = _convert_to_tokenizer_json(s)
        notes.append("converted the source to tokenizer.json with transformers before truncating")
    return _truncate(s, dest, vocab_size, tj, notes, tokenizer_config=cfg)


def _result(s: _Source, dest: Path, use: str, method: str, kind: str, id_map: dict[int, int], original: int,
            table: dict[str, int], notes: list[str]) -> ShrinkResult:
    new_size = max(table.values()) + 1
    cfg = _read_json(dest / TOKENIZER_CONFIG) if (dest / TOKENIZER_CONFIG).is_file() else {}
    stm = _read_json(dest / SPECIAL_TOKENS_MAP) if (dest / SPECIAL_TOKENS_MAP).is_file() else {}
    roles: dict[str, int] = {}
    for source in (stm, cfg):
        for role in SPECIAL_ROLES:
            text = _token_content(source.get(role))
            if text is not None and text in table and role not in roles:
                roles[role] = table[text]
    specials: dict[str, int] = {}
    if (dest / TOKENIZER_JSON).is_file():
        tj = _read_json(dest / TOKENIZER_JSON)
        specials = {t["content"]: t["id"] for t in tj.get("added_tokens") or ()}
    else:
        for entry in (cfg.get("added_tokens_decoder") or {}).values():
            text = _token_content(entry)
            if text in table:
                specials[text] = table[text]
    for role, token_id in roles.items():
        specials.setdefault(next(t for t, i in table.items() if i == token_id), token_id)
    files = _output_files(dest)
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
