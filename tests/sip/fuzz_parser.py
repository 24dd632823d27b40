"""atheris fuzz target for the SIP parsers and the user agent's receive path.

Run for a bounded time, e.g.:  python tests/sip/fuzz_parser.py -max_total_time=60
Anything other than `RemoteProtocolError` escaping is a bug and stops the fuzzer with the
crashing input saved (atheris/libFuzzer's usual crash-<sha1> file).
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from legato.sip import RemoteProtocolError, StreamParser, parse_message
    from legato.sip.ua import UAConfig, UserAgent

_ACCESSORS = (
    "cseq",
    "from_",
    "to",
    "top_via",
    "vias",
    "contacts",
    "route",
    "record_route",
    "reasons",
    "max_forwards",
    "q850_cause",
)
_UA = UserAgent(UAConfig(("127.0.0.1", 5060)))


def test_one_input(data: bytes) -> None:
    try:
        message = parse_message(data)
    except RemoteProtocolError:
        message = None
    if message is not None:
        parse_message(message.to_bytes())
        for name in _ACCESSORS:
            with contextlib.suppress(RemoteProtocolError):
                getattr(message, name)
    with contextlib.suppress(RemoteProtocolError):
        StreamParser().feed(data)
    _UA.receive_datagram(data, ("127.0.0.1", 5999), 0.0)
    _UA.datagrams_to_send(0.0)
    while _UA.next_event() is not None:
        pass


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
