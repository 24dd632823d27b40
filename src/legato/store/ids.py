"""Identifiers and API keys.

Ids are time-ordered (48-bit milliseconds + 80 random bits, hex) behind a type prefix, so
that sorting by id is sorting by creation time: cursor pagination needs no extra column
and ids do not reveal counts the way sequences would.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time

#: Length of the key prefix stored in clear for listing ("lgk_" + 8 characters).
KEY_PREFIX_LEN = 12


_lock = threading.Lock()
_last = (0, 0)  # (milliseconds, 80-bit random part) of the last id made in this process


def new_id(kind: str) -> str:
    """A new time-ordered id such as ``call_0193a1b2c3d4e5f6a7b8c9d0e1f2``.

    Monotonic within a process (like ULID's monotonic mode): ids made in the same
    millisecond, or after the clock stepped back, continue from the last one + 1, so the
    order of creation is the order of ids.
    """
    global _last
    ms = time.time_ns() // 1_000_000
    with _lock:
        last_ms, last_rand = _last
        if ms <= last_ms:
            ms, rand = last_ms, last_rand + 1 + secrets.randbelow(1 << 16)
        else:
            rand = secrets.randbits(79)  # room to count up within the millisecond
        _last = (ms, rand)
    return f"{kind}_{ms:012x}{rand:020x}"


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
