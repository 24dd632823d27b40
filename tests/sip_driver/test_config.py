"""Settings of the sip driver: clear errors naming the option and the rule."""

from __future__ import annotations

import subprocess
import sys

import pytest

from legato.drivers.sip import SipConfigError, SipDriverConfig, Trunk, parse_listen
from legato.drivers.sip.sdp import held_answer
from legato.sip.auth import Credentials


def test_trunk_from_a_sip_uri() -> None:
    trunk = Trunk.parse("sip:127.0.0.1:5080", username="acme", password="s3cret")
    assert trunk.addr == ("127.0.0.1", 5080)
    assert trunk.credentials == Credentials("acme", "s3cret", None)
    assert Trunk.parse("sip:10.0.0.1").addr == ("10.0.0.1", 5060)


@pytest.mark.parametrize(("uri", "message"), [
    ("127.0.0.1:5080", "--trunk"),
    ("sip:carrier.example:5060", "must be an IP address"),
])
def test_bad_trunks_are_named(uri: str, message: str) -> None:
    with pytest.raises(SipConfigError, match=message):
        Trunk.parse(uri)


def test_trunk_credentials_come_in_pairs() -> None:
    with pytest.raises(SipConfigError, match="both the username and the password"):
        Trunk.parse("sip:127.0.0.1:5080", username="acme")


def test_trunks_serve_their_prefixes_in_order() -> None:
    india = Trunk("127.0.0.1", 5080, numbers=("+91",))
    rest = Trunk("127.0.0.1", 5090)
    config = SipDriverConfig(trunks=(india, rest))
    assert config.trunk_for("+919811000001") is india
    assert config.trunk_for("+14155550100") is rest
    assert SipDriverConfig(trunks=(india,)).trunk_for("+14155550100") is None


@pytest.mark.parametrize(("value", "expected"), [
    ("127.0.0.1:5060", ("127.0.0.1", 5060)),
    ("[::1]:5070", ("::1", 5070)),
    ("0.0.0.0:0", ("0.0.0.0", 0)),
])
def test_listen_addresses(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["127.0.0.1", "localhost:5060", "127.0.0.1:99999", ":5060"])
def test_bad_listen_addresses(value: str) -> None:
    with pytest.raises(SipConfigError, match="--sip-listen"):
        parse_listen(value)


def test_held_answer_keeps_every_stream_and_holds_it() -> None:
    offer = (b"v=0\r\no=a 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
             b"m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
             b"m=video 0 RTP/AVP 96\r\n")
    answer = held_answer(offer, "127.0.0.1").decode()
    assert "m=audio 9 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=inactive" in answer
    assert "m=video 0 RTP/AVP 96" in answer  # a refused stream stays refused (RFC 3264)
    assert "c=IN IP4 127.0.0.1" in answer


def test_standalone_entry_names_a_bad_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "legato.drivers.sip", "--listen", "127.0.0.1:0",
         "--trunk", "sip:carrier.example"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "--trunk: host 'carrier.example' must be an IP address" in result.stderr
