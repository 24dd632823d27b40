"""Line allocation: the in-process and the Redis counters, on the real Redis."""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
import redis.asyncio

from legato.core.policy.lines import LineCounter, held_line
from legato.lines.memory import MemoryLineCounter
from legato.lines.redis import (
    AsyncRedisLineCounter,
    LinesUnavailable,
    RedisLineCounter,
    WhenUnavailable,
)

NUMBER = "+918047001000"
OTHER = "+918047001001"


@pytest.fixture(scope="module")
def client() -> Iterator[redis.Redis]:
    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    yield client
    client.close()


@pytest.fixture
def prefix(client: redis.Redis) -> Iterator[str]:
    """A key prefix of our own, so parallel test runs never see each other's lines."""
    prefix = f"legato-test-{uuid.uuid4().hex}:"
    yield prefix
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)


@pytest.fixture(params=["memory", "redis"])
def make_counter(request: pytest.FixtureRequest) -> Callable[[], LineCounter]:
    """A factory: several counters from one factory share their lines (one cluster)."""
    if request.param == "memory":
        shared = MemoryLineCounter()
        return lambda: shared
    client = request.getfixturevalue("client")
    prefix = request.getfixturevalue("prefix")
    return lambda: RedisLineCounter(client, prefix=prefix)


def test_counters_satisfy_the_protocol(make_counter: Callable[[], LineCounter]) -> None:
    assert isinstance(make_counter(), LineCounter)


def test_limit_is_respected_and_lines_come_back(make_counter: Callable[[], LineCounter]) -> None:
    lines = make_counter()
    assert lines.acquire(NUMBER, 2, "a") and lines.acquire(NUMBER, 2, "b")
    assert not lines.acquire(NUMBER, 2, "c")
    assert lines.in_use(NUMBER) == 2
    assert lines.acquire(OTHER, 2, "c"), "numbers are counted separately"
    lines.release(NUMBER, "a")
    assert lines.in_use(NUMBER) == 1
    assert lines.acquire(NUMBER, 2, "d")
    assert lines.in_use(NUMBER) == 2


def test_acquire_again_does_not_take_a_second_line(
    make_counter: Callable[[], LineCounter],
) -> None:
    lines = make_counter()
    assert lines.acquire(NUMBER, 2, "a")
    assert lines.acquire(NUMBER, 2, "a")
    assert lines.in_use(NUMBER) == 1
    assert lines.acquire(NUMBER, 1, "a"), "a call already holding a line keeps it"


def test_release_is_idempotent_and_only_frees_its_own_line(
    make_counter: Callable[[], LineCounter],
) -> None:
    lines = make_counter()
    assert lines.acquire(NUMBER, 3, "a") and lines.acquire(NUMBER, 3, "b")
    lines.release(NUMBER, "a")
    lines.release(NUMBER, "a")
    lines.release(NUMBER, "never-held")
    lines.release(OTHER, "b")  # b holds a line on NUMBER, not on OTHER
    assert lines.in_use(NUMBER) == 1
    lines.release(NUMBER, "b")
    assert lines.in_use(NUMBER) == 0
    lines.release(NUMBER, "b")
    assert lines.in_use(NUMBER) == 0


def test_no_limit_still_counts(make_counter: Callable[[], LineCounter]) -> None:
    lines = make_counter()
    for i in range(25):
        assert lines.acquire(NUMBER, None, f"call-{i}")
    assert lines.in_use(NUMBER) == 25


def test_zero_lines_admits_nothing(make_counter: Callable[[], LineCounter]) -> None:
    lines = make_counter()
    assert not lines.acquire(NUMBER, 0, "a")
    assert lines.in_use(NUMBER) == 0


@pytest.mark.parametrize("limit", [-1, 1.5, True, "2"])
def test_bad_limit_is_a_clear_error(make_counter: Callable[[], LineCounter], limit: object) -> None:
    with pytest.raises(ValueError, match="lines: limit must be an integer >= 0"):
        make_counter().acquire(NUMBER, limit, "a")  # type: ignore[arg-type]


def test_held_line_releases_on_every_path(make_counter: Callable[[], LineCounter]) -> None:
    lines = make_counter()
    with held_line(lines, NUMBER, 1, "answered") as taken:
        assert taken and lines.in_use(NUMBER) == 1
        with held_line(lines, NUMBER, 1, "refused") as second:
            assert not second
        assert lines.in_use(NUMBER) == 1, "a refused call must not free the line it lacks"
    assert lines.in_use(NUMBER) == 0
    with pytest.raises(RuntimeError), held_line(lines, NUMBER, 1, "crashed") as taken:
        assert taken
        raise RuntimeError("call handler crashed")
    assert lines.in_use(NUMBER) == 0


def test_simultaneous_acquires_admit_exactly_the_limit(
    make_counter: Callable[[], LineCounter],
) -> None:
    threads, limit = 40, 7
    start = threading.Barrier(threads)
    results: list[bool] = []
    guard = threading.Lock()

    def attempt(i: int) -> None:
        counter = make_counter()  # one counter per "node"
        start.wait()
        taken = counter.acquire(NUMBER, limit, f"call-{i}")
        with guard:
            results.append(taken)

    workers = [threading.Thread(target=attempt, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sum(results) == limit
    assert make_counter().in_use(NUMBER) == limit


def test_churn_never_exceeds_the_limit(make_counter: Callable[[], LineCounter]) -> None:
    """Threads acquire, hold and release for a while; the holders never exceed the limit."""
    threads, rounds, limit = 12, 40, 4
    holding = 0
    most = 0
    admitted = 0
    guard = threading.Lock()

    def caller(t: int) -> None:
        nonlocal holding, most, admitted
        counter = make_counter()
        rng = random.Random(t)
        for r in range(rounds):
            call_id = f"call-{t}-{r}"
            if not counter.acquire(NUMBER, limit, call_id):
                continue
            with guard:  # counted only between a granted acquire and its release
                holding += 1
                most = max(most, holding)
                admitted += 1
            time.sleep(rng.random() / 1000)
            with guard:
                holding -= 1
            counter.release(NUMBER, call_id)

    workers = [threading.Thread(target=caller, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert most <= limit
    assert most == limit, "the test should have filled every line at some point"
    assert limit < admitted < threads * rounds
    assert make_counter().in_use(NUMBER) == 0


# --- Redis only: leases, refresh, asyncio -------------------------------------------


def test_lines_of_a_dead_node_expire(client: redis.Redis, prefix: str) -> None:
    dead = RedisLineCounter(client, prefix=prefix, lease_seconds=0.3)
    alive = RedisLineCounter(client, prefix=prefix, lease_seconds=30)
    assert dead.acquire(NUMBER, 2, "a") and dead.acquire(NUMBER, 2, "b")
    assert not alive.acquire(NUMBER, 2, "c")
    time.sleep(0.4)  # the dead node never refreshes nor releases
    assert alive.in_use(NUMBER) == 0
    assert alive.acquire(NUMBER, 2, "c") and alive.acquire(NUMBER, 2, "d")
    assert not alive.acquire(NUMBER, 2, "e")


def test_idle_number_leaves_no_key(client: redis.Redis, prefix: str) -> None:
    lines = RedisLineCounter(client, prefix=prefix, lease_seconds=0.2)
    assert lines.acquire(NUMBER, 1, "a")
    assert 0 < client.pttl(lines.key(NUMBER)) <= 200
    time.sleep(0.3)
    assert not client.exists(lines.key(NUMBER))


def test_refresh_keeps_a_long_call_alive(client: redis.Redis, prefix: str) -> None:
    lines = RedisLineCounter(client, prefix=prefix, lease_seconds=0.3)
    other = RedisLineCounter(client, prefix=prefix)
    assert lines.acquire(NUMBER, 1, "long")
    for _ in range(5):  # 0.75 s in all, well past the 0.3 s lease
        time.sleep(0.15)
        assert lines.refresh("long")
    assert not other.acquire(NUMBER, 1, "short")
    time.sleep(0.4)  # refreshes stop: the lease runs out
    assert not lines.refresh("long")
    assert other.acquire(NUMBER, 1, "short")
    assert not lines.refresh("never-held")


def test_refresh_all_extends_every_held_lease_and_reports_lost_ones(
    client: redis.Redis, prefix: str
) -> None:
    lines = RedisLineCounter(client, prefix=prefix, lease_seconds=0.3)
    assert lines.acquire(NUMBER, 5, "a") and lines.acquire(OTHER, 5, "b")
    assert lines.acquire(NUMBER, 5, "released")
    lines.release(NUMBER, "released")
    time.sleep(0.2)
    assert lines.refresh_all() == []
    time.sleep(0.2)  # past the first lease, inside the refreshed one
    assert lines.in_use(NUMBER) == 1 and lines.in_use(OTHER) == 1
    client.zrem(lines.key(OTHER), "b")  # e.g. reclaimed while this node was cut off
    assert lines.refresh_all() == ["b"]
    assert lines.refresh_all() == []


def test_lease_must_be_positive(client: redis.Redis, prefix: str) -> None:
    with pytest.raises(ValueError, match="lease_seconds"):
        RedisLineCounter(client, prefix=prefix, lease_seconds=0)


def test_async_tasks_acquiring_at_once_admit_exactly_the_limit(prefix: str) -> None:
    async def run() -> None:
        pool = redis.asyncio.BlockingConnectionPool(host="127.0.0.1", port=6379, max_connections=20)
        client = redis.asyncio.Redis(connection_pool=pool)
        try:
            lines = AsyncRedisLineCounter(client, prefix=prefix, lease_seconds=0.5)
            taken = await asyncio.gather(
                *(lines.acquire(NUMBER, 10, f"call-{i}") for i in range(200))
            )
            assert sum(taken) == 10
            assert await lines.in_use(NUMBER) == 10
            await asyncio.sleep(0.3)
            assert await lines.refresh_all() == []
            await asyncio.sleep(0.3)  # past the first lease
            assert await lines.in_use(NUMBER) == 10
            winners = [f"call-{i}" for i, ok in enumerate(taken) if ok]
            assert await lines.refresh(winners[0])
            await asyncio.gather(*(lines.release(NUMBER, c) for c in winners))
            await asyncio.gather(*(lines.release(NUMBER, c) for c in winners))
            assert await lines.in_use(NUMBER) == 0
            assert not await lines.refresh(winners[0])
        finally:
            await client.aclose()
            await pool.aclose()

    asyncio.run(run())


# --- Redis unreachable --------------------------------------------------------------


@pytest.fixture
def unreachable() -> Iterator[redis.Redis]:
    """A client for a loopback port nobody listens on."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, retry=None)
    yield client
    client.close()


def test_unreachable_redis_raises_by_default(unreachable: redis.Redis) -> None:
    lines = RedisLineCounter(unreachable)
    with pytest.raises(LinesUnavailable, match=rf"lines for \{NUMBER}: Redis unavailable"):
        lines.acquire(NUMBER, 3, "a")


@pytest.mark.parametrize(("when", "admitted"), [("admit", True), ("refuse", False)])
def test_unreachable_redis_admits_or_refuses_as_configured(
    unreachable: redis.Redis, when: WhenUnavailable, admitted: bool
) -> None:
    lines = RedisLineCounter(unreachable, when_unavailable=when)
    assert lines.acquire(NUMBER, 3, "a") is admitted
    lines.release(NUMBER, "a")  # never raises: it runs in finally blocks


def test_release_never_raises_and_stops_refreshing(
    client: redis.Redis, prefix: str, unreachable: redis.Redis
) -> None:
    lines = RedisLineCounter(client, prefix=prefix)
    assert lines.acquire(NUMBER, 3, "a")
    lines._client = unreachable  # the connection to Redis drops mid-call
    with held_line(lines, NUMBER, 3, "a"):
        pass
    assert not lines.refresh("a"), "a released call is no longer kept alive"


def test_unknown_when_unavailable_is_refused(client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="when_unavailable"):
        RedisLineCounter(client, when_unavailable="ignore")  # type: ignore[arg-type]


def test_async_unreachable_redis(unreachable: redis.Redis) -> None:
    port = unreachable.connection_pool.connection_kwargs["port"]

    async def run() -> None:
        client = redis.asyncio.Redis(
            host="127.0.0.1", port=port, socket_connect_timeout=0.5, retry=None
        )
        try:
            with pytest.raises(LinesUnavailable):
                await AsyncRedisLineCounter(client).acquire(NUMBER, 1, "a")
            admit = AsyncRedisLineCounter(client, when_unavailable="admit")
            assert await admit.acquire(NUMBER, 1, "a")
            await admit.release(NUMBER, "a")
        finally:
            await client.aclose()

    asyncio.run(run())


def test_a_leaked_call_is_refreshed_only_up_to_max_hold(client: redis.Redis, prefix: str) -> None:
    """A handler that crashed without releasing must not hold a line forever through the
    node's heartbeat; calls still within their maximum hold keep being refreshed."""
    lines = RedisLineCounter(client, prefix=prefix, lease_seconds=0.3, max_hold_seconds=1.0)
    began = time.monotonic()
    assert lines.acquire(NUMBER, 1, "leaked")
    time.sleep(0.6)
    assert lines.acquire(OTHER, 1, "fresh")
    lost: list[str] = []
    while time.monotonic() - began < 1.3:  # the node's heartbeat
        lost += lines.refresh_all()
        time.sleep(0.1)
    assert lost == ["leaked"]
    assert lines.in_use(OTHER) == 1
    time.sleep(0.4)
    assert lines.in_use(NUMBER) == 0, "the leaked call's lease ran out"
    assert not lines.refresh("leaked")


def test_max_hold_must_be_positive(client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="max_hold_seconds"):
        RedisLineCounter(client, max_hold_seconds=0)
