"""Errors named by whose fault they are, in the h11 style.

A `RemoteProtocolError` means the peer sent something we cannot accept: the endpoint answers a
request with `status_code` (400 unless said otherwise) and `reason` as the reason phrase, and
drops a bad response. A `LocalProtocolError` means our own caller misused the API (e.g. BYE on
a call that is not confirmed): it is raised to the caller and nothing is sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from legato.sip.message import Message


class SipError(Exception):
    """Base of every error the SIP stack raises on purpose."""


class RemoteProtocolError(SipError):
    """The peer broke the protocol; `reason` says which rule, `status_code` what to answer."""

    def __init__(self, reason: str, status_code: int = 400, partial: Message | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code
        # The message as far as it could be parsed: enough, when present, to answer it.
        self.partial = partial


class LocalProtocolError(SipError):
    """Our own caller asked for something the protocol (or the current state) does not allow."""
