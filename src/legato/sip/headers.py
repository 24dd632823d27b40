"""Header names: compact forms (RFC 3261 §7.3.3), canonical spelling, and list splitting.

Names are canonicalised once, at parse time, so every later lookup is a plain string compare.
"""

from __future__ import annotations

# Compact form -> full name (RFC 3261 §7.3.3 and the IANA SIP header registry).
COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_KNOWN = (
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "Identity",
    "In-Reply-To",
    "Max-Forwards",
    "Min-Expires",
    "Min-SE",
    "MIME-Version",
    "Organization",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Path",
    "Priority",
    "Privacy",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Retry-After",
    "Route",
    "RSeq",
    "Server",
    "Session-Expires",
    "Subject",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
)

# Lower-case name (full or compact) -> canonical full name.
CANONICAL: dict[str, str] = {name.lower(): name for name in _KNOWN}
CANONICAL.update(COMPACT_FORMS)
# Canonical spellings map to themselves: the stack asks for its headers by these names, and
# one exact hit saves the lower() on every lookup.
EXACT: dict[str, str] = {name: name for name in _KNOWN}

# Headers whose grammar is a comma-separated list (`#element`): one stored value per element.
LIST_HEADERS = frozenset(
    (
        "Via",
        "Route",
        "Record-Route",
        "Contact",
        "Allow",
        "Supported",
        "Require",
        "Proxy-Require",
        "Unsupported",
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Content-Encoding",
        "Allow-Events",
        "Reason",
        "Warning",
        "In-Reply-To",
        "P-Asserted-Identity",
        "Path",
        "Call-Info",
        "Alert-Info",
        "Error-Info",
    )
)


def canonical_name(name: str) -> str:
    """Full canonical spelling of a header name; unknown names are kept as given."""
    return EXACT.get(name) or CANONICAL.get(name.lower(), name)


def split_list(value: str) -> list[str]:
    """Split a list header on commas outside quoted strings and angle brackets."""
    if "," not in value:
        return [value]
    if '"' not in value and "<" not in value:
        return [part for part in (p.strip() for p in value.split(",")) if part]
    parts: list[str] = []
    start = 0
    in_quotes = False
    in_angle = False
    escaped = False
    for i, ch in enumerate(value):
        if escaped:
            escaped = False
        elif in_quotes:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                in_quotes = False
        elif ch == '"':
            in_quotes = True
        elif ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch == "," and not in_angle:
            part = value[start:i].strip()
            if part:
                parts.append(part)
            start = i + 1
    last = value[start:].strip()
    if last:
        parts.append(last)
    return parts


def digits(text: str) -> bool:
    """ASCII digits only: `str.isdigit` also accepts '²' and other digits `int` refuses."""
    return text.isascii() and text.isdigit()
