"""The text corpus shipped in the package (see ``data/CORPUS.md`` for its source and license)."""

from __future__ import annotations

import hashlib
import random
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

_SENTENCE_END = r"(?<=[.!?])\s+"


def corpus_path() -> Path:
    """The shipped corpus file."""
    here = Path(__file__).parent.parent / "data" / "corpus.txt"
    return here if here.is_file() else Path(str(resources.files("pytest_tinymodels") / "data" / "corpus.txt"))


@lru_cache(maxsize=1)
def corpus_text() -> str:
    """The whole corpus as one string."""
    return corpus_path().read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def corpus_sha256() -> str:
    """Hash of the corpus: part of every cache key, since tokenizers and datasets derive from it."""
    return hashlib.sha256(corpus_text().encode("utf-8")).hexdigest()


@lru_cache(maxsize=1)
def corpus_lines() -> tuple[str, ...]:
    """Non-empty lines, as a tokenizer trainer iterates them."""
    return tuple(line for line in corpus_text().splitlines() if line.strip())


@lru_cache(maxsize=1)
def sentences() -> tuple[str, ...]:
    """The corpus joined into paragraphs and split into sentences."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", corpus_text())]
    result: list[str] = []
    for paragraph in paragraphs:
        result.extend(s.strip() for s in re.split(_SENTENCE_END, paragraph) if s.strip())
    return tuple(result)


def snippet(rng: random.Random, min_chars: int, max_chars: int) -> str:
    """One snippet of ``min_chars``..``max_chars`` characters: consecutive corpus sentences from a
    position drawn with ``rng``, cut at the last word boundary that keeps it within the bounds."""
    pool = sentences()
    start = rng.randrange(len(pool))
    text = pool[start]
    i = start + 1
    while len(text) < min_chars:
        text += " " + pool[i % len(pool)]
        i += 1
    return clip(text, max_chars, min_chars)


def clip(text: str, max_chars: int, min_chars: int = 1) -> str:
    """``text`` cut to at most ``max_chars`` characters, at the last space at or after ``min_chars``
    (mid-word where there is none)."""
    if len(text) <= max_chars:
        return text
    cut = text.rfind(" ", min_chars, max_chars)
    return text[: cut if cut > 0 else max_chars]


def sample_texts(rows: int, *, seed: int = 0, min_chars: int = 40, max_chars: int = 200) -> list[str]:
    """``rows`` deterministic snippets of ``min_chars``..``max_chars`` characters drawn from the corpus."""
    rng = random.Random(seed)
    return [snippet(rng, min_chars, max_chars) for _ in range(rows)]
