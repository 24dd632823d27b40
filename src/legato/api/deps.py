"""Request dependencies: the store session and the authenticated account."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from legato.api.problems import ApiProblem, store_unavailable
from legato.service.runtime import CallRuntime
from legato.store.accounts import account_id_for_key, known_account_id
from legato.store.db import Database

bearer = HTTPBearer(
    auto_error=False,
    description="The API key printed by `legato accounts create`, as `Bearer lgk_...`.",
)


# Dependencies that do no I/O are `async def`: FastAPI runs plain `def` dependencies in the
# thread pool, and each hop costs more than the work itself.


async def get_database(request: Request) -> Database:
    return request.app.state.database  # type: ignore[no-any-return]


async def get_runtime(request: Request) -> CallRuntime:
    return request.app.state.runtime  # type: ignore[no-any-return]


DatabaseDep = Annotated[Database, Depends(get_database)]
RuntimeDep = Annotated[CallRuntime, Depends(get_runtime)]


async def get_session(database: DatabaseDep) -> AsyncIterator[Session]:
    """One session per request; routes that write commit explicitly before answering.

    Opening a session does no I/O (it connects on first use, in the route's thread);
    closing one that holds a connection does (rollback, return), so that runs in a thread
    of its own, never queued behind the routes' workers."""
    session = database.sessions()
    try:
        yield session
    finally:
        if session.in_transaction():  # a connection to roll back and return
            # Not in the routes' worker threads: when they are all waiting for a pooled
            # connection, this connection must still get back to the pool.
            await asyncio.to_thread(session.close)
        else:  # no I/O
            session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def _unauthorized(detail: str) -> ApiProblem:
    return ApiProblem(
        401,
        "Unauthorized",
        detail,
        kind="unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="legato"'},
    )


async def get_account_id(
    database: DatabaseDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The id of the account whose live key authenticates the request.

    A key found live moments ago is answered from memory (see `known_account_id`), on the
    loop; otherwise the store is asked in a thread, in a session of its own (so a route
    that opens its own session needs no `get_session`, and its set-up per request)."""
    if credentials is None:
        raise _unauthorized("send the API key as `Authorization: Bearer lgk_...`")
    account_id = known_account_id(credentials.credentials)
    if account_id is None:
        try:
            account_id = await asyncio.to_thread(_look_up, database, credentials.credentials)
        except Exception as exc:  # the key cannot be checked: not the client's fault
            raise store_unavailable(exc) from None
    if account_id is None:
        raise _unauthorized("the API key is unknown or has been revoked")
    return account_id


def _look_up(database: Database, api_key: str) -> str | None:
    # Closed before returning: the route may wait for a worker thread, and a connection
    # held meanwhile starves the threads that hold the workers (pool/threadpool deadlock).
    with database.sessions() as session:
        return account_id_for_key(session, api_key)


AccountId = Annotated[str, Depends(get_account_id)]
