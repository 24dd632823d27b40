"""Standard Webhooks signatures, checked against the independent `standardwebhooks` package,
and `legato webhooks verify` on captured requests."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from typer.testing import CliRunner

from legato.cli.main import app
from legato.webhooks.signing import (
    InvalidSecret,
    VerificationError,
    new_secret,
    secret_key,
    sign_headers,
    verify,
)

BODY = (
    b'{"type":"call.completed","timestamp":"2026-11-25T10:00:00.000Z",'
    b'"data":{"id":"c"},"sequence":3}'
)


def test_our_signature_verifies_with_standardwebhooks() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(secret_key(secret)) == 32
    headers = sign_headers([secret_key(secret)], "msg_1", int(time.time()), BODY)
    assert Webhook(secret).verify(BODY, headers)["sequence"] == 3
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"3}", b"4}"), headers)


def test_standardwebhooks_signature_verifies_with_ours() -> None:
    secret = new_secret()
    now = int(time.time())
    sig = Webhook(secret).sign("msg_2", datetime.fromtimestamp(now, UTC), BODY.decode())
    headers = {"Webhook-Id": "msg_2", "Webhook-Timestamp": str(now), "Webhook-Signature": sig}
    assert verify([secret], headers, BODY) == "msg_2"


def test_rotation_overlap_two_signatures_each_verifies() -> None:
    old, new = new_secret(), new_secret()
    headers = sign_headers([secret_key(new), secret_key(old)], "msg_3", int(time.time()), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for s in (old, new):
        Webhook(s).verify(BODY, headers)
        verify([s], headers, BODY)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"webhook-timestamp": str(int(time.time()) - 3600)}, "s old, beyond the 300 s"),
        ({"webhook-timestamp": "yesterday"}, "not whole seconds"),
        ({"webhook-signature": "v2,abc"}, "no `v1,` signature"),
        ({"webhook-signature": "v1,AAAA"}, "no signature matches"),
    ],
)
def test_verify_names_the_broken_rule(change: dict[str, str], message: str) -> None:
    secret = new_secret()
    headers = sign_headers([secret_key(secret)], "msg_4", int(time.time()), BODY)
    headers.update(change)
    with pytest.raises(VerificationError, match=message.replace("`", ".")):
        verify([secret], headers, BODY)


def test_missing_headers_and_bad_secret() -> None:
    with pytest.raises(VerificationError, match="missing header"):
        verify([new_secret()], {"webhook-id": "x"}, BODY)
    with pytest.raises(InvalidSecret):
        secret_key("whsec_***")


runner = CliRunner()


def _capture(
    tmp_path: Path, secret: str, ts: int | None = None
) -> tuple[Path, Path, dict[str, str]]:
    headers = sign_headers([secret_key(secret)], "msg_5", ts or int(time.time()), BODY)
    body = tmp_path / "body.json"
    body.write_bytes(BODY)
    raw = tmp_path / "headers.txt"
    raw.write_text(
        "POST /hooks HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/json\r\n"
        + "".join(f"{k.title()}: {v}\r\n" for k, v in headers.items())
        + "\r\n"
        + BODY.decode()
    )
    return raw, body, headers


def test_cli_verify_headers_file(tmp_path: Path) -> None:
    secret = new_secret()
    raw, body, headers = _capture(tmp_path, secret)
    ok = runner.invoke(
        app, ["webhooks", "verify", "--secret", secret, "--headers", str(raw), "--body", str(body)]
    )
    assert ok.exit_code == 0, ok.output
    assert "valid: msg_5" in ok.output
    as_json = tmp_path / "headers.json"
    as_json.write_text(json.dumps(headers))
    ok = runner.invoke(
        app,
        ["webhooks", "verify", "--secret", secret, "--headers", str(as_json), "--body", str(body)],
    )
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(
        app,
        [
            "webhooks",
            "verify",
            "--secret",
            new_secret(),
            "--headers",
            str(raw),
            "--body",
            str(body),
        ],
    )
    assert bad.exit_code == 1
    assert "no signature matches" in bad.output


def test_cli_verify_flags_and_tolerance(tmp_path: Path) -> None:
    secret = new_secret()
    old = int(time.time()) - 7200
    _, body, headers = _capture(tmp_path, secret, old)
    args = [
        "webhooks",
        "verify",
        "--secret",
        secret,
        "--body",
        str(body),
        "--id",
        headers["webhook-id"],
        "--timestamp",
        headers["webhook-timestamp"],
        "--signature",
        headers["webhook-signature"],
    ]
    late = runner.invoke(app, args)
    assert late.exit_code == 1 and "beyond the 300 s tolerance" in late.output
    assert runner.invoke(app, [*args, "--tolerance", "-1"]).exit_code == 0
    assert runner.invoke(app, [*args, "--tolerance", "10000"]).exit_code == 0
    bad_secret = runner.invoke(app, [*args[:2], "--secret", "nope!", *args[4:]])
    assert bad_secret.exit_code == 2 and "--secret" in bad_secret.output
