"""LEGATO_WEBHOOK_* settings: bad values are refused naming the variable and the rule,
and `legato serve` refuses them before it starts (no traceback, nothing stored)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from legato.cli.main import app
from legato.webhooks.settings import SettingsError, WebhookSettings


@pytest.mark.parametrize(("env", "message"), [
    ({"LEGATO_WEBHOOK_DISABLE_AFTER_SECONDS": "-1"},
     "LEGATO_WEBHOOK_DISABLE_AFTER_SECONDS: must be >= 0, not -1.0"),
    ({"LEGATO_WEBHOOK_DISABLE_AFTER_SECONDS": "soon"},
     "LEGATO_WEBHOOK_DISABLE_AFTER_SECONDS: 'soon' is not a number"),
    ({"LEGATO_WEBHOOK_MAX_ATTEMPTS": "0"}, "LEGATO_WEBHOOK_MAX_ATTEMPTS: must be > 0, not 0"),
    ({"LEGATO_WEBHOOK_MAX_ATTEMPTS": "2.5"},
     "LEGATO_WEBHOOK_MAX_ATTEMPTS: '2.5' is not an integer"),
    ({"LEGATO_WEBHOOK_TIMEOUT": "90"}, "LEGATO_WEBHOOK_LEASE (60.0) must exceed"),
])
def test_bad_values_name_the_variable_and_the_rule(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as exc:
        WebhookSettings.from_env(env)
    assert message in str(exc.value)


def test_zero_means_never_or_at_once_where_it_can() -> None:
    settings = WebhookSettings.from_env(
        {"LEGATO_WEBHOOK_DISABLE_AFTER": "0", "LEGATO_WEBHOOK_DISABLE_AFTER_SECONDS": "0"})
    assert (settings.disable_after, settings.disable_after_seconds) == (0, 0.0)
    assert WebhookSettings.from_env({}) == WebhookSettings()  # unset: the defaults


def test_serve_refuses_a_bad_value_before_starting(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["serve", "--db", f"sqlite:///{tmp_path / 'legato.db'}", "--port", "1"],
        env={"LEGATO_WEBHOOK_DISABLE_AFTER_SECONDS": "-5"})
    assert result.exit_code == 2, result.output
    assert "LEGATO_WEBHOOK_DISABLE_AFTER_SECONDS: must be >= 0, not -5.0" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "legato.db").exists()  # refused before the store was opened
