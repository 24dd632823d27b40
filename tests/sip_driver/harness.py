"""Runs one call through the sip driver against real SIPp peers, and the same behaviour
through `legato simulate`, so a test can compare the two records.

A case names the phones behind the trunk: each number gets its own SIPp UAS (its own
port, a trunk serving just that number), running one of the scenarios in `scenarios/`.
An incoming case also names the caller: a SIPp UAC dialling the Legato number. Every SIPp
run is bounded (`-m`, `-timeout`) and on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from legato.cli.main import app
from legato.core.config import NumberConfig
from legato.core.engine import create_call
from legato.core.record import CallRecord
from legato.drivers.sip import SipDriver, SipDriverConfig, Trunk, number_lookup
from legato.scenario.loader import parse_scenario
from legato.scenario.run import scenario_spec
from legato.sip.transaction import TimerConfig
from legato.testing import free_port

SCENARIOS = Path(__file__).parent / "scenarios"
#: Short RFC 3261 timers: "no response at all" (timer B = 64*T1) ends in 3.2 s.
TIMERS = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


@dataclass(frozen=True)
class Peer:
    """A SIPp scenario with its `-key` and `-set` values."""

    scenario: str
    keys: dict[str, str] = field(default_factory=dict)
    sets: dict[str, int] = field(default_factory=dict)
    calls: int = 1
    must_pass: bool = True  # SIPp must end with 0 failed calls
    #: {{name}} placeholders written into a copy of the scenario (SIPp validates status
    #: codes when it loads a scenario, so a `-key` cannot carry one).
    fill: dict[str, str] = field(default_factory=dict)
    extra: tuple[str, ...] = ()  # more SIPp options (e.g. -lost, -r)


def reject(status: int, phrase: str, cause: int | None = None) -> Peer:
    fill = {"status": str(status), "phrase": phrase}
    if cause is None:
        return Peer("uas_reject.xml", fill=fill)
    return Peer("uas_reject_reason.xml", {"cause": str(cause)}, fill=fill)


def answer(ring_ms: int = 100, talk_ms: int | None = None) -> Peer:
    """Rings, answers; hangs up after `talk_ms`, or waits for Legato's BYE."""
    if talk_ms is None:
        return Peer("uas_ring_answer.xml", sets={"ring_ms": ring_ms})
    return Peer("uas_ring_answer_bye.xml", sets={"ring_ms": ring_ms, "talk_ms": talk_ms})


RING = Peer("uas_ring_cancel.xml")  # rings until cancelled
SILENT = Peer("uas_silent.xml", must_pass=False)  # never answers anything


@dataclass(frozen=True)
class Case:
    name: str
    scenario: dict[str, Any]  # a scenario document (DESIGN section 6) for the sim
    peers: dict[str, Peer]  # number -> the SIPp phone answering it behind the trunk
    status: str
    disconnected_by: str
    caller: Peer | None = None  # incoming: the SIPp caller


def _bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


async def start_sipp(peer: Peer, cwd: Path, port: int, *target: str) -> asyncio.subprocess.Process:
    scenario = SCENARIOS / peer.scenario
    if peer.fill:
        text = scenario.read_text(encoding="utf-8")
        for name, value in peer.fill.items():
            text = text.replace("{{" + name + "}}", value)
        scenario = cwd / f"{port}_{peer.scenario}"
        scenario.write_text(text, encoding="utf-8")
    args = ["-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port),
            "-m", str(peer.calls), "-nostdin", "-timeout", "20", "-timeout_error", "-trace_err"]
    if os.environ.get("LEGATO_SIPP_TRACE"):
        args.append("-trace_msg")  # debugging: SIPp writes every message to *_messages.log
    for key, value in peer.keys.items():
        args += ["-key", key, value]
    for name, ms in peer.sets.items():
        args += ["-set", name, str(ms)]
    args += peer.extra
    proc = await asyncio.create_subprocess_exec(
        "sipp", *args, *target, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    for _ in range(100):  # until SIPp holds its port
        if _bound(port) or proc.returncode is not None:
            break
        await asyncio.sleep(0.02)
    return proc


async def finish_sipp(
    proc: asyncio.subprocess.Process, cwd: Path, timeout: float = 25
) -> tuple[int, str]:
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
    errors = "".join(p.read_text(errors="replace")[-2000:] for p in cwd.glob("*_errors.log"))
    return proc.returncode or 0, out.decode(errors="replace")[-1500:] + errors


def _number_config(case: Case) -> NumberConfig:
    return NumberConfig.model_validate(case.scenario.get("config") or {})


async def run_sip(
    case: Case, cwd: Path, during: Callable[[SipDriver], Awaitable[None]] | None = None
) -> tuple[CallRecord, list[tuple[str, int, str]]]:
    """The call on the sip driver; returns its record and each SIPp's (name, rc, output).
    `during(driver)` runs while the call is in progress."""
    ports = {number: free_port() for number in case.peers}
    peers = [await start_sipp(p, cwd, ports[n]) for n, p in case.peers.items()]
    trunks = tuple(Trunk("127.0.0.1", port, numbers=(number,)) for number, port in ports.items())
    number = case.scenario["number"]
    done: asyncio.Future[CallRecord] = asyncio.get_running_loop().create_future()

    def finished(record: CallRecord) -> None:
        if not done.done():
            done.set_result(record)

    driver = await SipDriver.open(
        SipDriverConfig(listen=("127.0.0.1", 0), trunks=trunks, timers=TIMERS),
        number_lookup({number: _number_config(case)}),
        on_incoming_done=finished,
    )
    caller = None
    try:
        if case.caller is not None:
            host, port = driver.local
            caller_number = case.scenario["from"].lstrip("+")
            caller_peer = Peer(case.caller.scenario, {**case.caller.keys, "caller": caller_number},
                               case.caller.sets)
            caller = await start_sipp(caller_peer, cwd, free_port(), "-s", number.lstrip("+"),
                                      f"{host}:{port}")
        else:
            spec = scenario_spec(parse_scenario(yaml.safe_dump(case.scenario), case.name))
            driver.place(create_call(spec, driver.now()), on_done=finished)
        if during is not None:
            await during(driver)
        record = await asyncio.wait_for(done, 20)
    finally:
        await asyncio.sleep(0.3)  # the last ACK/200 reach the peers
        await driver.close()
    results = []
    for (name, peer), proc in zip(case.peers.items(), peers, strict=True):
        rc, out = await finish_sipp(proc, cwd)
        results.append((f"phone {name} ({peer.scenario})", rc if peer.must_pass else 0, out))
    if caller is not None:
        rc, out = await finish_sipp(caller, cwd)
        results.append((f"caller ({case.caller.scenario})", rc, out))  # type: ignore[union-attr]
    return record, results


def run_sim(case: Case, tmp: Path) -> dict[str, Any]:
    """The same behaviour through `legato simulate --json` (the sim driver)."""
    path = tmp / "scenario.yaml"
    path.write_text(yaml.safe_dump(case.scenario), encoding="utf-8")
    result = CliRunner().invoke(app, ["simulate", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    return data[0] if isinstance(data, list) else data


def facts(record: dict[str, Any]) -> dict[str, Any]:
    """What must be equal between the drivers (times differ: real vs virtual)."""
    return {
        "status": record["status"],
        "disconnected_by": record["disconnected_by"],
        "connected_to": record["connected_to"],
        "picked_by": record["picked_by"],
        "legs": [
            (leg["leg"], leg["attempt"], leg["role"], leg["number"], leg["outcome"],
             leg["sip_code"], leg["q850_cause"], leg["ended_by"])
            for leg in record["legs"]
        ],
    }


def now_iso() -> str:
    return datetime.now(UTC).isoformat()
