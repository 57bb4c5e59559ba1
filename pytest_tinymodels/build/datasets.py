"""Tiny text datasets drawn deterministically from the shipped corpus."""

from __future__ import annotations

import os
import shutil
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


def load_dataset_dir(path: Path, workdir: Path | None = None) -> "Dataset":
    """Load a dataset saved by :func:`save_dataset`, memory-mapped.

    With ``workdir``, the files are first hard-linked (copied across filesystems) into it, so
    the cache files that ``datasets`` writes beside its Arrow files on ``map()``/``filter()`` land
    in ``workdir``, never in the shared cache entry.
    """
    from datasets import load_from_disk

    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        for src in Path(path).iterdir():
            if src.is_file():
                _link_or_copy(src, workdir / src.name)
        path = workdir
    return load_from_disk(str(path), keep_in_memory=False)


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
