"""Red-team rounds in the store, on SQLite and PostgreSQL: one turn at a time (also across
threads), limits decided in the transaction, duplicates, opt-outs, nicknames."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from arena.errors import Conflict, NotFound
from arena.store import redteam_players as players
from arena.store import redteam_rounds as rounds
from arena.store.release_opt_outs import opt_out_session
from arena.store.sessions import create_session

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CHALLENGE = {"id": "pirate", "kind": "say_phrase", "turn_limit": 2, "time_limit_s": 60.0}


def _round(db, session_id=None, *, model="m-one", player="p" * 64):
    session_id = session_id or create_session(db, ttl_s=3600).id
    return rounds.create_round(
        db,
        player_id=player,
        session_id=session_id,
        ip_hash=None,
        challenge=CHALLENGE,
        model=model,
        system_prompt="sys",
        secret_core=None,
        now=T0,
    )


def _result(at: datetime, *, won: bool = False, attack: str = "h" * 64) -> rounds.TurnResult:
    return rounds.TurnResult(
        prompt="attack",
        prompt_hash="x" * 64,
        answer="answer",
        finish_reason="stop",
        detection={"found": won, "method": "case_insensitive" if won else ""},
        judge=None,
        started_at=at,
        first_token_at=at,
        finished_at=at,
        success_method="case_insensitive" if won else None,
        attack_hash=attack if won else None,
    )


def test_turns_count_and_the_turn_limit_ends_the_round(db):
    record = _round(db)
    assert record.deadline_at == T0 + timedelta(seconds=60)
    for i in range(2):
        rounds.claim_turn(db, record.id, record.player_id, hold_s=30, now=T0)
        record = rounds.record_turn(db, record.id, _result(T0 + timedelta(seconds=i)))
    assert record.status == "lost" and record.end_reason == "turn_limit"
    assert [t.turn for t in record.history] == [1, 2]
    with pytest.raises(Conflict) as e:
        rounds.claim_turn(db, record.id, record.player_id, hold_s=30, now=T0)
    assert e.value.code == "round_over"


def test_a_win_ends_the_round_and_later_copies_are_duplicates(db):
    first = _round(db)
    rounds.claim_turn(db, first.id, first.player_id, hold_s=30, now=T0)
    first = rounds.record_turn(db, first.id, _result(T0, won=True))
    assert first.status == "won" and first.success_turn == 1 and first.duplicate_of is None
    copy = _round(db, player="q" * 64)
    rounds.claim_turn(db, copy.id, copy.player_id, hold_s=30, now=T0)
    copy = rounds.record_turn(db, copy.id, _result(T0 + timedelta(seconds=1), won=True))
    assert copy.status == "won" and copy.duplicate_of == first.id
    # The same attack on another model is a new data point.
    other = _round(db, model="m-two")
    rounds.claim_turn(db, other.id, other.player_id, hold_s=30, now=T0)
    other = rounds.record_turn(db, other.id, _result(T0, won=True))
    assert other.duplicate_of is None
    rated = rounds.rated_rounds(db)
    assert sorted((r.model, r.success) for r in rated) == [("m-one", True), ("m-two", True)]
    assert len(rounds.rated_rounds(db, include_duplicates=True)) == 3
    assert rounds.ended_round_count(db) == 3


def test_time_limit_is_checked_when_claiming_and_when_expiring(db):
    record = _round(db)
    late = T0 + timedelta(seconds=61)
    with pytest.raises(Conflict):
        rounds.claim_turn(db, record.id, record.player_id, hold_s=30, now=late)
    ended = rounds.load_round(db, record.id, record.player_id)
    assert ended.status == "lost" and ended.end_reason == "time_limit"

    other = _round(db)
    assert rounds.expire_if_due(db, other.id, now=T0 + timedelta(seconds=10)) is False
    rounds.claim_turn(db, other.id, other.player_id, hold_s=300, now=T0)
    # A turn still streaming past the deadline is not cut short by expiry...
    assert rounds.expire_if_due(db, other.id, now=late) is False
    # ...its answer is recorded, and then the round is over on time.
    done = rounds.record_turn(db, other.id, _result(late))
    assert done.status == "lost" and done.end_reason == "time_limit" and done.turns == 1


def test_only_one_of_many_concurrent_claims_wins(db):
    record = _round(db)
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def claim() -> None:
        barrier.wait()
        try:
            rounds.claim_turn(db, record.id, record.player_id, hold_s=30, now=T0)
            outcomes.append("claimed")
        except Conflict as e:
            outcomes.append(e.code)

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("claimed") == 1
    assert set(outcomes) == {"claimed", "turn_in_progress"}
    rounds.release_turn(db, record.id)
    rounds.claim_turn(db, record.id, record.player_id, hold_s=30, now=T0)


def test_giving_up_is_idempotent_and_waits_for_a_streaming_turn(db):
    record = _round(db)
    rounds.claim_turn(db, record.id, record.player_id, hold_s=30, now=T0)
    with pytest.raises(Conflict):
        rounds.end_round(db, record.id, record.player_id, reason="gave_up", now=T0)
    rounds.release_turn(db, record.id)
    ended = rounds.end_round(db, record.id, record.player_id, reason="gave_up", now=T0)
    again = rounds.end_round(db, record.id, record.player_id, reason="gave_up", now=T0)
    assert ended.status == again.status == "lost" and again.end_reason == "gave_up"
    with pytest.raises(NotFound):
        rounds.end_round(db, record.id, "z" * 64, reason="gave_up")
    with pytest.raises(NotFound):
        rounds.load_round(db, record.id, "z" * 64)


def test_opted_out_sessions_rounds_stay_out_of_exports(db):
    session = create_session(db, ttl_s=3600).id
    before = _round(db, session)
    rounds.end_round(db, before.id, before.player_id, reason="gave_up")
    opt_out_session(db, session)
    after = _round(db, session)
    rounds.end_round(db, after.id, after.player_id, reason="gave_up")
    kept = _round(db)
    rounds.end_round(db, kept.id, kept.player_id, reason="gave_up")
    exported = [r.id for r in rounds.iter_ended_rounds(db, batch=1)]
    assert exported == [kept.id]
    every = {r.id for r in rounds.iter_ended_rounds(db, include_excluded=True)}
    assert every == {before.id, after.id, kept.id}


def test_nicknames_are_unique_whatever_the_case(db):
    a, b = players.player_id_for(b"k", "s1"), players.player_id_for(b"k", "s2")
    assert a != b and len(a) == 64 and a != players.player_id_for(b"other", "s1")
    players.set_nickname(db, a, "Red Fox")
    with pytest.raises(Conflict):
        players.set_nickname(db, b, "red fox")
    players.set_nickname(db, a, "Blue Fox")
    players.set_nickname(db, b, "Red Fox")  # freed by a
    assert players.nicknames(db, [a, b]) == {a: "Blue Fox", b: "Red Fox"}
    players.set_nickname(db, a, None)
    assert players.get_nickname(db, a) is None


def test_a_round_ended_before_any_answer_is_not_rated(db):
    empty = _round(db)
    rounds.end_round(db, empty.id, empty.player_id, reason="gave_up", now=T0)
    played = _round(db)
    rounds.claim_turn(db, played.id, played.player_id, hold_s=30, now=T0)
    rounds.record_turn(db, played.id, _result(T0))
    rounds.end_round(db, played.id, played.player_id, reason="gave_up", now=T0)
    assert [(r.model, r.success) for r in rounds.rated_rounds(db)] == [("m-one", False)]
    # Still a round of the record: exported like any other.
    assert {r.id for r in rounds.iter_ended_rounds(db)} == {empty.id, played.id}
