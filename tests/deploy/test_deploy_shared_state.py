"""The shared state replicas agree on, checked on SQLite and PostgreSQL: the recompute lease
is renewed for as long as a recomputation runs, only battle votes (not direct-chat
feedback) make the published leaderboard stale, and every way of building the server
refuses a secret key other than the one the database's replicas share."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from arena.config import Settings
from arena.leaderboard import build
from arena.leaderboard.shared import recompute_shared
from arena.store.battles import create_battle
from arena.store.conversations import add_message
from arena.store.db import Database
from arena.store.leaderboard_sets import (
    acquire_lease,
    publish_set,
    published_head,
    renew_lease,
)
from arena.store.migrate import upgrade
from arena.store.replica_settings import ReplicaMismatch, check_secret_fingerprint
from arena.store.votes import record_vote

pytestmark = pytest.mark.deploy


@pytest.fixture
def db(own_database_url) -> Iterator[Database]:
    upgrade(own_database_url)
    database = Database(own_database_url)
    yield database
    database.dispose()


def _voted_battle(db: Database, vote: str = "a") -> str:
    battle = create_battle(db, mode="battle", model_a="alpha", model_b="beta")
    record_vote(db, battle.id, vote)
    return battle.id


def test_direct_chat_feedback_does_not_make_the_board_stale(db):
    _voted_battle(db)
    head = published_head(db)
    assert head.stale and head.vote_watermark > 0
    publish_set(db, "covering-every-vote", head.vote_watermark, b"archive")
    assert not published_head(db).stale

    chat = create_battle(db, mode="direct", model_a="alpha")
    assert chat.conversation_a_id is not None
    add_message(db, chat.conversation_a_id, role="user", content="hi")
    answer = add_message(db, chat.conversation_a_id, role="assistant", content="hello")
    for feedback in ("upvote", "downvote", "flag"):
        record_vote(db, chat.id, feedback, message_id=answer.id)
    after = published_head(db)
    assert not after.stale  # feedback never enters the board: nothing to recompute
    assert after.vote_watermark == head.vote_watermark

    _voted_battle(db, "b")  # a battle vote does
    assert published_head(db).stale


def test_the_recompute_lease_is_renewed_while_a_long_recomputation_runs(db, tmp_path, monkeypatch):
    _voted_battle(db)
    # Renewed every ttl_s / 3: a lease of 3 s lapses only if a renewal stalls for 2 s (0.6 s
    # lapsed once on a busy machine, a PostgreSQL write delayed past 0.4 s).
    ttl_s = 3.0
    real_refresh = build.refresh_artifacts
    contested: list[bool] = []
    renewed_past_ttl = threading.Event()

    def slow_refresh(*args, **kwargs):  # type: ignore[no-untyped-def]
        # While this "recomputation" runs, other replicas keep trying to take the lease:
        # until several lease times have passed, none may.
        started = time.monotonic()
        while time.monotonic() - started < 5 * ttl_s:
            contested.append(
                acquire_lease(db, "another-replica", now=datetime.now(UTC), ttl_s=ttl_s)
            )
            time.sleep(ttl_s / 10)  # pacing the attempts, not waiting for a result
        renewed_past_ttl.set()
        return real_refresh(*args, **kwargs)

    monkeypatch.setattr(build, "refresh_artifacts", slow_refresh)
    set_id = recompute_shared(db.url, tmp_path / "board", owner="this-replica", lease_ttl_s=ttl_s)
    assert renewed_past_ttl.is_set() and len(contested) >= 10
    assert not any(contested), "another replica took the lease during the recomputation"
    assert set_id is not None and not published_head(db).stale
    # Released at the end: the next recomputation may start at once, anywhere.
    assert acquire_lease(db, "another-replica", now=datetime.now(UTC), ttl_s=ttl_s)


def test_a_lapsed_lease_cannot_be_renewed_by_its_old_holder(db):
    now = datetime.now(UTC)
    assert acquire_lease(db, "slow-holder", now=now, ttl_s=1)
    assert renew_lease(db, "slow-holder", now=now, ttl_s=1)
    later = datetime.fromtimestamp(now.timestamp() + 5, UTC)
    assert acquire_lease(db, "new-holder", now=later, ttl_s=1)
    assert not renew_lease(db, "slow-holder", now=later, ttl_s=1)


def test_building_the_server_refuses_another_secret(db, tmp_path):
    from arena.providers.registry import RegistryFile
    from arena.server import create_server_app

    check_secret_fingerprint(db, b"the-replicas-secret", from_environment=True)
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=db.url,
        secret_key="another-secret",
        default_hub_models=[],
    )
    with pytest.raises(ReplicaMismatch, match="ARENA_SECRET_KEY differs"):
        create_server_app(settings, RegistryFile(models=[]), providers={})
    # A key generated in a data dir is no way around it either.
    generated = settings.model_copy(update={"secret_key": None})
    with pytest.raises(ReplicaMismatch, match="has no ARENA_SECRET_KEY"):
        create_server_app(generated, RegistryFile(models=[]), providers={})
