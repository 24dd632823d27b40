"""Bridged calls per second through Legato's SIP driver and through sippy's B2BUA.

SIPp UAC (callers) -> server (B2BUA) -> SIPp UAS (an agent answering 180 + 200), on
127.0.0.1. Legato runs `python -m legato.drivers.sip` (an incoming direct dial to one
agent: admission, the engine, a call record per call); sippy runs `b2bua_simple` with one
UDP worker (its default three reorder 180/200). The call rate steps up until calls fail.

A step is clean when no call failed and SIPp managed to place them at >= 95% of the
target rate (it falls behind when the server answers slowly). Per step: calls
attempted/failed (SIPp's counters plus our probe), INVITE->200 p50/p99 from
our own probe (time.perf_counter around a real call placed through the server, 20 a
second, because SIPp reports whole milliseconds), server CPU per call (/proc utime+stime),
and memory per concurrent call (RSS growth over the idle process / calls in progress).

    python bench/sip_b2bua.py --quick        # < 1 minute
    python bench/sip_b2bua.py                # the full ladder, ~10 s a step
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import re
import shutil
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from legato.testing import free_port

HOST = "127.0.0.1"
NUMBER = "918047001000"
AGENT = "+919811000101"
TICK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

UAS_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="bench agent">
  <recv request="INVITE" />
  <send><![CDATA[

SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=udp>
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[

SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=udp>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=agent 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000

]]></send>
  <recv request="ACK" />
  <recv request="BYE" />
  <send><![CDATA[

SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
</scenario>
"""

SIPPY = (
    "import sys, sippy.Udp_server as U; U.Udp_server_opts.nworkers = 1; "
    "from sippy.b2bua_simple import main_func; "
    "sys.argv = ['b2bua_simple', '-f', '-l', sys.argv[1], '-p', sys.argv[2], '-n', sys.argv[3]]; "
    "main_func()"
)


def bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return True
        return False


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kb(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB


# ----------------------------------------------------------------------- the probe
class Probe(asyncio.DatagramProtocol):
    """Places real calls through the server and times INVITE -> 200 with perf_counter."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.sent: dict[str, float] = {}
        self.latencies: list[float] = []
        self.failed = 0
        self.n = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.port = transport.get_extra_info("sockname")[1]

    def invite(self) -> None:
        assert self.transport is not None
        self.n += 1
        call_id = f"probe-{self.n}-{os.getpid()}"
        sdp = (f"v=0\r\no=probe 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
               "m=audio 7000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
        host, port = self.server
        msg = (f"INVITE sip:{NUMBER}@{host}:{port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {HOST}:{self.port};branch=z9hG4bK{call_id};rport\r\n"
               f"From: <sip:919811000001@{HOST}:{self.port}>;tag={call_id}\r\n"
               f"To: <sip:{NUMBER}@{host}:{port}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
               f"Contact: <sip:probe@{HOST}:{self.port}>\r\nMax-Forwards: 70\r\n"
               f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}")
        self.sent[call_id] = time.perf_counter()
        self.transport.sendto(msg.encode(), self.server)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        now = time.perf_counter()
        text = data.decode(errors="replace")
        head = text.split("\r\n", 1)[0]
        call_id = _header(text, "Call-ID")
        if not head.startswith("SIP/2.0 ") or call_id not in self.sent:
            return
        status = int(head.split()[1])
        cseq = _header(text, "CSeq")
        if not cseq.endswith("INVITE") or status < 200:
            return
        started = self.sent.pop(call_id)
        to = _header(text, "To")
        if status >= 300:
            self.failed += 1
            first = f"ACK sip:{NUMBER}@{addr[0]}:{addr[1]} SIP/2.0"
            self._send(first, text, to, "1 ACK", same_via=True)
            return
        self.latencies.append(now - started)
        contact = re.search(r"<(sip:[^>]+)>", _header(text, "Contact") or "")
        target = contact.group(1) if contact else f"sip:{addr[0]}:{addr[1]}"
        self._send(f"ACK {target} SIP/2.0", text, to, "1 ACK")
        self._send(f"BYE {target} SIP/2.0", text, to, "2 BYE")

    def _send(self, first: str, response: str, to: str, cseq: str, same_via: bool = False) -> None:
        assert self.transport is not None
        via = _header(response, "Via") if same_via else (
            f"SIP/2.0/UDP {HOST}:{self.port};branch=z9hG4bK{time.perf_counter_ns()};rport")
        msg = (f"{first}\r\nVia: {via}\r\nFrom: {_header(response, 'From')}\r\nTo: {to}\r\n"
               f"Call-ID: {_header(response, 'Call-ID')}\r\nCSeq: {cseq}\r\n"
               "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        self.transport.sendto(msg.encode(), self.server)


def _header(text: str, name: str) -> str:
    match = re.search(rf"^{name}:\s*(.*?)\r?$", text, re.MULTILINE | re.IGNORECASE)
    return match.group(1).strip() if match else ""


# ----------------------------------------------------------------------- one step
@dataclass
class Step:
    rate: int
    calls: int = 0
    ok: int = 0
    failed: int = 0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    cpu_ms_per_call: float = float("nan")
    kb_per_call: float = float("nan")
    cpu_pct: float = 0.0
    achieved: float = 0.0  # calls/s SIPp really placed (it falls behind when we do)
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return (self.failed == 0 and self.ok == self.calls and self.calls > 0
                and self.achieved >= 0.95 * self.rate)


def sipp_counts(output: str) -> tuple[int, int]:
    def last(label: str) -> int:
        found = re.findall(rf"{label}\s*\|\s*\d+\s*\|\s*(\d+)", output)
        return int(found[-1]) if found else 0

    return last("Successful call"), last("Failed call")


async def run_step(server: tuple[str, int], pid: int, rate: int, seconds: float, hold_ms: int,
                   idle_kb: int, workdir: Path) -> Step:
    step = Step(rate, calls=int(rate * seconds))
    loop = asyncio.get_running_loop()
    transport, probe = await loop.create_datagram_endpoint(
        lambda: Probe(server), local_addr=(HOST, 0))
    cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        "sipp", "-sn", "uac", "-s", NUMBER, f"{server[0]}:{server[1]}", "-i", HOST,
        "-p", str(free_port(HOST)), "-r", str(rate), "-m", str(step.calls), "-d", str(hold_ms),
        "-buff_size", "4194304", "-nostdin", "-timeout", str(int(seconds + 30)),
        "-recv_timeout", "10000", "-max_socket", "50000",
        cwd=workdir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    peak = idle_kb
    probes = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline and proc.returncode is None:
        probe.invite()
        probes += 1
        peak = max(peak, rss_kb(pid))
        await asyncio.sleep(0.05)
    out, _ = await proc.communicate()
    elapsed = time.perf_counter() - wall0 - hold_ms / 1000
    step.achieved = step.calls / max(elapsed, 1e-9)
    await asyncio.sleep(0.3)
    cpu1, wall1 = cpu_seconds(pid), time.perf_counter()
    transport.close()
    ok, failed = sipp_counts(out.decode(errors="replace"))
    lost = len(probe.sent)  # probes without any final response
    step.ok, step.failed = ok, failed + probe.failed + lost
    if probe.latencies:
        lat = sorted(probe.latencies)
        step.p50_ms = statistics.median(lat) * 1000
        step.p99_ms = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    done = ok + len(probe.latencies)
    step.cpu_pct = 100 * (cpu1 - cpu0) / (wall1 - wall0)
    if done:
        step.cpu_ms_per_call = 1000 * (cpu1 - cpu0) / done
    concurrent = min(rate * hold_ms / 1000, step.calls)  # calls in progress at the peak
    if concurrent:
        step.kb_per_call = max(0, peak - idle_kb) / concurrent
    if proc.returncode not in (0, 1):
        step.notes.append(f"sipp exit {proc.returncode}")
    return step


async def bench_server(name: str, rates: list[int], seconds: float, hold_ms: int,
                       workdir: Path) -> list[Step]:
    uas_port, port = free_port(HOST), free_port(HOST)
    uas_xml = workdir / "uas.xml"
    uas_xml.write_text(UAS_XML)
    uas = await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(uas_xml), "-i", HOST, "-p", str(uas_port), "-buff_size", "4194304",
        "-nostdin", "-max_socket", "50000", cwd=workdir,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    src = str(Path(__file__).resolve().parents[1] / "src")  # this checkout's Legato
    env = dict(os.environ, SIPLOG_BEND="none", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])))
    if name == "legato":
        cmd = [sys.executable, "-m", "legato.drivers.sip", "--listen", f"{HOST}:{port}",
               "--trunk", f"sip:{HOST}:{uas_port}", "--number", f"+{NUMBER}", "--agent", AGENT,
               "--gc-tune"]
    else:
        cmd = [sys.executable, "-c", SIPPY, HOST, str(port), f"{HOST}:{uas_port}"]
    server = await asyncio.create_subprocess_exec(
        *cmd, cwd=workdir, env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    steps: list[Step] = []
    try:
        for _ in range(200):
            if bound(port) and bound(uas_port):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        idle_kb = rss_kb(server.pid)
        for rate in rates:
            step = await run_step(
                (HOST, port), server.pid, rate, seconds, hold_ms, idle_kb, workdir)
            steps.append(step)
            print(row(name, step), flush=True)
            if not step.clean:
                break
            await asyncio.sleep(1.0)  # let the previous step's calls end
    finally:
        for proc in (server, uas):
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 5)
                except TimeoutError:
                    proc.kill()
    return steps


HEADER = (f"{'server':8} {'calls/s':>8} {'placed/s':>8} {'calls':>7} {'failed':>7} "
          f"{'p50 ms':>8} {'p99 ms':>8} {'CPU %':>6} {'CPU ms/call':>11} {'KB/call':>8}")


def row(name: str, s: Step) -> str:
    return (f"{name:8} {s.rate:8d} {s.achieved:8.0f} {s.calls:7d} {s.failed:7d} "
            f"{s.p50_ms:8.2f} {s.p99_ms:8.2f} {s.cpu_pct:6.0f} "
            f"{s.cpu_ms_per_call:11.3f} {s.kb_per_call:8.1f}"
            + (f"  {'; '.join(s.notes)}" if s.notes else ""))


def best(steps: list[Step], p99_below_ms: float = float("inf")) -> Step | None:
    clean = [s for s in steps if s.clean and s.p99_ms < p99_below_ms]
    return max(clean, key=lambda s: s.rate) if clean else None


async def main_async(args: argparse.Namespace) -> int:
    if shutil.which("sipp") is None:
        print("sipp is not installed (apt-get install sip-tester)", file=sys.stderr)
        return 2
    servers = ["legato", "sippy"] if args.only is None else [args.only]
    if "sippy" in servers and importlib.util.find_spec("sippy") is None:
        print("sippy is not installed (pip install sippy): the peer is skipped", file=sys.stderr)
        servers.remove("sippy")
    results: dict[str, list[Step]] = {}
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory(prefix="sip_b2bua_") as tmp:
        for name in servers:
            rates = args.rates if name == "legato" else args.sippy_rates
            results[name] = await bench_server(name, rates, args.seconds, args.hold_ms, Path(tmp))
    print()
    print("max calls/s with 0 failed (p99 INVITE->200 at that rate, our probe):")
    heads = {}
    for name, steps in results.items():
        b = best(steps)
        heads[name] = b
        if b is None:
            print(f"  {name}: none of the steps was clean")
        else:
            print(f"  {name}: {b.rate} calls/s, p50 {b.p50_ms:.2f} ms, p99 {b.p99_ms:.2f} ms, "
                  f"{b.cpu_ms_per_call:.3f} ms CPU/call, {b.kb_per_call:.1f} KB/concurrent call")
    lg, sp = heads.get("legato"), heads.get("sippy")
    ratio = (lg.rate / sp.rate) if lg and sp else float("nan")
    # The goal in one figure: the highest clean rate whose p99 is under 20 ms.
    fast = best(results.get("legato", []), 20.0)
    print(
        f"legato_cps={lg.rate if lg else 0} sippy_cps={sp.rate if sp else 0} "
        f"legato_p99_ms={lg.p99_ms if lg else float('nan'):.2f} "
        f"legato_p50_ms={lg.p50_ms if lg else float('nan'):.2f} "
        f"sippy_p99_ms={sp.p99_ms if sp else float('nan'):.2f} "
        f"legato_cpu_ms_per_call={lg.cpu_ms_per_call if lg else float('nan'):.3f} "
        f"legato_kb_per_call={lg.kb_per_call if lg else float('nan'):.1f} "
        f"ratio={ratio:.1f} legato_cps_p99_under_20ms={fast.rate if fast else 0}"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short steps (< 1 minute)")
    parser.add_argument("--only", choices=["legato", "sippy"])
    parser.add_argument("--seconds", type=float, default=None, help="seconds per step")
    parser.add_argument("--hold-ms", type=int, default=1000, help="talk time of each call")
    parser.add_argument("--rates", type=lambda v: [int(x) for x in v.split(",")], default=None)
    parser.add_argument("--sippy-rates", type=lambda v: [int(x) for x in v.split(",")],
                        default=None)
    args = parser.parse_args()
    if args.quick:
        args.seconds = args.seconds or 3.0
        args.rates = args.rates or [250, 500, 1000]
        args.sippy_rates = args.sippy_rates or [100, 150, 250]
    else:
        args.seconds = args.seconds or 10.0
        args.rates = args.rates or [200, 400, 600, 800, 1000, 1200, 1500, 2000]
        args.sippy_rates = args.sippy_rates or [50, 100, 125, 150, 175, 200, 250]
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
