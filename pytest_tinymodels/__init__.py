"""pytest-tinymodels: tiny random Hugging Face models, tokenizers and datasets as pytest fixtures.

Outside pytest::

    from pytest_tinymodels import get_fixture
    model, tokenizer, dataset = get_fixture("tiny_llama")
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .loader import TinyTriple



def get_fixture(
    name: str,
    *,
    manifest: str | None = None,
    cache_dir: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    variant: str | None = None,
) -> "TinyTriple":
    """Build (or reuse) the tiny entry ``name`` and return a triple loaded from the cache, without pytest.

    Each call loads its own triple (no copy is made: nothing else holds it, so mutate it freely).
    ``device``/``dtype`` override the manifest (like ``--tiny-device``/``--tiny-dtype``); ``variant``
    picks one architecture of a parametrized fixture (its test id, e.g. ``"llama"``).
    """
    from .cache import Cache
    from .manifest import load_manifest
    from .session import TinySession, resolve_cache_dir

    root = resolve_cache_dir(cache_dir).value
    session = TinySession(load_manifest(manifest, memo_dir=root), Cache(root), device=device, dtype=dtype)
    variants = session.variants(name)
    chosen = next((v for v in variants if v.id == (variant or "")), None) if variant or len(variants) != 1 else variants[0]
    if chosen is None:
        raise KeyError(f"fixture {name!r} has variants {[v.id for v in variants]}; pass variant=")
    return session.load(chosen).load()  # the session ends here: its loaded triple is the caller's own


__all__ = ["get_fixture", "__version__"]


def __getattr__(attr: str) -> Any:
    if attr == "__version__":  # read on first use: parsing the package metadata costs ~1 ms at import
        try:
            return metadata.version("pytest-tinymodels")
        except metadata.PackageNotFoundError:  # running from a source tree
            return "0.0.0"
    if attr == "TinyTriple":
        from .loader import TinyTriple

        return TinyTriple
    raise AttributeError(attr)
