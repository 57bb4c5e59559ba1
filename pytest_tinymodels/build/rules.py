"""Named registration into a table, refusing a name registered twice (the family extension points)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def register_into(table: dict[str, F], name: str, what: str) -> Callable[[F], F]:
    """A decorator putting its function into ``table[name]``; a different function under the same name
    is an error (``what`` names the kind of entry in the message)."""

    def register(function: F) -> F:
        if name in table and table[name] is not function:
            raise ValueError(f"{what} {name!r} is registered twice")
        table[name] = function
        return function

    return register
