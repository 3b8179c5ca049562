"""Replicas on one database show one leaderboard: votes cast through one replica appear,
identically, on every replica, and each change is computed and published once, not once per
replica."""

from __future__ import annotations

from sqlalchemy import select

from arena.store.leaderboard_sets import published_head
from arena.store.models import LeaderboardSet
from support.processes import PROCESS_DEADLINE_S, wait_until
from support.web_fakes import ScriptedProvider

SETTINGS = {"leaderboard_refresh_s": 0.2, "leaderboard_rounds": 20}
VOTES = 3


def _leaderboard(client) -> dict:  # type: ignore[no-untyped-def]
    response = client.get("/api/leaderboard")
    return response.json() if response.status_code == 200 else {}


def _battles(board: dict) -> int:
    return sum(m.get("num_battles", 0) for m in board.get("models", []))


def _published(arena) -> list[tuple[int, int, str]]:  # type: ignore[no-untyped-def]
    with arena.db.session(read_only=True) as session:
        rows = session.execute(
            select(
                LeaderboardSet.id, LeaderboardSet.vote_watermark, LeaderboardSet.snapshot
            ).order_by(LeaderboardSet.id)
        ).all()
    return [tuple(row) for row in rows]


def _replica(arena_server, database_url: str):  # type: ignore[no-untyped-def]
    return arena_server(
        [ScriptedProvider("alpha-model"), ScriptedProvider("beta-model")],
        database_url=database_url,
        settings=SETTINGS,
    )


def test_replicas_show_one_leaderboard(arena_server, own_database_url):
    first = _replica(arena_server, own_database_url)
    second = _replica(arena_server, own_database_url)
    assert first.settings.data_dir != second.settings.data_dir
    viewer, voter = first.client(), second.client()
    assert not _leaderboard(viewer).get("models")  # nothing voted yet

    for _ in range(VOTES):
        battle_id = voter.new_battle()
        voter.send(battle_id, "hello")
        assert voter.vote(battle_id, "a").status_code == 200

    boards: list[dict] = []

    def both_show_every_vote() -> bool:
        nonlocal boards
        boards = [_leaderboard(viewer), _leaderboard(voter)]
        same = [(b.get("snapshot"), b.get("created")) for b in boards]
        return all(_battles(b) == 2 * VOTES for b in boards) and same[0] == same[1]

    wait_until(both_show_every_vote, timeout_s=3 * PROCESS_DEADLINE_S, what="one shared board")
    # One computed set, copied: the same snapshot and the same creation time on both.
    assert boards[0]["snapshot"] and boards[0]["created"]
    assert boards[0]["models"] == boards[1]["models"]

    # Let both replicas check a few more times: with every vote covered, nobody recomputes.
    syncs = [first.app.state.web.leaderboard_sync, second.app.state.web.leaderboard_sync]
    seen = [s.checks for s in syncs]
    published_before = _published(first)
    wait_until(
        lambda: all(s.checks >= n + 3 for s, n in zip(syncs, seen, strict=True)),
        what="more leaderboard checks",
    )
    published = _published(first)
    head = published_head(first.db)
    assert not head.stale and head.set_id == published[-1][0]
    # One set per change: at most one per vote, never two for the same votes or data.
    assert 1 <= len(published) <= VOTES
    watermarks = [w for _, w, _ in published]
    assert watermarks == sorted(set(watermarks))
    assert len({snapshot for _, _, snapshot in published}) == len(published)
    assert published[-1][2] == boards[0]["snapshot"]
    assert published == published_before  # checks since: nothing more to compute
    viewer.close()
    voter.close()


def test_one_replica_holds_the_recompute_lease(own_database_url):
    from datetime import UTC, datetime, timedelta

    from arena.store.db import Database
    from arena.store.leaderboard_sets import acquire_lease, release_lease
    from arena.store.migrate import upgrade

    upgrade(own_database_url)
    db = Database(own_database_url)
    now = datetime.now(UTC)
    try:
        assert acquire_lease(db, "replica-1", now=now, ttl_s=60)
        assert not acquire_lease(db, "replica-2", now=now, ttl_s=60)
        release_lease(db, "replica-2")  # not its lease: left alone
        assert not acquire_lease(db, "replica-2", now=now + timedelta(seconds=59), ttl_s=60)
        # A holder that stopped renewing loses the lease once it expires.
        assert acquire_lease(db, "replica-2", now=now + timedelta(seconds=61), ttl_s=60)
        release_lease(db, "replica-2")
        assert acquire_lease(db, "replica-1", now=now + timedelta(seconds=62), ttl_s=60)
    finally:
        db.dispose()


def test_published_sets_keep_only_the_newest(own_database_url):
    from arena.store.db import Database
    from arena.store.leaderboard_sets import count_sets, load_archive, publish_set
    from arena.store.migrate import upgrade

    upgrade(own_database_url)
    db = Database(own_database_url)
    try:
        ids = [publish_set(db, f"s{n}", n, f"archive {n}".encode(), keep=3) for n in range(5)]
        assert ids == sorted(ids)
        assert count_sets(db) == 3
        assert load_archive(db, ids[0]) is None
        assert load_archive(db, ids[-1]) == b"archive 4"
        head = published_head(db)
        assert (head.set_id, head.set_watermark, head.vote_watermark) == (ids[-1], 4, 0)
        assert not head.stale
    finally:
        db.dispose()
