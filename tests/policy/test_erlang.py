"""Erlang-B, and line allocation measured against it with Poisson traffic."""

from __future__ import annotations

import heapq
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from legato.core.policy.erlang import erlang_b, lines_for
from legato.core.policy.lines import LineCounter
from legato.lines.memory import MemoryLineCounter
from legato.lines.redis import RedisLineCounter

NUMBER = "+918047001000"


# --- the formula --------------------------------------------------------------------


def closed_form(traffic: float, lines: int) -> float:
    """(E^N / N!) / sum_k E^k / k!, in log space so that it does not overflow."""
    if traffic == 0:
        return 1.0 if lines == 0 else 0.0
    logs = [k * math.log(traffic) - math.lgamma(k + 1) for k in range(lines + 1)]
    top = max(logs)
    return math.exp(logs[-1] - top) / sum(math.exp(x - top) for x in logs)


@pytest.mark.parametrize(
    ("traffic", "lines", "blocking"),
    [
        (1.0, 1, 0.5),
        (2.0, 2, 0.4),
        (0.5, 1, 1 / 3),
        (5.0, 10, 0.0183846),  # textbook Erlang-B table value
        (8.0, 10, 0.121661),
        (0.0, 3, 0.0),
        (3.0, 0, 1.0),
    ],
)
def test_known_values(traffic: float, lines: int, blocking: float) -> None:
    assert erlang_b(traffic, lines) == pytest.approx(blocking, abs=5e-7)


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failure
@given(st.floats(0, 300, allow_nan=False), st.integers(0, 400))
def test_recurrence_matches_closed_form(traffic: float, lines: int) -> None:
    expected = closed_form(traffic, lines)
    assert erlang_b(traffic, lines) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_stable_for_thousands_of_lines() -> None:
    b = erlang_b(9500.0, 10000)
    assert 0 < b < 1e-3
    assert erlang_b(9500.0, 10000) == pytest.approx(closed_form(9500.0, 10000), rel=1e-9)


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failure
@given(st.floats(0.01, 200), st.integers(1, 300))
def test_more_lines_block_less_more_traffic_blocks_more(traffic: float, lines: int) -> None:
    fewer = erlang_b(traffic, lines - 1)
    assert erlang_b(traffic, lines) < fewer or fewer < 1e-300  # (both underflow to 0)
    assert erlang_b(traffic, lines) <= erlang_b(traffic * 1.1, lines)


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failure
@given(st.floats(0, 500), st.floats(1e-6, 1))
def test_lines_for_is_the_fewest_that_meet_the_target(traffic: float, target: float) -> None:
    n = lines_for(traffic, target)
    assert erlang_b(traffic, n) <= target
    assert n == 0 or erlang_b(traffic, n - 1) > target


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: erlang_b(-1.0, 3), "traffic"),
        (lambda: erlang_b(math.inf, 3), "traffic"),
        (lambda: erlang_b(1.0, -1), "lines"),
        (lambda: erlang_b(1.0, 2.5), "lines"),  # type: ignore[arg-type]
        (lambda: lines_for(1.0, 0.0), "target_blocking"),
    ],
)
def test_bad_arguments(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


# --- Poisson traffic through a LineCounter ------------------------------------------


@dataclass(frozen=True, slots=True)
class Traffic:
    """What an offered-traffic run measured."""

    offered: int
    blocked: int
    most_in_use: int

    @property
    def blocking(self) -> float:
        return self.blocked / self.offered


def offer_poisson_traffic(
    counter: LineCounter,
    number: str,
    lines: int,
    erlangs: float,
    calls: int,
    *,
    seed: int,
    mean_holding: float = 1.0,
    warmup: int = 1000,
) -> Traffic:
    """Offer ``calls`` Poisson arrivals with exponential holding times to ``number``.

    A small discrete-event loop on a virtual clock: each arrival first ends the calls
    whose holding time is over (releasing their lines), then asks ``counter`` for a line.
    The first ``warmup`` arrivals fill the system and are not counted.
    """
    rng = random.Random(seed)
    rate = erlangs / mean_holding
    now = 0.0
    ending: list[tuple[float, str]] = []
    offered = blocked = most = 0
    for i in range(warmup + calls):
        now += rng.expovariate(rate)
        while ending and ending[0][0] <= now:
            counter.release(number, heapq.heappop(ending)[1])
        call_id = f"call-{i}"
        if counter.acquire(number, lines, call_id):
            heapq.heappush(ending, (now + rng.expovariate(1 / mean_holding), call_id))
        elif i >= warmup:
            blocked += 1
        if i >= warmup:
            offered += 1
            most = max(most, len(ending))
    for _, call_id in ending:
        counter.release(number, call_id)
    return Traffic(offered, blocked, most)


@pytest.mark.parametrize(
    ("erlangs", "lines"),
    [(0.5, 1), (2.0, 2), (8.0, 10), (25.0, 30)],
)
def test_measured_blocking_matches_erlang_b(erlangs: float, lines: int) -> None:
    counter = MemoryLineCounter()
    result = offer_poisson_traffic(counter, NUMBER, lines, erlangs, 60_000, seed=lines)
    expected = erlang_b(erlangs, lines)
    # Blocking events are correlated in time, so allow several binomial standard errors.
    tolerance = 5 * math.sqrt(expected * (1 - expected) / result.offered) + 0.002
    assert result.blocking == pytest.approx(expected, abs=tolerance)
    assert result.most_in_use == lines
    assert counter.in_use(NUMBER) == 0


def test_a_counter_that_leaks_lines_would_be_caught() -> None:
    """The check is sharp: losing one release in a hundred shows up as extra blocking."""

    class Leaky(MemoryLineCounter):
        def release(self, number: str, call_id: str) -> None:
            if not call_id.endswith("37"):
                super().release(number, call_id)

    erlangs, lines = 8.0, 10
    leaky = offer_poisson_traffic(Leaky(), NUMBER, lines, erlangs, 20_000, seed=1)
    assert leaky.blocking > erlang_b(erlangs, lines) + 0.1


@pytest.fixture
def redis_counter() -> Iterator[RedisLineCounter]:
    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    prefix = f"legato-test-{uuid.uuid4().hex}:"
    yield RedisLineCounter(client, prefix=prefix)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_redis_counter_blocks_like_erlang_b(redis_counter: RedisLineCounter) -> None:
    """Fewer calls (each one is a round trip), so a wider tolerance."""
    erlangs, lines = 8.0, 10
    result = offer_poisson_traffic(redis_counter, NUMBER, lines, erlangs, 4000, seed=7, warmup=200)
    expected = erlang_b(erlangs, lines)
    assert result.blocking == pytest.approx(expected, abs=0.04)
    assert redis_counter.in_use(NUMBER) == 0
