"""The extension points: registries of per-family knowledge, read by the generic build modules.

This module imports nothing of the project's.  The family modules (:mod:`.families`) register into it
with the decorators and functions below; the generic modules (:mod:`.config`, :mod:`.inputs`,
:mod:`.processors`, :mod:`.architectures`) read the registries after calling :func:`load_families`,
which imports the families package once, by name, the way plugins are loaded from entry points.
So no module imports another at its end to fill tables, and the import graph has no cycle.

* :func:`family_rule` — ``rule(node, ctx)`` on every shrunk config dict (it checks its family first);
  runs after the shrinker's own generic rules (:data:`.config.GENERIC_RULES`);
* :func:`model_type_values` — plain values set on that model type's shrunk config dicts
  (merged; two families setting one key differently is an error);
* :func:`input_builder` — builds a forward argument from the config (shared by every model);
* :func:`input_fixup` — ``fixup(ctx, inputs)`` adjusting a family's dummy inputs;
* :data:`IMAGE_PROCESSOR_OF` / :data:`FEATURE_EXTRACTOR_OF` — whose processor a model type without
  one of its own uses (:func:`processor_of`);
* :data:`PROCESSOR_CLASS_OF`, :data:`PROCESSOR_TOKENS`, :func:`processor_kwargs` — a multimodal family's
  processor class (where the auto-mapping names none), the tokens it reads from its tokenizer, and the
  arguments it takes from the tiny config.
"""

from __future__ import annotations

import copy
import importlib
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = [
    "FAMILY_RULES",
    "MODEL_TYPE_CONFIG",
    "INPUT_BUILDERS",
    "INPUT_FIXUPS",
    "IMAGE_PROCESSOR_OF",
    "FEATURE_EXTRACTOR_OF",
    "PROCESSOR_CLASS_OF",
    "PROCESSOR_TOKENS",
    "PROCESSOR_KWARGS",
    "family_rule",
    "model_type_values",
    "input_builder",
    "input_fixup",
    "processor_of",
    "processor_kwargs",
    "register_into",
    "load_families",
]

F = TypeVar("F", bound=Callable)

#: The package holding the family modules, imported once by :func:`load_families`.
FAMILIES_PACKAGE = "pytest_tinymodels.build.families"

#: name -> ``rule(node, ctx)`` run on every shrunk config dict, in registration order.
FAMILY_RULES: dict[str, Callable[[dict, Any], None]] = {}
#: model type -> nested dict applied to the shrunk config dict of that model type (at any depth),
#: before the manifest's ``config`` overrides.
MODEL_TYPE_CONFIG: dict[str, dict[str, Any]] = {}
#: forward argument name -> ``builder(ctx)``, for arguments the generic input builders do not know.
INPUT_BUILDERS: dict[str, Callable[[Any], Any]] = {}
#: name -> ``fixup(ctx, inputs)`` run in order after the inputs are built.
INPUT_FIXUPS: dict[str, Callable[[Any, dict[str, Any]], None]] = {}
#: model types with no image processor / feature extractor of their own (backbones and encoders used
#: inside other models) -> the model type whose one they use.
IMAGE_PROCESSOR_OF: dict[str, str] = {}
FEATURE_EXTRACTOR_OF: dict[str, str] = {}
#: model type -> the processor class (``AutoProcessor``) its repos carry, where transformers' mapping names none.
PROCESSOR_CLASS_OF: dict[str, str] = {}
#: model type -> {tokenizer attribute: token} of the family (``{"image_token": "<IMG_CONTEXT>"}``): the tokens its
#: processor reads from the tokenizer, where the chat format's placeholders do not name them.
PROCESSOR_TOKENS: dict[str, dict[str, str]] = {}
#: model type -> ``kwargs(config) -> dict``: processor (``"processor"``) and image processor (``"image_processor"``)
#: arguments derived from the tiny config that the generic name matching does not find.
PROCESSOR_KWARGS: dict[str, Callable[[Any], dict[str, dict[str, Any]]]] = {}

_loaded = False
_load_lock = threading.RLock()


def load_families() -> None:
    """Import the family modules once, so that every registry is complete (cheap after the first call)."""
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if not _loaded:
            importlib.import_module(FAMILIES_PACKAGE)
            _loaded = True


def register_into(table: dict[str, F], name: str, what: str) -> Callable[[F], F]:
    """A decorator putting its function into ``table[name]``; a different function under the same name
    is an error (``what`` names the kind of entry in the message)."""

    def register(function: F) -> F:
        if name in table and table[name] is not function:
            raise ValueError(f"{what} {name!r} is registered twice")
        table[name] = function
        return function

    return register


def family_rule(name: str) -> Callable[[F], F]:
    """Register a named node rule ``rule(node, ctx)`` in :data:`FAMILY_RULES` (runs on every config node
    after the generic shrinking; it must check that the node is one of its family's)."""
    return register_into(FAMILY_RULES, name, "family rule")


def input_builder(name: str) -> Callable[[F], F]:
    """Register the builder of the forward argument ``name`` in :data:`INPUT_BUILDERS`."""
    return register_into(INPUT_BUILDERS, name, "input builder")


def input_fixup(name: str) -> Callable[[F], F]:
    """Register a named fixup ``fixup(ctx, inputs)`` in :data:`INPUT_FIXUPS` (it must check that the model
    is one of its family's: ``type(ctx.model).__name__``, ``ctx.config.model_type``)."""
    return register_into(INPUT_FIXUPS, name, "input fixup")


def processor_kwargs(*model_types: str) -> Callable[[F], F]:
    """Register ``kwargs(config) -> {"processor": {...}, "image_processor": {...}}`` for ``model_types`` in
    :data:`PROCESSOR_KWARGS` (the arguments a family's processor needs to match the tiny model)."""

    def register(function: F) -> F:
        for model_type in model_types:
            register_into(PROCESSOR_KWARGS, model_type, "processor kwargs")(function)
        return function

    return register


def model_type_values(model_type: str, values: Mapping[str, Any]) -> None:
    """Merge ``values`` into :data:`MODEL_TYPE_CONFIG` for ``model_type`` (nested dicts merge; two family
    modules setting the same key to different values is an error, so no entry silently overwrites another)."""

    def merge(into: dict, new: Mapping[str, Any], path: str) -> None:
        for k, v in new.items():
            if isinstance(v, Mapping) and isinstance(into.get(k), dict):
                merge(into[k], v, f"{path}{k}.")
            elif k in into and into[k] != v:
                raise ValueError(f"MODEL_TYPE_CONFIG[{model_type!r}]: {path}{k} is set to {into[k]!r} and {v!r}")
            else:
                into[k] = copy.deepcopy(dict(v)) if isinstance(v, Mapping) else copy.deepcopy(v)

    merge(MODEL_TYPE_CONFIG.setdefault(model_type, {}), values, "")


def processor_of(kind: str, model_type: str) -> str:
    """The model type whose image processor (``kind="image"``) or feature extractor (``"audio"``)
    ``model_type`` uses: its own unless a family declared another."""
    load_families()
    table = IMAGE_PROCESSOR_OF if kind == "image" else FEATURE_EXTRACTOR_OF
    return table.get(model_type, model_type)
