"""Which repos the Hugging Face libraries asked for, when no server sees the requests.

In offline mode (``HF_HUB_OFFLINE=1``) huggingface_hub answers from its cache and raises its generic
"couldn't connect" / "not in the cached files" errors for anything else; datasets does the same from
its own cache. :class:`LookupObserver` wraps the few functions every such lookup goes through, for the
session only (undone by :meth:`LookupObserver.close`):

* ``huggingface_hub.file_download._get_metadata_or_catch_error`` — every ``hf_hub_download`` (so every
  ``from_pretrained`` file), called by name from its own module;
* ``HfApi.repo_info`` / ``model_info`` / ``dataset_info`` — ``snapshot_download`` and direct calls;
* ``datasets.load.load_dataset_builder`` (also as ``datasets.load_dataset_builder``) — every
  ``load_dataset``; wrapped when datasets is imported, now or later (an import hook), in both hub modes,
  to learn the *config names* asked for an id the tiny hub did not serve.

A lookup of an id the session does not serve is reported to ``record(repo_type, repo_id, config)``. A
40-hex revision of a served id is reported to ``commit(repo_type, repo_id, sha)`` first, which may link
a snapshot folder for it (``[hub] any_commit``). The wrappers never change what the wrapped function
returns or raises.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import sys
import threading
from typing import Any, Callable

__all__ = ["LookupObserver"]

Record = Callable[[str, str, "str | None"], None]
Served = Callable[[str, str], bool]
Commit = Callable[[str, str, str], None]


def _is_sha(revision: Any) -> bool:
    return isinstance(revision, str) and len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)


def _looks_like_hub_id(path: Any) -> bool:
    import os

    return isinstance(path, str) and path.count("/") == 1 and not os.path.exists(path) and not path.startswith(".")


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``callback(module)`` right after ``name`` is first imported."""

    def __init__(self, name: str, callback: Callable[[Any], None]) -> None:
        self.name = name
        self.callback = callback

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader, callback = spec.loader, self.callback
        original = loader.exec_module

        def exec_module(module: Any) -> None:
            original(module)
            callback(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


class LookupObserver:
    """Observe hub and dataset lookups (see the module docstring). ``offline``: also watch huggingface_hub's
    cache lookups (in serve mode the server sees those)."""

    def __init__(self, record: Record, served: Served, *, offline: bool, commit: Commit | None = None) -> None:
        self.record = record
        self.served = served
        self.commit = commit
        self.offline = offline
        self._undo: list[Callable[[], None]] = []
        self._finder: _AfterImport | None = None
        self._lock = threading.Lock()

    # -- lifecycle

    def start(self) -> "LookupObserver":
        if self.offline:
            self._wrap_hub()
        if "datasets.load" in sys.modules:
            self._wrap_datasets(sys.modules["datasets.load"])
        else:
            self._finder = _AfterImport("datasets.load", self._wrap_datasets)
            sys.meta_path.insert(0, self._finder)
        return self

    def close(self) -> None:
        if self._finder is not None and self._finder in sys.meta_path:
            sys.meta_path.remove(self._finder)
        self._finder = None
        with self._lock:
            undo, self._undo = self._undo, []
        for step in reversed(undo):
            step()

    def _patch(self, owner: Any, name: str, wrapper: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        original = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
        if original is None or getattr(original, "__tinymodels_observed__", False):
            return
        wrapped = functools.wraps(original)(wrapper(original))
        wrapped.__tinymodels_observed__ = True  # type: ignore[attr-defined]
        setattr(owner, name, wrapped)
        with self._lock:
            self._undo.append(lambda: setattr(owner, name, original))

    # -- what is observed

    def _seen(self, repo_type: str | None, repo_id: Any, revision: Any, failed: bool, config: str | None = None) -> None:
        if not isinstance(repo_id, str):
            return
        repo_type = repo_type or "model"
        try:
            if self.served(repo_type, repo_id):
                if failed and self.commit is not None and _is_sha(revision):
                    self.commit(repo_type, repo_id, revision)
            elif failed:
                self.record(repo_type, repo_id, config)
        except Exception:  # noqa: BLE001 - observing must never break the library call
            pass

    def _link_commit(self, repo_type: str | None, repo_id: Any, revision: str) -> None:
        try:
            if isinstance(repo_id, str) and self.commit is not None and self.served(repo_type or "model", repo_id):
                self.commit(repo_type or "model", repo_id, revision)
        except Exception:  # noqa: BLE001 - observing must never break the library call
            pass

    def _wrap_hub(self) -> None:
        from huggingface_hub import file_download, hf_api

        observer = self

        def metadata(original: Callable[..., Any]) -> Callable[..., Any]:
            def call(*args: Any, **kwargs: Any) -> Any:
                repo_id, repo_type, revision = kwargs.get("repo_id"), kwargs.get("repo_type"), kwargs.get("revision")
                if observer.commit is not None and _is_sha(revision):
                    observer._link_commit(repo_type, repo_id, revision)  # before the cache lookup that follows
                result = original(*args, **kwargs)
                if isinstance(result, tuple) and result and result[-1] is not None:
                    observer._seen(repo_type, repo_id, revision, True)
                return result

            return call

        self._patch(file_download, "_get_metadata_or_catch_error", metadata)

        def info(kind: str | None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
            def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
                def call(api: Any, repo_id: str, *args: Any, **kwargs: Any) -> Any:
                    repo_type = kind or kwargs.get("repo_type") or "model"
                    try:
                        return original(api, repo_id, *args, **kwargs)
                    except Exception:
                        observer._seen(repo_type, repo_id, kwargs.get("revision"), True)
                        raise

                return call

            return wrap

        self._patch(hf_api.HfApi, "repo_info", info(None))
        self._patch(hf_api.HfApi, "model_info", info("model"))
        self._patch(hf_api.HfApi, "dataset_info", info("dataset"))

    def _wrap_datasets(self, load_module: Any) -> None:
        observer = self

        def builder(original: Callable[..., Any]) -> Callable[..., Any]:
            def call(path: Any, name: Any = None, *args: Any, **kwargs: Any) -> Any:
                try:
                    return original(path, name, *args, **kwargs)
                except Exception:
                    if _looks_like_hub_id(path) and not kwargs.get("data_files"):
                        observer._seen("dataset", path, kwargs.get("revision"), True,
                                       name if isinstance(name, str) else None)
                    raise

            return call

        self._patch(load_module, "load_dataset_builder", builder)
        package = sys.modules.get("datasets")
        if package is None:
            return
        wrapped = getattr(load_module, "load_dataset_builder")
        if getattr(package, "load_dataset_builder", None) is getattr(wrapped, "__wrapped__", None):
            package.load_dataset_builder = wrapped  # the package's re-export, bound before we came

        def restore() -> None:  # also when the package bound the wrapper while being imported
            current = getattr(package, "load_dataset_builder", None)
            if getattr(current, "__tinymodels_observed__", False):
                package.load_dataset_builder = current.__wrapped__

        with self._lock:
            self._undo.append(restore)
