"""Generate the reference docs that mirror code tables: the status catalogue and the cause map.

The tables in ``legato.core`` are the source of truth; ``docs/statuses.md`` and
``docs/causes.md`` are rendered from them so the two can never drift apart unnoticed.

    python -m legato.docsgen            # rewrite the files under ./docs
    python -m legato.docsgen --check    # exit 1 if any file is stale (for CI and tests)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from legato.core.catalogue import CATALOGUE, Service
from legato.core.causes import (
    CAUSE_OUTCOMES,
    NON_DECISIVE_CAUSES,
    Q850_CAUSES,
    SIP_OUTCOMES,
    SIP_RESPONSES,
    classify_cause,
    derivation_of,
    q850_name,
    sip_outcome,
)

COMMAND = "python -m legato.docsgen"


def _header(title: str, source: str) -> list[str]:
    return [
        f"# {title}",
        "",
        f"_Generated from `{source}` by `{COMMAND}` (run from the repository root). "
        "Do not edit by hand: change the table in the code and regenerate._",
        "",
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def render_statuses() -> str:
    """docs/statuses.md: the 21 codes of the catalogue (DESIGN section 1)."""
    service_order = list(Service)
    rows = [
        (
            f"`{row.code.value}`",
            ", ".join(s.value for s in service_order if s in row.services),
            "yes" if row.pre_dial else "",
            row.description,
        )
        for row in CATALOGUE
    ]
    lines = _header("Call statuses", "legato.core.catalogue.CATALOGUE")
    lines += [
        f"Every call ends with exactly one of these {len(CATALOGUE)} codes. A *pre-dial* "
        "status is decided by a policy (admission) before anything is dialled; the others "
        "by the resolver from the legs' outcomes. `legato statuses [--json]` prints the "
        "same table.",
        "",
        *_table(("code", "services", "pre-dial", "description"), rows),
    ]
    return "\n".join(lines) + "\n"


def _sip_rows() -> Iterable[tuple[str, ...]]:
    for code, phrase in SIP_RESPONSES.items():
        derived = derivation_of(code)
        if derived is None:
            yield str(code), phrase, "— (provisional, not final)", "", "", ""
            continue
        cause, source = derived
        basis = "DESIGN §3" if code in SIP_OUTCOMES else f"class default ({code // 100}xx)"
        yield (
            str(code), phrase, sip_outcome(code).value, basis,
            f"{cause} {q850_name(cause) or ''}".strip(), source.value,
        )


def _cause_rows() -> Iterable[tuple[str, str, str, str]]:
    for cause in range(1, 128):
        name = Q850_CAUSES.get(cause)
        if cause in CAUSE_OUTCOMES:
            basis = "named in DESIGN §3"
        elif name is None:
            basis = "not defined by Q.850"
        else:
            basis = "not named in DESIGN §3"
        if cause in NON_DECISIVE_CAUSES:
            basis += " (alone; in a failure response the SIP code decides)"
        yield str(cause), name or "(unassigned)", classify_cause(cause).value, basis


def render_causes() -> str:
    """docs/causes.md: every SIP response code and every Q.850 cause with its outcome."""
    lines = _header("Cause map: SIP responses and Q.850 causes", "legato.core.causes")
    lines += [
        "Each leg attempt ends with one outcome (DESIGN §3). This is how the signalling "
        "maps to it.",
        "",
        "## Rules",
        "",
        "- A final response with `Reason: Q.850;cause=N` (RFC 3326): the cause decides the "
        "outcome (second table) and the SIP code is kept alongside. Exceptions: a 2xx is "
        "always ANSWERED; a 487 is always CANCELLED (it answers our own CANCEL); causes "
        + ", ".join(str(c) for c in sorted(NON_DECISIVE_CAUSES))
        + " say nothing about a failure, so the SIP code decides for them.",
        "- Without a Reason header the SIP code decides (first table) and `q850_cause` is "
        "derived from it (`q850_derived: true`): by RFC 3398 section 8.2.6.1 where it has a "
        "row, else by Legato's choice (see `docs/decisions.md`).",
        "- A code that is not in the IANA registry is read as the x00 code of its class "
        "(RFC 3261 section 8.1.3.2): a 499 behaves as a 400.",
        "- No final response at all (transaction timeout, transport error, unknown "
        "destination): FAILED, with no SIP code and no cause. Our own ring timer: NOANSWER "
        "if a provisional response came back, else FAILED; the engine decides those.",
        "- 3xx: Legato does not follow redirects, so a redirect ends the attempt FAILED.",
        "",
        f"## SIP response codes (IANA registry, {len(SIP_RESPONSES)} codes)",
        "",
        *_table(
            ("code", "reason phrase", "outcome", "outcome by", "derived Q.850 cause",
             "derived by"),
            _sip_rows(),
        ),
        "",
        "## Q.850 cause values 1–127",
        "",
        *_table(("cause", "name", "outcome", "why"), _cause_rows()),
    ]
    return "\n".join(lines) + "\n"


def render_scenario_schema() -> str:
    """docs/scenario.schema.json: the scenario format v1 as JSON Schema, from the model
    `legato simulate` validates with (editors can use it for completion and checks)."""
    import json

    from legato.scenario.model import Scenario

    schema = Scenario.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Legato scenario, format v1"
    schema["description"] = f"Generated from legato.scenario.model.Scenario by `{COMMAND}`."
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


#: Each generated file, relative to the docs directory, and what renders it.
DOCS: dict[str, Callable[[], str]] = {
    "statuses.md": render_statuses,
    "causes.md": render_causes,
    "scenario.schema.json": render_scenario_schema,
}


def stale(docs_dir: Path) -> list[Path]:
    """The generated files under ``docs_dir`` whose content differs from a fresh render."""
    out = []
    for name, render in DOCS.items():
        path = docs_dir / name
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != render():
            out.append(path)
    return out


def write(docs_dir: Path) -> list[Path]:
    """Render every file; write the ones that changed and return them."""
    docs_dir.mkdir(parents=True, exist_ok=True)
    changed = stale(docs_dir)
    for path in changed:
        path.write_text(DOCS[path.name](), encoding="utf-8")
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=COMMAND, description="Generate docs/statuses.md and docs/causes.md."
    )
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if a generated file is stale")
    parser.add_argument("--docs-dir", type=Path, default=Path("docs"),
                        help="where the generated files live (default: ./docs)")
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale(args.docs_dir)
        for path in outdated:
            print(f"{path}: stale; run `{COMMAND}` and commit the result", file=sys.stderr)
        return 1 if outdated else 0
    for path in write(args.docs_dir):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
