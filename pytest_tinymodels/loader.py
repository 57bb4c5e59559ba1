"""Load a built entry once per session and hand each test a fresh, independent copy."""

from __future__ import annotations

import copy
import gc
import json
import os
import shutil
import tempfile
import threading
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterator

from .build import DATASET_DIR, REPO_DIR, TEXT_TASKS
from .cache import RECIPE


class TinyTriple:
    """What a tiny fixture gives a test: unpack as ``model, tokenizer, dataset = tiny_x``.

    ``tokenizer`` (the second element) is the text tokenizer wherever the fixture's task reads text
    (causal-lm, masked-lm, seq2seq-lm, classification...) and the repo has one, even where the model type
    ships a combined processor (Whisper, GIT, TrOCR, MusicGen: ``tokenizer(text)`` always reads text);
    None for a text task whose repo has no tokenizer (Moshi).  For image / audio / multimodal tasks it is
    the processor, as the model's inputs need it.  ``processor`` is always the full processor saved in the
    repo (a combined processor, an image processor, a feature extractor, or the tokenizer).

    Also: ``name``, ``path`` (the hub-style repo dir: ``from_pretrained(path)`` works), ``entry``
    (the cache entry dir: repo/, dataset/, recipe.json), ``recipe`` (how it was made), ``task``, and
    :meth:`inputs`, :meth:`generate_inputs`, :meth:`batch` for feeding the model.
    """

    def __init__(self, model: Any, tokenizer: Any, dataset: Any, name: str, path: Path, entry: Path,
                 recipe: dict[str, Any] | None = None, processor: Any = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.processor = tokenizer if processor is None else processor
        self.dataset = dataset
        self.name = name
        self.path = path
        self.entry = entry
        self.recipe: dict[str, Any] = {} if recipe is None else recipe

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def device(self) -> Any:
        return self.model.device

    @property
    def task(self) -> str | None:
        """The task the model was built for (``causal-lm``, ``image-classification``, ...): the recipe's,
        else the first task of the model's class in the installed transformers (downloaded repos)."""
        task = self.recipe.get("task") or (self.recipe.get("spec") or {}).get("task")
        if task:
            return str(task)
        from .build.architectures import ArchitectureError, resolve_names

        try:
            return resolve_names(None, type(self.model).__name__, None)[2]
        except ArchitectureError:
            return None

    def inputs(self, batch_size: int = 2, seq_len: int | None = None, labels: bool = False) -> dict[str, Any]:
        """Inputs ``self.model(**inputs)`` accepts, on the model's device and dtype, for any architecture;
        ``labels=True`` adds the task's labels (so ``.loss`` is set and ``loss.backward()`` works).
        See :func:`pytest_tinymodels.build.inputs.model_inputs`."""
        from .build.inputs import model_inputs

        return model_inputs(self.model, self.processor, task=self.task, batch_size=batch_size, seq_len=seq_len,
                            labels=labels)

    def generate_inputs(self, batch_size: int = 2, seq_len: int | None = None) -> dict[str, Any]:
        """What ``self.model.generate(**inputs)`` needs (prompt + pixels / audio features as the model
        reads them); see :func:`pytest_tinymodels.build.inputs.generation_inputs`."""
        from .build.inputs import generation_inputs

        return generation_inputs(self.model, self.processor, task=self.task, batch_size=batch_size, seq_len=seq_len)

    def batch(self, n: int = 2, *, max_length: int = 32) -> dict[str, Any]:
        """``n`` dataset rows processed with the fixture's own tokenizer / processor and collated by the task's
        standard collator, on the model's device: what a ``Trainer`` would feed the model.
        See :func:`pytest_tinymodels.batches.task_batch`."""
        from .batches import task_batch

        return task_batch(self, n, max_length=max_length)

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


#: Environment variable: ``0`` keeps the loader from calling ``gc.freeze()`` before the first load.
GC_FREEZE_ENV = "PYTEST_TINYMODELS_GC_FREEZE"
_gc_frozen = False
_gc_lock = threading.Lock()


def freeze_import_garbage() -> bool:
    """``gc.freeze()`` once per process, right before the first load (unless ``PYTEST_TINYMODELS_GC_FREEZE=0``).

    Importing torch, transformers and datasets leaves ~400k long-lived objects in the oldest GC generation,
    close to CPython's threshold for a full collection (pending objects > 25 % of the long-lived ones).  The
    first ``from_pretrained`` of a process allocates enough (transformers 5.25 builds its ~1,000-regex
    checkpoint conversion table) to tip it: one full collection walks every object of the libraries, 0.2-0.3 s
    inside the first fixture setup, paid by whichever code allocates last.  Freezing (after importing the
    libraries every load needs) moves the objects alive now into the permanent generation, so later full
    collections only walk what the tests create.  The price: cyclic garbage alive at this moment is never
    collected (a one-time, bounded amount).  Returns whether this call froze.
    """
    global _gc_frozen
    if _gc_frozen:
        return False
    with _gc_lock:
        if _gc_frozen:
            return False
        _gc_frozen = True
        if os.environ.get(GC_FREEZE_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
            return False
        # what every load imports anyway: imported first so that their objects are the ones frozen
        import datasets  # noqa: F401
        import torch  # noqa: F401
        import transformers.modeling_utils  # noqa: F401

        gc.freeze()
        return True


class LoadedEntry:
    """An entry loaded from disk once; :meth:`fresh` returns a deep copy per test."""

    def __init__(self, name: str, entry: Path, *, device: str = "cpu", dtype: str = "float32") -> None:
        self.name = name
        self.entry = Path(entry)
        self.device = resolve_device(device)
        self.dtype = dtype
        self._lock = threading.Lock()
        self._loaded: TinyTriple | None = None
        self._flat: list[Any] | None = None

    @property
    def recipe(self) -> dict[str, Any]:
        return json.loads((self.entry / RECIPE).read_text())

    def load(self) -> TinyTriple:
        """Load model, tokenizer/processor and dataset (once)."""
        with self._lock:
            if self._loaded is None:
                from ._quiet import quiet_libraries

                freeze_import_garbage()
                with quiet_libraries():
                    self._loaded = self._load()
            return self._loaded

    def _load(self) -> TinyTriple:
        from .fastload import usable

        recipe = self.recipe
        repo = self.entry / REPO_DIR
        fast = usable(recipe, self.dtype)  # what the build verified this version's fast loaders give identically
        model = self._load_model(recipe, repo, fast)
        processor = recipe.get("processor") if isinstance(recipe.get("processor"), dict) else {}
        modality = recipe.get("modality", "text")
        if recipe.get("task") in TEXT_TASKS and "processor" not in processor and _has_tokenizer(repo):
            modality = "text"  # e.g. Gemma3ForCausalLM: a text task on a multimodal model type wants its tokenizer
        if modality == "text" and fast.get("tokenizer"):
            from .fastload import fast_load_tokenizer

            full = fast_load_tokenizer(repo, fast["tokenizer"])
        else:
            full = load_processor(repo, modality, needs=processor.get("needs"))
        tokenizer = _slot_tokenizer(full, repo) if recipe.get("task") in TEXT_TASKS else full
        # a private copy (hard links) of the dataset files: the cache files ``datasets`` writes beside
        # them on map()/filter() land there, never in the shared entry; removed with the dataset
        scratch = tempfile.mkdtemp(prefix="pytest-tinymodels-")
        if fast.get("dataset"):
            from .fastload import fast_load_dataset

            dataset = fast_load_dataset(self.entry / DATASET_DIR, workdir=Path(scratch) / "dataset")
        else:
            from .build.datasets import load_dataset_dir

            dataset = load_dataset_dir(self.entry / DATASET_DIR, workdir=Path(scratch) / "dataset")
        weakref.finalize(dataset, shutil.rmtree, scratch, True)
        return TinyTriple(model, tokenizer, dataset, self.name, repo, self.entry, recipe, processor=full)

    def _load_model(self, recipe: dict[str, Any], repo: Path, fast: dict[str, Any]) -> Any:
        """The fast loader where the build verified it (``fast``), else ``from_pretrained`` without hub kernels
        (transformers 5.25 kernelizes by default; ``get_fixture`` outside pytest must fetch none either)."""
        import torch
        import transformers

        class_name = recipe.get("architecture") or _architecture_from_config(repo)
        if fast.get("model"):
            from .fastload import fast_load_model

            model = fast_load_model(repo, class_name, dtype=getattr(torch, self.dtype), device=self.device)
            if model is not None:
                return model
        model_cls = getattr(transformers, class_name, None) or transformers.AutoModel
        model = model_cls.from_pretrained(str(repo), dtype=getattr(torch, self.dtype), use_safetensors=True,
                                          trust_remote_code=False, **_NO_KERNELS)
        model.to(self.device)
        model.eval()
        return model

    def fresh(self) -> TinyTriple:
        """An independent copy: mutating it (training, resizing embeddings) affects no other test."""
        base = self.load()
        if self._flat is None:
            self._flat = _flat_containers(base.model, base.tokenizer)
        memo = _copy_memo(self._flat)
        return TinyTriple(
            copy.deepcopy(base.model, memo),
            copy.deepcopy(base.tokenizer, memo),
            base.dataset,  # Arrow-backed and immutable: transforms return new datasets
            base.name,
            base.path,
            base.entry,
            base.recipe,
            processor=copy.deepcopy(base.processor, memo),  # the same memo: its tokenizer is the copied one
        )


#: ``from_pretrained`` keyword that keeps hub kernels off (transformers 5.25 turns them on by default).
_NO_KERNELS = {"use_kernels": False}

_ATOMIC = (str, int, float, bool, type(None))


def _flat_copy(value: Any) -> Any:
    """What ``copy.deepcopy(value)`` returns, made cheaply, or None when ``value`` is not flat.

    Flat means: an exact dict / OrderedDict / list / set whose keys and items are atomic
    (str, int, float, bool, None) or tuples of atomics.  Module hook dicts (mostly empty), a
    tokenizer's vocab and merges are flat; deepcopy walks them item by item through
    ``__reduce_ex__``, which is most of the cost of copying a tiny model.
    """
    kind = type(value)
    if kind in (dict, OrderedDict):
        if all(type(k) in _ATOMIC and _is_flat_item(v) for k, v in value.items()):
            return kind(value)
    elif kind in (list, set):
        if all(_is_flat_item(v) for v in value):
            return kind(value)
    return None


def _is_flat_item(item: Any) -> bool:
    return type(item) in _ATOMIC or (type(item) is tuple and all(type(x) in _ATOMIC for x in item))


def _flat_containers(model: Any, tokenizer: Any) -> list[Any]:
    """The flat containers (see :func:`_flat_copy`) held directly by ``model``'s modules and by
    ``tokenizer``; found once per loaded entry, copied cheaply by :func:`_copy_memo` per test."""
    found: dict[int, Any] = {}
    owners = list(model.modules()) if hasattr(model, "modules") else [model]
    owners.append(tokenizer)
    for owner in owners:
        for value in getattr(owner, "__dict__", {}).values():
            if id(value) not in found and _flat_copy(value) is not None:
                found[id(value)] = value
    return list(found.values())


def _copy_memo(flat: list[Any]) -> dict[int, Any]:
    """A deepcopy memo pre-filled with copies of ``flat`` containers: the deep copy is the same,
    it only skips deepcopy's generic path for them.  The memo keeps the originals alive (as
    deepcopy's own memo does), so their ids stay valid."""
    memo: dict[int, Any] = {id(value): type(value)(value) for value in flat}
    memo[id(memo)] = list(flat)  # deepcopy's keep-alive slot
    return memo


def load_processor(repo: Path, modality: str, *, needs: list[str] | None = None) -> Any:
    """The tokenizer (text) or processor (image/audio/multimodal) saved in ``repo``.

    ``needs``: libraries the saved processor class requires (recorded at build time).  When one is
    missing here, the tokenizer alone (multimodal) or None is returned, with a warning that says which.
    """
    from transformers import AutoTokenizer

    if modality == "text":
        return AutoTokenizer.from_pretrained(str(repo), trust_remote_code=False)
    from transformers import AutoFeatureExtractor, AutoImageProcessor, AutoProcessor

    errors = []
    for loader in (AutoProcessor, AutoImageProcessor, AutoFeatureExtractor):
        try:
            return loader.from_pretrained(str(repo), trust_remote_code=False)
        except Exception as exc:  # noqa: BLE001 - try the next kind of processor
            errors.append(f"{loader.__name__}: {exc}")
    tokenizer = None
    if _has_tokenizer(repo):
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(repo), trust_remote_code=False)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"AutoTokenizer: {exc}")
    if needs:
        import warnings

        warnings.warn(
            f"the processor saved in {repo} needs {', '.join(needs)}, which is not installed: "
            f"the fixture gives {'the tokenizer alone' if tokenizer is not None else 'no processor'} "
            f"(pip install {' '.join(needs)} to get it)",
            stacklevel=2,
        )
        return tokenizer
    if tokenizer is not None:
        return tokenizer
    raise RuntimeError(f"no processor could be loaded from {repo}: " + "; ".join(errors))


def _slot_tokenizer(processor: Any, repo: Path) -> Any:
    """The triple's second element for a text task: the processor's text tokenizer, else the one saved in the
    repo (a combined processor that needs a missing library loads as its image processor alone), else None."""
    from .batches import text_tokenizer

    tokenizer = text_tokenizer(processor)
    if tokenizer is None and _has_tokenizer(repo):
        from transformers import AutoTokenizer  # imported only here: the fast path loads without the Auto class

        tokenizer = AutoTokenizer.from_pretrained(str(repo), trust_remote_code=False)
    return tokenizer


def _has_tokenizer(repo: Path) -> bool:
    return (repo / "tokenizer_config.json").is_file() or (repo / "tokenizer.json").is_file()


def _architecture_from_config(repo: Path) -> str:
    config = json.loads((repo / "config.json").read_text())
    archs = config.get("architectures") or ["AutoModel"]
    return archs[0]
