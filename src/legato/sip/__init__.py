"""Legato's SIP stack: a sans-IO RFC 3261 core (parser, transactions, dialogs, user agent,
digest auth, registrar) and thin asyncio transports (`legato.sip.transport`).

A driver builds a `UserAgent` (or lets `SipTransport.open_udp/open_tcp` build one), reacts
to the events of `legato.sip.events` and issues commands on the agent; see `legato.sip.ua`.
"""

from legato.sip import events
from legato.sip.auth import Credentials, DigestServer
from legato.sip.dialog import Dialog, DialogState
from legato.sip.errors import LocalProtocolError, RemoteProtocolError, SipError
from legato.sip.fields import CSeq, NameAddr, Reason, Via
from legato.sip.message import Message, Request, Response, make_response
from legato.sip.parser import Limits, StreamParser, parse_message
from legato.sip.registrar import Binding, Registrar
from legato.sip.transaction import TimerConfig
from legato.sip.ua import UAConfig, UserAgent
from legato.sip.uri import SipURI

__all__ = [
    "Binding",
    "CSeq",
    "Credentials",
    "Dialog",
    "DialogState",
    "DigestServer",
    "Limits",
    "LocalProtocolError",
    "Message",
    "NameAddr",
    "Reason",
    "Registrar",
    "RemoteProtocolError",
    "Request",
    "Response",
    "SipError",
    "SipURI",
    "StreamParser",
    "TimerConfig",
    "UAConfig",
    "UserAgent",
    "Via",
    "events",
    "make_response",
    "parse_message",
]
