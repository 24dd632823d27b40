"""Accounts and their API keys: creation, listing, revocation, rotation, authentication."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from legato.store.ids import hash_api_key, key_prefix, new_api_key, new_id
from legato.store.models import Account, ApiKey
from legato.store.types import utcnow


class NotFound(LookupError):
    """No such row (or not in this account: callers cannot tell the two apart)."""


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just created: the only moment its secret exists outside the client."""

    account_id: str
    key_id: str
    api_key: str


def create_account(session: Session, name: str) -> IssuedKey:
    """A new account with its first API key."""
    name = name.strip()
    if not name:
        raise ValueError("name: must not be empty")
    account = Account(id=new_id("acc"), name=name, settings={})
    session.add(account)
    session.flush()
    return issue_key(session, account.id)


def issue_key(session: Session, account_id: str) -> IssuedKey:
    """A new API key for an existing account; only its hash is stored."""
    if session.get(Account, account_id) is None:
        raise NotFound(f"account {account_id} not found")
    secret = new_api_key()
    key = ApiKey(
        id=new_id("key"),
        account_id=account_id,
        prefix=key_prefix(secret),
        key_hash=hash_api_key(secret),
    )
    session.add(key)
    session.flush()
    return IssuedKey(account_id=account_id, key_id=key.id, api_key=secret)


def list_accounts(session: Session) -> list[Account]:
    """Every account, oldest first."""
    return list(session.scalars(select(Account).order_by(Account.id)))


def get_account(session: Session, account_id: str) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(f"account {account_id} not found")
    return account


def list_keys(session: Session, account_id: str) -> list[ApiKey]:
    """The account's keys (prefix and dates only; secrets are never stored)."""
    get_account(session, account_id)
    return list(
        session.scalars(select(ApiKey).where(ApiKey.account_id == account_id).order_by(ApiKey.id))
    )


def revoke_key(session: Session, key_ref: str, now: datetime | None = None) -> ApiKey:
    """Revoke a key given by id or by its listed prefix; revoking twice is harmless."""
    key = _find_key(session, key_ref)
    if key.revoked_at is None:
        key.revoked_at = now or utcnow()
    return key


def rotate_key(session: Session, account_id: str) -> IssuedKey:
    """A new key for the account and every older live key revoked, in one transaction."""
    issued = issue_key(session, account_id)
    now = utcnow()
    for key in list_keys(session, account_id):
        if key.id != issued.key_id and key.revoked_at is None:
            key.revoked_at = now
    return issued


def authenticate(session: Session, api_key: str) -> Account | None:
    """The account a live key belongs to, or None for an unknown or revoked key."""
    row = session.execute(
        select(Account)
        .join(ApiKey, ApiKey.account_id == Account.id)
        .where(ApiKey.key_hash == hash_api_key(api_key), ApiKey.revoked_at.is_(None))
    ).scalar_one_or_none()
    return row


def account_id_for_key(session: Session, api_key: str) -> str | None:
    """The id of the account a live key belongs to: one indexed lookup, no join (hot path)."""
    return session.scalar(
        select(ApiKey.account_id).where(
            ApiKey.key_hash == hash_api_key(api_key), ApiKey.revoked_at.is_(None)
        )
    )


def _find_key(session: Session, key_ref: str) -> ApiKey:
    key = session.get(ApiKey, key_ref)
    if key is not None:
        return key
    matches = list(session.scalars(select(ApiKey).where(ApiKey.prefix == key_ref)))
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ValueError(f"key prefix {key_ref} is ambiguous; give the key id")
    raise NotFound(f"API key {key_ref} not found")
