"""Numbers belong to one account; others cannot see, change or take them."""

from __future__ import annotations

import pytest

from legato.store import accounts, numbers
from legato.store.accounts import NotFound
from legato.store.db import Database


def test_number_is_scoped_to_its_account_and_unique(db: Database) -> None:
    with db.session() as s:
        a = accounts.create_account(s, "A").account_id
        b = accounts.create_account(s, "B").account_id
        numbers.create_number(s, a, "+918047001000", {"lines": 2})
    with db.session() as s:
        assert numbers.get_number(s, a, "+918047001000").config == {"lines": 2}
        with pytest.raises(NotFound):
            numbers.get_number(s, b, "+918047001000")
        with pytest.raises(NotFound):
            numbers.replace_config(s, b, "+918047001000", {})
        with pytest.raises(NotFound):
            numbers.delete_number(s, b, "+918047001000")
        with pytest.raises(numbers.NumberTaken):
            numbers.create_number(s, b, "+918047001000", {})
    with db.session() as s:
        numbers.replace_config(s, a, "+918047001000", {"lines": 5, "missed_call": True})
    with db.session() as s:
        assert numbers.get_number(s, a, "+918047001000").config["lines"] == 5
        assert [n.number for n in numbers.list_numbers(s, b)] == []
        numbers.delete_number(s, a, "+918047001000")
    with db.session() as s:
        assert numbers.find_number(s, "+918047001000") is None
