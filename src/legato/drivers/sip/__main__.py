"""`python -m legato.drivers.sip`: the B2BUA on its own, without the store or the API.

For tests, benchmarks and a first try: answers the numbers given, dials through the trunk,
prints one JSON line per finished call with `--records -`, and its counters on exit.

    python -m legato.drivers.sip --listen 127.0.0.1:5070 --trunk sip:127.0.0.1:5080 \\
        --number +918047001000 --agent +919811000101

With media (`--media`, implied by `--prompts`, `--recordings`, `--rtp-ports` and
`--media-address`) flows may answer, play, gather and record, and flows that dial first
give the caller early media (docs/media.md); a flow naming a prompt file that is not in
`--prompts` is refused at start (exit 2).
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
from legato.media.call import MediaConfig, MediaServer
from legato.media.ports import PortRange
from legato.media.prompts import missing_prompts


class UsageError(ValueError):
    """A bad option; the message names it."""


def load_numbers(path: Path, media: MediaConfig | None = None) -> dict[str, NumberConfig]:
    """A YAML map of Legato numbers to their config (the scenario `config:` schema); flows
    that need media are refused without it, and with it, prompt files that are missing."""
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
            if media is None:
                check_supported(config)
                if config.record:
                    raise UsageError(f"--numbers: {path}: {raw}.record: recording needs media "
                                     "(--media or --recordings DIR)")
        except InvalidNumber as exc:
            raise UsageError(f"--numbers: {path}: {raw}: {exc}") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in (raw, *first["loc"]))
            raise UsageError(f"--numbers: {path}: {where}: {first['msg']}") from exc
        except UnsupportedFlow as exc:
            raise UsageError(f"--numbers: {path}: {raw}.{exc}") from exc
        missing = [] if media is None else missing_prompts(config, media.prompts_dir)
        if missing:
            raise UsageError("\n".join(f"--numbers: {path}: {raw}.{m}" for m in missing))
        out[number] = config
    return out


def media_config(args: argparse.Namespace, host: str) -> MediaConfig | None:
    """The media server's configuration, or None when media is off (signalling only)."""
    wanted = (args.media or args.prompts or args.recordings or args.rtp_ports
              or args.media_address)
    if not wanted:
        return None
    try:
        ports = PortRange.parse(args.rtp_ports or "10000-20000")
    except ValueError as exc:
        raise UsageError(f"--rtp-ports: {exc}") from exc
    prompts = Path(args.prompts) if args.prompts else None
    if prompts is not None and not prompts.is_dir():
        raise UsageError(f"--prompts: {prompts} is not a folder")
    return MediaConfig(
        bind=host, address=args.media_address, ports=ports, prompts_dir=prompts,
        cache_dir=Path(args.prompt_cache),
        record_dir=Path(args.recordings or ".legato/recordings"),
    )


def build(args: argparse.Namespace
          ) -> tuple[SipDriverConfig, dict[str, NumberConfig], MediaConfig | None]:
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
    media = media_config(args, config.listen[0])
    numbers = load_numbers(Path(args.numbers), media) if args.numbers else {}
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
    return config, numbers, media


async def serve(args: argparse.Namespace) -> dict[str, Any]:
    config, numbers, media = build(args)
    out: IO[str] | None = None
    if args.records == "-":
        out = sys.stdout
    elif args.records:
        out = open(args.records, "a", encoding="utf-8")  # noqa: SIM115 - closed below

    def done(record: CallRecord) -> None:
        if out is not None:
            out.write(json.dumps(record.to_dict(), default=str) + "\n")
            out.flush()

    driver = await SipDriver.open(config, number_lookup(numbers), on_incoming_done=done,
                                  media=None if media is None else MediaServer(media))
    collector = None
    if args.gc_tune:
        from legato.gc_tuning import collect_cycles, tune_for_server

        tune_for_server()
        collector = asyncio.create_task(collect_cycles())  # cycles on a timer instead
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    host, port = driver.local  # said once a signal stops it cleanly
    print(f"legato sip driver listening on {host}:{port}/{config.transport}", flush=True)
    await stop.wait()
    if collector is not None:
        collector.cancel()
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
    parser.add_argument("--media", action="store_true",
                        help="anchor media: answer, play, gather, record, early media")
    parser.add_argument("--prompts", help="folder of the WAV prompts flows name (media)")
    parser.add_argument("--prompt-cache", default=".legato/prompt-cache",
                        help="folder for converted and synthesised prompts (media)")
    parser.add_argument("--recordings", help="folder for recordings of numbers with `record` "
                        "(media; default .legato/recordings)")
    parser.add_argument("--rtp-ports", help="FIRST-LAST UDP ports for RTP (media; 10000-20000)")
    parser.add_argument("--media-address", help="address put in SDP (media; default: --listen)")
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
