"""How fast the engine and the `sim` driver resolve calls, on one core.

Two measurements, in one run:
1. calls/s: a mix of every service (incoming IVR menus and hunts, click-to-call with
   several agents and customers, outbound with flows, missed-call numbers, policy
   rejections), each call simulated to its end and its record built;
2. a 1,000,000-call day: Poisson arrivals over 24 virtual hours on ONE virtual network,
   calls overlapping in time, lines counted per number (so MAX-USE happens for real).

    python bench/sim_throughput.py [--quick] [--calls N] [--day-calls N]

Goals (issue 3): >= 20,000 calls/s; a 1M-call day in < 60 s.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.table import Table

from legato.core.admission import Policy
from legato.core.catalogue import Service
from legato.core.config import NumberConfig
from legato.core.engine import Call, CallSpec, create_call
from legato.core.record import CallRecord
from legato.gc_tuning import tune_for_calls
from legato.sim import PhoneBehaviour, SimNetwork

START = datetime(2026, 11, 23, tzinfo=UTC)
AGENTS = [f"+9198110{i:05d}" for i in range(400)]
CUSTOMERS = [f"+9199110{i:05d}" for i in range(4000)]
NUMBERS = [f"+9180470{i:05d}" for i in range(50)]

MENU_FLOW = [
    {"answer": {"after": 1}},
    {"play": {"prompt": "welcome", "seconds": 4}},
    {"gather": {"prompt": {"prompt": "menu", "seconds": 3}, "digits": 1, "timeout": 5,
                "branches": {"1": [{"dial": {"to": AGENTS[:3], "strategy": "parallel",
                                             "ring_timeout": 20}}],
                             "2": [{"dial": {"to": AGENTS[3:6], "ring_timeout": 15}}]},
                "default": [{"play": {"text": "Goodbye", "seconds": 2}}]}},
]
DIAL_FLOW = [{"dial": {"to": AGENTS[6:8], "strategy": "sequential", "ring_timeout": 20}}]
OUT_FLOW = [{"play": {"text": "Your order has shipped", "seconds": 5}},
            {"dial": {"to": AGENTS[8:10], "ring_timeout": 20}}]


def _config(**kw: object) -> tuple[NumberConfig, Policy]:
    config = NumberConfig.model_validate(kw)
    return config, Policy.from_config(config)


CONFIGS = {
    "menu": _config(flow=MENU_FLOW, lines=20, blacklist=[CUSTOMERS[0], "+9199110009*"]),
    "direct": _config(flow=DIAL_FLOW, lines=10,
                      office_hours={"timezone": "Asia/Kolkata",
                                    "days": {d: "08:00-22:00" for d in
                                             ("mon", "tue", "wed", "thu", "fri", "sat")}}),
    "missed": _config(missed_call=True),
    "c2c": _config(ring_timeout=25, dnd=CUSTOMERS[:40], allowed_countries=["IN"]),
    "outbound": _config(flow=OUT_FLOW, dnd=CUSTOMERS[40:80]),
}


def _phones(rng: random.Random) -> dict[str, PhoneBehaviour]:
    """Every agent and customer with a behaviour drawn from a realistic mix."""
    kinds = [
        ({"answer_after": 3, "hangup_after": 60}, 40), ({"answer_after": 8}, 10),
        ({"busy": True}, 12), ({"no_answer": True}, 10), ({"reject_after": 4}, 6),
        ({"unreachable": True}, 5), ({"congestion": True}, 3), ({"sip_status": 404}, 3),
        ({"sip_status": 480}, 3), ({"sip_status": 503, "q850": 34}, 2),
        ({"answer_after": 2, "hangup_after": 20, "dtmf": ["1"]}, 6),
    ]
    behaviours = [PhoneBehaviour.model_validate(k) for k, w in kinds for _ in range(w)]
    return {n: rng.choice(behaviours) for n in AGENTS + CUSTOMERS}


def _specs(rng: random.Random, count: int) -> list[CallSpec]:
    """A deterministic mix of calls of every service."""
    out = []
    for i in range(count):
        roll = rng.random()
        number = rng.choice(NUMBERS)
        if roll < 0.35:
            service, key, leg1, leg2 = Service.INCOMING, "menu", (rng.choice(CUSTOMERS),), ()
        elif roll < 0.50:
            service, key, leg1, leg2 = Service.INCOMING, "direct", (rng.choice(CUSTOMERS),), ()
        elif roll < 0.55:
            service, key, leg1, leg2 = Service.MISSED_CALL, "missed", (rng.choice(CUSTOMERS),), ()
        elif roll < 0.80:
            service, key = Service.CLICK_TO_CALL, "c2c"
            leg1 = tuple(rng.sample(AGENTS, rng.choice((1, 1, 2, 3))))
            leg2 = tuple(rng.sample(CUSTOMERS, rng.choice((1, 1, 2))))
        else:
            service, key, leg1, leg2 = Service.OUTBOUND, "outbound", (rng.choice(CUSTOMERS),), ()
        config, policy = CONFIGS[key]
        out.append(CallSpec(id=str(i), service=service, number=number, leg1=leg1, leg2=leg2,
                            config=config, policy=policy, started_at=START))
    return out


def bench_throughput(calls: int, phones: dict[str, PhoneBehaviour]
                     ) -> tuple[float, float, Counter[str]]:
    rng = random.Random(7)
    specs = _specs(rng, calls)
    statuses: Counter[str] = Counter()

    def done(record: CallRecord) -> None:
        statuses[record.status.value if record.status else "?"] += 1

    network = SimNetwork(phones)
    t, cpu = time.perf_counter(), time.process_time()
    for spec in specs:  # one call at a time: the cost of resolving a call, nothing else
        network.place(create_call(spec, network.now), on_done=done)
        network.run()
    elapsed, cpu = time.perf_counter() - t, time.process_time() - cpu
    return calls / elapsed, calls / cpu, statuses


def bench_day(calls: int, phones: dict[str, PhoneBehaviour], shard: int = 0, shards: int = 1
              ) -> tuple[float, float, Counter[str], int]:
    """`calls` Poisson arrivals over 24 h on one network, with lines counted per number.

    With ``shards`` > 1 this process runs only the calls of the Legato numbers of its
    shard: calls on different numbers never interact in the sim (lines are counted per
    number; virtual phones have no state), so the shards together are the same day.
    """
    rng = random.Random(11)
    specs = _specs(rng, min(calls, 100_000))
    mine = {n for i, n in enumerate(NUMBERS) if i % shards == shard}
    rate = calls / 86_400.0
    in_use: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    network = SimNetwork(phones)
    peak = 0

    class Arrival:
        """Creates its call when it arrives: lines in use are read at that instant, and
        the call holds a line until it ends (a rejected call ends at once)."""

        __slots__ = ("holds", "spec")

        def __init__(self, spec: CallSpec) -> None:
            self.spec = spec
            self.holds = spec.service is Service.INCOMING and spec.config.lines is not None

        def create(self, now: float) -> Call:
            spec = self.spec
            real = CallSpec(spec.id, spec.service, spec.number, spec.leg1, spec.leg2,
                            spec.config, spec.policy, START + timedelta(seconds=now),
                            in_use[spec.number])
            if self.holds:
                in_use[spec.number] += 1
            return create_call(real, now)

        def done(self, record: CallRecord) -> None:
            statuses[record.status.value if record.status else "?"] += 1
            if self.holds:
                in_use[self.spec.number] -= 1

    t, cpu = time.perf_counter(), time.process_time()
    now = 0.0
    for i in range(calls):
        now += rng.expovariate(rate)
        spec = specs[i % len(specs)]
        if spec.number not in mine:
            continue
        arrival = Arrival(spec)
        network.place(arrival.create, now, on_done=arrival.done)
        if not i % 256:  # arrivals go in by the batch; the heap keeps them in time order
            network.run(until=now)
            peak = max(peak, network.pending)
    network.run()
    return time.perf_counter() - t, time.process_time() - cpu, statuses, peak


def _day_shard(args: tuple[int, int, int]) -> tuple[float, float, Counter[str], int]:
    calls, shard, shards = args
    tune_for_calls()
    return bench_day(calls, _phones(random.Random(3)), shard, shards)


def bench_day_sharded(calls: int, workers: int) -> tuple[float, Counter[str]]:
    """The same day split by Legato number over `workers` processes: wall time."""
    import multiprocessing

    t = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        parts = pool.map(_day_shard, [(calls, k, workers) for k in range(workers)])
    statuses: Counter[str] = Counter()
    for part in parts:
        statuses.update(part[2])
    return time.perf_counter() - t, statuses


def calibration_us() -> float:
    """How fast this machine runs plain Python right now (µs for sum(range(1000)), best of
    20): lets runs on a noisy shared machine be compared. About 8-10 µs on a quiet modern
    core."""
    import timeit

    return min(timeit.repeat("sum(range(1000))", number=2000, repeat=20)) / 2000 * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run under a minute")
    parser.add_argument("--calls", type=int, default=None)
    parser.add_argument("--day-calls", type=int, default=None)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes for the sharded day (one per core)")
    args = parser.parse_args()
    calls = args.calls or (30_000 if args.quick else 200_000)
    day_calls = args.day_calls or (100_000 if args.quick else 1_000_000)

    phones = _phones(random.Random(3))
    tune_for_calls()  # as `legato serve` does
    bench_throughput(2_000, phones)  # warm-up
    bench_day(5_000, phones)  # warm the per-number caches a running service has warm
    cps, cps_cpu, statuses = bench_throughput(calls, phones)
    day_seconds, day_cpu, day_statuses, peak = bench_day(day_calls, phones)
    sharded_seconds, sharded_statuses = bench_day_sharded(day_calls, args.workers)
    assert sharded_statuses == day_statuses, "the sharded day must be the same day"
    scale = 1_000_000 / day_calls
    load = os.getloadavg()[0]
    calibration = calibration_us()

    console = Console()
    table = Table(title=f"sim throughput, one process (load average {load:.1f} on "
                        f"{os.cpu_count()} cores)")
    table.add_column("measure")
    table.add_column("wall clock", justify="right")
    table.add_column("per CPU-second of this process", justify="right")
    table.add_column("goal", justify="right")
    table.add_row("resolved calls/s (service mix)", f"{cps:,.0f}", f"{cps_cpu:,.0f}",
                  ">= 20,000")
    table.add_row(f"{day_calls:,}-call day on one virtual clock", f"{day_seconds:.1f} s",
                  f"{day_cpu:.1f} s", "")
    table.add_row("1,000,000-call day" + (" (scaled)" if day_calls != 1_000_000 else ""),
                  f"{day_seconds * scale:.1f} s", f"{day_cpu * scale:.1f} s", "< 60 s")
    table.add_row(f"1,000,000-call day, {args.workers} processes sharded by number"
                  + (" (scaled)" if day_calls != 1_000_000 else ""),
                  f"{sharded_seconds * scale:.1f} s", "", "< 60 s")
    table.add_row("peak pending events in the day", f"{peak:,}", "", "")
    console.print(table)
    mix = Table(title="statuses in the day")
    mix.add_column("status")
    mix.add_column("calls", justify="right")
    for status, n in day_statuses.most_common():
        mix.add_row(status, f"{n:,}")
    console.print(mix)
    print(f"calls_per_second={cps:.0f} calls_per_cpu_second={cps_cpu:.0f} "
          f"day_1m_seconds={day_seconds * scale:.1f} day_1m_cpu_seconds={day_cpu * scale:.1f} "
          f"day_1m_sharded_seconds={sharded_seconds * scale:.1f} workers={args.workers} "
          f"statuses_seen={len(statuses)} load={load:.1f} calibration_us={calibration:.1f}")


if __name__ == "__main__":
    main()
