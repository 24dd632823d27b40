"""The one piece of SDP the signalling-only B2BUA writes: a held (inactive) answer.

RFC 3725 flow IV parks the first leg of a third-party call: its 200 carries an offer that
must be answered in the ACK before the other leg exists. We answer every offered stream
with `a=inactive` (RFC 3264 §8.4), keeping the stream's first format, so the phone holds a
valid, silent session until the re-INVITE that connects it to the other leg.
"""

from __future__ import annotations

import itertools

_versions = itertools.count(1)


def held_answer(offer: bytes, address: str) -> bytes:
    """An SDP answer to `offer` with every stream inactive (rejected streams stay port 0)."""
    lines = offer.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
    family = "IP6" if ":" in address else "IP4"
    out = [
        "v=0",
        f"o=legato {next(_versions)} 1 IN {family} {address}",
        "s=-",
        f"c=IN {family} {address}",
        "t=0 0",
    ]
    rtpmaps: dict[str, str] = {}
    media: list[tuple[str, str, str, str]] = []  # kind, port, proto, first format
    for line in lines:
        if line.startswith("m="):
            parts = line[2:].split()
            if len(parts) >= 4:
                media.append((parts[0], parts[1], parts[2], parts[3]))
        elif line.startswith("a=rtpmap:") and media:
            fmt, _, rest = line[9:].partition(" ")
            rtpmaps.setdefault(f"{len(media) - 1}:{fmt}", rest)
    for index, (kind, port, proto, fmt) in enumerate(media):
        if port == "0":
            out.append(f"m={kind} 0 {proto} {fmt}")
            continue
        out.append(f"m={kind} 9 {proto} {fmt}")
        rtpmap = rtpmaps.get(f"{index}:{fmt}")
        if rtpmap:
            out.append(f"a=rtpmap:{fmt} {rtpmap}")
        out.append("a=inactive")
    return ("\r\n".join(out) + "\r\n").encode()
