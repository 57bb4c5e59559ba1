"""Load a built entry once per session and hand each test a fresh, independent copy."""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .builder import DATASET_DIR, REPO_DIR
from .cache import RECIPE


@dataclass
class TinyTriple:
    """What a tiny fixture gives a test: unpack as ``model, tokenizer, dataset = tiny_x``."""

    model: Any
    tokenizer: Any
    dataset: Any
    name: str
    path: Path  # the hub-style repo dir: from_pretrained(path) works
    entry: Path  # the cache entry dir (repo/, dataset/, recipe.json)
    recipe: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def processor(self) -> Any:
        """Alias of ``tokenizer`` (an image processor / feature extractor for non-text models)."""
        return self.tokenizer

    @property
    def device(self) -> Any:
        return self.model.device

    def __iter__(self) -> Iterator[Any]:
        return iter((self.model, self.tokenizer, self.dataset))

    def __repr__(self) -> str:
        arch = self.recipe.get("architecture") or type(self.model).__name__
        return f"<TinyTriple {self.name}: {arch} on {self.device}, {self.path}>"


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is available, else ``cpu``."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


class LoadedEntry:
    """An entry loaded from disk once; :meth:`fresh` returns a deep copy per test."""

    def __init__(self, name: str, entry: Path, *, device: str = "cpu", dtype: str = "float32") -> None:
        self.name = name
        self.entry = Path(entry)
        self.device = resolve_device(device)
        self.dtype = dtype
        self._lock = threading.Lock()
        self._loaded: TinyTriple | None = None

    @property
    def recipe(self) -> dict[str, Any]:
        return json.loads((self.entry / RECIPE).read_text())

    def load(self) -> TinyTriple:
        """Load model, tokenizer/processor and dataset (once)."""
        with self._lock:
            if self._loaded is None:
                from ._quiet import quiet_libraries

                with quiet_libraries():
                    self._loaded = self._load()
            return self._loaded

    def _load(self) -> TinyTriple:
        import torch
        import transformers

        from .dataset import load_dataset_dir

        recipe = self.recipe
        repo = self.entry / REPO_DIR
        class_name = recipe.get("architecture") or _architecture_from_config(repo)
        model_cls = getattr(transformers, class_name, None) or transformers.AutoModel
        model = model_cls.from_pretrained(str(repo), dtype=getattr(torch, self.dtype), trust_remote_code=False)
        model.to(self.device)
        model.eval()
        tokenizer = load_processor(repo, recipe.get("modality", "text"))
        dataset = load_dataset_dir(self.entry / DATASET_DIR)
        return TinyTriple(model, tokenizer, dataset, self.name, repo, self.entry, recipe)

    def fresh(self) -> TinyTriple:
        """An independent copy: mutating it (training, resizing embeddings) affects no other test."""
        base = self.load()
        return TinyTriple(
            copy.deepcopy(base.model),
            copy.deepcopy(base.tokenizer),
            base.dataset,  # Arrow-backed and immutable: transforms return new datasets
            base.name,
            base.path,
            base.entry,
            base.recipe,
        )


def load_processor(repo: Path, modality: str) -> Any:
    """The tokenizer (text) or processor (image/audio/multimodal) saved in ``repo``."""
    from transformers import AutoTokenizer

    if modality == "text":
        return AutoTokenizer.from_pretrained(str(repo), trust_remote_code=False)
    from transformers import AutoFeatureExtractor, AutoImageProcessor, AutoProcessor

    errors = []
    for loader in (AutoProcessor, AutoImageProcessor, AutoFeatureExtractor, AutoTokenizer):
        try:
            return loader.from_pretrained(str(repo), trust_remote_code=False)
        except Exception as exc:  # noqa: BLE001 - try the next kind of processor
            errors.append(f"{loader.__name__}: {exc}")
    raise RuntimeError(f"no processor could be loaded from {repo}: " + "; ".join(errors))


def _architecture_from_config(repo: Path) -> str:
    config = json.loads((repo / "config.json").read_text())
    archs = config.get("architectures") or ["AutoModel"]
    return archs[0]
