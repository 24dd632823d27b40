"""`/v1/sim/incoming`: with the sim driver, a virtual phone calls one of the account's numbers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from legato.api.arrival import received_at
from legato.api.deps import AccountId, RuntimeDep, SessionDep
from legato.api.problems import not_found, problem_responses
from legato.api.schemas.calls import CallPublic, SimIncoming
from legato.core.catalogue import Service
from legato.service.orders import order_for
from legato.store import calls as store
from legato.store import numbers as numbers_store
from legato.store.accounts import NotFound

router = APIRouter(prefix="/v1/sim", tags=["sim"])


@router.post(
    "/incoming",
    status_code=201,
    response_model=CallPublic,
    responses=problem_responses(400, 401, 404, 422),
)
def incoming(
    body: SimIncoming,
    request: Request,
    response: Response,
    session: SessionDep,
    account: AccountId,
    runtime: RuntimeDep,
) -> Any:
    """Place an incoming call from `from` to the account's number `number` on the sim network."""
    received = received_at(request.state)
    try:
        number_row = numbers_store.get_number(session, account, body.number)
    except NotFound:
        raise not_found(f"number {body.number}") from None
    doc = body.model_dump(mode="json", by_alias=True)
    call, _ = store.create_call(
        session,
        account,
        store.NewCall(
            service=Service.INCOMING.value,
            number=body.number,
            from_numbers=(body.from_,),
            to_numbers=(),
            request=doc,
        ),
    )
    session.commit()
    runtime.launch(order_for(session, call, received, number_row))
    response.headers["Location"] = f"/v1/calls/{call.id}"
    return store.call_document(call)
