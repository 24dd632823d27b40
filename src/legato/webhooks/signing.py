"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

A secret is `whsec_` + base64 of random bytes; the HMAC key is the decoded bytes. The
signed content is `{webhook-id}.{webhook-timestamp}.{body}` and the header carries one
`v1,<base64 HMAC-SHA256>` per live secret, space separated, so a receiver holding either
the old or the new secret accepts a message during a rotation's overlap window.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

PREFIX = "whsec_"
SECRET_BYTES = 32
#: Receivers should reject messages older (or newer) than this, against replays.
DEFAULT_TOLERANCE_SECONDS = 300


class InvalidSecret(ValueError):
    """The text is not a `whsec_` + base64 secret."""


class VerificationError(ValueError):
    """A request does not carry a valid signature; the message says which rule failed."""


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks form."""
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret (`whsec_` prefix optional, as receivers' libraries allow)."""
    raw = secret[len(PREFIX) :] if secret.startswith(PREFIX) else secret
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSecret("the secret is not `whsec_` followed by base64") from exc
    if not key:
        raise InvalidSecret("the secret is empty")
    return key


def signing_keys(endpoint: Any, now: datetime) -> tuple[bytes, ...]:
    """The current secret, plus the previous one while its overlap window lasts."""
    keys = [secret_key(endpoint.secret)]
    if (
        endpoint.previous_secret
        and endpoint.previous_expires_at
        and endpoint.previous_expires_at > now
    ):
        keys.append(secret_key(endpoint.previous_secret))
    return tuple(keys)


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,` signature of a message."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def sign_headers(keys: Iterable[bytes], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every key given."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(k, msg_id, timestamp, body) for k in keys),
    }


def verify(
    secrets_: Iterable[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> str:
    """Check a received request; returns its `webhook-id`, raises VerificationError."""
    keys = [secret_key(s) for s in secrets_]  # a bad secret is the caller's error, first
    lower = {k.lower(): v for k, v in headers.items()}
    missing = [
        h for h in ("webhook-id", "webhook-timestamp", "webhook-signature") if h not in lower
    ]
    if missing:
        raise VerificationError(f"missing header(s): {', '.join(missing)}")
    msg_id, ts_text, sig_header = (
        lower["webhook-id"].strip(),
        lower["webhook-timestamp"].strip(),
        lower["webhook-signature"],
    )
    try:
        ts = int(ts_text)
    except ValueError:
        raise VerificationError(
            f"webhook-timestamp: {ts_text!r} is not whole seconds since 1970"
        ) from None
    now = time.time() if now is None else now
    if tolerance >= 0 and abs(now - ts) > tolerance:
        age = now - ts
        what = f"{age:.0f} s old" if age > 0 else f"{-age:.0f} s in the future"
        raise VerificationError(
            f"webhook-timestamp: the message is {what}, beyond the {tolerance:.0f} s tolerance"
        )
    given = [part.strip() for part in sig_header.split(" ") if part.strip()]
    v1 = [g.split(",", 1)[1] for g in given if g.startswith("v1,")]
    if not v1:
        raise VerificationError("webhook-signature: no `v1,` signature in the header")
    for key in keys:
        expected = signature(key, msg_id, ts, body).split(",", 1)[1]
        if any(hmac.compare_digest(expected, g) for g in v1):
            return msg_id
    raise VerificationError(
        "webhook-signature: no signature matches this secret "
        "(wrong secret, or the body was changed after signing)"
    )
