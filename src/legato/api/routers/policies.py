"""Per-number blacklist entries and DND lookups (the policies of issue 4, over HTTP).

The blacklist is part of a number's `config` (DESIGN section 6); these routes edit that
list entry by entry and validate each entry with the same model as a full config, so a
bad entry is rejected with its index and nothing stored changes. The DND lookup answers
from the registry imported with `legato dnd import` (the same in-memory index live calls
are scrubbed against).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from legato.api.deps import AccountId, RuntimeDep, SessionDep
from legato.api.problems import (
    ApiProblem,
    field_errors,
    field_problem,
    not_found,
    problem_responses,
)
from legato.api.routers.numbers import NumberPath, path_number
from legato.core.config import NumberConfig
from legato.core.policy.dnd import blocks, categories_of, is_fully_blocked
from legato.core.policy.permissions import InvalidNumber, normalize_number
from legato.store import numbers as store
from legato.store.accounts import NotFound

router = APIRouter(prefix="/v1", tags=["policies"])


class BlacklistAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[str] = Field(
        min_length=1, max_length=1000, description="E.164 numbers, or prefixes ending in `*`"
    )


class Blacklist(BaseModel):
    number: str
    entries: list[str]


def _check_entries(entries: list[str]) -> None:
    """Each entry on its own, so an error names its index in the request."""
    for i, entry in enumerate(entries):
        try:
            NumberConfig.model_validate({"blacklist": [entry]})
        except ValidationError as exc:
            errors = field_errors(exc.errors(), location="body")
            raise field_problem(f"entries[{i}]", errors[0].rule, errors[0].message) from None


def _validated(config: dict[str, Any], entries: list[str]) -> dict[str, Any]:
    """The config with `entries` as its blacklist, validated as a whole."""
    updated = {**config, "blacklist": entries}
    try:
        NumberConfig.model_validate(updated)
    except ValidationError as exc:  # e.g. the stored config no longer validates
        raise ApiProblem(
            422,
            "Request is invalid",
            str(exc),
            kind="validation",
            errors=field_errors(exc.errors(), location="body", prefix=("config",)),
        ) from None
    return updated


@router.get(
    "/numbers/{number}/blacklist",
    response_model=Blacklist,
    responses=problem_responses(401, 404, 422),
)
def get_blacklist(number: NumberPath, session: SessionDep, account: AccountId) -> Any:
    """The number's blacklist entries."""
    try:
        row = store.get_number(session, account, path_number(number))
    except NotFound:
        raise not_found(f"number {number}") from None
    return {"number": row.number, "entries": list((row.config or {}).get("blacklist", []))}


@router.post(
    "/numbers/{number}/blacklist",
    response_model=Blacklist,
    responses=problem_responses(400, 401, 404, 422),
)
def add_blacklist(
    number: NumberPath,
    body: BlacklistAdd,
    session: SessionDep,
    account: AccountId,
    runtime: RuntimeDep,
) -> Any:
    """Add entries (already present ones are kept once); calls from them end BLOCKED."""
    try:
        row = store.get_number(session, account, path_number(number))
    except NotFound:
        raise not_found(f"number {number}") from None
    _check_entries(body.entries)
    config = dict(row.config or {})
    current = list(config.get("blacklist", []))
    merged = current + [e for e in dict.fromkeys(body.entries) if e not in current]
    row = store.replace_config(session, account, row.number, _validated(config, merged))
    session.commit()
    runtime.numbers_changed()  # route incoming calls by the new numbers now
    return {"number": row.number, "entries": row.config["blacklist"]}


@router.delete(
    "/numbers/{number}/blacklist/{entry}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 404, 422),
)
def remove_blacklist(
    number: NumberPath,
    entry: Annotated[str, Path(max_length=40)],
    session: SessionDep,
    account: AccountId,
    runtime: RuntimeDep,
) -> Response:
    """Remove one entry."""
    try:
        row = store.get_number(session, account, path_number(number))
    except NotFound:
        raise not_found(f"number {number}") from None
    config = dict(row.config or {})
    current = list(config.get("blacklist", []))
    if entry not in current:
        raise not_found(f"blacklist entry {entry}")
    store.replace_config(
        session, account, row.number, _validated(config, [e for e in current if e != entry])
    )
    session.commit()
    runtime.numbers_changed()  # route incoming calls by the new numbers now
    return Response(status_code=204)


class DndAnswer(BaseModel):
    number: str
    dnd: bool = Field(description="a call with this category/transactional flag is blocked")
    registered: bool
    fully_blocked: bool
    categories: list[int] = Field(description="blocked preference categories (1-7)")
    version: int | None = Field(description="registry version answered from; null: none yet")


@router.get("/dnd/{number}", response_model=DndAnswer, responses=problem_responses(401, 422))
def dnd_lookup(
    number: Annotated[str, Path(max_length=32)],
    account: AccountId,
    runtime: RuntimeDep,
    category: Annotated[int | None, Query(ge=1, le=7, description="NCPR category")] = None,
    transactional: bool = False,
) -> Any:
    """Whether the national DND registry blocks a call to `number`."""
    if transactional and category is not None:
        raise field_problem(
            "category", "exclusive", "a transactional call carries no promotional category", "query"
        )
    try:
        e164 = normalize_number(number)
    except InvalidNumber as exc:
        raise field_problem("number", "e164", str(exc), "path") from None
    index = None if runtime.dnd is None else runtime.dnd.index
    if index is None:
        return {
            "number": e164,
            "dnd": False,
            "registered": False,
            "fully_blocked": False,
            "categories": [],
            "version": None,
        }
    mask = index.mask(e164)
    return {
        "number": e164,
        "dnd": blocks(mask, category, transactional, index.transactional_policy),
        "registered": mask is not None,
        "fully_blocked": mask is not None and is_fully_blocked(mask),
        "categories": [] if mask is None else list(categories_of(mask)),
        "version": index.version,
    }
