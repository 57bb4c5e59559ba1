"""Shared check for named shrink rules: the rule makes a config right, and without it the same check fails."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from pytest_tinymodels.build import rules, shrink


def _tables() -> tuple[dict, ...]:
    rules.load_families()
    return (shrink.GENERIC_RULES, rules.FAMILY_RULES)


def rules_of(module: Any) -> set[str]:
    """Names of the named shrink rules (:data:`shrink.GENERIC_RULES`, :data:`rules.FAMILY_RULES`) defined in ``module``."""
    return {name for table in _tables() for name, rule in table.items() if rule.__module__ == module.__name__}


def check_rule(rule: str, config: Mapping[str, Any], check: Callable[[dict], bool], monkeypatch: pytest.MonkeyPatch,
               *, vocab_size: int | None = 512, what: str = "consistent") -> None:
    """``check`` holds for the shrunk ``config`` with ``rule``, and not without it (else the case tests nothing)."""
    assert check(shrink.shrink_dict(config, vocab_size=vocab_size)), f"rule {rule!r} did not make the config {what}"
    monkeypatch.delitem(next(table for table in _tables() if rule in table), rule)
    try:
        without = check(shrink.shrink_dict(config, vocab_size=vocab_size))
    except (KeyError, TypeError, IndexError):
        without = False
    assert not without, f"the test of rule {rule!r} passes without the rule: it tests nothing"
