"""Legato numbers of an account and their configuration documents."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, object_session

from legato.store.accounts import NotFound
from legato.store.ids import new_id
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
_CALLING_NUMBERS_MAX = 10_000
#: (account id, number) -> (what was read, monotonic expiry).
_calling_numbers: dict[tuple[str, str], tuple[CallingNumber, float]] = {}
#: Bumped by every change: a read that saw another generation start is not remembered
#: (it may predate the change).
_generation = 0


def calling_number(session: Session, account_id: str, number: str) -> CallingNumber:
    """The account's number with its account's settings: one query (a join), skipped for
    a number read less than CALLING_NUMBER_SECONDS ago. NotFound as `get_number`."""
    key = (account_id, number)
    now = time.monotonic()
    known = _calling_numbers.get(key)
    if known is not None and known[1] > now:
        return known[0]
    generation = _generation
    row = session.execute(
        select(Number.config, Account.settings)
        .join(Account, Account.id == Number.account_id)
        .where(Number.account_id == account_id, Number.number == number)
    ).one_or_none()
    if row is None:
        _calling_numbers.pop(key, None)
        raise NotFound(f"number {number} not found")
    found = CallingNumber(number, dict(row[0] or {}), dict(row[1] or {}))
    if generation == _generation:
        if len(_calling_numbers) >= _CALLING_NUMBERS_MAX:
            _calling_numbers.clear()
        _calling_numbers[key] = (found, now + CALLING_NUMBER_SECONDS)
    return found


def remembered_number(account_id: str, number: str) -> CallingNumber | None:
    """What `calling_number` would answer without asking the store, if it can."""
    known = _calling_numbers.get((account_id, number))
    if known is not None and known[1] > time.monotonic():
        return known[0]
    return None


def forget_calling_numbers(*_: Any) -> None:
    """Drop what `calling_number` remembers: the next call asks the store."""
    global _generation
    _generation += 1
    _calling_numbers.clear()


_FORGET_ON_COMMIT = "legato.forget_calling_numbers"


def _changed(_mapper: Any, _connection: Any, target: Number | Account) -> None:
    """A number or an account is written: forget now, and again once the change is
    visible (a request in between may have remembered what the store still showed)."""
    forget_calling_numbers()
    session = object_session(target)
    if session is not None and not session.info.get(_FORGET_ON_COMMIT):
        session.info[_FORGET_ON_COMMIT] = True
        event.listen(session, "after_commit", _forget_after_commit, once=True)


def _forget_after_commit(session: Session) -> None:
    session.info.pop(_FORGET_ON_COMMIT, None)
    forget_calling_numbers()


for _model in (Number, Account):
    for _event in ("after_insert", "after_update", "after_delete"):
        event.listen(_model, _event, _changed)


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
