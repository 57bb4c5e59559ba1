"""Build one tiny entry (model + tokenizer/processor + dataset + recipe) into a directory.

The cache owns the directory (a temporary one, published atomically afterwards); this module
only knows how to fill it.  Layout of an entry::

    repo/          config.json, model.safetensors, tokenizer/processor files: a hub-style repo,
                   so ``AutoModel.from_pretrained(repo)`` and ``AutoTokenizer.from_pretrained(repo)`` work
    dataset/       datasets.Dataset.save_to_disk
    recipe.json    the normalized spec, the library versions and what the build measured
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..cache import RECIPE, library_versions, stat_memo
from ..errors import BuildError, TinyModelsError
from ..manifest import FixtureSpec
from .corpus import corpus_path, corpus_sha256

if TYPE_CHECKING:
    from .architectures import ArchInfo

REPO_DIR = "repo"
DATASET_DIR = "dataset"
TORCH_DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}
#: Config attributes that bound the sequence length, in order of preference.
MAX_LENGTH_FIELDS = ("max_position_embeddings", "n_positions", "max_sequence_length", "n_ctx", "seq_length")
DEFAULT_MAX_LENGTH = 512
#: tasks whose inputs are text: their fixtures get a trained tokenizer whatever the model type's modality, and
#: the loader hands out that tokenizer (not a combined processor) as the triple's second element.
TEXT_TASKS = frozenset({"causal-lm", "masked-lm", "seq2seq-lm", "sequence-classification", "token-classification",
                        "question-answering", "multiple-choice", "next-sentence-prediction", "text-encoding"})
#: tasks whose labels are text (transcripts): their fixtures get a trained tokenizer too, saved beside the
#: feature extractor.
TRANSCRIPT_TASKS = frozenset({"ctc", "speech-seq2seq"})
#: Files never read from a source (weights are never needed to shrink a model).
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".gguf")


#: The build stage's folder: the code of every module under it decides what an entry contains, so
#: editing one (a family rule, a chat template) gives new keys.
_BUILD_DIR = Path(__file__).parent
_PACKAGE_DIR = _BUILD_DIR.parent
#: files of the build stage that shape entries: its modules and the data files it reads (chat templates).
_CODE_SUFFIXES = (".py", ".jinja")


def _code_files() -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(_BUILD_DIR):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        found += [Path(folder) / name for name in sorted(files) if name.endswith(_CODE_SUFFIXES)]
    return found


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Hash of the build stage's source files (read as files, nothing imported)."""
    digest = hashlib.sha256()
    for path in _code_files():
        digest.update(path.relative_to(_PACKAGE_DIR).as_posix().encode())
        digest.update(path.read_bytes() if path.is_file() else b"-")
    return digest.hexdigest()[:16]


@lru_cache(maxsize=None)
def build_inputs_digest(memo_dir: Path | None = None) -> dict[str, str]:
    """``{"code": code_fingerprint(), "corpus": corpus_sha256()}``: part of every key.

    With ``memo_dir`` (the cache root), remembered there while the source files keep their stat
    signatures (see :func:`cache.stat_memo`), so a fresh process reads and hashes none of them.
    """
    def compute() -> dict[str, str]:
        return {"code": code_fingerprint(), "corpus": corpus_sha256()}

    if memo_dir is None:
        return compute()
    files = _code_files() + [corpus_path()]
    where = hashlib.sha256(str(_PACKAGE_DIR).encode()).hexdigest()[:16]  # one memo per installed copy
    return stat_memo(memo_dir / "memo" / f"build-inputs-{where}.json", files, compute)


def _transformers_auto_files() -> list[Path]:
    """transformers' top-level ``__init__`` and its ``models/auto`` modules (found without importing it): the
    files that decide which architectures a task has and their modalities."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("transformers")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(list(spec.submodule_search_locations)[0])
    auto = root / "models" / "auto"
    return [root / "__init__.py", *sorted(auto.glob("*.py"))] if auto.is_dir() else [root / "__init__.py"]


def task_architectures(task: str, memo_dir: Path | None = None) -> list[ArchInfo]:
    """:func:`.architectures.task_architectures`, remembered under the cache root ``memo_dir`` while the build
    code and transformers' auto-mapping files keep their stat signatures (a parametrized fixture's collection
    then reads one JSON file instead of importing every processor auto-mapping)."""
    from . import architectures

    if memo_dir is None:
        return architectures.task_architectures(task)
    versions = library_versions(memo_dir)
    where = hashlib.sha256(f"{_PACKAGE_DIR}\0{versions.get('transformers')}\0{task}".encode()).hexdigest()[:16]
    value = stat_memo(memo_dir / "memo" / f"architectures-{where}.json", _code_files() + _transformers_auto_files(),
                      lambda: {"task": task, "infos": [list(info) for info in architectures.task_architectures(task)]})
    return [architectures.ArchInfo(*info) for info in value["infos"]]


def key_fields(spec: FixtureSpec, *, memo_dir: Path | None = None) -> dict[str, Any]:
    """What decides the content of ``spec``'s entry (spec fields, corpus hash, builder code).

    A local ``source`` directory also contributes the hash of its config/tokenizer files, so
    editing them gives a new entry.  ``memo_dir``: see :func:`build_inputs_digest`.
    """
    fields = spec.build_key_fields()
    inputs = build_inputs_digest(memo_dir)
    fields["corpus"] = inputs["corpus"]
    fields["code"] = inputs["code"]
    local = local_source_dir(spec)
    if local is not None:
        fields["source"] = str(local)
        fields["source_files"] = _dir_digest(local)
    template = chat_template_file(spec)
    if template is not None:
        fields["chat_template_file"] = hashlib.sha256(template.read_bytes()).hexdigest()[:24]
    return fields


def chat_template_file(spec: FixtureSpec) -> Path | None:
    """The ``.jinja`` file the manifest's ``tokenizer.chat_template`` names (relative to the manifest), or
    None where it names a shipped format, is false or unset."""
    from .tokenizer import chat

    value = spec.tokenizer.get("chat_template")
    if not isinstance(value, str) or value in chat.FORMATS:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(spec.manifest).parent / path


def local_source_dir(spec: FixtureSpec) -> Path | None:
    """``spec.source`` as a local directory (relative paths are relative to the manifest), or None."""
    if not spec.source:
        return None
    path = Path(spec.source).expanduser()
    if not path.is_absolute() and (spec.manifest.parent / path).is_dir():
        path = spec.manifest.parent / path  # like from_pretrained: an existing directory wins over a repo id
    return path.resolve() if path.is_dir() else None


def _dir_digest(root: Path) -> str:
    """sha256 over the names and bytes of the files a source build reads (no weights)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.iterdir() if p.is_file() and not p.name.endswith(WEIGHT_SUFFIXES)):
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:24]


def cast_model(model: Any, dtype: Any) -> Any:
    """``model.to(dtype)``, keeping in float32 what ``from_pretrained(dtype=...)`` keeps there: the
    modules of ``_keep_in_fp32_modules`` (float16) and ``_keep_in_fp32_modules_strict`` (float16 and
    bfloat16), e.g. MoE routers that run in float32."""
    import torch

    model = model.to(dtype)
    plan = model._get_dtype_plan(dtype) if hasattr(model, "_get_dtype_plan") else {}
    if not plan:
        return model
    try:
        from transformers.core_model_loading import build_glob_alternation

        alternation = build_glob_alternation(list(plan))[0]
        matches = lambda name: alternation.search(name) is not None  # noqa: E731
    except (ImportError, AttributeError, TypeError, IndexError):  # the same rule, by substring
        matches = lambda name: any(pattern in name for pattern in plan)  # noqa: E731
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point() and matches(name):
            tensor.data = tensor.data.to(torch.float32)
    return model


def label_of(spec: FixtureSpec) -> str:
    return spec.architecture or spec.model_type or spec.download or spec.source or spec.name


def build_entry(spec: FixtureSpec, dest: Path, *, arch: "ArchInfo | None" = None,
                source_dir: Path | None = None, download_dir: Path | None = None) -> dict[str, Any]:
    """Fill ``dest`` with the entry for ``spec``; returns the recipe (also written to recipe.json).

    A build reads only local files: a ``source`` fixture's config and tokenizer files come from
    ``source_dir`` (a local ``source`` directory is found by itself), a ``download`` fixture's repo
    from ``download_dir`` — :func:`pytest_tinymodels.sources.fetch_inputs` fetches both.
    """
    from .._quiet import quiet_libraries
    from . import shrink

    if spec.source and source_dir is None:
        source_dir = local_source_dir(spec)
        if source_dir is None:
            raise BuildError(f"source {spec.source!r} is not a local directory and was not fetched "
                             "(pass source_dir=, see pytest_tinymodels.sources.fetch_inputs)",
                             fixture=spec.name, stage="resolve")
    if spec.download and download_dir is None:
        raise BuildError(f"repo {spec.download!r} was not downloaded (pass download_dir=, see "
                         "pytest_tinymodels.sources.fetch_inputs)", fixture=spec.name, stage="download")
    with quiet_libraries(), shrink.tiny_sizes(spec.size):  # ``size``: the shrink's tiny values for this build
        return _build_entry(spec, dest, arch, source_dir, download_dir)


def _build_entry(spec: FixtureSpec, dest: Path, arch: "ArchInfo | None", source_dir: Path | None,
                 download_dir: Path | None) -> dict[str, Any]:
    start = time.perf_counter()
    timings: dict[str, float] = {}

    def stage(name: str):
        return _Stage(name, spec.name, timings)

    repo = dest / REPO_DIR
    repo.mkdir(parents=True, exist_ok=True)
    if spec.download:
        with stage("download"):
            info = _copy_download(spec, download_dir, repo)
    else:
        info = _build_model(spec, repo, stage, arch, source_dir)
    with stage("dataset"):
        info["dataset"] = _build_dataset(spec, dest / DATASET_DIR, info, repo)
    if info.get("architecture"):
        with stage("verify_load"):
            info["fast_load"] = _verify_fast_load(spec, dest, info)
    recipe = {
        "fixture": spec.name,
        "manifest": spec.manifest.name,  # no absolute path, no time stamp: same bytes on every machine
        "spec": key_fields(spec),
        "versions": library_versions(),
        "python": platform.python_version(),
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "build_seconds": round(time.perf_counter() - start, 4),
        **info,
    }
    (dest / RECIPE).write_text(json.dumps(recipe, indent=1, sort_keys=True, default=str))
    return recipe


def _verify_fast_load(spec: FixtureSpec, dest: Path, info: dict[str, Any]) -> dict[str, Any]:
    """The entry loaded by :mod:`pytest_tinymodels.fastload` and by the generic loaders, compared (weights, buffers,
    ties, forward outputs on the task's dummy inputs, tokenizer, dataset): the loader's fast path is taken only
    where this record says they are the same.  Paths in the reasons are written relative to the entry."""
    from ..fastload import verify_fast_load
    from .inputs import model_inputs

    record = verify_fast_load(dest / REPO_DIR, info["architecture"], spec.dtype, dataset_dir=dest / DATASET_DIR,
                              inputs_for=lambda model: model_inputs(model, None, task=info.get("task")))
    for part, reason in (record.get("declined") or {}).items():
        record["declined"][part] = reason.replace(str(dest), "<entry>")
    return record


#: import name -> what to ``pip install`` for it, for the libraries a build may need beyond the core ones.
PIP_NAMES: dict[str, str] = {"PIL": "pillow", "cv2": "opencv-python", "sklearn": "scikit-learn",
                             "google.protobuf": "protobuf", "yaml": "pyyaml"}
#: modality -> libraries (import names) its processors and datasets need.
MODALITY_LIBRARIES: dict[str, tuple[str, ...]] = {"image": ("PIL",), "multimodal": ("PIL",)}


def _missing_library_hint(exc: BaseException) -> str:
    """`` (install it: pip install pillow)`` for a ModuleNotFoundError of a known library, else empty."""
    name = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
    if not name:
        return ""
    top = name.split(".")[0]
    return f" (install it: pip install {PIP_NAMES.get(name) or PIP_NAMES.get(top) or top})"


def _require_libraries(modality: str, fixture: str) -> None:
    """A clear error, before any work, where the libraries of ``modality`` are not installed."""
    import importlib.util

    for name in MODALITY_LIBRARIES.get(modality, ()):
        if importlib.util.find_spec(name) is None:
            raise BuildError(f"{modality} fixtures need the {PIP_NAMES.get(name, name)} library, which is not "
                             f"installed: pip install {PIP_NAMES.get(name, name)}", fixture=fixture, stage="resolve")


class _Stage:
    """Times a build stage and turns unexpected exceptions into a BuildError naming the stage."""

    def __init__(self, name: str, fixture: str, timings: dict[str, float]) -> None:
        self.name, self.fixture, self.timings = name, fixture, timings

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.timings[self.name] = time.perf_counter() - self.start
        if exc is not None and isinstance(exc, Exception) and not isinstance(exc, TinyModelsError):
            text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
            message = f"{type(exc).__name__}: {text}"[:500] + _missing_library_hint(exc)
            raise BuildError(message, fixture=self.fixture, stage=self.name) from exc


def _build_model(spec: FixtureSpec, repo: Path, stage: Any, arch: "ArchInfo | None",
                 source_dir: Path | None) -> dict[str, Any]:
    import torch

    from . import architectures, shrink

    with stage("resolve"):
        if source_dir is not None:
            base = _source_config(source_dir)
            if arch is None:
                declared = getattr(base, "architectures", None) or [None]
                arch = architectures.resolve(
                    spec.model_type or base.model_type,
                    spec.architecture or (declared[0] if spec.task is None else None),
                    spec.task,
                )
        else:
            if arch is None:
                arch = architectures.resolve(spec.model_type, spec.architecture, spec.task)
            base = shrink.base_config(arch.model_type)
        if not spec.source:
            _require_libraries(arch.modality, spec.name)
    vocab_size = int(spec.tokenizer["vocab_size"])
    processor_info: dict[str, Any] = {}
    tokenizer = None
    chat_format = None
    token_ids: dict[str, int] = {}
    with stage("tokenizer"):
        if source_dir is not None:
            tokenizer = _shrunk_source_tokenizer(spec, source_dir, repo, vocab_size, processor_info)
        else:
            if arch.modality in ("text", "multimodal") or arch.task in TEXT_TASKS | TRANSCRIPT_TASKS:
                from .tokenizer.train import tokenizer_class_name, train_tokenizer

                tokenizer = train_tokenizer(arch.model_type, vocab_size)
                processor_info["tokenizer"] = {"class": type(tokenizer).__name__, "method": "train",
                                               "trained_as": tokenizer_class_name(arch.model_type)}
        if tokenizer is not None:
            chat_format, token_ids = _install_chat(spec, arch, tokenizer, trained=source_dir is None)
            if chat_format is not None:
                processor_info["tokenizer"]["chat_format"] = chat_format.name
            if arch.modality == "multimodal" and source_dir is None:
                from . import processors

                token_ids.update(processors.add_processor_tokens(arch.model_type, tokenizer))
                if chat_format is not None and not chat_format.media:  # a format not the family's own
                    from .tokenizer import chat

                    if getattr(tokenizer, "image_token", None) is None:  # its processor names no placeholder
                        token_ids.update(chat.add_media_tokens(tokenizer, chat.get_format(chat.DEFAULT_FORMAT).media))
                    chat.bind_media(tokenizer)
    with stage("shrink"):
        ids = _special_ids(tokenizer, base) if tokenizer is not None else None
        if ids is not None:
            ids.update(with_token_id_aliases(token_ids))
        config = shrink.shrink_config(
            base,
            vocab_size=len(tokenizer) if tokenizer is not None else None,
            special_token_ids=ids,
            overrides=spec.config,
        )
        for key, value in architectures.task_config_updates(arch, config).items():
            if key not in spec.config:  # the manifest's config wins over task defaults
                setattr(config, key, value)
        model_cls = _model_class(arch.class_name)
        config = shrink.config_for_class(config, model_cls)  # e.g. Emu3ForCausalLM takes the text config
        config.architectures = [arch.class_name]
        if ids and ids.get("decoder_start_token_id") is not None:
            config.decoder_start_token_id = ids["decoder_start_token_id"]
    if tokenizer is not None:
        tokenizer.model_max_length = _max_length(config)
    with stage("processor"):
        if arch.modality != "text" and not spec.source:
            from . import processors

            try:
                processor_info["processor"] = processors.build_processor(arch, config, repo, tokenizer=tokenizer)
                read = processor_info["processor"].pop("token_ids", {})
                if read:  # the config points at the tokens the processor writes (aliases: *_token_index, ...)
                    from .shrink import set_special_ids

                    set_special_ids(config, with_token_id_aliases(read))
            except processors.ProcessorError as exc:
                if tokenizer is None:
                    raise
                # e.g. Llama4ForCausalLM: a multimodal model type used for a text task needs its tokenizer only
                tokenizer.save_pretrained(str(repo))
                processor_info["processor_error"] = str(exc).splitlines()[0][:300]
        elif tokenizer is not None:
            tokenizer.save_pretrained(str(repo))
    with stage("model"):
        torch.manual_seed(spec.seed)
        model = model_cls(config)
        model.eval()
        if tokenizer is not None:
            _align_generation_config(model, tokenizer, chat_format)
        if spec.train is not None:  # in float32, before the cast (build/train.py; timings.model includes it)
            with stage("train"):
                from .train import train_entry

                processor_info["train"] = train_entry(model, tokenizer, spec, arch, config)
        dtype = getattr(torch, TORCH_DTYPES[spec.dtype])
        if dtype != torch.float32:
            model = cast_model(model, dtype)
    if spec.smoke:
        with stage("smoke"):
            from . import inputs, processors

            smoke_inputs = inputs.model_inputs(model, processors.smoke_processor(arch, config), task=arch.task,
                                               config=config)
            inputs.smoke_forward(model, smoke_inputs)
    with stage("save"):
        model.save_pretrained(str(repo), safe_serialization=True)
        _drop_unsafe_files(repo)
        _pin_label_count(repo, config)
    n_params = sum(p.numel() for p in model.parameters())
    weights = sum(p.stat().st_size for p in repo.glob("*.safetensors"))
    return {
        "model_type": arch.model_type,
        "architecture": arch.class_name,
        "task": arch.task,
        "modality": arch.modality,
        "num_parameters": n_params,
        "safetensors_bytes": weights,
        "vocab_size": getattr(config, "vocab_size", None),
        **processor_info,
    }


def _model_class(class_name: str) -> Any:
    import transformers

    try:
        return getattr(transformers, class_name)
    except AttributeError:
        raise BuildError(f"transformers {transformers.__version__} has no class {class_name}", stage="model") from None


def _source_config(source_dir: Path) -> Any:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(str(source_dir), trust_remote_code=False)


def _shrunk_source_tokenizer(spec: FixtureSpec, source_dir: Path, repo: Path, vocab_size: int, info: dict[str, Any]) -> Any:
    from transformers import AutoTokenizer

    from .tokenizer.shrink import shrink_tokenizer
    from .tokenizer.train import ensure_pad

    result = shrink_tokenizer(source_dir, repo, vocab_size, method=spec.tokenizer.get("method", "auto"))

    info["tokenizer"] = {"method": getattr(result, "method", None), "source": spec.source}
    tokenizer = AutoTokenizer.from_pretrained(str(repo), trust_remote_code=False)
    ensure_pad(tokenizer)
    return tokenizer


def _special_ids(tokenizer: Any, base: Any) -> dict[str, int | None]:
    """The tokenizer's special ids, plus ``decoder_start_token_id`` for encoder-decoder models and the
    ``forced_eos_token_id`` / ``forced_bos_token_id`` a config sets (as its eos / bos).

    The decoder start keeps its role: it was the base config's pad/eos/bos id, so it becomes the
    tokenizer's pad/eos/bos id; encoder-decoders that declare none start with pad (T5's convention).
    """
    from .tokenizer.train import special_token_ids

    ids = {k: v for k, v in special_token_ids(tokenizer).items() if v is not None}  # configs validate ids as ints
    start = getattr(base, "decoder_start_token_id", None)
    if start is not None or getattr(base, "is_encoder_decoder", False):
        role = next((r for r in ("pad", "eos", "bos") if start is not None and getattr(base, f"{r}_token_id", None) == start), "pad")
        ids["decoder_start_token_id"] = ids.get(f"{role}_token_id") if ids.get(f"{role}_token_id") is not None else ids.get("pad_token_id")
    for forced, role in (("forced_eos_token_id", "eos_token_id"), ("forced_bos_token_id", "bos_token_id")):
        # BART forces eos at the last step and mBART a language bos: the tokenizer's tokens, not the class default
        if getattr(base, forced, None) is not None and ids.get(role) is not None:
            ids[forced] = ids[role]
    return ids


#: config names of a token id besides ``<attribute>_id`` (data): ``<name>_token_index`` is always tried
#: (LLaVA, Gemma 3, Llama 4 spell image ids so), plus these family spellings.
TOKEN_ID_ALIASES: dict[str, tuple[str, ...]] = {
    "boi_token_id": ("start_of_image_token_id", "image_start_token_id"),
    "eoi_token_id": ("end_of_image_token_id", "image_end_token_id"),
    "start_of_image_token_id": ("boi_token_id", "boi_token_index", "image_start_token_id"),
    "end_of_image_token_id": ("eoi_token_id", "eoi_token_index", "image_end_token_id"),
    "image_start_token_id": ("boi_token_id", "boi_token_index", "start_of_image_token_id"),
    "image_end_token_id": ("eoi_token_id", "eoi_token_index", "end_of_image_token_id"),
    "boa_token_id": ("audio_start_token_id",),
    "eoa_token_id": ("audio_end_token_id",),
    "audio_bos_token_id": ("audio_start_token_id",),
    "audio_eos_token_id": ("audio_end_token_id",),
}


def with_token_id_aliases(ids: Mapping[str, int | None]) -> dict[str, int]:
    """``ids`` (``image_token_id``...) plus the other names configs give the same ids (``image_token_index``,
    :data:`TOKEN_ID_ALIASES`); an id named directly wins over an alias.  ``None`` values are dropped."""
    out: dict[str, int] = {}
    for key, value in ids.items():
        if value is None or not key.endswith("_id"):
            continue
        for alias in (f"{key[:-3]}_index", *TOKEN_ID_ALIASES.get(key, ())):
            out.setdefault(alias, value)
    for key, value in ids.items():
        if value is not None:
            out[key] = value
    return out


def _install_chat(spec: FixtureSpec, arch: "ArchInfo", tokenizer: Any, *, trained: bool) -> tuple[Any, dict[str, int]]:
    """Install the chat template the manifest asks for (default: the model type's format, on trained
    tokenizers; a shrunk real tokenizer keeps its own); return (format or None, the ids a config must agree with)."""
    from .tokenizer import chat

    value = spec.tokenizer.get("chat_template")
    if value is False:
        tokenizer.chat_template = None
        return None, {}
    thinking = spec.tokenizer.get("thinking")
    template = None
    if value is None:
        if not trained:
            return None, {}
        fmt = chat.chat_format_for(arch.model_type)
    elif value in chat.FORMATS:
        fmt = chat.get_format(value)
    else:  # a template file: the model type's format gives the tokens
        template = chat.load_template(chat_template_file(spec))
        fmt = chat.chat_format_for(arch.model_type) or chat.get_format(chat.DEFAULT_FORMAT)
    if fmt is None:
        return None, {}
    try:
        ids = chat.install_chat_template(tokenizer, fmt, thinking=thinking, template=template)
    except chat.ChatTemplateError as exc:
        raise BuildError(f"{exc} (tokenizer.chat_template / tokenizer.thinking of the manifest {spec.manifest})",
                         fixture=spec.name, stage="tokenizer") from None
    return fmt, {k: v for k, v in ids.items() if v is not None}


def _align_generation_config(model: Any, tokenizer: Any, chat_format: Any) -> None:
    """The generation config's eos / pad / bos as the family's: a chat model stops at the end of its turn
    (``chat.stop_token_ids``: Gemma's ``<end_of_turn>``, Llama 3's ``<|eot_id|>``...)."""
    generation = getattr(model, "generation_config", None)
    if generation is None or not (hasattr(model, "can_generate") and model.can_generate()):
        return
    if chat_format is not None:
        from .tokenizer import chat

        stops = list(dict.fromkeys(chat.stop_token_ids(tokenizer, chat_format)))
        generation.eos_token_id = stops[0] if len(stops) == 1 else stops
    elif tokenizer.eos_token_id is not None:
        generation.eos_token_id = tokenizer.eos_token_id
    for name in ("pad_token_id", "bos_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            setattr(generation, name, value)


def _max_length(config: Any) -> int:
    for name in MAX_LENGTH_FIELDS:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    text_config = getattr(config, "text_config", None)
    if text_config is not None and text_config is not config:
        return _max_length(text_config)
    return DEFAULT_MAX_LENGTH


def _copy_download(spec: FixtureSpec, snapshot: Path, repo: Path) -> dict[str, Any]:
    for path in sorted(snapshot.rglob("*")):
        if path.is_file():
            target = repo / path.relative_to(snapshot)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)  # resolves the hub cache's symlinks into real files
    config = json.loads((repo / "config.json").read_text()) if (repo / "config.json").is_file() else {}
    if not list(repo.glob("*.safetensors")):
        raise BuildError(
            f"repo {spec.download!r} has no .safetensors weights (pickled weights are never loaded)",
            fixture=spec.name, stage="download",
        )
    return {
        "download": spec.download,
        "model_type": config.get("model_type"),
        "architecture": (config.get("architectures") or [None])[0],
        "modality": "text",
        "safetensors_bytes": sum(p.stat().st_size for p in repo.glob("*.safetensors")),
    }


def _build_dataset(spec: FixtureSpec, dest: Path, info: dict[str, Any], repo: Path) -> dict[str, Any]:
    """The entry's dataset in the manifest's ``dataset.format``, else its task's (``datasets.default_format``),
    with the classes of the built config and the sampling rate of its feature extractor."""
    from .datasets import build_dataset, default_format, options_from_repo, save_dataset

    fmt = spec.dataset.get("format") or default_format(info.get("task"), info.get("modality", "text"))
    dataset = build_dataset(fmt, spec.dataset, seed=spec.seed, **options_from_repo(repo))
    save_dataset(dataset, dest)
    return {"format": fmt, "columns": list(dataset.column_names), "rows": len(dataset)}


def _pin_label_count(repo: Path, config: Any) -> None:
    """Write ``id2label`` into the saved config.json where transformers left it out although the config class
    defaults to another label count: it omits two labels as "the default", and ``BartConfig`` (3 labels by
    default) then loads a 2-label classifier as a 3-label one, which ``from_pretrained`` refuses."""
    id2label = getattr(config, "id2label", None)
    path = repo / "config.json"
    if not id2label or not path.is_file():
        return
    saved = json.loads(path.read_text())
    if "id2label" in saved:
        return
    try:
        default = type(config)().num_labels
    except Exception:  # noqa: BLE001 - a config class that needs arguments: nothing to compare with
        return
    if default == len(id2label):
        return
    saved["id2label"] = {str(k): v for k, v in id2label.items()}
    saved["label2id"] = {v: int(k) for k, v in id2label.items()}
    path.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")


def _drop_unsafe_files(repo: Path) -> None:
    """Only safetensors weights are kept: no pickle files ever land in the cache."""
    for pattern in ("*.bin", "*.pt", "*.pth", "*.pkl", "*.ckpt"):
        for path in repo.glob(pattern):
            path.unlink()
