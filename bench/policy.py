"""Cost of each pre-dial policy check per call, against the sim's 20,000 calls/s budget.

Measures, in one run: office hours (`check_open`, three zones, instants spread over a
year so DST nights are included), dialling permissions (`check_permission` over a pool of
distinct numbers, and raw phonenumbers parsing as the peer it caches), blacklist lookup
with 100,000 entries (against a linear scan as the naive peer), and one line
acquire+release on the in-process and the Redis counter (127.0.0.1:6379).

    python bench/policy.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import phonenumbers
import redis
from rich.console import Console
from rich.table import Table

from legato.core.policy.blacklist import Blacklist
from legato.core.policy.office_hours import OfficeHours, check_open
from legato.core.policy.permissions import check_permission
from legato.lines.memory import MemoryLineCounter
from legato.lines.redis import RedisLineCounter

BUDGET_US = 1e6 / 20_000  # one call's whole budget at 20k calls/s


def per_call_us(fn: Callable[[int], object], n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (< 1 minute)")
    args = parser.parse_args()
    n = 20_000 if args.quick else 200_000
    rng = random.Random(4)

    weekdays = {d: ["09:00-13:00", "14:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    schedules = [
        OfficeHours(timezone=tz, days={**weekdays, "sat": "22:00-06:00"},
                    holidays=["2026-12-25", "2026-12-28..2026-12-31"])
        for tz in ("Asia/Kolkata", "America/New_York", "Europe/London")
    ]  # fmt: skip
    origin = datetime(2026, 1, 1, tzinfo=UTC)
    year = [origin + timedelta(seconds=rng.randrange(365 * 86400)) for _ in range(4096)]
    day = [origin + timedelta(seconds=rng.randrange(86400)) for _ in range(4096)]

    numbers = [f"+9198{rng.randrange(10**8):08d}" for _ in range(2000)]
    numbers += [f"+1415{rng.randrange(2, 10)}{rng.randrange(10**6):06d}" for _ in range(500)]
    countries, types = frozenset({"IN"}), frozenset({"mobile"})
    valid = [x for x in numbers if phonenumbers.is_valid_number(phonenumbers.parse(x))]

    entries = [f"+9198{rng.randrange(10**8):08d}" for _ in range(90_000)]
    entries += [f"+9198{rng.randrange(10**4):04d}*" for _ in range(10_000)]
    blacklist = Blacklist(entries)
    prefixes = [e[:-1] for e in entries if e.endswith("*")]
    exact = set(entries)
    callers = [f"+9197{rng.randrange(10**8):08d}" for _ in range(4096)]
    for number in valid:  # warm the cache: the sim sees the same numbers all day long
        check_permission(number, countries, types)

    def linear(i: int) -> object:
        c = callers[i % 4096]
        return c in exact or any(c.startswith(p) for p in prefixes)

    memory = MemoryLineCounter()
    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
    prefix = f"legato-bench-{uuid.uuid4().hex}:"
    remote = RedisLineCounter(client, prefix=prefix)

    def cycle(counter: MemoryLineCounter | RedisLineCounter) -> Callable[[int], object]:
        def run(i: int) -> object:
            call = f"c{i}"
            counter.acquire("+918047001000", 10, call)
            counter.release("+918047001000", call)
            return None

        return run

    rows = [
        ("check_open", "3 zones, one day of calls", per_call_us(
            lambda i: check_open(schedules[i % 3], day[i % 4096]), n)),
        ("check_open", "3 zones, calls spread over a year", per_call_us(
            lambda i: check_open(schedules[i % 3], year[i % 4096]), n)),
        ("check_permission", "cached facts", per_call_us(
            lambda i: check_permission(valid[i % len(valid)], countries, types), n)),
        ("phonenumbers", "parse + is_valid (peer)", per_call_us(
            lambda i: phonenumbers.is_valid_number(phonenumbers.parse(valid[i % len(valid)])),
            n // 20)),
        ("Blacklist.match", "100k entries", per_call_us(lambda i: blacklist.match(
            callers[i % 4096]), n)),
        ("linear scan", "100k entries (peer)", per_call_us(linear, 200)),
        ("memory lines", "acquire + release", per_call_us(cycle(memory), n)),
        ("redis lines", "acquire + release", per_call_us(cycle(remote), n // 20)),
    ]  # fmt: skip
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)

    table = Table(title=f"Pre-dial policy cost per call (budget {BUDGET_US:.0f} us at 20k calls/s)")
    for column in ("check", "what", "us/call", "share of budget"):
        table.add_column(column, justify="right" if column != "check" else "left")
    for name, what, us in rows:
        table.add_row(name, what, f"{us:.2f}", f"{us / BUDGET_US:.1%}")
    Console().print(table)
    labels = ["check_open_day", "check_open_year", "check_permission", "phonenumbers",
              "blacklist_match", "blacklist_linear", "memory_lines", "redis_lines"]  # fmt: skip
    figures = dict(zip(labels, (us for _, _, us in rows), strict=True))
    print(" ".join(f"{k}_us={v:.2f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
