"""Tiny text datasets drawn deterministically from the shipped corpus."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .corpus import sample_texts

if TYPE_CHECKING:
    from datasets import Dataset


def build_text_dataset(params: Mapping[str, Any], *, seed: int = 0) -> "Dataset":
    """A ``datasets.Dataset`` with a ``text`` column of ``params["rows"]`` corpus snippets."""
    from datasets import Dataset

    texts = sample_texts(
        int(params["rows"]),
        seed=int(params.get("seed", seed)),
        min_chars=int(params.get("min_chars", 40)),
        max_chars=int(params.get("max_chars", 200)),
    )
    return Dataset.from_dict({"text": texts})


def save_dataset(dataset: "Dataset", dest: Path) -> None:
    """Save with ``save_to_disk`` (Arrow files, loaded memory-mapped)."""
    dataset.save_to_disk(str(dest))


def load_dataset_dir(path: Path) -> "Dataset":
    """Load a dataset saved by :func:`save_dataset` (memory-mapped, no copy)."""
    from datasets import load_from_disk

    return load_from_disk(str(path), keep_in_memory=False)
