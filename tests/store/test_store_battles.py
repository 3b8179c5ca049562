"""Arena records on SQLite and PostgreSQL: sessions, battles, conversations, messages,
votes and images."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from arena.errors import BadRequest, Conflict, NotFound, PayloadTooLarge, UnsupportedMediaType
from arena.store.battles import create_battle, get_battle, list_battles, update_battle
from arena.store.conversations import (
    add_message,
    battle_conversations,
    create_conversation,
    finish_message,
    get_conversation,
)
from arena.store.image_records import get_image
from arena.store.images import image_path, store_image_bytes
from arena.store.sessions import create_session, delete_expired_sessions, get_session
from arena.store.votes import count_votes, get_battle_vote, list_votes, record_vote

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _png(color: str = "red", size: tuple[int, int] = (3, 2)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def test_sessions_expire(db) -> None:
    s = create_session(db, ttl_s=60, ip_hash="ip1", user_agent_hash=None, now=T0)
    assert len(s.id) == 32 and s.expires_at == T0 + timedelta(seconds=60)
    assert get_session(db, s.id, now=T0 + timedelta(seconds=59)) == s
    assert get_session(db, s.id, now=T0 + timedelta(seconds=60)) is None
    assert get_session(db, "nope") is None
    other = create_session(db, ttl_s=3600, now=T0)
    assert delete_expired_sessions(db, now=T0 + timedelta(seconds=61)) == 1
    assert get_session(db, other.id, now=T0) == other


def test_battle_lifecycle(db) -> None:
    s = create_session(db, ttl_s=600)
    b = create_battle(
        db,
        mode="battle",
        model_a="alpha",
        model_b="beta",
        session_id=s.id,
        left_model="beta",
        right_model="alpha",
        params={"temperature": 0.7, "max_tokens": 64},
        now=T0,
    )
    assert len(b.id) == 32 and "alpha" not in b.id
    assert (b.mode, b.anony, b.status, b.turn_count, b.leaked) == ("battle", True, "open", 0, False)
    assert (b.left_model, b.right_model) == ("beta", "alpha")
    assert get_battle(db, b.id) == b

    conv_a, conv_b = battle_conversations(db, b.id)
    assert (conv_a.id, conv_a.side, conv_a.model) == (b.conversation_a_id, "a", "alpha")
    assert (conv_b.id, conv_b.side, conv_b.model) == (b.conversation_b_id, "b", "beta")
    assert conv_a.params == {"temperature": 0.7, "max_tokens": 64}

    for conv in (conv_a, conv_b):
        add_message(db, conv.id, role="user", content="Hi")
    m = add_message(db, conv_a.id, role="assistant", model="alpha", started_at=T0)
    assert (m.position, m.content, m.finished_at) == (1, "", None)
    done = finish_message(
        db,
        m.id,
        content="Hello **there**",
        finish_reason="stop",
        prompt_tokens=3,
        completion_tokens=4,
        finished_at=T0 + timedelta(seconds=2),
    )
    assert (done.content, done.finish_reason, done.prompt_tokens, done.completion_tokens) == (
        "Hello **there**",
        "stop",
        3,
        4,
    )
    err = add_message(db, conv_b.id, role="assistant", model="beta", error="upstream 502")
    assert err.error == "upstream 502"
    add_message(db, conv_a.id, role="user", content="More")
    assert get_battle(db, b.id).turn_count == 2

    conv = get_conversation(db, conv_a.id)
    assert [(x.position, x.role, x.content) for x in conv.messages] == [
        (0, "user", "Hi"),
        (1, "assistant", "Hello **there**"),
        (2, "user", "More"),
    ]

    updated = update_battle(db, b.id, leaked=True, leak_reason="said 'I am alpha'")
    assert updated.leaked and updated.leak_reason == "said 'I am alpha'"
    assert updated.status == "open" and updated.updated_at >= b.updated_at
    assert update_battle(db, b.id, moderation_flagged=True, status="x").moderation_flagged
    assert [x.id for x in list_battles(db, session_id=s.id)] == [b.id]


def test_battle_validation(db) -> None:
    with pytest.raises(BadRequest):
        create_battle(db, mode="duel", model_a="a", model_b="b")
    with pytest.raises(BadRequest):
        create_battle(db, mode="battle", model_a="a")
    with pytest.raises(BadRequest):
        create_battle(db, mode="direct", model_a="a", model_b="b")
    with pytest.raises(BadRequest):
        create_battle(db, mode="battle", model_a="a", model_b="b", left_model="c")
    with pytest.raises(NotFound):
        create_battle(db, mode="battle", model_a="a", model_b="b", session_id="nope")
    with pytest.raises(NotFound):
        get_battle(db, "0" * 32)
    with pytest.raises(NotFound):
        update_battle(db, "0" * 32, status="done")
    with pytest.raises(NotFound):
        add_message(db, "nope", role="user", content="x")
    with pytest.raises(NotFound):
        finish_message(db, 12345, content="x")
    direct = create_battle(db, mode="direct", model_a="a")
    with pytest.raises(BadRequest):
        add_message(db, direct.conversation_a_id, role="robot", content="x")
    assert direct.conversation_b_id is None
    assert [b.id for b in list_battles(db)] == [direct.id]


def test_battle_vote_once_and_conflict_loses_nothing(db) -> None:
    s = create_session(db, ttl_s=600)
    b1 = create_battle(db, mode="battle", model_a="x", model_b="y", session_id=s.id)
    b2 = create_battle(db, mode="side_by_side", model_a="x", model_b="z")
    v1 = record_vote(db, b1.id, "a", session_id=s.id, ip_hash="h", status="voted")
    assert (v1.battle_id, v1.type, v1.session_id, v1.ip_hash) == (b1.id, "a", s.id, "h")
    assert get_battle(db, b1.id).status == "voted"
    v2 = record_vote(db, b2.id, "bothbad", session_id=None, ip_hash=None)

    with pytest.raises(Conflict):
        record_vote(db, b1.id, "b", session_id=s.id, ip_hash="h", status="revoted")
    # Nothing else was lost or changed, and the handle still works.
    assert list_votes(db, b1.id) == [v1]
    assert get_battle_vote(db, b2.id) == v2
    assert get_battle(db, b1.id).status == "voted"
    assert count_votes(db) == 2
    b3 = create_battle(db, mode="battle", model_a="x", model_b="y")
    assert record_vote(db, b3.id, "tie").type == "tie"


def test_vote_errors(db) -> None:
    b = create_battle(db, mode="battle", model_a="x", model_b="y")
    with pytest.raises(NotFound):
        record_vote(db, "f" * 32, "a")
    with pytest.raises(BadRequest):
        record_vote(db, b.id, "left")
    with pytest.raises(BadRequest):
        record_vote(db, b.id, "upvote")  # feedback needs a message
    with pytest.raises(NotFound):
        record_vote(db, b.id, "a", session_id="no-such-session")
    direct = create_battle(db, mode="direct", model_a="x")
    with pytest.raises(BadRequest):
        record_vote(db, direct.id, "a")
    assert count_votes(db) == 0


def test_direct_chat_feedback_may_repeat(db) -> None:
    direct = create_battle(db, mode="direct", model_a="x")
    add_message(db, direct.conversation_a_id, role="user", content="q")
    answer = add_message(db, direct.conversation_a_id, role="assistant", content="ans")
    up1 = record_vote(db, direct.id, "upvote", message_id=answer.id)
    up2 = record_vote(db, direct.id, "upvote", message_id=answer.id)
    flag = record_vote(db, direct.id, "flag", message_id=answer.id, ip_hash="h")
    assert [v.id for v in list_votes(db, direct.id)] == [up1.id, up2.id, flag.id]
    assert get_battle_vote(db, direct.id) is None

    other = create_battle(db, mode="direct", model_a="x")
    with pytest.raises(NotFound):  # the message belongs to another chat
        record_vote(db, other.id, "downvote", message_id=answer.id)
    with pytest.raises(BadRequest):
        record_vote(db, direct.id, "a", message_id=answer.id)


def test_images_by_content_hash(db, tmp_path) -> None:
    data = _png()
    info = store_image_bytes(db, tmp_path, data)
    assert (info.mime_type, info.width, info.height, info.byte_size) == (
        "image/png",
        3,
        2,
        len(data),
    )
    assert not info.storage_path.startswith("/")
    assert image_path(tmp_path, info).read_bytes() == data
    assert store_image_bytes(db, tmp_path, data) == info  # stored once
    assert get_image(db, info.content_hash) == info

    b = create_battle(db, mode="direct", model_a="vision")
    m = add_message(
        db,
        b.conversation_a_id,
        role="user",
        content="what is this?",
        image_hashes=[info.content_hash],
    )
    assert m.image_hashes == (info.content_hash,)
    assert get_conversation(db, b.conversation_a_id).messages[0].image_hashes == (
        info.content_hash,
    )
    with pytest.raises(BadRequest):
        add_message(db, b.conversation_a_id, role="user", image_hashes=["0" * 64])

    with pytest.raises(UnsupportedMediaType):
        store_image_bytes(db, tmp_path, b"not an image at all")
    with pytest.raises(UnsupportedMediaType):
        store_image_bytes(db, tmp_path, data[: len(data) // 2])
    with pytest.raises(PayloadTooLarge):
        store_image_bytes(db, tmp_path, data, max_bytes=10)
    with pytest.raises(PayloadTooLarge):
        store_image_bytes(db, tmp_path, _png(size=(100, 100)), max_pixels=100)


def test_conversation_outside_battles(db) -> None:
    s = create_session(db, ttl_s=60)
    conv = create_conversation(db, model="alpha", session_id=s.id, params={"top_p": 0.9})
    assert (conv.battle_id, conv.side, conv.messages) == (None, None, ())
    add_message(db, conv.id, role="system", content="be brief")
    add_message(db, conv.id, role="user", content="hi")
    stored = get_conversation(db, conv.id)
    assert stored.params == {"top_p": 0.9}
    assert [m.role for m in stored.messages] == ["system", "user"]
    with pytest.raises(NotFound):
        get_conversation(db, "missing")
    with pytest.raises(NotFound):
        battle_conversations(db, "missing")
