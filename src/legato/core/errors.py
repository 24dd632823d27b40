"""Errors that name the key they are about, below the field that raised them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


class KeyProblem(ValueError):
    """A validation rule broken at ``path`` (relative to where it was raised).

    Pydantic keeps the exception in the error's context, so an adapter that reports
    errors (the scenario loader, the API's problem+json) can append ``path`` to the
    location and point at the exact key or list item.
    """

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def each(values: Iterable[T], check: Callable[[T], T]) -> list[T]:
    """Check every item of a list; a failure names the item's index."""
    out = []
    for index, value in enumerate(values):
        try:
            out.append(check(value))
        except KeyProblem as problem:
            raise KeyProblem((index, *problem.path), problem.message) from None
        except ValueError as error:
            raise KeyProblem((index,), str(error)) from None
    return out
