"""The tiny hub's pytest face: ``--tiny-hub`` / ``--tiny-hub-offline`` / ini ``tiny_hub`` register
:class:`TinyHubPlugin` (from :func:`configure`, called by the main plugin), which starts a
:class:`~.repos.TinyHub` per process and reports what was served, merged across xdist workers."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest

from ..errors import ManifestError
from .registry import HubRegistry, load_hub_registry
from .repos import TinyHub, summary_lines

__all__ = ["TinyHubPlugin", "configure", "hub_mode"]


def hub_mode(option_serve: bool, option_offline: bool, ini: str | None) -> str | None:
    """The mode from ``--tiny-hub`` / ``--tiny-hub-offline`` / ini ``tiny_hub`` (None: off)."""
    if option_offline:
        return "offline"
    if option_serve:
        return "serve"
    value = (ini or "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return None
    if value in ("1", "true", "yes", "on", "serve"):
        return "serve"
    if value == "offline":
        return "offline"
    raise ValueError(f"ini tiny_hub must be true, false, serve or offline, got {ini!r}")


# --------------------------------------------------------------------------- pytest wiring


HUB_RECORD_KEY = "tinymodels_hub"


class TinyHubPlugin:
    """Pytest hooks of the tiny hub; registered by ``plugin.py`` when ``--tiny-hub`` is on."""

    def __init__(self, config: Any, session: Any, registry: HubRegistry, mode: str,
                 log: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.mode = mode
        self.hub = TinyHub(session, registry, mode, log=log)
        self.worker_records: list[dict[str, Any]] = []
        self.controller = _is_xdist_controller(config)

    def pytest_sessionstart(self, session: Any) -> None:
        if not self.controller:  # xdist workers each run their own hub; the controller runs no test
            self.hub.start()

    def pytest_report_header(self, config: Any) -> list[str]:
        if self.controller:
            return [f"tinymodels: tiny hub ({self.mode}) runs in each xdist worker"]
        return [self.hub.header()]

    def pytest_sessionfinish(self, session: Any) -> None:
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[HUB_RECORD_KEY] = json.dumps(self.hub.record())
        self.hub.stop()

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        raw = getattr(node, "workeroutput", {}).get(HUB_RECORD_KEY)
        if raw:
            self.worker_records.append(json.loads(raw))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        lines = summary_lines([self.hub.record(), *self.worker_records], self.mode)
        if len(lines) <= (1 if self.mode == "offline" else 0):
            return
        terminalreporter.write_sep("-", "tiny hub")
        for line in lines:
            terminalreporter.write_line(line)


def _is_xdist_controller(config: Any) -> bool:
    if hasattr(config, "workerinput"):
        return False
    option = config.option
    workers = getattr(option, "numprocesses", None) or getattr(option, "tx", None)
    return getattr(option, "dist", "no") != "no" and bool(workers)


def configure(config: Any, session: Any, log: Callable[[str], None] | None = None) -> None:
    """Register :class:`TinyHubPlugin` when the options ask for it (called from ``plugin.py``)."""
    try:
        mode = hub_mode(config.getoption("tiny_hub", False), config.getoption("tiny_hub_offline", False),
                        config.getini("tiny_hub"))
    except ValueError as exc:
        raise pytest.UsageError(f"pytest-tinymodels: {exc}") from None
    if mode is None:
        return
    try:
        registry = load_hub_registry(session.manifest)
    except ManifestError as exc:
        raise pytest.UsageError(f"pytest-tinymodels: {exc}") from None
    config.pluginmanager.register(TinyHubPlugin(config, session, registry, mode, log), "tinymodels-hub")
