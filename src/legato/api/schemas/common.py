"""Field types shared by the API's models."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError

from legato.core.policy.permissions import InvalidNumber, normalize_number


def _e164(value: str) -> str:
    try:
        return normalize_number(value)
    except InvalidNumber as exc:
        raise PydanticCustomError("e164", "{reason}", {"reason": str(exc)}) from None


def _one_or_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _unique(values: list[str]) -> list[str]:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise PydanticCustomError("unique", "{number} is given twice", {"number": v})
        seen.add(v)
    return values


#: A telephone number in international form, normalised to E.164 by `phonenumbers`.
E164 = Annotated[
    str,
    Field(min_length=2, max_length=32, examples=["+919811000001"]),
    AfterValidator(_e164),
]

#: One number or a list of distinct numbers (the scenario format allows both).
NumberList = Annotated[
    list[E164],
    BeforeValidator(_one_or_list),
    Field(min_length=1, max_length=20),
    AfterValidator(_unique),
]
