"""Legato numbers of an account and their configuration documents."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from legato.store.accounts import NotFound
from legato.store.ids import new_id
from legato.store.models import Number
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
