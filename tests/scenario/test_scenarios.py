"""Scenario files end to end: the examples, malformed files, and `legato simulate`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from legato.cli.main import app
from legato.core.catalogue import CATALOGUE
from legato.scenario import ScenarioError, check_expectations, load_scenario, run_scenario

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "scenarios").glob("*.yaml"))
BAD = sorted((ROOT / "tests" / "fixtures" / "bad_scenarios").glob("*.yaml"))
runner = CliRunner()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_meets_its_expectations(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.expect is not None, "every example states what it expects"
    record = run_scenario(scenario)
    assert check_expectations(scenario, record) == []
    assert record.status is not None and record.ended_at is not None


def test_examples_expect_every_status_of_the_catalogue() -> None:
    expected = {load_scenario(p).expect.status for p in EXAMPLES}  # type: ignore[union-attr]
    assert {row.code for row in CATALOGUE} <= expected


def _expected_error(path: Path) -> tuple[str, list[str]]:
    match = re.search(r"^# expect-error: (\S+) (.+)$", path.read_text(), re.M)
    assert match, f"{path.name} has no '# expect-error: <key path> <rule words>' line"
    return match.group(1), match.group(2).lower().split()


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_malformed_scenario_names_the_key_and_the_rule(path: Path) -> None:
    key, words = _expected_error(path)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    problems = caught.value.problems
    assert any(p.path == key or p.path.startswith(key + ".") for p in problems), \
        [p.path for p in problems]
    text = " ".join(p.rule for p in problems).lower()
    assert all(w in text for w in words), (words, text)
    assert str(path) in str(caught.value)


def test_simulate_check_passes_on_the_examples() -> None:
    result = runner.invoke(app, ["simulate", str(ROOT / "examples" / "scenarios"), "--check"])
    assert result.exit_code == 0, result.output
    assert f"{len(EXAMPLES)} passed, 0 failed" in result.output


def test_a_wrong_expectation_exits_1_with_a_diff(tmp_path: Path) -> None:
    scenario = tmp_path / "wrong.yaml"
    scenario.write_text(_BUSY.replace("status: BUSY_LEG2", "status: ANSWER"))
    result = runner.invoke(app, ["simulate", str(scenario), "--check"])
    assert result.exit_code == 1
    assert re.search(r"mismatch: .*wrong.yaml: status: expected ANSWER, got BUSY_LEG2",
                     result.output), result.output
    assert "- status: ANSWER" in result.output and "+ status: BUSY_LEG2" in result.output


def test_a_scenario_without_expect_is_reported_not_checked(tmp_path: Path) -> None:
    scenario = tmp_path / "explore.yaml"
    scenario.write_text(_BUSY.split("expect:")[0])
    result = runner.invoke(app, ["simulate", str(scenario), "--check"])
    assert result.exit_code == 0
    assert "not checked" in result.output and "0 passed, 0 failed, 1 not checked" in \
        result.output


_BUSY = """
name: customer busy
service: click_to_call
number: "+918047001000"
from: "+919811000001"
to: "+919811000002"
phones:
  "+919811000001": {answer_after: 2}
  "+919811000002": {busy: true}
expect: {status: BUSY_LEG2, disconnected_by: leg2}
"""


def test_a_malformed_file_exits_2_and_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(_BUSY.replace("{busy: true}", "{busy: true, no_answer: true}"))
    good = tmp_path / "good.yaml"
    good.write_text(_BUSY)
    result = runner.invoke(app, ["simulate", str(tmp_path), "--check"])
    assert result.exit_code == 2
    assert re.search(r"bad.yaml:9: phones\.\+919811000002: a phone has at most one of",
                     result.output.replace("\n", " ")), result.output
    assert "1 passed, 0 failed, 1 invalid" in result.output  # the good one still ran


def test_json_prints_one_call_record_per_scenario(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_BUSY)
    (tmp_path / "b.yaml").write_text(_BUSY.replace("customer busy", "again"))
    result = runner.invoke(app, ["simulate", str(tmp_path), "--json"])
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.output.splitlines()]
    assert len(records) == 2
    record = records[0]
    assert record["status"] == "BUSY_LEG2" and record["disconnected_by"] == "leg2"
    assert record["picked_by"] == "+919811000001" and record["connected_to"] is None
    assert [(leg["leg"], leg["outcome"], leg["sip_code"], leg["q850_cause"])
            for leg in record["legs"]] == [(1, "ANSWERED", 200, 16), (2, "BUSY", 486, 17)]
    assert record["duration_seconds"] == 2.0 and record["billable_seconds"] == 0
    assert record["events"][0] == {"t": 0.0, "type": "admission", "verdict": "admit"}


def test_a_missing_path_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
