"""Tiny datasets: text drawn deterministically from the shipped corpus, images and audio synthesised."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .corpus import sample_texts

if TYPE_CHECKING:
    from datasets import Dataset

IMAGE_DATASET_DEFAULTS: dict[str, Any] = {"rows": 16, "image_size": 32, "num_labels": 2}
AUDIO_DATASET_DEFAULTS: dict[str, Any] = {"rows": 16, "sampling_rate": 16000, "samples": 8000, "num_labels": 2}


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


def build_media_dataset(modality: str, params: Mapping[str, Any] | None = None, *, seed: int = 0) -> Dataset:
    """A deterministic tiny dataset: ``image`` -> ``image`` (PIL, RGB) + ``label`` columns;
    ``audio`` -> ``audio`` ({array: float32 list, sampling_rate}) + ``label`` + ``text`` columns.
    Same params and seed, same data."""
    import numpy as np
    from datasets import ClassLabel, Dataset, Features, Image, Sequence, Value

    params = dict(params or {})
    seed = int(params.get("seed", seed))
    rng = np.random.default_rng(seed)
    if modality == "image":
        p = {**IMAGE_DATASET_DEFAULTS, **{k: v for k, v in params.items() if k in IMAGE_DATASET_DEFAULTS}}
        n, size, labels = int(p["rows"]), int(p["image_size"]), int(p["num_labels"])
        from PIL import Image as PILImage

        images = [PILImage.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB") for _ in range(n)]
        features = Features({"image": Image(), "label": ClassLabel(num_classes=labels)})
        return Dataset.from_dict({"image": images, "label": [int(i % labels) for i in range(n)]}, features=features)
    if modality == "audio":
        p = {**AUDIO_DATASET_DEFAULTS, **{k: v for k, v in params.items() if k in AUDIO_DATASET_DEFAULTS}}
        n, sr, length, labels = int(p["rows"]), int(p["sampling_rate"]), int(p["samples"]), int(p["num_labels"])
        t = np.arange(length, dtype=np.float32) / sr
        rows = []
        for i in range(n):
            freq = float(rng.uniform(110.0, 880.0))
            wave = 0.5 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(length)
            rows.append({"array": wave.astype(np.float32), "sampling_rate": sr})
        # decoded-``Audio`` layout ({"array", "sampling_rate"}) without needing an audio codec library
        audio = {"array": Sequence(Value("float32")), "sampling_rate": Value("int32")}
        features = Features({"audio": audio, "label": ClassLabel(num_classes=labels), "text": Value("string")})
        texts = [f"tone {i}" for i in range(n)]
        return Dataset.from_dict({"audio": rows, "label": [int(i % labels) for i in range(n)], "text": texts},
                                 features=features)
    raise ValueError(f"no tiny dataset for modality {modality!r}; use 'image' or 'audio' (text: build_text_dataset)")


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
