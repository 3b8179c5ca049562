"""What a client may see of a battle: ``public_view``, ``revealed_view`` and the notices.

``public_view`` is what a browser may see at any time; for an anonymous battle before its
vote it holds no model names, organizations, raw upstream errors, finish reasons (an
upstream's own word for them, or a model's token limit, tells models apart) or anything
else that maps to them (only the models' own words, which is why identity leaks are
flagged). ``revealed_view`` adds the names and is refused until the vote is in.

Notices travel twice: as English text for API clients (``notice``) and as a stable code
(``notice_code``, one of ``NOTICES``) that the pages translate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arena.battles.battle_types import BattleState, Turn
from arena.errors import Forbidden

if TYPE_CHECKING:
    from arena.battles.battle import Battle

LEAK_NOTICE = (
    "One of the answers reveals which model wrote it. You can still vote, but this vote "
    "will not count toward the leaderboard."
)
ANSWER_FAILED_NOTICE = "This model could not answer. You can regenerate or start a new round."
FAILED_BATTLE_NOTICE = (
    "An answer failed, so this round cannot be voted on. Regenerate the answers or start a "
    "new round."
)
# Stable codes of the notices (the web pages show their own translated wording).
NOTICE_ANSWER_FAILED = "answer_failed"
NOTICE_IDENTITY_LEAK = "identity_leak"
NOTICES = {NOTICE_ANSWER_FAILED: FAILED_BATTLE_NOTICE, NOTICE_IDENTITY_LEAK: LEAK_NOTICE}


def public_view(battle: Battle) -> dict[str, Any]:
    """What the browser may see now. Anonymous battles name nothing before the vote."""
    code = notice_code(battle)
    view: dict[str, Any] = {
        "battle_id": battle.battle_id,
        "mode": battle.mode.value,
        "state": battle.state.value,
        "max_turns": battle.max_turns,
        "turns_left": max(0, battle.max_turns - len(battle.turns)),
        "can_vote": battle.can_vote,
        "can_regenerate": battle.can_regenerate,
        "can_continue": battle.can_continue,
        "identity_leaked": battle.leaked,
        "notice": NOTICES.get(code) if code else None,
        "notice_code": code,
        "vision": battle.vision,
        "vote": battle.vote_choice.value if battle.vote_choice is not None else None,
        "sides": [{"side": side, "label": f"Model {side.upper()}"} for side in battle.sides],
        "turns": [_public_turn(battle, t) for t in battle.turns],
    }
    if battle.revealed:
        view["sides"] = _named_sides(battle)
    return view


def revealed_view(battle: Battle) -> dict[str, Any]:
    """The full view with names (and leak terms, raw errors) — only once revealed."""
    if not battle.revealed:
        raise Forbidden("model names are shown after you vote", code="not_revealed")
    view = public_view(battle)
    view["leaks"] = [{"side": leak.side, "term": leak.term} for leak in battle.leaks]
    for public_turn, turn in zip(view["turns"], battle.turns, strict=True):
        for entry in public_turn["answers"]:
            answer = turn.answer(entry["side"])
            entry["error"] = answer.error if answer else None
    return view


def notice_code(battle: Battle) -> str | None:
    """What the battle's notice is about (a key of ``NOTICES``), or None."""
    if battle.answer_failed and battle.state is BattleState.READY:
        return NOTICE_ANSWER_FAILED
    if battle.leaked and battle.anonymous:
        return NOTICE_IDENTITY_LEAK
    return None


def _named_sides(battle: Battle) -> list[dict[str, Any]]:
    return [
        {"side": side, "label": f"Model {side.upper()}", "model": model}
        for side, model in zip(battle.sides, battle.models, strict=True)
    ]


def _public_turn(battle: Battle, turn: Turn) -> dict[str, Any]:
    answers = []
    for side in battle.sides:
        answer = turn.answer(side)
        if answer is None:
            answers.append({"side": side, "text": None, "pending": True, "failed": False})
            continue
        answers.append(
            {
                "side": side,
                # A failed side shows a neutral notice; the raw upstream error might
                # name the model, so it stays out of the public view.
                "text": ANSWER_FAILED_NOTICE if answer.failed else answer.text,
                "pending": False,
                "failed": answer.failed,
                # Shown once the names are: "length" hits a model's own token limit,
                # and upstreams name the rest in words of their own ("end_turn", "eos").
                "finish_reason": answer.finish_reason if battle.revealed else None,
            }
        )
    return {
        "prompt": turn.prompt,
        "image_ids": list(turn.image_ids),
        "regenerations": turn.regenerations,
        "answers": answers,
    }
