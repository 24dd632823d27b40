"""RTP port allocation from a configured range (RTP on the even port, RTCP on the next).

Firewalls and carriers open a known range for media, so the range is configuration; ports
are bound here (not merely chosen) so two calls can never race for the same pair.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field


class PortRangeExhausted(RuntimeError):
    """No free even/odd port pair left in the range: refuse the call (503) rather than
    send media from an unexpected port."""


@dataclass(slots=True)
class PortRange:
    """An inclusive range of UDP ports; `bind_pair` walks it round-robin."""

    first: int = 10000
    last: int = 20000
    _cursor: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not 1024 <= self.first < self.last <= 65535:
            raise ValueError(
                f"rtp port range: need 1024 <= first < last <= 65535, got {self.first}-{self.last}"
            )
        self.first += self.first % 2  # RTP takes even ports (RFC 3550 §11)
        self._cursor = self.first

    @classmethod
    def parse(cls, text: str) -> PortRange:
        """`FIRST-LAST`, as given on the command line."""
        first, sep, last = text.partition("-")
        if not sep or not first.strip().isdigit() or not last.strip().isdigit():
            raise ValueError(f"rtp port range: expected FIRST-LAST (10000-20000), got {text!r}")
        return cls(int(first), int(last))

    def bind_pair(self, host: str) -> tuple[socket.socket, socket.socket]:
        """Bind an RTP socket on an even port and RTCP on the next one, both non-blocking."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        pairs = (self.last - self.first + 1) // 2
        for _ in range(pairs):
            port = self._cursor
            self._cursor = port + 2 if port + 3 <= self.last else self.first
            rtp = socket.socket(family, socket.SOCK_DGRAM)
            rtcp = socket.socket(family, socket.SOCK_DGRAM)
            try:
                rtp.bind((host, port))
                rtcp.bind((host, port + 1))
            except OSError:
                rtp.close()
                rtcp.close()
                continue
            rtp.setblocking(False)
            rtcp.setblocking(False)
            return rtp, rtcp
        raise PortRangeExhausted(f"no free RTP port pair in {self.first}-{self.last} on {host}")
