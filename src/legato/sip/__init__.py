"""Legato's SIP stack: a sans-IO RFC 3261 core (parser, transactions, dialogs, user agent,
digest auth, registrar) and thin asyncio transports (`legato.sip.transport`)."""

from legato.sip.errors import LocalProtocolError, RemoteProtocolError, SipError
from legato.sip.fields import CSeq, NameAddr, Reason, Via
from legato.sip.message import Message, Request, Response, make_response
from legato.sip.parser import Limits, StreamParser, parse_message
from legato.sip.uri import SipURI

__all__ = [
    "CSeq",
    "Limits",
    "LocalProtocolError",
    "Message",
    "NameAddr",
    "Reason",
    "RemoteProtocolError",
    "Request",
    "Response",
    "SipError",
    "SipURI",
    "StreamParser",
    "Via",
    "make_response",
    "parse_message",
]
