"""Accounts and their API keys: creation, listing, revocation, rotation, authentication."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, select
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
    _forget_live_keys_on_commit(session)
    return key


def rotate_key(session: Session, account_id: str) -> IssuedKey:
    """A new key for the account and every older live key revoked, in one transaction."""
    issued = issue_key(session, account_id)
    now = utcnow()
    for key in list_keys(session, account_id):
        if key.id != issued.key_id and key.revoked_at is None:
            key.revoked_at = now
    _forget_live_keys_on_commit(session)
    return issued


def authenticate(session: Session, api_key: str) -> Account | None:
    """The account a live key belongs to, or None for an unknown or revoked key."""
    row = session.execute(
        select(Account)
        .join(ApiKey, ApiKey.account_id == Account.id)
        .where(ApiKey.key_hash == hash_api_key(api_key), ApiKey.revoked_at.is_(None))
    ).scalar_one_or_none()
    return row


#: How long this process trusts a key it found live without asking the store again.
#: Revocations made in this process (API, `revoke_key`, `rotate_key`) apply at once; one
#: made by another process (the CLI against a running server) within this many seconds.
LIVE_KEY_SECONDS = 2.0
_LIVE_KEYS_MAX = 10_000
#: key hash -> (account id, monotonic expiry). Only live keys: an unknown key is asked
#: about every time, so a key issued by another process works at once.
_live_keys: dict[str, tuple[str, float]] = {}


def account_id_for_key(session: Session, api_key: str) -> str | None:
    """The id of the account a live key belongs to: one indexed lookup, no join (hot path),
    skipped for a key found live less than LIVE_KEY_SECONDS ago."""
    digest = hash_api_key(api_key)
    now = time.monotonic()
    known = _live_keys.get(digest)
    if known is not None and known[1] > now:
        return known[0]
    account_id = session.scalar(
        select(ApiKey.account_id).where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))
    )
    if account_id is None:
        _live_keys.pop(digest, None)
    else:
        if len(_live_keys) >= _LIVE_KEYS_MAX:
            _live_keys.clear()
        _live_keys[digest] = (account_id, now + LIVE_KEY_SECONDS)
    return account_id


def known_account_id(api_key: str) -> str | None:
    """The account of a key found live less than LIVE_KEY_SECONDS ago (no I/O), else None."""
    known = _live_keys.get(hash_api_key(api_key))
    return known[0] if known is not None and known[1] > time.monotonic() else None


def forget_live_keys(*_: Any) -> None:
    """Drop the live-key cache: the next request with any key asks the store."""
    _live_keys.clear()


def _forget_live_keys_on_commit(session: Session) -> None:
    # Now, and again once the revocation is visible: a request in between may have put
    # the key back from a store that did not show the revocation yet.
    forget_live_keys()
    event.listen(session, "after_commit", forget_live_keys, once=True)


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
