"""`legato policy ...`: one policy at a time, validated, nothing stored lost on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from legato.cli.main import app

NUMBER = "+918047001000"
runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'legato.db'}"
    assert runner.invoke(app, ["accounts", "create", "acme", "--db", url]).exit_code == 0
    assert runner.invoke(app, ["numbers", "add", NUMBER, "--db", url]).exit_code == 0
    return url


def _policy(db: str, *args: str) -> dict[str, object]:
    result = runner.invoke(app, ["policy", *args, "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_each_policy_is_set_on_its_own_and_kept(db: str) -> None:
    _policy(db, "hours", NUMBER, "--timezone", "Asia/Kolkata", "--day", "mon=09:00-18:00",
            "--day", "fri=22:00-06:00")
    _policy(db, "holidays", NUMBER, "add", "2026-12-25", "2026-12-31..2027-01-01")
    _policy(db, "blacklist", NUMBER, "add", "+919811000009", "+9198110*")
    _policy(db, "lines", NUMBER, "5")
    _policy(db, "missed-call", NUMBER, "on", "--ring", "3")
    _policy(db, "permissions", NUMBER, "--country", "IN", "--type", "mobile")
    view = _policy(db, "dnd", NUMBER, "no-scrub")
    assert view["office_hours"] == {"timezone": "Asia/Kolkata",
                                    "days": {"mon": ["09:00-18:00"], "fri": ["22:00-06:00"]},
                                    "holidays": ["2026-12-25", "2026-12-31..2027-01-01"]}
    assert view["blacklist"] == ["+919811000009", "+9198110*"]
    assert (view["lines"], view["missed_call"], view["missed_call_ring"]) == (5, True, 3.0)
    assert (view["allowed_countries"], view["allowed_number_types"]) == (["IN"], ["mobile"])
    assert view["dnd_scrub"] is False
    view = _policy(db, "blacklist", NUMBER, "remove", "+9198110*")
    assert view["blacklist"] == ["+919811000009"]


def test_the_flow_is_validated_by_the_scenario_schema(db: str, tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text("- answer: {after: 1}\n- dial: {to: ['+919811000101'], strategy: parallel}\n")
    assert _policy(db, "flow", NUMBER, str(flow))["flow_steps"] == 2
    flow.write_text("- answer: {after: 1}\n- dial: {to: ['+919811000101'], ringtimeout: 5}\n")
    result = runner.invoke(app, ["policy", "flow", NUMBER, str(flow), "--db", db])
    assert result.exit_code == 2
    assert "config.flow.1.dial.ringtimeout: unknown key" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hours", NUMBER, "--timezone", "Asia/Bangalore", "--day", "mon=09:00-18:00"],
         "config.office_hours.timezone: 'Asia/Bangalore' is not an IANA timezone"),
        (["hours", NUMBER, "--timezone", "UTC", "--day", "mon=09:00-12:00,11:00-13:00"],
         "config.office_hours.days.mon"),
        (["blacklist", NUMBER, "add", "09811000008"], "config.blacklist.1"),
        (["lines", NUMBER, "many"], "config.lines"),
        (["permissions", NUMBER, "--country", "India"], "config.allowed_countries.0"),
        (["missed-call", NUMBER, "maybe"], "MODE: 'maybe' must be on or off"),
    ],
)
def test_bad_input_names_the_key_and_changes_nothing(db: str, args: list[str],
                                                     message: str) -> None:
    _policy(db, "blacklist", NUMBER, "add", "+919811000009")
    before = _policy(db, "show", NUMBER)
    result = runner.invoke(app, ["policy", *args, "--db", db])
    assert result.exit_code == 2
    assert message in result.output.replace("\n", " "), result.output
    assert _policy(db, "show", NUMBER) == before
