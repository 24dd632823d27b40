"""Errors that name the key they are about, below the field that raised them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

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


def describe_errors(errors: list[Any]) -> list[tuple[list[str | int], str]]:
    """Pydantic errors as (key path, rule), with `KeyProblem` paths appended and the
    wording made for people ("unknown key" rather than "extra_forbidden")."""
    out: list[tuple[list[str | int], str]] = []
    for error in errors:
        loc: list[str | int] = []
        for part in error["loc"]:
            if loc and part == loc[-1] and isinstance(part, str):
                continue  # a tagged union repeats its tag: flow.0.dial.dial.to
            loc.append("from" if part == "from_" else part)
        rule = str(error["msg"])
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, KeyProblem):
            loc, rule = [*loc, *cause.path], cause.message
        elif rule.startswith("Value error, "):
            rule = rule[len("Value error, "):]
        if error["type"] == "extra_forbidden":
            rule = "unknown key (not part of the format)"
        elif error["type"] == "missing":
            rule = "required key is missing"
        out.append((loc, rule))
    return out
