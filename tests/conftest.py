"""Shared fixtures for pytest-tinymodels' own tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the whole test session: tests that do not care about cold builds reuse it."""
    return tmp_path_factory.mktemp("tiny-cache-shared")


@pytest.fixture
def cache_env(monkeypatch: pytest.MonkeyPatch, shared_cache: Path) -> Path:
    """Point PYTEST_TINYMODELS_CACHE at the shared cache (for pytester runs)."""
    monkeypatch.setenv("PYTEST_TINYMODELS_CACHE", str(shared_cache))
    return shared_cache


@pytest.fixture
def cold_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty cache of this test's own."""
    path = tmp_path / "tiny-cache"
    monkeypatch.setenv("PYTEST_TINYMODELS_CACHE", str(path))
    return path


@pytest.fixture(scope="session")
def preloaded_libraries() -> None:
    """Import the heavy libraries in this process before in-process pytester runs.

    ``pytester.runpytest()`` restores ``sys.modules`` after each inner run; a C extension such as
    torch imported inside a run would be dropped and re-imported by the next run, which crashes.
    """
    import datasets  # noqa: F401
    import safetensors  # noqa: F401
    import tokenizers  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from transformers import (  # noqa: F401
        BertForMaskedLM,
        GPT2LMHeadModel,
        LlamaForCausalLM,
        T5ForConditionalGeneration,
    )
