"""Exceptions raised by pytest-tinymodels.

Every error a user can see says *where* (manifest file, fixture, field) and *what to do*.
"""

from __future__ import annotations

from pathlib import Path


class TinyModelsError(Exception):
    """Base class of every pytest-tinymodels error."""


class ManifestError(TinyModelsError):
    """A manifest is invalid: names the file, the fixture and the field."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        fixture: str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.fixture = fixture
        self.field = field
        self.message = message
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if self.fixture is not None:
            where.append(f"fixture {self.fixture!r}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        text = (": ".join([", ".join(where), self.message])) if where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class BuildError(TinyModelsError):
    """Building a tiny entry failed (shrinking, model init, tokenizer, dataset or smoke check)."""

    def __init__(self, message: str, *, fixture: str | None = None, stage: str | None = None) -> None:
        self.fixture = fixture
        self.stage = stage
        prefix = ""
        if fixture:
            prefix += f"fixture {fixture!r}: "
        if stage:
            prefix += f"{stage} failed: "
        super().__init__(prefix + message)


class CacheError(TinyModelsError):
    """The cache directory is unusable (read-only, full, lock timeout).

    ``path`` is the directory or lock file concerned; ``errno`` the OS error behind it, if any
    (the cache falls back to a temporary directory for permission errors, see ``Cache.prepare``).
    """

    def __init__(self, message: str, *, path: Path | str | None = None, errno: int | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.errno = errno
        super().__init__(message)
