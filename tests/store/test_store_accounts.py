"""Accounts and keys: keys work once issued, are stored hashed, revoke and rotate."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from legato.store import accounts
from legato.store.accounts import NotFound
from legato.store.db import Database
from legato.store.ids import hash_api_key
from legato.store.models import ApiKey


def test_created_key_authenticates_and_is_stored_only_hashed(db: Database) -> None:
    with db.session() as s:
        issued = accounts.create_account(s, "Acme")
    with db.session() as s:
        account = accounts.authenticate(s, issued.api_key)
        assert account is not None and account.id == issued.account_id and account.name == "Acme"
        stored = s.scalars(select(ApiKey)).one()
        assert stored.key_hash == hash_api_key(issued.api_key)
        assert issued.api_key not in (stored.key_hash, stored.prefix)
        assert issued.api_key.startswith(stored.prefix)
        assert accounts.authenticate(s, issued.api_key + "x") is None


def test_revoked_key_stops_working_and_rotation_revokes_older_keys(db: Database) -> None:
    with db.session() as s:
        first = accounts.create_account(s, "Acme")
        second = accounts.issue_key(s, first.account_id)
    with db.session() as s:
        accounts.revoke_key(s, first.key_id)
    with db.session() as s:
        assert accounts.authenticate(s, first.api_key) is None
        assert accounts.authenticate(s, second.api_key) is not None
        rotated = accounts.rotate_key(s, first.account_id)
    with db.session() as s:
        assert accounts.authenticate(s, second.api_key) is None
        assert accounts.authenticate(s, rotated.api_key) is not None
        live = [k for k in accounts.list_keys(s, first.account_id) if k.revoked_at is None]
        assert [k.id for k in live] == [rotated.key_id]


def test_revoke_by_prefix_and_unknown_key(db: Database) -> None:
    with db.session() as s:
        issued = accounts.create_account(s, "Acme")
        prefix = accounts.list_keys(s, issued.account_id)[0].prefix
        accounts.revoke_key(s, prefix)
    with db.session() as s:
        assert accounts.authenticate(s, issued.api_key) is None
        with pytest.raises(NotFound):
            accounts.revoke_key(s, "lgk_nosuchkey")
        with pytest.raises(ValueError, match="name"):
            accounts.create_account(s, "  ")


def test_remembered_live_keys_forget_revocations_made_in_this_process(db: Database) -> None:
    """The hot-path lookup remembers live keys for a moment; revoking or rotating here
    takes effect at once, and keys never seen live (new or unknown) are always asked."""
    with db.session() as s:
        first = accounts.create_account(s, "Acme")
        second = accounts.issue_key(s, first.account_id)
    with db.session() as s:
        assert accounts.account_id_for_key(s, first.api_key) == first.account_id
        assert accounts.account_id_for_key(s, second.api_key) == first.account_id
    assert accounts.known_account_id(first.api_key) == first.account_id  # remembered
    with db.session() as s:
        accounts.revoke_key(s, first.key_id)
    with db.session() as s:
        assert accounts.account_id_for_key(s, first.api_key) is None
        assert accounts.account_id_for_key(s, second.api_key) == first.account_id
        rotated = accounts.rotate_key(s, first.account_id)
    with db.session() as s:
        assert accounts.account_id_for_key(s, second.api_key) is None
        assert accounts.account_id_for_key(s, rotated.api_key) == first.account_id
    assert accounts.known_account_id("lgk_never_issued") is None
