"""`/v1/account/settings`: account-wide dialling permissions and DND scrubbing.

They are the defaults for every number of the account; a number's own `config` overrides
each key it sets. Validated by `AccountSettings`, with the same rules as a number config.
"""

from __future__ import annotations

from fastapi import APIRouter

from legato.api.deps import AccountId, RuntimeDep, SessionDep
from legato.api.problems import problem_responses
from legato.core.config import AccountSettings
from legato.store.accounts import get_account

router = APIRouter(prefix="/v1/account", tags=["account"])


@router.get("/settings", response_model=AccountSettings, responses=problem_responses(401))
def read_settings(session: SessionDep, account: AccountId) -> AccountSettings:
    """The account's defaults (null: no restriction / the number decides)."""
    return AccountSettings.model_validate(get_account(session, account).settings or {})


@router.put("/settings", response_model=AccountSettings, responses=problem_responses(400, 401, 422))
def replace_settings(
    body: AccountSettings, session: SessionDep, account: AccountId, runtime: RuntimeDep
) -> AccountSettings:
    """Replace the account's defaults: allowed countries and number types for the numbers
    Legato dials (click-to-call, outbound), and whether customers are scrubbed for DND."""
    row = get_account(session, account)
    row.settings = body.model_dump(mode="json", exclude_none=True)
    session.commit()
    runtime.numbers_changed()  # route incoming calls by the new numbers now
    return AccountSettings.model_validate(row.settings)
