"""`legato statuses`: the catalogue as a table and as JSON, read from the one table."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from legato.cli.main import app
from legato.core.catalogue import CATALOGUE

runner = CliRunner()


def test_json_lists_the_21_codes_with_their_services() -> None:
    result = runner.invoke(app, ["statuses", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert [r["code"] for r in rows] == [row.code.value for row in CATALOGUE]
    assert len(rows) == 21
    by_code = {r["code"]: r for r in rows}
    assert by_code["BUSY_LEG2"]["services"] == ["click_to_call"]
    assert by_code["MAX-USE"]["pre_dial"] is True
    assert by_code["ANSWER"]["services"] == ["click_to_call", "incoming", "outbound"]


def test_table_shows_every_code() -> None:
    result = runner.invoke(app, ["statuses"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for row in CATALOGUE:
        assert row.code.value in result.output
