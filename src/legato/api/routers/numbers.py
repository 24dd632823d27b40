"""`/v1/numbers`: the account's Legato numbers and their configuration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from legato.api.deps import AccountId, RuntimeDep, SessionDep
from legato.api.problems import ApiProblem, field_problem, not_found, problem_responses
from legato.api.schemas.numbers import (
    NumberCreate,
    NumberList,
    NumberPublic,
    NumberUpdate,
    stored_config,
)
from legato.core.config import NumberConfig
from legato.core.policy.permissions import InvalidNumber, normalize_number
from legato.store import numbers as store
from legato.store.accounts import NotFound
from legato.store.models import Number

router = APIRouter(prefix="/v1/numbers", tags=["numbers"])

NumberPath = Annotated[
    str, Path(description="the Legato number, E.164 (`+` may be %2B)", max_length=32)
]


def path_number(raw: str) -> str:
    """A number from the path, normalised; an invalid one is a 422 naming the path field."""
    try:
        return normalize_number(raw)
    except InvalidNumber as exc:
        raise field_problem("number", "e164", str(exc), location="path") from None


def check_prompts(request: Request, config: NumberConfig | None) -> None:
    """With the sip driver's media, a flow naming a prompt file missing from the prompts
    folder is refused: its callers would hear nothing (`legato serve --prompts DIR`)."""
    check = getattr(request.app.state, "missing_prompts", None)
    problems = check(config) if check is not None and config is not None else []
    if problems:
        where, _, message = problems[0].partition(": ")
        raise field_problem(f"config.{where}", "prompt_file", message)


def public(row: Number) -> NumberPublic:
    return NumberPublic(
        id=row.id,
        number=row.number,
        config=row.config or {},
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@router.post(
    "",
    status_code=201,
    response_model=NumberPublic,
    responses=problem_responses(400, 401, 409, 422),
)
def create_number(
    body: NumberCreate,
    request: Request,
    session: SessionDep,
    account: AccountId,
    runtime: RuntimeDep,
) -> NumberPublic:
    """Add a number to the account, with an optional configuration."""
    check_prompts(request, body.config)
    try:
        row = store.create_number(session, account, body.number, stored_config(body.config))
    except store.NumberTaken:
        raise ApiProblem(
            409,
            "Number already in use",
            f"{body.number} already belongs to an account",
            kind="number-taken",
        ) from None
    session.commit()
    runtime.numbers_changed()  # route incoming calls by the new numbers now
    return public(row)


@router.get("", response_model=NumberList, responses=problem_responses(401))
def list_numbers(session: SessionDep, account: AccountId) -> NumberList:
    """The account's numbers."""
    return NumberList(data=[public(n) for n in store.list_numbers(session, account)])


@router.get("/{number}", response_model=NumberPublic, responses=problem_responses(401, 404, 422))
def get_number(number: NumberPath, session: SessionDep, account: AccountId) -> NumberPublic:
    """One number and its configuration."""
    try:
        return public(store.get_number(session, account, path_number(number)))
    except NotFound:
        raise not_found(f"number {number}") from None


@router.put(
    "/{number}", response_model=NumberPublic, responses=problem_responses(400, 401, 404, 422)
)
def put_number(
    number: NumberPath,
    body: NumberUpdate,
    request: Request,
    session: SessionDep,
    account: AccountId,
    runtime: RuntimeDep,
) -> NumberPublic:
    """Replace the number's whole configuration."""
    check_prompts(request, body.config)
    try:
        row = store.replace_config(
            session, account, path_number(number), stored_config(body.config)
        )
    except NotFound:
        raise not_found(f"number {number}") from None
    session.commit()
    runtime.numbers_changed()  # route incoming calls by the new numbers now
    return public(row)


@router.delete(
    "/{number}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 404, 422),
)
def delete_number(
    number: NumberPath, session: SessionDep, account: AccountId, runtime: RuntimeDep
) -> Response:
    """Remove the number from the account (its calls stay)."""
    try:
        store.delete_number(session, account, path_number(number))
    except NotFound:
        raise not_found(f"number {number}") from None
    session.commit()
    runtime.numbers_changed()  # route incoming calls by the new numbers now
    return Response(status_code=204)
