"""Settings of the SIP driver: where it listens, the trunk it dials through, its numbers.

Everything has a command-line form (`--sip-listen HOST:PORT`, `--trunk sip:HOST:PORT`), so
`legato serve --driver sip` needs no config file. Bad values raise `SipConfigError` naming
the setting and the rule.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from legato.sip.auth import Credentials
from legato.sip.errors import RemoteProtocolError
from legato.sip.transaction import TimerConfig
from legato.sip.uri import SipURI

Addr = tuple[str, int]


class SipConfigError(ValueError):
    """A SIP driver setting is invalid; the message names the setting and the rule."""


@dataclass(frozen=True, slots=True)
class Trunk:
    """The carrier's SIP proxy every number is dialled through (an IP literal and port).

    `numbers` limits the trunk to numbers with these prefixes (empty: every number)."""

    host: str
    port: int = 5060
    credentials: Credentials | None = None
    numbers: tuple[str, ...] = ()

    @property
    def addr(self) -> Addr:
        return self.host, self.port

    def serves(self, number: str) -> bool:
        return not self.numbers or any(number.startswith(p) for p in self.numbers)

    @classmethod
    def parse(
        cls, uri: str, *, username: str | None = None, password: str | None = None,
        realm: str | None = None, numbers: tuple[str, ...] = (),
    ) -> Trunk:
        """`sip:HOST[:PORT]` (HOST an IP address: the sans-IO stack does no DNS)."""
        what = "--trunk"
        try:
            parsed = SipURI.parse(uri.strip())
        except RemoteProtocolError as exc:
            raise SipConfigError(f"{what}: {exc.reason}; expected sip:HOST:PORT") from None
        host = parsed.host.strip("[]")
        _check_ip(host, what)
        if (username is None) != (password is None):
            raise SipConfigError(f"{what}: give both the username and the password, or neither")
        credentials = (
            Credentials(username, password, realm)
            if username is not None and password is not None else None
        )
        return cls(host, parsed.port or 5060, credentials, numbers)


def parse_listen(value: str, what: str = "--sip-listen") -> Addr:
    """`HOST:PORT` (IPv6 as `[::1]:5060`); port 0 picks a free port."""
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = text.rpartition(":")
    if not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise SipConfigError(f"{what}: expected HOST:PORT with a port 0..65535, got {value!r}")
    _check_ip(host, what)
    return host, int(port_text)


def _check_ip(host: str, what: str) -> None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise SipConfigError(f"{what}: host {host!r} must be an IP address") from None


@dataclass(frozen=True, slots=True)
class SipDriverConfig:
    """How the B2BUA is reached and how it reaches out."""

    listen: Addr = ("127.0.0.1", 5060)
    transport: Literal["UDP", "TCP"] = "UDP"
    #: Trunks, tried in order: the first whose `numbers` prefixes match dials the number.
    trunks: tuple[Trunk, ...] = ()
    #: Domain of the agents' SIP phones (their address-of-record `sip:NUMBER@domain`);
    #: None: the listen address. Phones registered there are dialled directly.
    domain: str | None = None
    #: username -> password of SIP phones allowed to REGISTER (empty: no registrar).
    phones: dict[str, str] = field(default_factory=dict)
    #: Digest algorithm the registrar challenges phones with: SHA-256 (RFC 8760), or MD5
    #: for phones that know nothing else.
    phone_auth: Literal["SHA-256", "MD5"] = "SHA-256"
    user_agent: str = "Legato"
    #: RFC 3261 T1/T2/T4 (tests shorten them so that "no response at all" takes seconds).
    timers: TimerConfig = field(default_factory=TimerConfig)

    def trunk_for(self, number: str) -> Trunk | None:
        return next((t for t in self.trunks if t.serves(number)), None)

    @property
    def phone_domain(self) -> str:
        return self.domain or self.listen[0]
