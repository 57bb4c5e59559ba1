"""Lock files: the digests of built entries, so that a suite whose tests assert exact values learns at
once that a library upgrade (or an edited spec) changed its tiny models.

``python -m pytest_tinymodels lock`` writes ``tinymodels.lock`` (JSON, sorted keys, one stable text for
the same entries) beside the manifest::

    {"format": 1,
     "libraries": {"transformers": "5.25.0", "tokenizers": "0.23.3", ...},   # the versions that built them
     "builder": {"code": "...", "corpus": "..."},                          # pytest-tinymodels' builder inputs
     "entries": {"tiny_llama": {"digest": "...", "key": "...", "files": {"repo/model.safetensors": "..."},
                                "spec": {...}},
                 "tiny_causal_lm[qwen2]": {...}}}

An entry's digest is a sha256 over its files' sha256s as its completion marker records them, except
``recipe.json`` (build timings) and the ``transformers_version`` stamp of ``*config.json`` files (a new
library version stamps its own number; that alone changes no model).  :func:`check_entry` compares a
built entry with its lock record and explains a difference: which files, which library versions, which
spec fields, or the builder changed.  Pure Python: the plugin and the CLI wire it up.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, NamedTuple

from .cache import MARKER, RECIPE, library_versions
from .errors import TinyModelsError

if TYPE_CHECKING:
    from .session import TinySession, Variant

LOCK_NAME = "tinymodels.lock"
LOCK_FORMAT = 1
#: Files left out of a digest: the recipe holds build timings (its spec and versions are recorded apart).
EXCLUDED_FILES = frozenset({RECIPE, MARKER})
#: The key by which transformers stamps its own version into the JSON files it writes.
VERSION_STAMP = "transformers_version"
#: Length of the per-file hashes kept in a lock (the entry digest covers the full ones).
FILE_HASH_CHARS = 16


class LockFileError(TinyModelsError):
    """A lock file is missing, unreadable or not a lock file."""


class EntryState(NamedTuple):
    """What a lock records of one built entry."""

    key: str
    digest: str
    files: dict[str, str]  # relative path -> sha256 (version stamps left out of *config.json)
    spec: dict[str, Any]  # the spec fields that decide the build (FixtureSpec.build_key_fields)


class Lock(NamedTuple):
    """A lock file as read: its stamps and its entries by label (``name`` or ``name[variant]``)."""

    path: Path
    libraries: dict[str, str | None]
    builder: dict[str, str]
    entries: dict[str, dict[str, Any]]


def default_lock_path(manifest: Path | None, rootdir: Path) -> Path:
    """``tinymodels.lock`` beside the user manifest, else in ``rootdir``."""
    return (manifest.parent if manifest is not None else rootdir) / LOCK_NAME


def label_of_variant(name: str, variant_id: str) -> str:
    """``name`` or ``name[variant]``: how an entry is named in a lock and in pytest ids."""
    return f"{name}[{variant_id}]" if variant_id else name


def entry_files(entry: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file of a published entry, from its completion marker.

    ``recipe.json`` is left out; for a ``*config.json`` carrying transformers' version stamp, the sha256 of
    its canonical JSON without the stamp.
    """
    try:
        marker = json.loads((entry / MARKER).read_text())
        recorded = marker["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LockFileError(f"{entry} is not a complete tiny-model entry ({exc})") from None
    files: dict[str, str] = {}
    for rel, meta in sorted(recorded.items()):
        if rel in EXCLUDED_FILES:
            continue
        digest = str(meta.get("sha256"))
        if rel.endswith("config.json"):
            digest = _unstamped_json_sha256(entry / rel) or digest
        files[rel] = digest
    return files


def _unstamped_json_sha256(path: Path) -> str | None:
    """sha256 of the canonical JSON of ``path`` without version stamps; None if it has none."""
    try:
        raw = path.read_bytes()
        if VERSION_STAMP.encode() not in raw:
            return None
        data = json.loads(raw)
    except (OSError, ValueError):
        return None

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != VERSION_STAMP}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    text = json.dumps(strip(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def files_digest(files: Mapping[str, str]) -> str:
    """One sha256 over the sorted (path, sha256) pairs."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(f"{rel}\0{files[rel]}\n".encode())
    return h.hexdigest()


def entry_state(key: str, entry: Path, spec_fields: Mapping[str, Any]) -> EntryState:
    """The lock record of the published entry ``entry`` (cache key ``key``) built from ``spec_fields``."""
    files = entry_files(entry)
    return EntryState(key, files_digest(files), files, json.loads(json.dumps(dict(spec_fields), sort_keys=True,
                                                                             default=str)))


def variant_state(session: TinySession, variant: Variant, entry: Path) -> EntryState:
    """:func:`entry_state` of a session's variant whose entry is published at ``entry``."""
    return entry_state(session.key(variant.spec), entry, variant.spec.build_key_fields())


def current_stamps(memo_dir: Path | None) -> tuple[dict[str, str | None], dict[str, str]]:
    """(installed library versions, builder inputs ``{"code", "corpus"}``) as a lock records them."""
    from .build import build_inputs_digest

    return library_versions(memo_dir), dict(build_inputs_digest(memo_dir))


# -- reading and writing -------------------------------------------------------------------------------
def write_lock(path: Path, states: Mapping[str, EntryState], libraries: Mapping[str, str | None],
               builder: Mapping[str, str]) -> None:
    """Write the lock file atomically: entries by label, sorted keys, one line per JSON field."""
    data = {
        "format": LOCK_FORMAT,
        "libraries": dict(libraries),
        "builder": dict(builder),
        "entries": {label: {"key": s.key, "digest": s.digest, "spec": s.spec,
                            "files": {rel: sha[:FILE_HASH_CHARS] for rel, sha in s.files.items()}}
                    for label, s in states.items()},
    }
    text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LockFileError(f"cannot write lock file {path}: {exc.strerror or exc}") from None


def read_lock(path: Path) -> Lock:
    """Read a lock file; :class:`LockFileError` naming the file and what to do when it cannot be used."""
    relock = "create it with: python -m pytest_tinymodels lock [--manifest FILE] [NAMES]"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LockFileError(f"lock file {path} not found; {relock}") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise LockFileError(f"lock file {path} cannot be read ({exc}); {relock}") from None
    if not isinstance(data, dict) or data.get("format") != LOCK_FORMAT or not isinstance(data.get("entries"), dict):
        raise LockFileError(f"{path} is not a pytest-tinymodels lock file of format {LOCK_FORMAT}; {relock}")
    entries = {str(k): v for k, v in data["entries"].items() if isinstance(v, dict) and isinstance(v.get("digest"), str)}
    if len(entries) != len(data["entries"]):
        raise LockFileError(f"lock file {path} has entries without a digest; {relock}")
    libraries = data.get("libraries") if isinstance(data.get("libraries"), dict) else {}
    builder = data.get("builder") if isinstance(data.get("builder"), dict) else {}
    return Lock(Path(path), dict(libraries), {str(k): str(v) for k, v in builder.items()}, entries)


# -- checking ------------------------------------------------------------------------------------------
def changed_libraries(locked: Mapping[str, str | None], now: Mapping[str, str | None]) -> list[str]:
    """``"transformers 5.24.0 -> 5.25.0"`` for every library whose version differs."""
    return [f"{name} {locked.get(name) or 'not installed'} -> {now.get(name) or 'not installed'}"
            for name in sorted(set(locked) | set(now)) if locked.get(name) != now.get(name)]


def check_entry(lock: Lock, label: str, state: EntryState, libraries: Mapping[str, str | None],
                builder: Mapping[str, str], *, relock: str = "python -m pytest_tinymodels lock") -> str | None:
    """None when ``state`` matches ``lock``'s record of ``label`` (or ``label`` is not locked: see
    :func:`is_locked`); else a message naming the fixture, the files that changed and why: the library
    versions, spec fields or builder that differ from the lock's."""
    record = lock.entries.get(label)
    if record is None or record.get("digest") == state.digest:
        return None
    locked_files = record.get("files") if isinstance(record.get("files"), dict) else {}
    now_files = {rel: sha[:FILE_HASH_CHARS] for rel, sha in state.files.items()}
    changed = sorted(rel for rel in set(locked_files) | set(now_files) if locked_files.get(rel) != now_files.get(rel))
    reasons = []
    libs = changed_libraries(lock.libraries, libraries)
    if libs:
        reasons.append("library versions changed since the lock: " + ", ".join(libs))
    spec_changes = _changed_fields(record.get("spec"), state.spec)
    if spec_changes:
        reasons.append("its spec changed: " + ", ".join(spec_changes))
    builder_changes = sorted(k for k in set(lock.builder) | set(builder) if lock.builder.get(k) != builder.get(k))
    if builder_changes:
        reasons.append("the builder's " + " and ".join(builder_changes) + " changed (another pytest-tinymodels)")
    if not reasons:
        reasons.append("same spec, library versions and builder: the build is not reproducible here, or the "
                       "entry was edited (python -m pytest_tinymodels verify)")
    files = ", ".join(changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")
    return (f"tiny fixture {label}: the built entry differs from the lock file {lock.path} "
            f"(changed: {files or 'file list'}); {'; '.join(reasons)}. Values your tests expect from this "
            f"fixture (token ids, logits) may have changed; once checked, update the lock: {relock} {label.split('[')[0]}")


def is_locked(lock: Lock, label: str) -> bool:
    return label in lock.entries


def _changed_fields(locked: Any, now: Mapping[str, Any]) -> list[str]:
    if not isinstance(locked, dict):
        return []
    out = []
    for key in sorted(set(locked) | set(now)):
        if locked.get(key) != now.get(key):
            out.append(f"{key} {json.dumps(locked.get(key), sort_keys=True)} -> {json.dumps(now.get(key), sort_keys=True)}")
    return out


def lock_variants(session: TinySession, names: Iterable[str]) -> list[tuple[str, Variant]]:
    """(label, variant) of every entry to lock for ``names`` (each variant of a parametrized fixture)."""
    out = []
    for name in names:
        for variant in session.variants(name):
            out.append((label_of_variant(name, variant.id), variant))
    return out
