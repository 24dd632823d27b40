"""`X-Twilio-Signature`: how every request Legato sends on the Twilio layer is signed.

base64(HMAC-SHA1(auth token, URL + each POST parameter's name and value)), names sorted
case-sensitively; a repeated name contributes each of its distinct values, sorted, which
is exactly what Twilio's `RequestValidator` recomputes. GET requests carry their
parameters in the URL, so only the URL is signed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

SIGNATURE_HEADER = "X-Twilio-Signature"

Params = Iterable[tuple[str, str]]


def signature(auth_token: str, url: str, params: Params = ()) -> str:
    """The X-Twilio-Signature of a request to ``url`` with POST ``params``."""
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    payload = url + "".join(
        name + value for name in sorted(values) for value in sorted(values[name])
    )
    mac = hmac.new(auth_token.encode("utf-8"), payload.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def valid(auth_token: str, url: str, params: Params, candidate: str) -> bool:
    """Whether ``candidate`` is the signature of this request (constant-time compare)."""
    return hmac.compare_digest(signature(auth_token, url, params), candidate)
