"""Shared check for named shrink rules: the rule makes a config right, and without it the same check fails."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from pytest_tinymodels.build import rules, shrink


def _tables() -> tuple[dict, ...]:
    rules.load_families()
    return (shrink.GENERIC_RULES, rules.FAMILY_RULES)


def _no_op(node: dict, ctx: Any) -> None:
    """A rule that does nothing: what the shrinker does without the rule it stands in for."""


def rules_of(module: Any) -> set[str]:
    """Names of the named shrink rules (:data:`shrink.GENERIC_RULES`, :data:`rules.FAMILY_RULES`) defined in ``module``."""
    return {name for table in _tables() for name, rule in table.items() if rule.__module__ == module.__name__}


def check_rule(rule: str, config: Mapping[str, Any], check: Callable[[dict], bool], monkeypatch: pytest.MonkeyPatch,
               *, vocab_size: int | None = 512, what: str = "consistent") -> None:
    """``check`` holds for the shrunk ``config`` with ``rule``, and not without it (else the case tests nothing)."""
    assert check(shrink.shrink_dict(config, vocab_size=vocab_size)), f"rule {rule!r} did not make the config {what}"
    # switched off in place (a no-op under its name), not deleted: monkeypatch would re-insert a deleted key at
    # the end of the table, and the rules run in table order (``mla`` before ``mrope_sections``)
    monkeypatch.setitem(next(table for table in _tables() if rule in table), rule, _no_op)
    try:
        without = check(shrink.shrink_dict(config, vocab_size=vocab_size))
    except (KeyError, TypeError, IndexError):
        without = False
    assert not without, f"the test of rule {rule!r} passes without the rule: it tests nothing"
