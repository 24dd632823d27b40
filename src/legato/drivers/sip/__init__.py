"""The `sip` driver: Legato's engine on real SIP, as a back-to-back user agent."""

from legato.drivers.sip.config import SipConfigError, SipDriverConfig, Trunk, parse_listen
from legato.drivers.sip.driver import (
    SipDriver,
    UnsupportedFlow,
    audio_steps,
    check_supported,
    number_lookup,
)

__all__ = [
    "SipConfigError",
    "SipDriver",
    "SipDriverConfig",
    "Trunk",
    "UnsupportedFlow",
    "audio_steps",
    "check_supported",
    "number_lookup",
    "parse_listen",
]
