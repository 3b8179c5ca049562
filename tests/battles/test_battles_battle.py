"""The battle state machine: turns, regenerate, votes, reveal, views, new rounds."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from arena.battles.battle import TEXT_BATTLE_IMAGE_REFUSAL, Battle, new_battle_id
from arena.battles.battle_types import BattleMode, BattleState, Feedback, VoteChoice, parse_vote
from arena.battles.battle_views import ANSWER_FAILED_NOTICE, FAILED_BATTLE_NOTICE, LEAK_NOTICE
from arena.errors import BadRequest, Conflict, Forbidden

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
MODELS = ("claude-3-5-sonnet", "llama-3-70b-instruct")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def answered(battle: Battle, prompt: str = "What is 2+2?", t: float = 1.0) -> Battle:
    battle = battle.start_turn(prompt, now=at(t))
    for side in battle.sides:
        battle = battle.record_answer(side, f"Answer {side}: 4.", now=at(t + 1))
    return battle


def anonymous() -> Battle:
    return Battle.create("battle", MODELS, now=T0, max_turns=3)


def test_a_full_anonymous_battle():
    b = anonymous()
    assert b.state is BattleState.CREATED and not b.can_vote
    b = b.start_turn("Hello", now=at(1))
    assert b.state is BattleState.STREAMING
    b = b.record_answer("a", "Hi there!", now=at(2))
    assert b.state is BattleState.STREAMING, "one side answered is not enough"
    b = b.record_answer("b", "Hello! How can I help?", now=at(3))
    assert b.state is BattleState.READY and b.can_vote and b.can_regenerate
    b = answered(b, "And a follow-up?", t=4)
    assert b.complete_turns == 2
    voted = b.vote(VoteChoice.B_BETTER, now=at(10))
    assert voted.state is BattleState.VOTED and voted.revealed
    outcome = voted.outcome()
    assert outcome.winner == "model_b"
    assert outcome.models == MODELS
    assert outcome.anonymous and not outcome.leaked and outcome.counts_for_ratings
    assert outcome.turns == 2


def test_each_vote_maps_to_the_clean_battle_winner():
    expected = {
        "a_better": "model_a",
        "b_better": "model_b",
        "tie": "tie",
        "both_bad": "tie (bothbad)",
    }
    for choice, winner in expected.items():
        voted = answered(anonymous()).vote(choice, now=at(5))
        assert voted.outcome().winner == winner


def test_vote_errors_are_typed():
    b = anonymous()
    with pytest.raises(BadRequest) as e:
        b.vote("a_better", now=at(1))
    assert e.value.code == "vote_before_answer" and e.value.status_code == 400
    streaming = b.start_turn("hi", now=at(1)).record_answer("a", "x", now=at(2))
    with pytest.raises(BadRequest, match="finished answering"):
        streaming.vote("tie", now=at(3))
    ready = answered(b)
    with pytest.raises(BadRequest, match="unknown vote"):
        ready.vote("left_is_better", now=at(3))
    with pytest.raises(BadRequest, match="not a valid vote"):
        ready.vote(Feedback.UPVOTE, now=at(3))
    voted = ready.vote("tie", now=at(4))
    with pytest.raises(Conflict) as e:
        voted.vote("a_better", now=at(5))
    assert e.value.status_code == 409 and e.value.code == "already_voted"
    assert voted.vote_choice is VoteChoice.TIE, "the first vote stands"


def test_after_the_vote_the_battle_takes_nothing_more():
    voted = answered(anonymous()).vote("a_better", now=at(5))
    for action in (
        lambda: voted.start_turn("more?", now=at(6)),
        lambda: voted.regenerate(now=at(6)),
    ):
        with pytest.raises(Conflict, match="already voted"):
            action()
    assert voted.close(now=at(7)) is voted


def test_turn_limit_and_streaming_guards():
    b = anonymous()
    for t in range(3):
        b = answered(b, f"q{t}", t=10 * t)
    assert not b.can_continue and b.public_view()["turns_left"] == 0
    with pytest.raises(BadRequest) as e:
        b.start_turn("one more", now=at(100))
    assert e.value.code == "turn_limit_reached"
    s = anonymous().start_turn("hi", now=at(1))
    with pytest.raises(Conflict, match="still answering"):
        s.start_turn("again", now=at(2))
    with pytest.raises(BadRequest, match="empty"):
        anonymous().start_turn("   ", now=at(1))
    r = s.record_answer("a", "x", now=at(2))
    with pytest.raises(Conflict, match="already answered"):
        r.record_answer("a", "y", now=at(3))
    with pytest.raises(BadRequest, match="unknown side"):
        r.record_answer("c", "y", now=at(3))
    with pytest.raises(Conflict, match="no answer is expected"):
        anonymous().record_answer("a", "x", now=at(1))


def test_regenerate_reanswers_the_last_turn_on_both_sides():
    b = answered(anonymous(), "Tell me a joke")
    with pytest.raises(BadRequest):
        anonymous().regenerate(now=at(1))
    r = b.regenerate(now=at(5))
    assert r.state is BattleState.STREAMING
    assert r.turns[-1].prompt == "Tell me a joke" and r.turns[-1].answers == ()
    assert r.turns[-1].regenerations == 1 and len(r.turns) == 1
    with pytest.raises(BadRequest):
        r.regenerate(now=at(6))  # still streaming
    r = r.record_answer("b", "new b", now=at(6)).record_answer("a", "new a", now=at(7))
    assert r.state is BattleState.READY
    assert r.turns[-1].answer("a").text == "new a"
    assert b.turns[-1].answer("a").text == "Answer a: 4.", "transitions never mutate"


def test_public_view_names_nothing_before_the_vote():
    b = answered(anonymous())
    b = b.start_turn("Who made you?", now=at(5))
    b = b.record_answer("a", "I am a helpful assistant.", now=at(6))
    b = b.record_answer(
        "b", "", now=at(7), finish_reason=None, error="upstream llama-3-70b-instruct: HTTP 500"
    )
    view = b.public_view()
    text = json.dumps(view).lower()
    for secret in (*MODELS, "claude", "llama", "anthropic", "meta"):
        assert secret not in text
    assert view["turns"][1]["answers"][1]["text"] == ANSWER_FAILED_NOTICE
    assert view["turns"][1]["answers"][1]["failed"] is True
    assert [s["label"] for s in view["sides"]] == ["Model A", "Model B"]
    with pytest.raises(Forbidden):
        b.revealed_view()
    # Closing without a vote does not reveal either.
    with pytest.raises(Forbidden):
        b.close(now=at(9)).revealed_view()

    b = b.regenerate(now=at(8)).record_answer("a", "Again.", now=at(9))
    b = b.record_answer("b", "I am an assistant.", now=at(9))
    voted = b.vote("a_better", now=at(10))
    revealed = voted.revealed_view()
    assert [s["model"] for s in revealed["sides"]] == list(MODELS)
    assert voted.public_view()["sides"][0]["model"] == MODELS[0]

    # Named chats show the raw upstream error once the names are known anyway.
    named = Battle.create("side_by_side", MODELS, now=T0).start_turn("hi", now=at(1))
    named = named.record_answer("a", "", now=at(2), finish_reason=None, error="HTTP 500 llama")
    assert "llama" in named.revealed_view()["turns"][0]["answers"][0]["error"]


def test_a_failed_answer_takes_no_vote_until_a_regenerate_replaces_it():
    b = anonymous().start_turn("hi", now=at(1)).record_answer("a", "Hello.", now=at(2))
    b = b.record_answer("b", "", now=at(3), finish_reason=None, error="timeout")
    assert b.state is BattleState.READY and b.answer_failed
    assert not b.can_vote and not b.can_continue and b.can_regenerate
    view = b.public_view()
    assert view["notice"] == FAILED_BATTLE_NOTICE and view["can_vote"] is False
    with pytest.raises(BadRequest) as refused:
        b.vote("a_better", now=at(4))
    assert refused.value.code == "answer_failed"
    with pytest.raises(BadRequest) as refused:
        b.start_turn("go on", now=at(4))
    assert refused.value.code == "answer_failed"

    fixed = b.regenerate(now=at(5)).record_answer("b", "Hi!", now=at(6))
    fixed = fixed.record_answer("a", "Hello again.", now=at(6))
    assert fixed.can_vote and fixed.public_view()["notice"] is None
    outcome = fixed.vote("tie", now=at(7)).outcome()
    assert outcome.counts_for_ratings and not outcome.answer_failed
    # Even a failed battle forced past the guard never counts.
    forced = replace(b, state=BattleState.VOTED, vote_choice=VoteChoice.TIE, voted_at=at(8))
    assert forced.outcome().answer_failed and not forced.outcome().counts_for_ratings


def test_anonymous_image_acceptance_follows_the_declared_kind_only():
    text_battle = anonymous()
    for models_see_images in (True, False):
        with pytest.raises(BadRequest) as refused:
            text_battle.check_images(models_see_images=models_see_images)
        assert refused.value.code == "text_only_battle"
        assert refused.value.message == TEXT_BATTLE_IMAGE_REFUSAL
    vision_battle = Battle.create("battle", MODELS, now=T0, vision=True)
    assert vision_battle.public_view()["vision"] is True
    vision_battle.check_images(models_see_images=False)  # declared: taken
    named = Battle.create("side_by_side", MODELS, now=T0)
    named.check_images(models_see_images=True)
    with pytest.raises(BadRequest, match="cannot see images"):
        named.check_images(models_see_images=False)


def test_anonymous_views_show_finish_reasons_only_after_the_vote():
    b = anonymous().start_turn("hi", now=at(1))
    b = b.record_answer("a", "x", now=at(2), finish_reason="end_turn")
    b = b.record_answer("b", "y", now=at(2), finish_reason="length")
    reasons = [a["finish_reason"] for a in b.public_view()["turns"][0]["answers"]]
    assert reasons == [None, None]
    voted = b.vote("tie", now=at(3))
    reasons = [a["finish_reason"] for a in voted.revealed_view()["turns"][0]["answers"]]
    assert reasons == ["end_turn", "length"]


def test_identity_leak_flags_the_vote_and_warns_before_voting():
    b = anonymous().start_turn("who are you", now=at(1))
    b = b.record_answer("a", "I'm Claude, made by Anthropic.", now=at(2))
    b = b.flag_identity_leak("a", "claude", now=at(2))
    assert b.flag_identity_leak("a", "claude", now=at(2)) is b
    b = b.record_answer("b", "I am an AI assistant.", now=at(3))
    view = b.public_view()
    assert view["identity_leaked"] is True and view["notice"] == LEAK_NOTICE
    assert "leaks" not in view
    voted = b.vote("a_better", now=at(4))
    outcome = voted.outcome()
    assert outcome.leaked and outcome.leak_terms == ("claude",)
    assert not outcome.counts_for_ratings, "leaked votes are stored but not rated"
    assert voted.revealed_view()["leaks"] == [{"side": "a", "term": "claude"}]


def test_named_side_by_side_shows_names_and_votes_are_not_anonymous():
    b = Battle.create("side_by_side", MODELS, now=T0)
    assert b.public_view()["sides"][1]["model"] == MODELS[1]
    assert b.revealed_view()["state"] == "created"
    outcome = answered(b).vote("tie", now=at(5)).outcome()
    assert not outcome.anonymous and not outcome.counts_for_ratings


def test_direct_chat_takes_feedback_only():
    d = Battle.create(BattleMode.DIRECT, ["llama-3-70b-instruct"], now=T0)
    assert d.sides == ("a",)
    d = d.start_turn("hi", now=at(1)).record_answer("a", "hello", now=at(2))
    assert d.state is BattleState.READY
    with pytest.raises(BadRequest):
        d.vote(VoteChoice.A_BETTER, now=at(3))
    with pytest.raises(BadRequest, match="upvote"):
        d.vote("a_better", now=at(3))
    with pytest.raises(BadRequest, match="unknown side"):
        d.start_turn("x", now=at(1)).record_answer("b", "x", now=at(2))
    flagged = d.vote("flag", now=at(3))
    out = flagged.outcome()
    assert out.choice is Feedback.FLAG and out.winner is None and not out.counts_for_ratings
    assert parse_vote(BattleMode.DIRECT, "downvote") is Feedback.DOWNVOTE


def test_new_round_closes_the_old_battle_and_starts_fresh():
    b = answered(anonymous())
    with pytest.raises(ValueError):
        b.new_round(now=at(5))
    nr = b.new_round(now=at(5), models=("gpt-4o", "gemini-1.5-pro"))
    assert nr.previous.state is BattleState.CLOSED and nr.previous.closed_at == at(5)
    with pytest.raises(Conflict, match="closed"):
        nr.previous.vote("tie", now=at(6))
    assert nr.current.state is BattleState.CREATED and nr.current.turns == ()
    assert nr.current.battle_id != b.battle_id and nr.current.max_turns == b.max_turns
    voted = answered(Battle.create("side_by_side", MODELS, now=T0)).vote("tie", now=at(3))
    nr = voted.new_round(now=at(4))
    assert nr.previous.state is BattleState.VOTED and nr.current.models == MODELS


def test_creation_is_validated_and_ids_are_opaque():
    with pytest.raises(BadRequest, match="2 model"):
        Battle.create("battle", ["only-one"], now=T0)
    with pytest.raises(BadRequest, match="different"):
        Battle.create("battle", ["same", "same"], now=T0)
    with pytest.raises(ValueError):
        Battle.create("battle", MODELS, now=T0, max_turns=0)
    ids = {new_battle_id() for _ in range(100)}
    assert len(ids) == 100 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert all(m not in anonymous().battle_id for m in MODELS)
