"""HTTP Basic auth on the Twilio API, and the token that signs the account's requests.

The username is the account's `AC` SID (derived from its Legato id), the password one of
its API keys. The signing token ("auth token") is the first API key that authenticated on
the Twilio API; when that key is revoked, the next key that authenticates takes over.
"""

from __future__ import annotations

import base64
import binascii

from sqlalchemy import select
from sqlalchemy.orm import Session

from legato.store.ids import hash_api_key
from legato.store.models import ApiKey
from legato.twilio.errors import AUTH, TwilioError
from legato.twilio.ids import account_sid
from legato.twilio.models import TwilioAuthToken

_CHALLENGE = {"WWW-Authenticate": 'Basic realm="Twilio API"'}


def _unauthorized(message: str) -> TwilioError:
    return TwilioError(401, AUTH, message, headers=_CHALLENGE)


def basic_credentials(header: str | None) -> tuple[str, str]:
    """(username, password) of an `Authorization: Basic ...` header."""
    if not header or not header.lower().startswith("basic "):
        raise _unauthorized("Authenticate with HTTP Basic: your AC account SID and an API key")
    try:
        user, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode(
            "utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise _unauthorized("The Basic credentials are not valid base64 'sid:key'") from None
    if not sep:
        raise _unauthorized("The Basic credentials must be 'AccountSid:ApiKey'")
    return user, password


def authenticate(session: Session, header: str | None) -> str:
    """The Legato account id the Basic credentials prove, remembering its signing token."""
    user, password = basic_credentials(header)
    key = session.scalar(select(ApiKey).where(
        ApiKey.key_hash == hash_api_key(password), ApiKey.revoked_at.is_(None)))
    if key is None or account_sid(key.account_id) != user:
        raise _unauthorized("Authentication Error - invalid username or API key")
    _remember_token(session, key, password)
    return key.account_id


def _remember_token(session: Session, key: ApiKey, secret: str) -> None:
    row = session.get(TwilioAuthToken, key.account_id)
    if row is not None and row.key_id == key.id:
        return
    if row is not None:
        current = session.get(ApiKey, row.key_id)
        if current is not None and current.revoked_at is None:
            return  # the first key keeps signing until it is revoked
        row.key_id, row.token = key.id, secret
    else:
        session.add(TwilioAuthToken(account_id=key.account_id, key_id=key.id, token=secret))
    session.commit()


def signing_token(session: Session, account_id: str) -> str | None:
    """The token that signs the account's callbacks and fetches (None: never set up, or
    its key was revoked and no other key has authenticated since)."""
    row = session.execute(
        select(TwilioAuthToken.token)
        .join(ApiKey, ApiKey.id == TwilioAuthToken.key_id)
        .where(TwilioAuthToken.account_id == account_id, ApiKey.revoked_at.is_(None))
    ).scalar_one_or_none()
    return row
