"""Stand-ins for Hub ids that name no class: the model type and task guessed from the words of the id.

``org/reranker-bert-tiny-gooaq-bce`` -> a ``BertForSequenceClassification`` with one label and the
sentence-transformers layout; ``distilbert/distilbert-base-uncased`` -> ``distilbert``;
``openai/clip-vit-base-patch32`` -> ``CLIPModel``. The words and what they select are data
(:mod:`.conventions`); the model types are those of the installed transformers.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, NamedTuple

from . import conventions

__all__ = ["StandIn", "guess_stand_in", "hint_table", "id_words", "normalise"]

#: The longest run of id words joined into one model type name (``xlm-roberta`` is two).
_MAX_NGRAM = 4


class StandIn(NamedTuple):
    """A guess: the fixture table of the stand-in, the library layout, and the words it came from."""

    table: dict[str, Any]  # model_type / task / config
    library: str | None
    reason: str

    def describe(self) -> str:
        """``BertForSequenceClassification (num_labels = 1) + sentence-transformers layout`` style label."""
        from ..build import architectures

        arch = architectures.resolve(self.table.get("model_type"), None, self.table.get("task"))
        config = ", ".join(f"{k} = {v!r}" for k, v in sorted(self.table.get("config", {}).items()))
        text = arch.class_name + (f" ({config})" if config else "")
        return text + (f" + {self.library} layout" if self.library else "")


def normalise(word: str) -> str:
    """Lower case without ``-``/``_``/``.``: ``Distil-BERT`` -> ``distilbert``."""
    return re.sub(r"[-_.\s]", "", word.lower())


def id_words(repo_id: str) -> list[str]:
    """The words of an id's name part, lower case (``Qwen2.5-0.5B`` -> qwen2, 5, 0, 5b)."""
    name = repo_id.split("/", 1)[-1]
    return [w for w in re.split(r"[-_./\s]+", name.lower()) if w]


@lru_cache(maxsize=1)
def _model_types() -> dict[str, str]:
    """normalised name -> model type, for every model type of the installed transformers (3+ characters)."""
    from ..build import architectures

    out: dict[str, str] = {}
    for mt in architectures.all_model_types():
        key = normalise(mt)
        if len(key) >= 3 or any(c.isdigit() for c in key):
            out.setdefault(key, mt)
    return out


def _model_type_of(words: list[str], org_words: list[str]) -> tuple[str, str] | None:
    """(model type, the words that named it): the longest run of words that is a model type's name;
    the organisation's words count only when the name has none (``distilbert/distilbert-base``)."""
    table = _model_types()
    for pool in (words, org_words):
        best: tuple[tuple[bool, int], str, str] | None = None
        for i in range(len(pool)):
            for j in range(i + 1, min(len(pool), i + _MAX_NGRAM) + 1):
                joined = "".join(pool[i:j])
                real = table.get(joined)
                mt = real or conventions.MODEL_TYPE_ALIASES.get(joined)
                rank = (real is not None, len(joined))  # a model type's own name before an alias; then the longest
                if mt is not None and (best is None or rank > best[0]):
                    best = (rank, mt, "-".join(pool[i:j]))
        if best is not None:
            return best[1], best[2]
    return None


def _runs(words: list[str]) -> set[str]:
    """Every run of up to :data:`_MAX_NGRAM` consecutive words, joined (``cross``, ``encoder`` -> ``crossencoder``)."""
    return {"".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, min(len(words), i + _MAX_NGRAM) + 1)}


def guess_stand_in(repo_id: str) -> StandIn | None:
    """The stand-in for ``repo_id``, or None when no word of it names an installed model type."""
    org = repo_id.split("/", 1)[0].lower() if "/" in repo_id else ""
    words = id_words(repo_id)
    org_words = [w for w in re.split(r"[-_.]+", org) if w]
    found = _model_type_of(words, org_words)
    if found is None:
        return None
    model_type, named_by = found
    table: dict[str, Any] = {"model_type": model_type}
    library: str | None = None
    reasons = [f"model type {model_type} from {named_by!r}"]
    runs = _runs(words)
    picked: dict[str, Any] = {}
    for key, values in conventions.LIBRARY_WORDS.items():
        if key in runs:
            picked, library = dict(values), values.get("library")
            reasons.append(f"{library} from {key!r}")
            break
    if org in conventions.LIBRARY_ORGS:
        picked = dict(conventions.LIBRARY_ORGS[org])
        library = picked.get("library")
        reasons = reasons[:1]
        reasons.append(f"{library} from the organisation {org!r}")
    for task_words, values in conventions.TASK_WORDS:
        hit = next((w for w in task_words if normalise(w) in runs), None)
        if hit is not None:
            picked = {**picked, **values}
            library = values.get("library", library)
            reasons.append(f"task {values['task']} from {hit!r}")
            break
    if "task" in picked:
        table["task"] = picked["task"]
    if picked.get("config"):
        table["config"] = dict(picked["config"])
    _check_task(table)
    return StandIn(table, library, "; ".join(reasons))


def _check_task(table: dict[str, Any]) -> None:
    """Drop a guessed task the model type has no class for (its default task is used instead)."""
    from ..build import architectures

    if "task" not in table:
        return
    try:
        architectures.resolve(table["model_type"], None, table["task"])
    except architectures.ArchitectureError:
        table.pop("task")
        table.pop("config", None)


def hint_table(stand_in: StandIn) -> str:
    """The TOML inline table that declares ``stand_in`` explicitly."""
    from ..build import architectures

    arch = architectures.resolve(stand_in.table.get("model_type"), None, stand_in.table.get("task"))
    parts = [f'architecture = "{arch.class_name}"']
    config = stand_in.table.get("config") or {}
    if config:
        parts.append("config = { " + ", ".join(f"{k} = {_toml(v)}" for k, v in sorted(config.items())) + " }")
    if stand_in.library:
        parts.append(f'library = "{stand_in.library}"')
    return "{ " + ", ".join(parts) + " }"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)
