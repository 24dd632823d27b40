"""`python -m legato.drivers.sip`: the B2BUA on its own, without the store or the API.

For tests, benchmarks and a first try: answers the numbers given, dials through the trunk,
prints one JSON line per finished call with `--records -`, and its counters on exit.

    python -m legato.drivers.sip --listen 127.0.0.1:5070 --trunk sip:127.0.0.1:5080 \\
        --number +918047001000 --agent +919811000101
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import IO, Any

import yaml
from pydantic import ValidationError

from legato.core.config import NumberConfig
from legato.core.policy.permissions import InvalidNumber, normalize_number
from legato.core.record import CallRecord
from legato.drivers.sip.config import SipConfigError, SipDriverConfig, Trunk, parse_listen
from legato.drivers.sip.driver import SipDriver, UnsupportedFlow, check_supported, number_lookup


class UsageError(ValueError):
    """A bad option; the message names it."""


def load_numbers(path: Path) -> dict[str, NumberConfig]:
    """A YAML map of Legato numbers to their config (the scenario `config:` schema)."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"--numbers: {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise UsageError(f"--numbers: {path}: expected a mapping of numbers to configs")
    out: dict[str, NumberConfig] = {}
    for raw, value in doc.items():
        try:
            number = normalize_number(str(raw))
            config = NumberConfig.model_validate(value or {})
            check_supported(config)
        except InvalidNumber as exc:
            raise UsageError(f"--numbers: {path}: {raw}: {exc}") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in (raw, *first["loc"]))
            raise UsageError(f"--numbers: {path}: {where}: {first['msg']}") from exc
        except UnsupportedFlow as exc:
            raise UsageError(f"--numbers: {path}: {raw}.{exc}") from exc
        out[number] = config
    return out


def build(args: argparse.Namespace) -> tuple[SipDriverConfig, dict[str, NumberConfig]]:
    trunks: tuple[Trunk, ...] = ()
    if args.trunk:
        trunks = (
            Trunk.parse(args.trunk, username=args.trunk_user, password=args.trunk_password),
        )
    phones: dict[str, str] = {}
    for item in args.phone:
        user, sep, password = item.partition(":")
        if not sep or not user or not password:
            raise UsageError(f"--phone: expected USER:PASSWORD, got {item!r}")
        phones[user] = password
    config = SipDriverConfig(
        listen=parse_listen(args.listen), transport=args.transport.upper(), trunks=trunks,
        phones=phones, phone_auth=args.phone_auth,
    )
    numbers = load_numbers(Path(args.numbers)) if args.numbers else {}
    if args.number:
        if not args.agent:
            raise UsageError("--number: give the agents to ring with --agent")
        flow = [{"dial": {"to": args.agent, "strategy": args.strategy}}]
        try:
            numbers[normalize_number(args.number)] = NumberConfig.model_validate(
                {"flow": flow, "ring_timeout": args.ring_timeout}
            )
        except InvalidNumber as exc:
            raise UsageError(f"--number: {exc}") from exc
        except ValidationError as exc:
            raise UsageError(f"--agent: {exc.errors()[0]['msg']}") from exc
    return config, numbers


async def serve(args: argparse.Namespace) -> dict[str, Any]:
    config, numbers = build(args)
    out: IO[str] | None = None
    if args.records == "-":
        out = sys.stdout
    elif args.records:
        out = open(args.records, "a", encoding="utf-8")  # noqa: SIM115 - closed below

    def done(record: CallRecord) -> None:
        if out is not None:
            out.write(json.dumps(record.to_dict(), default=str) + "\n")
            out.flush()

    driver = await SipDriver.open(config, number_lookup(numbers), on_incoming_done=done)
    if args.gc_tune:
        from legato.gc_tuning import tune_for_calls

        tune_for_calls()
    host, port = driver.local
    print(f"legato sip driver listening on {host}:{port}/{config.transport}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    stats = driver.stats
    result = {
        "calls": stats.calls, "completed": stats.completed, "active": driver.active_calls,
        "refused": dict(stats.refused), "bad_messages": stats.bad_messages,
    }
    await driver.close()
    if out is not None and out is not sys.stdout:
        out.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m legato.drivers.sip", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", default="127.0.0.1:5060", help="HOST:PORT to listen on")
    parser.add_argument("--transport", default="udp", choices=["udp", "tcp"])
    parser.add_argument("--trunk", help="sip:HOST:PORT of the carrier's proxy")
    parser.add_argument("--trunk-user")
    parser.add_argument("--trunk-password")
    parser.add_argument("--numbers", help="YAML map of Legato numbers to their config")
    parser.add_argument("--number", help="one Legato number whose flow dials --agent")
    parser.add_argument("--agent", action="append", default=[], help="agent number (repeat)")
    parser.add_argument("--strategy", default="sequential", choices=["sequential", "parallel"])
    parser.add_argument("--ring-timeout", type=float, default=30.0)
    parser.add_argument("--phone", action="append", default=[],
                        help="USER:PASSWORD of a SIP phone allowed to register (repeat)")
    parser.add_argument("--phone-auth", default="SHA-256", choices=["SHA-256", "MD5"],
                        help="digest algorithm the registrar asks phones for")
    parser.add_argument("--records", help="write finished call records as JSON lines ('-')")
    parser.add_argument("--gc-tune", action="store_true", help="freeze start-up objects")
    args = parser.parse_args(argv)
    from legato.sip.transport import run

    try:
        result = run(serve(args))
    except (UsageError, SipConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
