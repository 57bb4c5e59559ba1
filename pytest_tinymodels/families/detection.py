"""Family special cases: detection (see :mod:`pytest_tinymodels.families`)."""

from __future__ import annotations

from typing import Any

from .. import processors, shrink, smoke  # noqa: F401
