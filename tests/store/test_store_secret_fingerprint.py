"""Every replica on one database must share the secret key: the first one records an HMAC
fingerprint of it (never the key), later ones with another key refuse to start."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from arena.config import Settings
from arena.store.models import ReplicaSetting
from arena.store.replica_settings import (
    ReplicaMismatch,
    check_secret_fingerprint,
    secret_fingerprint,
)
from arena.web.app import resolve_secret


def test_the_first_key_is_recorded_and_another_one_refused(db):
    check_secret_fingerprint(db, b"shared-key", from_environment=True)
    check_secret_fingerprint(db, b"shared-key", from_environment=True)  # a second replica
    with db.session() as session:
        rows = session.scalars(select(ReplicaSetting)).all()
    assert [(r.name, r.value) for r in rows] == [
        ("secret_key_fingerprint", secret_fingerprint(b"shared-key"))
    ]
    assert "shared-key" not in rows[0].value and len(rows[0].value) == 64

    with pytest.raises(ReplicaMismatch) as refused:
        check_secret_fingerprint(db, b"another-key", from_environment=True)
    assert str(refused.value).startswith(
        "this replica's ARENA_SECRET_KEY differs from the one the database was set up with; "
        "every replica must share it: "
    )


def test_generated_keys_of_two_data_dirs_do_not_pass(db, tmp_path):
    first = resolve_secret(Settings(data_dir=tmp_path / "replica-1"))
    second = resolve_secret(Settings(data_dir=tmp_path / "replica-2"))
    assert first != second
    check_secret_fingerprint(db, first, from_environment=False)
    check_secret_fingerprint(db, first, from_environment=False)  # the same replica restarted
    with pytest.raises(ReplicaMismatch) as refused:
        check_secret_fingerprint(db, second, from_environment=False)
    message = str(refused.value)
    assert "has no ARENA_SECRET_KEY" in message and "generated in a data dir" in message
    assert "set the same ARENA_SECRET_KEY on every replica" in message


def test_arena_serve_with_another_key_fails_at_start(tmp_path):
    from arena.cli import app as cli

    env = {
        "ARENA_DATABASE_URL": f"sqlite:///{tmp_path / 'arena.db'}",
        "ARENA_DATA_DIR": str(tmp_path / "replica-2"),
        "ARENA_SECRET_KEY": "key-of-replica-2",
    }
    from arena.store.db import Database
    from arena.store.migrate import upgrade

    upgrade(env["ARENA_DATABASE_URL"])
    db = Database(env["ARENA_DATABASE_URL"])
    try:
        check_secret_fingerprint(db, b"key-of-replica-1", from_environment=True)
    finally:
        db.dispose()
    result = CliRunner().invoke(cli, ["serve", "--port", "1"], env=env)
    assert result.exit_code == 2
    assert "this replica's ARENA_SECRET_KEY differs from the one the database was set up" in (
        result.output
    )
