"""What a shrunk tokenizer must keep, and the budget of ids the rest competes for.

* :func:`protected_tokens` — special / added tokens and every token something refers to (a named role, the
  post-processor, the model's unk / pad token, ``config.json`` ids); reserved placeholders (``[unusedN]``,
  ``<|reserved_special_token_N|>`` ...) nobody refers to are dropped instead.
* :class:`Budget` — the kept set with its size limit; :func:`require` forces the required tokens in (or
  raises :class:`CannotReach` naming the minimum); :func:`add_extra_chars` spends a share of the room on
  non-core characters; :func:`select_unigram_pieces` fills it by score (Unigram in tokenizer.json and in
  a SentencePiece ``.model`` alike).

The recipes (:mod:`.truncate`, :mod:`.spm`, :mod:`.retrain`) apply these rules per tokenizer model kind.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from .source import Source
from .tokenizer_json import BYTE_TOKEN, post_processor_tokens

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


class CannotReach(Exception):
    """The recipe cannot reach the requested size (its required tokens alone are more).

    ``hard`` requirements (special tokens, the byte alphabet) bind every recipe, retraining
    included; the others (the core character alphabet of the source) only bind truncation.
    """

    def __init__(self, minimum: int, detail: str, *, hard: bool = False) -> None:
        super().__init__(detail)
        self.minimum = minimum
        self.detail = detail
        self.hard = hard


def is_placeholder(token: str) -> bool:
    """A reserved placeholder token (see :data:`PLACEHOLDER_PATTERNS`)."""
    return any(p.fullmatch(token) for p in PLACEHOLDER_PATTERNS)


def protected_tokens(
    src: Source, added: Iterable[str], vocab_tokens: set[str], id_to_token: dict[int, str]
) -> tuple[list[str], list[str]]:
    """(tokens that must be kept, placeholder tokens dropped) among added tokens + referenced ones."""
    referenced = set(src.named_special_tokens().values())
    referenced.update(post_processor_tokens((src.tokenizer_json or {}).get("post_processor")))
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
        if is_placeholder(token) and token not in referenced and token not in src.chat_template:
            dropped.append(token)
        else:
            keep.append(token)
    return keep, dropped


def check_specials(n_special: int, vocab_size: int, examples: Iterable[str]) -> None:
    """Raise a hard :class:`CannotReach` when the ``n_special`` tokens that must stay exceed ``vocab_size``."""
    if n_special > vocab_size:
        shown = ", ".join(list(examples)[:8])
        raise CannotReach(
            n_special,
            f"vocab_size={vocab_size} is smaller than the {n_special} special/added tokens that must be kept "
            f"({shown}{', ...' if n_special > 8 else ''})",
            hard=True,
        )


class Budget:
    """An ordered set of kept tokens with a size limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept: set[str] = set()

    def force(self, tokens: Iterable[str]) -> None:
        """Keep ``tokens`` whatever the limit."""
        self.kept.update(tokens)

    def add(self, token: str) -> bool:
        """Keep ``token`` if there is room; True when it is kept."""
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


def require(budget: Budget, hard: Iterable[str], soft: Iterable[str], what: list[str]) -> None:
    """Force the required tokens in; raise CannotReach when they do not fit.

    ``what`` describes (kept specials, hard requirement, soft requirement) for the messages.
    """
    needed = set(hard) | budget.kept
    if len(needed) > budget.limit:
        raise CannotReach(len(needed), f"vocab_size={budget.limit} is smaller than the {len(needed)} tokens "
                                       f"every tokenizer of this kind needs ({' + '.join(what[:-1])})", hard=True)
    needed.update(soft)
    if len(needed) > budget.limit:
        raise CannotReach(len(needed), f"truncation needs at least {len(needed)} tokens ({' + '.join(what)}) "
                                       f"but vocab_size={budget.limit}")
    budget.force(needed)


def add_extra_chars(budget: Budget, chars: Iterable[Iterable[str]]) -> None:
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


def select_unigram_pieces(
    pieces: list[tuple[str, float]], byte_fallback: bool, budget: Budget, skip: set[str], normal: Any
) -> None:
    """Unigram selection over (piece, score) pairs; ``normal(i)`` says whether piece i may be dropped."""
    required = [p for p, _ in pieces if BYTE_TOKEN.fullmatch(p)] if byte_fallback else []
    core = [p for i, (p, _) in enumerate(pieces) if len(p) == 1 and p in CORE_CHARS and normal(i) and p not in skip]
    require(budget, required, core,
            [f"{len(budget.kept)} special pieces", f"{len(required)} byte pieces", f"{len(core)} core characters"])
    candidates = (i for i, (p, _) in enumerate(pieces) if normal(i) and p not in skip)
    order = sorted(candidates, key=lambda i: (-pieces[i][1], i))
    for i in order:
        if budget.full:
            break
        budget.add(pieces[i][0])
