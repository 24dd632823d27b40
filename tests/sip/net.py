"""An in-memory network between sans-IO user agents on a virtual clock (test helper).

Nothing here stands in for our code: both ends are real `UserAgent`s; this only moves their
datagrams and advances `now`, optionally dropping datagrams to exercise retransmissions."""

from __future__ import annotations

from collections.abc import Callable

from legato.sip import events as ev
from legato.sip.ua import UserAgent

Addr = tuple[str, int]


class Net:
    def __init__(self, *agents: UserAgent) -> None:
        self.agents = {ua.config.local: ua for ua in agents}
        self.now = 0.0
        self.events: dict[Addr, list[ev.Event]] = {a: [] for a in self.agents}
        self.wire: list[tuple[Addr, Addr, str]] = []  # (src, dst, first line)
        self.drop: Callable[[Addr, Addr, bytes], bool] = lambda src, dst, data: False

    def deliver(self) -> None:
        """Move datagrams until every agent is quiet."""
        moved = True
        while moved:
            moved = False
            for src, ua in self.agents.items():
                for data, dst in ua.datagrams_to_send(self.now):
                    moved = True
                    self.wire.append((src, dst, data.split(b"\r\n", 1)[0].decode()))
                    target = self.agents.get(dst)
                    if target is not None and not self.drop(src, dst, data):
                        target.receive_datagram(data, src, self.now)
                while (event := ua.next_event()) is not None:
                    self.events[src].append(event)

    def advance(self, seconds: float) -> None:
        """Run timers in time order up to now + seconds, delivering after each."""
        until = self.now + seconds
        self.deliver()
        while True:
            timers = [(t, a) for a, ua in self.agents.items() if (t := ua.get_timer()) is not None]
            due = [x for x in timers if x[0] <= until]
            if not due:
                break
            when, addr = min(due)
            self.now = max(self.now, when)
            self.agents[addr].handle_timer(self.now)
            self.deliver()
        self.now = until

    def take(self, addr: Addr) -> list[ev.Event]:
        events, self.events[addr] = self.events[addr], []
        return events

    def lines(self, dst: Addr | None = None) -> list[str]:
        return [line for _, d, line in self.wire if dst is None or d == dst]
