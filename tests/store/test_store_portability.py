"""Input that SQLite and PostgreSQL would treat differently is handled the same on both."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from arena.errors import BadRequest, NotFound
from arena.store.battles import create_battle, get_battle, list_battles, update_battle
from arena.store.conversations import add_message, finish_message, get_conversation
from arena.store.image_records import get_image
from arena.store.keys import create_api_key, lookup_api_key
from arena.store.sessions import create_session, get_session
from arena.store.votes import record_vote
from arena.store.workers import heartbeat_worker, register_worker

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NUL = "\x00"


def test_nul_characters_in_text_are_stored_on_both_backends(db) -> None:
    """PostgreSQL text cannot hold NUL; a prompt or answer containing one must still be kept
    (NUL becomes U+FFFD on every backend, so both store the same thing)."""
    session = create_session(db, ttl_s=600, now=T0)
    battle = create_battle(
        db, mode="battle", model_a="alpha", model_b="beta", session_id=session.id, now=T0
    )
    conv = battle.conversation_a_id
    user = add_message(db, conv, role="user", content=f"hi{NUL}there", now=T0)
    answer = add_message(db, conv, role="assistant", content="", model="alpha", now=T0)
    finish_message(db, answer.id, content=f"ok{NUL}", error=f"boom{NUL}", finished_at=T0)
    (stored_user, stored_answer) = get_conversation(db, conv).messages
    assert stored_user.id == user.id and stored_user.content == "hi\ufffdthere"
    assert (stored_answer.content, stored_answer.error) == ("ok\ufffd", "boom\ufffd")
    update_battle(db, battle.id, leaked=True, leak_reason=f"named{NUL}", now=T0)
    assert get_battle(db, battle.id).leak_reason == "named\ufffd"


@pytest.mark.parametrize("value", [f"abc{NUL}", NUL])
def test_lookups_with_nul_find_nothing_instead_of_failing(db, value) -> None:
    """Ids come from URLs, cookies and headers: a NUL in one is just an unknown id."""
    assert get_session(db, value) is None
    with pytest.raises(NotFound):
        get_battle(db, value)
    with pytest.raises(NotFound):
        record_vote(db, value, "a")
    with pytest.raises(NotFound):
        get_conversation(db, value)
    assert get_image(db, value) is None
    assert lookup_api_key(db, value) is None
    assert heartbeat_worker(db, value, queue_length=0) is False


def test_worker_fields_with_nul_are_kept(db) -> None:
    info = register_worker(
        db, worker_id="w1", model_names=[f"m{NUL}"], url="http://h:1", kind=f"local{NUL}"
    )
    assert info.kind == "local\ufffd"


def test_an_unusual_finish_reason_does_not_cost_the_answer(db) -> None:
    """PostgreSQL refuses a value longer than its column (SQLite keeps it): an upstream's long
    finish reason is cut to fit rather than losing the answer it ends."""
    battle = create_battle(db, mode="battle", model_a="alpha", model_b="beta", now=T0)
    long_reason = "engine_specific_reason_" + "x" * 40
    message = add_message(
        db, battle.conversation_a_id, role="assistant", content="hi", finish_reason=long_reason
    )
    assert message.finish_reason == long_reason[:32]
    done = finish_message(db, message.id, content="hi there", finish_reason=long_reason)
    assert (done.content, done.finish_reason) == ("hi there", long_reason[:32])


def test_values_too_long_for_their_column_are_bad_requests_on_both_backends(db) -> None:
    with pytest.raises(BadRequest, match="worker_id is longer than 200"):
        register_worker(db, worker_id="w" * 201, model_names=["m"], url="http://h:1", kind="x")
    with pytest.raises(BadRequest, match="url is longer"):
        register_worker(db, worker_id="w", model_names=["m"], url="http://" + "h" * 2000, kind="x")
    with pytest.raises(BadRequest, match="model_b is longer"):
        create_battle(db, mode="battle", model_a="alpha", model_b="b" * 201)
    battle = create_battle(db, mode="battle", model_a="alpha", model_b="beta", now=T0)
    with pytest.raises(BadRequest, match="status is longer"):
        update_battle(db, battle.id, status="s" * 33)
    with pytest.raises(BadRequest, match="name is longer"):
        create_api_key(db, "k" * 201)
    with pytest.raises(BadRequest, match="queue_length"):
        heartbeat_worker(db, "w", queue_length=-1)
    assert get_battle(db, battle.id).status == "open"


def test_a_negative_list_limit_is_refused_on_both_backends(db) -> None:
    create_battle(db, mode="battle", model_a="alpha", model_b="beta", now=T0)
    assert len(list_battles(db, limit=0)) == 0
    with pytest.raises(BadRequest, match="limit"):
        list_battles(db, limit=-1)
