"""Silence the libraries' progress bars and info logs while we build or load (restored after)."""

from __future__ import annotations

import contextlib
from typing import Iterator


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Temporarily disable transformers/datasets progress bars and lower transformers' verbosity."""
    from transformers.utils import logging as tlogging

    bars_were_on = tlogging.is_progress_bar_enabled()
    verbosity = tlogging.get_verbosity()
    tlogging.disable_progress_bar()
    tlogging.set_verbosity_error()
    ds_bars = None
    try:
        import datasets.utils.logging as dlogging

        ds_bars = dlogging.is_progress_bar_enabled()
        dlogging.disable_progress_bar()
    except Exception:  # noqa: BLE001 - datasets without these helpers: nothing to silence
        dlogging = None
    try:
        yield
    finally:
        if bars_were_on:
            tlogging.enable_progress_bar()
        tlogging.set_verbosity(verbosity)
        if dlogging is not None and ds_bars:
            dlogging.enable_progress_bar()
