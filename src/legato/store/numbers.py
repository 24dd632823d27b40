"""Legato numbers of an account and their configuration documents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from legato.store.accounts import NotFound
from legato.store.ids import new_id
from legato.store.memory import Memory
from legato.store.models import Account, Number
from legato.store.types import utcnow


class NumberTaken(Exception):
    """The number already belongs to an account (this one or another)."""


def create_number(session: Session, account_id: str, number: str, config: dict[str, Any]) -> Number:
    """Add a number to an account. `number` is E.164 and `config` already validated."""
    if session.scalar(select(Number.id).where(Number.number == number)) is not None:
        raise NumberTaken(number)
    row = Number(id=new_id("num"), account_id=account_id, number=number, config=config)
    session.add(row)
    session.flush()
    return row


def get_number(session: Session, account_id: str, number: str) -> Number:
    """The account's number; another account's number is reported as not found."""
    row = session.scalar(
        select(Number).where(Number.account_id == account_id, Number.number == number)
    )
    if row is None:
        raise NotFound(f"number {number} not found")
    return row


@dataclass(frozen=True, slots=True)
class CallingNumber:
    """What placing a call from a number needs: its configuration and its account's
    settings (plain JSON documents, shared by the requests that read them: never mutate)."""

    number: str
    config: dict[str, Any]
    account_settings: dict[str, Any]


#: How long this process trusts a number it read without asking the store again (the
#: create-call hot path). Changes made in this process apply at once when they write the
#: Number or Account row through a session (as the API and the CLI do; a bulk UPDATE or
#: DELETE statement is not seen); one made by another process (the CLI against a running
#: server) within this many seconds.
CALLING_NUMBER_SECONDS = 2.0
#: (account id, number) -> what was read.
_calling_numbers: Memory[tuple[str, str], CallingNumber] = Memory(
    "calling_numbers", CALLING_NUMBER_SECONDS, Number, Account
)


def calling_number(session: Session, account_id: str, number: str) -> CallingNumber:
    """The account's number with its account's settings: one query (a join), skipped for
    a number read less than CALLING_NUMBER_SECONDS ago. NotFound as `get_number`."""
    key = (account_id, number)

    def load() -> CallingNumber:
        row = session.execute(
            select(Number.config, Account.settings)
            .join(Account, Account.id == Number.account_id)
            .where(Number.account_id == account_id, Number.number == number)
        ).one_or_none()
        if row is None:
            _calling_numbers.drop(key)
            raise NotFound(f"number {number} not found")
        return CallingNumber(number, dict(row[0] or {}), dict(row[1] or {}))

    return _calling_numbers.read(key, load)


def remembered_number(account_id: str, number: str) -> CallingNumber | None:
    """What `calling_number` would answer without asking the store, if it can."""
    return _calling_numbers.get((account_id, number))


def forget_calling_numbers(*_: Any) -> None:
    """Drop what `calling_number` remembers: the next call asks the store."""
    _calling_numbers.forget()


def find_number(session: Session, number: str) -> Number | None:
    """Whichever account owns `number` (routing of incoming calls)."""
    return session.scalar(select(Number).where(Number.number == number))


def list_numbers(session: Session, account_id: str) -> list[Number]:
    return list(
        session.scalars(
            select(Number).where(Number.account_id == account_id).order_by(Number.number)
        )
    )


def replace_config(
    session: Session, account_id: str, number: str, config: dict[str, Any]
) -> Number:
    """Replace a number's whole configuration (PUT semantics)."""
    row = get_number(session, account_id, number)
    row.config = config
    row.updated_at = utcnow()
    session.flush()
    return row


def delete_number(session: Session, account_id: str, number: str) -> None:
    session.delete(get_number(session, account_id, number))
    session.flush()
