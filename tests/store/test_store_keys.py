"""API key repository on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from arena.errors import BadRequest
from arena.store.keys import (
    KEY_PREFIX,
    ApiKeyInfo,
    count_active_keys,
    create_api_key,
    hash_api_key,
    list_api_keys,
    lookup_api_key,
    revoke_api_key,
)
from arena.store.models import ApiKey


def test_create_lookup_and_hash_only_storage(db) -> None:
    plaintext, info = create_api_key(db, "ci bot", rpm_limit=60, tpm_limit=10_000)
    assert plaintext.startswith(KEY_PREFIX) and len(plaintext) > 40
    assert isinstance(info, ApiKeyInfo)
    assert plaintext.startswith(info.prefix) and info.prefix != plaintext
    assert (info.name, info.rpm_limit, info.tpm_limit, info.revoked_at) == (
        "ci bot",
        60,
        10_000,
        None,
    )
    assert info.created_at.tzinfo is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.name = "x"  # type: ignore[misc]

    assert lookup_api_key(db, plaintext) == info
    assert lookup_api_key(db, plaintext + "x") is None
    assert lookup_api_key(db, "") is None
    with db.session() as s:
        stored = s.scalars(select(ApiKey)).one()
        assert stored.key_hash == hash_api_key(plaintext)
        assert plaintext not in {stored.key_hash, stored.prefix, stored.name}


def test_revoke_by_id_prefix_or_plaintext(db) -> None:
    k1, i1 = create_api_key(db, "one")
    _, i2 = create_api_key(db, "two")
    k3, i3 = create_api_key(db, "three")
    assert count_active_keys(db) == 3

    assert revoke_api_key(db, i1.id) is True
    assert revoke_api_key(db, str(i1.id)) is False  # already revoked
    assert lookup_api_key(db, k1) is None
    assert revoke_api_key(db, i2.prefix) is True
    assert revoke_api_key(db, k3) is True
    assert revoke_api_key(db, "sk-arena-nothere") is False
    assert revoke_api_key(db, 999) is False
    assert count_active_keys(db) == 0

    listed = list_api_keys(db)
    assert [k.id for k in listed] == [i1.id, i2.id, i3.id]
    assert all(k.revoked_at is not None and not k.active for k in listed)


def test_bad_input_is_refused(db) -> None:
    with pytest.raises(BadRequest):
        create_api_key(db, "  ")
    with pytest.raises(BadRequest):
        create_api_key(db, "x", rpm_limit=0)
    assert list_api_keys(db) == []


def test_ambiguous_prefix_revokes_nothing(db) -> None:
    create_api_key(db, "a")
    create_api_key(db, "b")
    with db.session() as s:  # force a shared prefix, which random keys make vanishingly rare
        for row in s.scalars(select(ApiKey)):
            row.prefix = "sk-arena-same"
    with pytest.raises(BadRequest):
        revoke_api_key(db, "sk-arena-same")
    assert count_active_keys(db) == 2
