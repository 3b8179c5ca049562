"""Between the stored rows of a battle and the ``arena.battles.battle.Battle`` value.

The store keeps messages, not state: every user message opens a turn, the newest assistant
message after it on each side is that side's answer (older ones were regenerated), a vote
row means voted. The state machine's value is rebuilt from those rows on every request,
so any web process can serve any battle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from arena.battles.battle import Battle
from arena.battles.battle_types import (
    Answer,
    BattleMode,
    BattleState,
    IdentityLeak,
    Turn,
    VoteChoice,
)
from arena.store.battles import battle_snapshot
from arena.store.db import Database
from arena.store.records import MessageInfo

INTERRUPTED = "interrupted: the answer never finished"
T = TypeVar("T")

# Store vote types <-> state machine choices.
VOTE_TO_CHOICE = {
    "a": VoteChoice.A_BETTER,
    "b": VoteChoice.B_BETTER,
    "tie": VoteChoice.TIE,
    "bothbad": VoteChoice.BOTH_BAD,
}


@dataclass(frozen=True, slots=True)
class StoredBattle:
    battle: Battle
    session_id: str | None
    conversation_ids: dict[str, str]
    answer_message_ids: dict[str, int]  # newest answer per side in the last turn


def encode_leaks(leaks: tuple[IdentityLeak, ...]) -> str:
    return "\n".join(f"{leak.side}:{leak.term}" for leak in leaks)


def decode_leaks(text: str | None) -> tuple[IdentityLeak, ...]:
    out = []
    for line in (text or "").splitlines():
        side, _, term = line.partition(":")
        if side in ("a", "b") and term:
            out.append(IdentityLeak(side=side, term=term))
    return tuple(out)


def rebuild_battle(
    db: Any,
    battle_id: str,
    *,
    max_turns: int,
    now: datetime,
    in_flight: bool,
    stale_after_s: float,
) -> StoredBattle:
    """The battle's state from its rows, inside the caller's transaction (``db`` may be the
    handle ``in_one_transaction`` passes).

    ``in_flight``: this process is streaming it right now.

    A turn whose answers are missing is still streaming if this process says so, or (for
    another process) if the battle changed within ``stale_after_s``; otherwise the missing
    answers count as failed, so a crash never leaves a battle stuck.
    """
    snapshot = battle_snapshot(db, battle_id)
    info, conversations = snapshot.battle, snapshot.conversations
    mode = BattleMode(info.mode)
    by_side = {c.side: c for c in conversations if c.side}
    sides = mode.sides
    models = tuple(by_side[s].model for s in sides)

    # Turns from side a's user messages; answers per side by position in the turn.
    per_side_turns: dict[str, list[tuple[MessageInfo, list[MessageInfo]]]] = {}
    for side in sides:
        turns: list[tuple[MessageInfo, list[MessageInfo]]] = []
        for message in by_side[side].messages:
            if message.role == "user":
                turns.append((message, []))
            elif message.role == "assistant" and turns:
                turns[-1][1].append(message)
        per_side_turns[side] = turns
    n_turns = min(len(t) for t in per_side_turns.values())
    # Another process streams the turn while its lease is current; once the lease lapses
    # (that process died) the missing answers read as failed and the battle is usable.
    leased = info.turn_lease_until is not None and info.turn_lease_until > now
    recent = (now - info.updated_at) < timedelta(seconds=stale_after_s)
    still_streaming = in_flight or (leased and recent)

    turns_out: list[Turn] = []
    answer_ids: dict[str, int] = {}
    state = BattleState.CREATED
    for i in range(n_turns):
        user, _ = per_side_turns[sides[0]][i]
        answers: list[tuple[str, Answer]] = []
        regenerations = 0
        last = i == n_turns - 1
        for side in sides:
            replies = per_side_turns[side][i][1]
            if replies:
                newest = replies[-1]
                regenerations = max(regenerations, len(replies) - 1)
                answers.append(
                    (
                        side,
                        Answer(
                            text=newest.content,
                            finish_reason=newest.finish_reason,
                            error=newest.error,
                            finished_at=newest.finished_at,
                        ),
                    )
                )
                if last:
                    answer_ids[side] = newest.id
            elif not (last and still_streaming):
                answers.append((side, Answer(text="", error=INTERRUPTED)))
        turns_out.append(
            Turn(
                prompt=user.content,
                started_at=user.created_at,
                image_ids=user.image_hashes,
                answers=tuple(answers),
                regenerations=regenerations,
            )
        )
        state = BattleState.READY if len(answers) == len(sides) else BattleState.STREAMING

    vote_choice = None
    voted_at = None
    if info.status == "voted" and mode is not BattleMode.DIRECT:
        vote = snapshot.vote
        if vote is not None:
            vote_choice = VOTE_TO_CHOICE[vote.type]
            voted_at = vote.created_at
            state = BattleState.VOTED
    elif info.status == "closed":
        state = BattleState.CLOSED
    if (in_flight or (leased and recent)) and state is BattleState.READY:
        state = BattleState.STREAMING  # a regenerate is running, here or on a replica

    battle = Battle(
        battle_id=info.id,
        mode=mode,
        models=models,
        created_at=info.created_at,
        max_turns=max_turns,
        state=state,
        turns=tuple(turns_out),
        leaks=decode_leaks(info.leak_reason) if info.leaked else (),
        vote_choice=vote_choice,
        voted_at=voted_at,
        updated_at=info.updated_at,
        vision=info.vision,
    )
    return StoredBattle(
        battle=battle,
        session_id=info.session_id,
        conversation_ids={side: by_side[side].id for side in sides},
        answer_message_ids=answer_ids,
    )


def with_state(stored: StoredBattle, battle: Battle) -> StoredBattle:
    return replace(stored, battle=battle)


class _OneTransaction:
    """Stands in for ``Database`` so that several ``arena.store`` calls share one outer
    transaction (one commit, one fsync) instead of committing one by one. The store offers
    no batch write, and a turn's rows belong together anyway."""

    def __init__(self, db: Database, session: Session) -> None:
        self.engine = db.engine
        self.url = db.url
        self._session = session

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self, *, read_only: bool = False) -> Iterator[Session]:
        yield self._session  # the outer block commits or rolls back


def in_one_transaction(db: Database, work: Callable[[Any], T], *, read_only: bool = False) -> T:
    """Run ``work(db_like)``; every repository call inside shares one transaction, so
    writes commit together or not at all and reads see one snapshot. ``read_only`` for
    pure reads (on SQLite it does not take the write lock)."""
    with db.session(read_only=read_only) as session:
        return work(_OneTransaction(db, session))
