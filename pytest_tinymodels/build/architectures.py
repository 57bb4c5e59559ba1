"""Task names -> transformers auto-mappings; ``resolve()`` / ``expand()`` -> :class:`ArchInfo`.

Everything here reads the *installed* transformers' auto-mapping tables (plain dicts of
names), so the set of architectures always matches the library the user has.  No model
class is imported unless it is needed to disambiguate a class shared by several model types.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Sequence
from typing import NamedTuple
from functools import lru_cache

from ..errors import TinyModelsError
from . import rules

__all__ = [
    "TASKS",
    "TASK_ORDER",
    "ArchInfo",
    "ArchitectureError",
    "resolve",
    "expand",
    "task_names",
    "modality_of",
    "task_config_updates",
    "auto_mapping_names",
    "all_model_types",
    "did_you_mean",
]

#: task name -> names of the auto-mapping tables in ``transformers.models.auto.modeling_auto``.
TASKS: dict[str, tuple[str, ...]] = {
    "base": ("MODEL_MAPPING_NAMES",),
    "causal-lm": ("MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",),
    "masked-lm": ("MODEL_FOR_MASKED_LM_MAPPING_NAMES",),
    "seq2seq-lm": ("MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",),
    "sequence-classification": ("MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",),
    "token-classification": ("MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES",),
    "question-answering": ("MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES",),
    "multiple-choice": ("MODEL_FOR_MULTIPLE_CHOICE_MAPPING_NAMES",),
    "next-sentence-prediction": ("MODEL_FOR_NEXT_SENTENCE_PREDICTION_MAPPING_NAMES",),
    "pretraining": ("MODEL_FOR_PRETRAINING_MAPPING_NAMES",),
    "text-encoding": ("MODEL_FOR_TEXT_ENCODING_MAPPING_NAMES",),
    "image-classification": ("MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES",),
    "image-feature-extraction": ("MODEL_FOR_IMAGE_MAPPING_NAMES",),
    "masked-image-modeling": ("MODEL_FOR_MASKED_IMAGE_MODELING_MAPPING_NAMES",),
    "zero-shot-image-classification": ("MODEL_FOR_ZERO_SHOT_IMAGE_CLASSIFICATION_MAPPING_NAMES",),
    "object-detection": ("MODEL_FOR_OBJECT_DETECTION_MAPPING_NAMES",),
    "semantic-segmentation": ("MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES",),
    "depth-estimation": ("MODEL_FOR_DEPTH_ESTIMATION_MAPPING_NAMES",),
    "backbone": ("MODEL_FOR_BACKBONE_MAPPING_NAMES",),
    "video-classification": ("MODEL_FOR_VIDEO_CLASSIFICATION_MAPPING_NAMES",),
    "image-text-to-text": ("MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES",),
    "multimodal-lm": ("MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES",),
    "speech-seq2seq": ("MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES",),
    "ctc": ("MODEL_FOR_CTC_MAPPING_NAMES",),
    "audio-classification": ("MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES",),
    "audio-frame-classification": ("MODEL_FOR_AUDIO_FRAME_CLASSIFICATION_MAPPING_NAMES",),
    "audio-xvector": ("MODEL_FOR_AUDIO_XVECTOR_MAPPING_NAMES",),
    "text-to-waveform": ("MODEL_FOR_TEXT_TO_WAVEFORM_MAPPING_NAMES",),
    "text-to-spectrogram": ("MODEL_FOR_TEXT_TO_SPECTROGRAM_MAPPING_NAMES",),
    "time-series-prediction": ("MODEL_FOR_TIME_SERIES_PREDICTION_MAPPING_NAMES",),
    "time-series-classification": ("MODEL_FOR_TIME_SERIES_CLASSIFICATION_MAPPING_NAMES",),
    "time-series-regression": ("MODEL_FOR_TIME_SERIES_REGRESSION_MAPPING_NAMES",),
    "table-question-answering": ("MODEL_FOR_TABLE_QUESTION_ANSWERING_MAPPING_NAMES",),
    "visual-question-answering": ("MODEL_FOR_VISUAL_QUESTION_ANSWERING_MAPPING_NAMES",),
    "document-question-answering": ("MODEL_FOR_DOCUMENT_QUESTION_ANSWERING_MAPPING_NAMES",),
    "image-segmentation": ("MODEL_FOR_IMAGE_SEGMENTATION_MAPPING_NAMES",),
    "instance-segmentation": ("MODEL_FOR_INSTANCE_SEGMENTATION_MAPPING_NAMES",),
    "universal-segmentation": ("MODEL_FOR_UNIVERSAL_SEGMENTATION_MAPPING_NAMES",),
    "zero-shot-object-detection": ("MODEL_FOR_ZERO_SHOT_OBJECT_DETECTION_MAPPING_NAMES",),
    "mask-generation": ("MODEL_FOR_MASK_GENERATION_MAPPING_NAMES",),
    "keypoint-detection": ("MODEL_FOR_KEYPOINT_DETECTION_MAPPING_NAMES",),
    "keypoint-matching": ("MODEL_FOR_KEYPOINT_MATCHING_MAPPING_NAMES",),
    "image-to-image": ("MODEL_FOR_IMAGE_TO_IMAGE_MAPPING_NAMES",),
    "image-matting": ("MODEL_FOR_IMAGE_MATTING_MAPPING_NAMES",),
    "normal-estimation": ("MODEL_FOR_NORMAL_ESTIMATION_MAPPING_NAMES",),
    "pointmap-estimation": ("MODEL_FOR_POINTMAP_ESTIMATION_MAPPING_NAMES",),
    "pose-estimation": ("MODEL_FOR_POSE_ESTIMATION_MAPPING_NAMES",),
    "causal-image-modeling": ("MODEL_FOR_CAUSAL_IMAGE_MODELING_MAPPING_NAMES",),
    "text-recognition": ("MODEL_FOR_TEXT_RECOGNITION_MAPPING_NAMES",),
    "table-recognition": ("MODEL_FOR_TABLE_RECOGNITION_MAPPING_NAMES",),
    "retrieval": ("MODEL_FOR_RETRIEVAL_MAPPING_NAMES",),
    "decision": ("MODEL_FOR_DECISION_MAPPING_NAMES",),
    "rnnt": ("MODEL_FOR_RNNT_MAPPING_NAMES",),
    "tdt": ("MODEL_FOR_TDT_MAPPING_NAMES",),
}

#: Order in which a model type's *default* task is looked for when only a model type is given.
TASK_ORDER: tuple[str, ...] = (
    "seq2seq-lm",
    "masked-lm",  # before causal-lm: encoder models (bert, roberta...) also register *ForCausalLM
    "speech-seq2seq",  # before causal-lm: whisper also registers WhisperForCausalLM (its decoder alone)
    "causal-lm",
    "image-text-to-text",
    "multimodal-lm",
    "ctc",
    "image-classification",
    "audio-classification",
    "sequence-classification",
    "base",
)

#: Tasks whose inputs fix the modality regardless of the model type's processors.
_TASK_MODALITY: dict[str, str] = {
    "image-classification": "image",
    "image-feature-extraction": "image",
    "masked-image-modeling": "image",
    "object-detection": "image",
    "semantic-segmentation": "image",
    "depth-estimation": "image",
    "backbone": "image",
    "video-classification": "image",
    "speech-seq2seq": "audio",
    "ctc": "audio",
    "audio-classification": "audio",
    "audio-frame-classification": "audio",
    "audio-xvector": "audio",
    "zero-shot-image-classification": "multimodal",
    "image-text-to-text": "multimodal",
    "image-segmentation": "image",
    "instance-segmentation": "image",
    "universal-segmentation": "image",
    "mask-generation": "image",
    "keypoint-detection": "image",
    "keypoint-matching": "image",
    "image-to-image": "image",
    "image-matting": "image",
    "normal-estimation": "image",
    "pointmap-estimation": "image",
    "pose-estimation": "image",
    "causal-image-modeling": "image",
    "text-recognition": "image",
    "table-recognition": "image",
    "rnnt": "audio",
    "tdt": "audio",
    "visual-question-answering": "multimodal",
    "document-question-answering": "multimodal",
    "zero-shot-object-detection": "multimodal",
}

_MULTIMODAL_LM_TABLES = ("MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES", "MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES")


class ArchitectureError(TinyModelsError):
    """An unknown or inconsistent model type / architecture / task.

    ``field`` is ``"model_type"``, ``"architecture"`` or ``"task"``.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class ArchInfo(NamedTuple):
    """One concrete architecture: a model class of a model type, for a task."""

    model_type: str
    class_name: str
    task: str
    modality: str  # "text" | "image" | "audio" | "multimodal"
    config_class_name: str

    @property
    def id(self) -> str:
        """Stable identifier, e.g. ``"llama/LlamaForCausalLM"``."""
        return f"{self.model_type}/{self.class_name}"


# --------------------------------------------------------------------------- tables


def _names(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (tuple, list)):
        return tuple(v for v in value if isinstance(v, str))
    return ()


@lru_cache(maxsize=None)
def _table(table_name: str) -> dict[str, tuple[str, ...]]:
    from transformers.models.auto import modeling_auto

    raw = getattr(modeling_auto, table_name, None)
    if raw is None:
        return {}
    return {mt: _names(v) for mt, v in raw.items() if _names(v)}


@lru_cache(maxsize=None)
def _task_table(task: str) -> dict[str, tuple[str, ...]]:
    merged: dict[str, tuple[str, ...]] = {}
    for table_name in TASKS[task]:
        for mt, classes in _table(table_name).items():
            merged[mt] = tuple(dict.fromkeys(merged.get(mt, ()) + classes))
    return merged


@lru_cache(maxsize=None)
def _config_names() -> dict[str, str]:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return dict(CONFIG_MAPPING_NAMES)


#: the auto module that owns each processor auto-mapping: transformers <= 5.24 defines the table there; 5.25
#: defines it in ``auto_mappings`` and the module completes it *in place* when it is imported (its
#: ``MISSING_*`` entries: 130 -> 229 image processors, 35 -> 81 feature extractors; video entries get
#: ``torchvision: None`` without torchvision).  Importing it first makes the table the same whatever the
#: process imported before; none of these modules needs PIL to import.
_MAPPING_MODULES = {
    "IMAGE_PROCESSOR_MAPPING_NAMES": "image_processing_auto",
    "VIDEO_PROCESSOR_MAPPING_NAMES": "video_processing_auto",
    "FEATURE_EXTRACTOR_MAPPING_NAMES": "feature_extraction_auto",
    "PROCESSOR_MAPPING_NAMES": "processing_auto",
    "TOKENIZER_MAPPING_NAMES": "tokenization_auto",
}


def auto_mapping_names(name: str) -> dict[str, object]:
    """A processor auto-mapping of the installed transformers (model type -> class name(s)), complete and
    independent of import order: read after the module that completes it is imported (see
    :data:`_MAPPING_MODULES`).  A copy: the caller may change it."""
    import copy

    return copy.deepcopy(dict(_auto_mapping(name)))


@lru_cache(maxsize=None)
def _auto_mapping(name: str) -> tuple[tuple[str, object], ...]:
    import copy
    import importlib

    table = None
    module_name = _MAPPING_MODULES.get(name)
    if module_name is not None:
        module = importlib.import_module(f"transformers.models.auto.{module_name}")
        table = getattr(module, name, None)
    if table is None:
        try:
            from transformers.models.auto import auto_mappings

            table = getattr(auto_mappings, name, None)
        except ImportError:  # transformers < 5.25: each table only in its own module
            table = None
    return tuple(copy.deepcopy(dict(table or {})).items())


@lru_cache(maxsize=None)
def _processor_sets() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(vision, audio, text) model types according to the processor auto-mappings; towers that use their
    parent's processor (:data:`.rules.IMAGE_PROCESSOR_OF`, registered by the families) take its modality."""
    rules.load_families()
    vision = set(auto_mapping_names("IMAGE_PROCESSOR_MAPPING_NAMES")) | set(auto_mapping_names("VIDEO_PROCESSOR_MAPPING_NAMES"))
    audio = set(auto_mapping_names("FEATURE_EXTRACTOR_MAPPING_NAMES"))
    text = {mt for mt, v in auto_mapping_names("TOKENIZER_MAPPING_NAMES").items() if v}
    vision |= set(rules.IMAGE_PROCESSOR_OF)
    audio |= set(rules.FEATURE_EXTRACTOR_OF)
    return frozenset(vision), frozenset(audio), frozenset(text)


def task_names() -> list[str]:
    """All supported task names, sorted."""
    return sorted(TASKS)


def modality_of(model_type: str, task: str) -> str:
    """Input modality of ``model_type`` used for ``task``: text, image, audio or multimodal."""
    if task in _TASK_MODALITY:
        return _TASK_MODALITY[task]
    vision, audio, text = _processor_sets()
    is_v, is_a, is_t = model_type in vision, model_type in audio, model_type in text
    multimodal_lm = any(model_type in _table(t) for t in _MULTIMODAL_LM_TABLES)
    if is_v and (is_a or is_t or multimodal_lm):
        return "multimodal"
    if is_v:
        return "image"
    if is_a and (multimodal_lm or (is_t and model_type in _table("MODEL_FOR_CAUSAL_LM_MAPPING_NAMES"))):
        return "multimodal"
    if is_a:
        return "audio"
    return "text"


def _info(model_type: str, class_name: str, task: str) -> ArchInfo:
    return ArchInfo(
        model_type=model_type,
        class_name=class_name,
        task=task,
        modality=modality_of(model_type, task),
        config_class_name=_config_names().get(model_type, ""),
    )


# --------------------------------------------------------------------------- errors


def did_you_mean(word: str, candidates: Sequence[str], n: int = 5) -> str:
    """`` Did you mean: a, b?`` for the candidates close to ``word`` (empty where none is)."""
    matches = difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.5)
    if not matches:
        low = word.lower()
        matches = [c for c in candidates if low and low in c.lower()][:n]
    return f" Did you mean: {', '.join(matches)}?" if matches else ""


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ArchitectureError(
            "task",
            f"unknown task {task!r}.{did_you_mean(task, list(TASKS))} Known tasks: {', '.join(sorted(TASKS))}.",
        )


def all_model_types() -> list[str]:
    types = set(_config_names())
    for task in TASKS:
        types |= set(_task_table(task))
    return sorted(types)


#: every task, :data:`TASK_ORDER` first: the order in which a class's task is looked for.
_TASKS_IN_ORDER: tuple[str, ...] = tuple(TASK_ORDER) + tuple(sorted(t for t in TASKS if t not in TASK_ORDER))


@lru_cache(maxsize=None)
def _class_index() -> dict[str, list[tuple[str, str]]]:
    """class name -> [(task, model_type), ...] over every task, in TASK_ORDER then name order."""
    index: dict[str, list[tuple[str, str]]] = {}
    for task in _TASKS_IN_ORDER:
        for mt in sorted(_task_table(task)):
            for cls in _task_table(task)[mt]:
                index.setdefault(cls, []).append((task, mt))
    return index


# --------------------------------------------------------------------------- public API


def resolve(model_type: str | None, architecture: str | None, task: str | None) -> ArchInfo:
    """Resolve a (model type, architecture class, task) triple, any of which may be omitted;
    see :func:`resolve_names`.  The result also carries the modality (which costs importing
    transformers' processor auto-mappings)."""
    return _info(*resolve_names(model_type, architecture, task))


def resolve_names(model_type: str | None, architecture: str | None, task: str | None) -> tuple[str, str, str]:
    """The ``(model_type, class_name, task)`` a partial triple stands for, any part of which may be omitted.

    * model type only: the class of the first task of :data:`TASK_ORDER` that has it
      (``base`` = AutoModel last);
    * architecture only: the model type is inferred from the auto-mappings;
    * both: they must belong together.

    Raises :class:`ArchitectureError` naming the offending field, with close matches.
    """
    if task is not None:
        _check_task(task)
    if model_type is None and architecture is None:
        raise ArchitectureError(
            "model_type", "give a model type (e.g. 'llama') or an architecture class (e.g. 'LlamaForCausalLM')."
        )

    if model_type is not None and model_type not in _config_names() and not any(
        model_type in _task_table(t) for t in TASKS
    ):
        raise ArchitectureError(
            "model_type",
            f"unknown model type {model_type!r} in the installed transformers.{did_you_mean(model_type, all_model_types())}"
            " Model types are the `model_type` of a config (see transformers' CONFIG_MAPPING_NAMES).",
        )

    if architecture is not None and model_type is not None:  # fast path (built-ins name both): no class index
        for t in [task] if task is not None else _TASKS_IN_ORDER:
            if architecture in _task_table(t).get(model_type, ()):
                return model_type, architecture, t
    if architecture is not None:
        hits = _class_index().get(architecture)
        if not hits:
            raise ArchitectureError(
                "architecture",
                f"unknown architecture class {architecture!r} in the installed transformers."
                f"{did_you_mean(architecture, list(_class_index()))} Use a class name listed by an Auto* mapping,"
                " e.g. 'LlamaForCausalLM'.",
            )
        if model_type is not None:
            hits_mt = [h for h in hits if h[1] == model_type]
            if not hits_mt:
                owners = sorted({mt for _, mt in hits})
                raise ArchitectureError(
                    "architecture",
                    f"{architecture!r} is not an architecture of model type {model_type!r} "
                    f"(it belongs to: {', '.join(owners)}). Drop one of the two or make them match.",
                )
            hits = hits_mt
        if task is not None:
            hits_task = [h for h in hits if h[0] == task]
            if not hits_task:
                tasks = sorted({t for t, _ in hits})
                raise ArchitectureError(
                    "task",
                    f"{architecture!r} is not registered for task {task!r} (it is for: {', '.join(tasks)}).",
                )
            hits = hits_task
        owners = list(dict.fromkeys(mt for _, mt in hits))
        chosen_mt = owners[0] if len(owners) == 1 else _owner_of_class(architecture, owners)
        chosen_task = next(t for t, mt in hits if mt == chosen_mt)
        return chosen_mt, architecture, chosen_task

    assert model_type is not None
    tasks = [task] if task is not None else [t for t in TASK_ORDER]
    for t in tasks:
        classes = _task_table(t).get(model_type)
        if classes:
            return model_type, classes[0], t
    if task is not None:
        available = [t for t in sorted(TASKS) if model_type in _task_table(t)]
        raise ArchitectureError(
            "task",
            f"model type {model_type!r} has no architecture for task {task!r}"
            f" (available tasks: {', '.join(available) or 'none'}).",
        )
    raise ArchitectureError(
        "model_type",
        f"model type {model_type!r} has no model class in the installed transformers (config only);"
        " pick another model type or give an explicit architecture.",
    )


def _owner_of_class(class_name: str, owners: list[str]) -> str:
    """Pick the model type whose config class the model class declares (fallback: first)."""
    try:
        import transformers

        cls = getattr(transformers, class_name)
        mt = getattr(getattr(cls, "config_class", None), "model_type", None)
        if mt in owners:
            return mt
    except Exception:
        pass
    return owners[0]


def _match(info: ArchInfo, patterns: Sequence[str]) -> bool:
    return any(
        fnmatch.fnmatchcase(info.model_type, p) or fnmatch.fnmatchcase(info.class_name, p) for p in patterns
    )


@lru_cache(maxsize=1)
def _exported_classes() -> frozenset[str]:
    """Class names the installed transformers exports (from its lazy module's index, nothing imported);
    empty where that index is not available (then nothing is filtered)."""
    import transformers

    index = getattr(transformers, "_class_to_module", None)
    objects = getattr(transformers, "_objects", None) or {}
    return frozenset(index or ()) | frozenset(objects) if index else frozenset()


def expand(task: str, include: str | Sequence[str] = "*", exclude: Sequence[str] = (),
           *, table: Sequence[ArchInfo] | None = None) -> list[ArchInfo]:
    """Every architecture of ``task`` in the installed transformers, filtered.

    ``include`` / ``exclude`` entries are model types or class names; fnmatch globs are allowed
    (``"qwen*"``, ``"*ForCausalLM"``).  The order is sorted by (model type, class name), hence
    identical in every process.  ``table``: :func:`task_architectures` of ``task`` if already at hand
    (e.g. remembered by the cache, see ``build.task_architectures``).
    """
    _check_task(task)
    inc = [include] if isinstance(include, str) else list(include)
    exc = [exclude] if isinstance(exclude, str) else list(exclude)
    infos = task_architectures(task) if table is None else table
    return [info for info in infos if _match(info, inc) and not _match(info, exc)]


def task_architectures(task: str) -> list[ArchInfo]:
    """Every architecture of ``task`` the installed transformers exports, sorted by (model type, class name),
    with its modality (which costs importing transformers' processor auto-mappings: ~2 s on 2 cores)."""
    _check_task(task)
    exported = _exported_classes()
    return [_info(mt, cls, task) for mt in sorted(_task_table(task)) for cls in sorted(_task_table(task)[mt])
            # named in an auto-mapping but not in this transformers (VoxtralRealtimeTextModel, 5.24)
            if not exported or cls in exported]


#: config attributes a task needs on top of the shrunk config (applied only where the config has them).
TASK_CONFIG: dict[str, dict[str, object]] = {
    "causal-lm": {"is_decoder": True},
    "text-encoding": {"is_encoder_decoder": False},  # encoder halves of seq2seq models (T5GemmaEncoderModel)
    "sequence-classification": {"num_labels": 2},
    "token-classification": {"num_labels": 3},
    "image-classification": {"num_labels": 3},
    "audio-classification": {"num_labels": 3},
}


def task_config_updates(info: ArchInfo, config: object) -> dict[str, object]:
    """Attributes to set on a config of ``info.model_type`` so that ``info.class_name`` works for its task.

    ``is_decoder`` is only set for encoder models that also register a ``*ForCausalLM``/``*LMHeadModel``.
    """
    updates = {}
    for key, value in TASK_CONFIG.get(info.task, {}).items():
        if key == "num_labels" or hasattr(config, key):
            updates[key] = value
    return updates
