"""Migration 0008 (``votes.session_hash``, ``voter_cleared_sessions``) on SQLite and
PostgreSQL: a store at 0007 with votes gets every vote's session hash backfilled, equal to
what the vote path writes (``session_judge``), over several backfill batches; downgrading
drops both again."""

from __future__ import annotations

import importlib.util

from sqlalchemy import MetaData, Table, insert, inspect, select

from arena.store.battles import create_battle
from arena.store.conversations import add_message
from arena.store.db import Database
from arena.store.migrate import (
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from arena.store.sessions import create_session
from arena.store.voter_flags import session_judge
from arena.store.votes import record_vote

SESSIONS = 7


def _migration_batch() -> int:
    from alembic.script import ScriptDirectory

    path = ScriptDirectory.from_config(alembic_config()).get_revision("0008").path
    spec = importlib.util.spec_from_file_location("migration_0008", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BACKFILL_BATCH


def test_the_vote_path_stores_the_session_hash(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    db = Database(empty_database_url)
    try:
        session_id = create_session(db, ttl_s=60).id
        voted = []
        for sid in (session_id, None):
            battle = create_battle(db, mode="battle", model_a="a", model_b="b", session_id=sid)
            voted.append(record_vote(db, battle.id, "a", session_id=sid).id)
        with db.session() as s:
            votes = Table("votes", MetaData(), autoload_with=s.connection())
            hashes = dict(s.execute(select(votes.c.id, votes.c.session_hash)).all())
        assert hashes == {voted[0]: session_judge(session_id), voted[1]: None}
    finally:
        db.dispose()


def test_upgrade_from_0007_backfills_session_hashes(empty_database_url: str) -> None:
    upgrade(empty_database_url, "0007")
    db = Database(empty_database_url)
    try:
        sessions = [create_session(db, ttl_s=3600).id for _ in range(SESSIONS)]
        battle = create_battle(db, mode="battle", model_a="a", model_b="b")
        conv = battle.conversation_a_id
        add_message(db, conv, role="user", content="q")
        answer = add_message(db, conv, role="assistant", content="a")
        # Feedback votes may repeat, so one battle carries enough rows for several batches;
        # every eighth has no session.
        n = 2 * _migration_batch() + 17
        with db.engine.begin() as conn:
            votes = Table("votes", MetaData(), autoload_with=conn)
            assert "session_hash" not in votes.c
            conn.execute(
                insert(votes),
                [
                    {
                        "battle_id": battle.id,
                        "message_id": answer.id,
                        "type": "upvote",
                        "created_at": battle.created_at,
                        "session_id": None if i % 8 == 0 else sessions[i % SESSIONS],
                        "ip_hash": None,
                    }
                    for i in range(n)
                ],
            )

        upgrade(empty_database_url)
        with db.engine.connect() as conn:
            votes = Table("votes", MetaData(), autoload_with=conn)
            rows = conn.execute(select(votes.c.session_id, votes.c.session_hash)).all()
        assert len(rows) == n
        assert all(stored == session_judge(sid) for sid, stored in rows)
        assert sum(stored is None for _sid, stored in rows) == len(range(0, n, 8))
        assert "voter_cleared_sessions" in inspect(db.engine).get_table_names()

        downgrade(empty_database_url, "0007")
        db.engine.dispose()
        columns = {c["name"] for c in inspect(db.engine).get_columns("votes")}
        assert "session_hash" not in columns
        assert "voter_cleared_sessions" not in inspect(db.engine).get_table_names()
        upgrade(empty_database_url)
        assert current_revision(empty_database_url) == head_revision()
    finally:
        db.dispose()
