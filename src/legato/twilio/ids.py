"""Twilio-style SIDs derived from Legato ids.

`AC` and `CA` SIDs are 2 letters + 32 hex digits. They are derived (SHA-256, truncated)
rather than random, so an account's SID needs no storage and is the same on every server
and after a restore; call SIDs are also stored with their call for lookups.
"""

from __future__ import annotations

import hashlib
import re

ACCOUNT_SID = re.compile(r"^AC[0-9a-f]{32}$")
CALL_SID = re.compile(r"^CA[0-9a-f]{32}$")


def _derive(kind: str, legato_id: str) -> str:
    return hashlib.sha256(f"legato-twilio:{kind}:{legato_id}".encode()).hexdigest()[:32]


def account_sid(account_id: str) -> str:
    """The `AC...` SID of a Legato account (the Basic-auth username on the Twilio API)."""
    return "AC" + _derive("account", account_id)


def call_sid(call_id: str) -> str:
    """The `CA...` SID of a Legato call."""
    return "CA" + _derive("call", call_id)
