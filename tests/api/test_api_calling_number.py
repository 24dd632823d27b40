"""The create route remembers a number (and its account's settings) for a moment: changes
made in this process apply to the next call at once, another process's within the bound."""

from __future__ import annotations

import time
from typing import Any

import pytest

from legato.store import numbers as numbers_store
from legato.store.models import Account, Number

from .api_testkit import NUMBER


def _refused_for_number(response: Any) -> bool:
    return response.status_code == 422 and response.json()["errors"][0]["rule"] == "account_number"


def test_a_number_deleted_or_changed_here_applies_to_the_next_call(server: Any) -> None:
    api = server.account()
    api.add_number(NUMBER, {"allowed_countries": ["GB"]})
    assert api.wait(api.call().json()["id"])["status"] == "NOTALLOWED"
    assert api.put(f"/v1/numbers/{NUMBER}", json={"config": {}}).status_code == 200
    assert api.wait(api.call().json()["id"])["status"] != "NOTALLOWED"
    assert api.delete(f"/v1/numbers/{NUMBER}").status_code == 204
    assert _refused_for_number(api.call())
    api.add_number(NUMBER, {"allowed_countries": ["GB"]})
    assert api.wait(api.call().json()["id"])["status"] == "NOTALLOWED"


def test_another_process_changes_are_seen_within_the_bound(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bound = 0.3
    monkeypatch.setattr(numbers_store._calling_numbers, "seconds", bound)
    api = server.account()
    api.add_number(NUMBER)
    assert api.call().status_code == 201  # the number is remembered now
    # What another process (the CLI against the running server) does: plain SQL writes,
    # which no ORM event in this process sees.
    with server.database.engine.begin() as conn:
        conn.execute(
            Account.__table__.update()
            .where(Account.__table__.c.id == api.account_id)
            .values(settings={"allowed_countries": ["GB"]})
        )
    time.sleep(bound + 0.1)
    assert api.wait(api.call().json()["id"])["status"] == "NOTALLOWED"
    with server.database.engine.begin() as conn:
        conn.execute(Number.__table__.delete().where(Number.__table__.c.number == NUMBER))
    time.sleep(bound + 0.1)
    assert _refused_for_number(api.call())
