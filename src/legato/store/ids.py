"""Identifiers and API keys.

Ids are time-ordered (48-bit milliseconds + 80 random bits, hex) behind a type prefix, so
that sorting by id is sorting by creation time: cursor pagination needs no extra column
and ids do not reveal counts the way sequences would.
"""

from __future__ import annotations

import hashlib
import secrets
import time

#: Length of the key prefix stored in clear for listing ("lgk_" + 8 characters).
KEY_PREFIX_LEN = 12


def new_id(kind: str) -> str:
    """A new time-ordered id such as ``call_0193a1b2c3d4e5f6a7b8c9d0e1f2``."""
    ms = time.time_ns() // 1_000_000
    return f"{kind}_{ms:012x}{secrets.token_hex(10)}"


def new_api_key() -> str:
    """A fresh API key with 256 bits of entropy."""
    return "lgk_" + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """SHA-256 of the key.

    A key is 256 random bits, so a fast hash is as safe as a slow one here (nothing to
    brute-force) and keeps authentication to one indexed lookup per request.
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_prefix(key: str) -> str:
    """The part of a key shown in listings so a user can tell keys apart."""
    return key[:KEY_PREFIX_LEN]
