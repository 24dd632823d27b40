"""Media capacity on one core: concurrent paced prompt streams (send-time jitter p99) and
concurrent relayed (media-anchored) bridged calls.

Streams: N endpoints in this process each play a looping 8 kHz G.711 prompt at 20 ms pace,
started at random phases, to a sink in a child process; lateness = send time - due time.
Relay: M calls, each two endpoints + a Relay in this process; a child process plays both
parties (2M paced senders). The figure is the relay process's CPU share at M calls,
extrapolated to calls per core. Goal (issue 8): 500 streams, jitter p99 < 5 ms.

Lateness is read from `time.monotonic()` at each send (not the loop's cached clock). The
stream runs at 500 and more are repeated under SCHED_FIFO priority 10 (as `chrt -f 10`,
when permitted): on a shared machine the tail is the process being preempted, and the
real-time run shows what the media path does when it is not.

Usage: python bench/media.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import random
import socket
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection

import numpy as np

from legato.gc_tuning import tune_for_calls
from legato.media.audio import Audio
from legato.media.endpoint import RtpEndpoint
from legato.media.ports import PortRange
from legato.media.relay import Relay
from legato.media.sdp import Negotiated
from legato.media.tones import Ringback
from legato.sip.transport import run

HOST = "127.0.0.1"


def prompt_audio() -> Audio:
    rng = np.random.default_rng(7)
    speechlike = rng.normal(0, 3000, 8000 * 5) * np.sin(np.arange(8000 * 5) / 800) ** 2
    return Audio.from_pcm(np.clip(speechlike, -32768, 32767).astype(np.int16))


def agreed(port: int) -> Negotiated:
    return Negotiated("PCMU", 0, 101, "sendrecv", HOST, port)


def core_available(seconds: float = 0.3) -> float:
    """Share of one core this process gets right now (a spin loop's CPU time / wall time):
    on a shared machine the jitter figures only mean something next to this."""
    cpu, wall = time.process_time(), time.perf_counter()
    while time.perf_counter() - wall < seconds:
        pass
    return (time.process_time() - cpu) / (time.perf_counter() - wall)


async def streams(n: int, seconds: float, ports: PortRange) -> dict[str, float]:
    # the sink is a socket nobody reads: the kernel drops what overflows, at no CPU cost
    # to this process beyond the send itself (the cost being measured)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind((HOST, 0))
    sink_port = sink.getsockname()[1]
    available = core_available()
    audio = prompt_audio()
    endpoints = [await RtpEndpoint.open(HOST, ports) for _ in range(n)]
    loop = asyncio.get_running_loop()
    for endpoint in endpoints:
        endpoint.configure(agreed(sink_port))
        endpoint.stats.lateness = []
        loop.call_later(random.random() * 0.02, endpoint.play, Ringback(audio=audio))
    await asyncio.sleep(1.0)  # warm-up: opening sockets and first frames are not measured
    for endpoint in endpoints:
        endpoint.stats.lateness = []
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    lateness = np.concatenate([np.asarray(e.stats.lateness) for e in endpoints]) * 1000
    sent = sum(e.stats.sent_packets for e in endpoints)
    skipped = sum(e.stats.skipped_frames for e in endpoints)
    for endpoint in endpoints:
        endpoint.close()
    sink.close()
    return {
        "streams": n, "p50_ms": float(np.percentile(lateness, 50)),
        "p99_ms": float(np.percentile(lateness, 99)),
        "p999_ms": float(np.percentile(lateness, 99.9)), "max_ms": float(lateness.max()),
        "cpu": cpu / wall, "pps": len(lateness) / seconds, "skipped": skipped,
        "sent": sent, "core": available,
    }


def _parties(conn: Connection, ports_a: list[int], ports_b: list[int], seconds: float) -> None:
    """The callers and agents of the relay bench: 2M paced senders in their own process."""
    async def main() -> None:
        audio = prompt_audio()
        pool = PortRange(30000, 39999)
        parties = []
        for port in ports_a + ports_b:
            endpoint = await RtpEndpoint.open(HOST, pool)
            endpoint.configure(agreed(port))
            asyncio.get_running_loop().call_later(
                random.random() * 0.02, endpoint.play, Ringback(audio=audio))
            parties.append(endpoint)
        conn.send([e.local[1] for e in parties])
        await asyncio.sleep(seconds)
        conn.send(sum(e.stats.received_packets for e in parties))
        for endpoint in parties:
            endpoint.close()

    run(main())


async def relays(m: int, seconds: float, ports: PortRange) -> dict[str, float]:
    legs_a = [await RtpEndpoint.open(HOST, ports) for _ in range(m)]
    legs_b = [await RtpEndpoint.open(HOST, ports) for _ in range(m)]
    parent, child = mp.Pipe()
    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=_parties, daemon=True, args=(
        child, [e.local[1] for e in legs_a], [e.local[1] for e in legs_b], seconds + 2.0))
    proc.start()
    party_ports = parent.recv()
    for leg, port in zip(legs_a + legs_b, party_ports, strict=True):
        leg.configure(agreed(port))
    bridges = [Relay(a, b) for a, b in zip(legs_a, legs_b, strict=True)]
    await asyncio.sleep(1.0)
    forwarded = sum(e.stats.sent_packets for e in legs_a + legs_b)
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    forwarded = sum(e.stats.sent_packets for e in legs_a + legs_b) - forwarded
    received = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
    proc.join(10)
    for bridge in bridges:
        bridge.stop()
    for leg in legs_a + legs_b:
        leg.close()
    share = cpu / wall
    pps = forwarded / wall
    per_packet = share / pps if pps else float("inf")
    # a call relays 2 x 50 packets/s; figure from the CPU per packet actually forwarded, since
    # on a shared machine the child playing the parties may not reach the full rate
    return {"calls": m, "cpu": share, "pps": pps, "offered": pps / (100 * m),
            "us_per_packet": per_packet * 1e6, "calls_per_core": 1 / (per_packet * 100),
            "received": received}


@contextlib.contextmanager
def realtime(priority: int = 10) -> Iterator[bool]:
    """SCHED_FIFO for the block (yields False when the system does not allow it)."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError):
        yield False
        return
    try:
        yield True
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def stream_table(counts: list[int], seconds: float, ports: PortRange, title: str
                 ) -> dict[int, dict[str, float]]:
    print(title)
    print(f"{'streams':>8} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'max ms':>8} {'cpu':>6} "
          f"{'pkt/s':>8} {'skipped':>8} {'core avail':>10}")
    results = {}
    for n in counts:
        r = run(streams(n, seconds, ports))
        results[n] = r
        print(f"{n:>8} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['p999_ms']:>9.2f} "
              f"{r['max_ms']:>8.2f} {r['cpu']:>6.0%} {r['pps']:>8.0f} {r['skipped']:>8.0f} "
              f"{r['core']:>10.0%}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (< 1 minute)")
    args = parser.parse_args()
    tune_for_calls()  # as `legato serve` does: no multi-ms collector pauses mid-stream
    seconds = 5.0 if args.quick else 20.0
    counts = [100, 500] if args.quick else [100, 250, 500, 1000]
    calls = [100] if args.quick else [100, 250]
    ports = PortRange(44000, 59999)

    results = stream_table(
        counts, seconds, ports,
        f"Prompt streams on one core ({seconds:.0f} s each, uvloop when installed)")
    rt_p99 = float("nan")
    with realtime() as allowed:
        if allowed:
            rt = stream_table([n for n in counts if n >= 500], seconds, ports,
                              "\nThe same under SCHED_FIFO 10 (not preempted by other load)")
            rt_p99 = rt[500]["p99_ms"]
        else:
            print("\n(SCHED_FIFO not permitted here: no real-time run)")
    print(f"\nRelayed bridged calls (media anchoring, {seconds:.0f} s each)")
    print(f"{'calls':>8} {'cpu':>6} {'fwd pkt/s':>10} {'of 100/call':>12} {'µs/pkt':>7} "
          f"{'calls/core':>11}")
    relay_results = []
    for m in calls:
        r = run(relays(m, seconds, ports))
        relay_results.append(r)
        print(f"{m:>8} {r['cpu']:>6.0%} {r['pps']:>10.0f} {r['offered']:>12.0%} "
              f"{r['us_per_packet']:>7.1f} {r['calls_per_core']:>11.0f}")
    at500 = results.get(500, results[max(results)])
    best = relay_results[-1]
    per_packet_us = at500["cpu"] / at500["pps"] * 1e6
    print(f"\nCPU per paced packet at 500 streams: {per_packet_us:.1f} µs "
          f"(=> {1e6 / per_packet_us / 50:.0f} streams per fully available core)")
    print(f"streams=500 jitter_p99_ms={at500['p99_ms']:.2f} jitter_p99_ms_rt={rt_p99:.2f} "
          f"core_available={at500['core']:.2f} "
          f"stream_cpu={at500['cpu']:.2f} streams_per_core={1e6 / per_packet_us / 50:.0f} "
          f"relay_calls_per_core={best['calls_per_core']:.0f}")


if __name__ == "__main__":
    main()
