"""The sources step, above the build: a spec's remote inputs resolved to local files.

A ``source = "org/name"`` fixture needs the config and tokenizer files of a Hub repo, a
``download = "org/name"`` fixture a whole (safe) repo. They are fetched here, through the hub client,
and the builder (:func:`pytest_tinymodels.build.build_entry`) is handed local paths, so the whole
build stage works offline by construction.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .manifest import FixtureSpec


class BuildInputs(NamedTuple):
    """Local paths a build reads: the source's config/tokenizer folder, the downloaded repo."""

    source_dir: Path | None = None
    download_dir: Path | None = None


def fetch_inputs(spec: FixtureSpec) -> BuildInputs:
    """Fetch what ``spec`` needs from the Hub (nothing for a fixture built from the library's configs;
    a local ``source`` directory is used as it is)."""
    if spec.download:
        from .hub.client import download_repo

        return BuildInputs(download_dir=download_repo(spec.download, revision=spec.revision))
    if spec.source:
        from .build import local_source_dir

        local = local_source_dir(spec)
        if local is not None:
            return BuildInputs(source_dir=local)
        from .hub.client import fetch_source

        return BuildInputs(source_dir=fetch_source(spec.source, revision=spec.revision))
    return BuildInputs()
