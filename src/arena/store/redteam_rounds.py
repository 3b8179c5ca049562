"""Rounds of the red-team game in the store: start, one turn at a time, end, read back.

Every rule that two replicas could race on is decided inside one transaction on the round's
row: a turn is claimed with a conditional UPDATE (active, before its deadline, under its turn
limit, not already streaming), so two tabs, or two replicas, cannot both send a turn. A won
round whose attack (its normalised user prompts) already won against the same model on the
same challenge is marked ``duplicate_of`` that round: it shows as won, but the ratings count
the attack once.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from arena.errors import Conflict, NotFound
from arena.store.db import Database
from arena.store.models import utcnow
from arena.store.records import new_token
from arena.store.redteam_tables import RedTeamRound, RedTeamTurn
from arena.store.release_opt_outs import session_release_state

ROUNDS = RedTeamRound.__table__
TURNS = RedTeamTurn.__table__


@dataclass(frozen=True, slots=True)
class TurnContent:
    """What one turn holds: the attack, the answer, what the checks found, its timings."""

    prompt: str
    prompt_hash: str
    answer: str
    finish_reason: str | None
    detection: dict[str, Any] | None
    judge: dict[str, Any] | None
    started_at: datetime
    first_token_at: datetime | None
    finished_at: datetime


@dataclass(frozen=True, slots=True)
class TurnRecord(TurnContent):
    """A stored turn, numbered from 1 within its round."""

    turn: int


@dataclass(frozen=True, slots=True)
class RoundRecord:
    id: str
    player_id: str
    challenge_id: str
    challenge_kind: str
    challenge: dict[str, Any]
    model: str
    system_prompt: str | None
    secret_core: str | None
    status: str
    end_reason: str | None
    success_turn: int | None
    success_method: str | None
    attack_hash: str | None
    duplicate_of: str | None
    turns: int
    turn_limit: int
    time_limit_s: float
    started_at: datetime
    deadline_at: datetime
    ended_at: datetime | None
    busy_until: datetime | None
    session_id: str | None = None
    release_excluded: bool = False
    history: tuple[TurnRecord, ...] = field(default=())

    @property
    def ended(self) -> bool:
        return self.status != "active"


def _round(row: Any, history: Sequence[TurnRecord] = ()) -> RoundRecord:
    m = row._mapping
    return RoundRecord(
        id=m["id"],
        player_id=m["player_id"],
        challenge_id=m["challenge_id"],
        challenge_kind=m["challenge_kind"],
        challenge=dict(m["challenge"] or {}),
        model=m["model"],
        system_prompt=m["system_prompt"],
        secret_core=m["secret_core"],
        status=m["status"],
        end_reason=m["end_reason"],
        success_turn=m["success_turn"],
        success_method=m["success_method"],
        attack_hash=m["attack_hash"],
        duplicate_of=m["duplicate_of"],
        turns=m["turns"],
        turn_limit=m["turn_limit"],
        time_limit_s=m["time_limit_s"],
        started_at=m["started_at"],
        deadline_at=m["deadline_at"],
        ended_at=m["ended_at"],
        busy_until=m["busy_until"],
        session_id=m["session_id"],
        release_excluded=bool(m["release_excluded"]),
        history=tuple(history),
    )


def _turn(row: Any) -> TurnRecord:
    m = row._mapping
    return TurnRecord(**{f.name: m[f.name] for f in fields(TurnRecord)})


def _history(conn: Connection, round_id: str) -> list[TurnRecord]:
    rows = conn.execute(select(TURNS).where(TURNS.c.round_id == round_id).order_by(TURNS.c.turn))
    return [_turn(r) for r in rows]


def _read(conn: Connection, round_id: str, *, with_history: bool = True) -> RoundRecord:
    row = conn.execute(select(ROUNDS).where(ROUNDS.c.id == round_id)).first()
    if row is None:
        raise NotFound("No such round.", param="round_id")
    return _round(row, _history(conn, round_id) if with_history else ())


# ---------------------------------------------------------------- rounds


def create_round(
    db: Database,
    *,
    player_id: str,
    session_id: str | None,
    ip_hash: str | None,
    challenge: dict[str, Any],
    model: str,
    system_prompt: str | None,
    secret_core: str | None,
    now: datetime | None = None,
) -> RoundRecord:
    """A new active round of ``challenge`` (its validated definition, as JSON)."""
    now = now or utcnow()
    with db.session() as session:
        conn = session.connection()
        excluded = False
        if session_id is not None:
            exists, excluded = session_release_state(conn, session_id)
            if not exists:
                raise NotFound("session not found", param="session_id")
        round_id = new_token()
        conn.execute(
            insert(ROUNDS).values(
                id=round_id,
                player_id=player_id,
                session_id=session_id,
                ip_hash=ip_hash,
                challenge_id=challenge["id"],
                challenge_kind=challenge["kind"],
                challenge=challenge,
                model=model,
                system_prompt=system_prompt,
                secret_core=secret_core,
                status="active",
                turns=0,
                turn_limit=int(challenge["turn_limit"]),
                time_limit_s=float(challenge["time_limit_s"]),
                started_at=now,
                deadline_at=now + timedelta(seconds=float(challenge["time_limit_s"])),
                release_excluded=excluded,
            )
        )
        return _read(conn, round_id)


def load_round(db: Database, round_id: str, player_id: str) -> RoundRecord:
    """The player's round with its turns; another player's round is simply not found."""
    with db.session(read_only=True) as session:
        record = _read(session.connection(), round_id)
    if not hmac.compare_digest(record.player_id, player_id):
        raise NotFound("No such round.", param="round_id")
    return record


def _end(conn: Connection, record: RoundRecord, status: str, reason: str, now: datetime) -> None:
    conn.execute(
        update(ROUNDS)
        .where(ROUNDS.c.id == record.id, ROUNDS.c.status == "active")
        .values(status=status, end_reason=reason, ended_at=now, busy_until=None)
    )


def end_round(
    db: Database, round_id: str, player_id: str, *, reason: str, now: datetime | None = None
) -> RoundRecord:
    """End an active round as lost (``gave_up`` or ``time_limit``); an ended round is
    returned as it is, so a repeated request is harmless."""
    now = now or utcnow()
    with db.session() as session:
        conn = session.connection()
        record = _read(conn, round_id, with_history=False)
        if not hmac.compare_digest(record.player_id, player_id):
            raise NotFound("No such round.", param="round_id")
        if not record.ended:
            if reason == "gave_up" and record.busy_until is not None and record.busy_until > now:
                raise _busy()
            _end(conn, record, "lost", reason, now)
        return _read(conn, round_id)


def expire_if_due(db: Database, round_id: str, *, now: datetime | None = None) -> bool:
    """End the round as lost on time when its deadline passed with no turn streaming."""
    now = now or utcnow()
    with db.session() as session:
        result = session.connection().execute(
            update(ROUNDS)
            .where(
                ROUNDS.c.id == round_id,
                ROUNDS.c.status == "active",
                ROUNDS.c.deadline_at <= now,
                or_(ROUNDS.c.busy_until.is_(None), ROUNDS.c.busy_until <= now),
            )
            .values(status="lost", end_reason="time_limit", ended_at=now, busy_until=None)
        )
        return result.rowcount == 1


def claim_turn(
    db: Database, round_id: str, player_id: str, *, hold_s: float, now: datetime | None = None
) -> RoundRecord:
    """Hold the round for one turn. ``Conflict`` (with a code) when it is over, out of time or
    turns, or already streaming a turn; a round found out of time or turns is ended first."""
    now = now or utcnow()
    refusal: Conflict | None = None
    with db.session() as session:
        conn = session.connection()
        record = _read(conn, round_id)
        if not hmac.compare_digest(record.player_id, player_id):
            raise NotFound("No such round.", param="round_id")
        if record.ended:
            raise Conflict("This round is over; start a new one.", code="round_over")
        if record.busy_until is not None and record.busy_until > now:
            raise _busy()
        if record.deadline_at <= now:
            _end(conn, record, "lost", "time_limit", now)
            refusal = Conflict("Time is up: this round is over.", code="round_over")
        elif record.turns >= record.turn_limit:
            _end(conn, record, "lost", "turn_limit", now)
            refusal = Conflict("No turns left: this round is over.", code="round_over")
        else:
            claimed = conn.execute(
                update(ROUNDS)
                .where(
                    ROUNDS.c.id == round_id,
                    ROUNDS.c.status == "active",
                    ROUNDS.c.turns == record.turns,
                    or_(ROUNDS.c.busy_until.is_(None), ROUNDS.c.busy_until <= now),
                )
                .values(busy_until=now + timedelta(seconds=hold_s))
            )
            if claimed.rowcount != 1:
                raise _busy()
    if refusal is not None:  # raised after the commit, so the round stays ended
        raise refusal
    return record


def _busy() -> Conflict:
    return Conflict(
        "An answer is still streaming; wait for it before sending.", code="turn_in_progress"
    )


def release_turn(db: Database, round_id: str) -> None:
    """The claimed turn produced nothing to keep (the model failed, the client left early)."""
    with db.session() as session:
        session.connection().execute(
            update(ROUNDS).where(ROUNDS.c.id == round_id).values(busy_until=None)
        )


@dataclass(frozen=True, slots=True)
class TurnResult(TurnContent):
    """A finished turn to store, and whether it won the round."""

    success_method: str | None = None  # set when this answer won the round
    attack_hash: str | None = None  # the round's attack signature, when it won


def record_turn(db: Database, round_id: str, result: TurnResult) -> RoundRecord:
    """Store the turn, count it, release the round, and end it when won, out of turns or
    past its deadline. A win whose attack already won (same challenge and model) is marked
    as a duplicate of the first."""
    with db.session() as session:
        conn = session.connection()
        record = _read(conn, round_id, with_history=False)
        number = record.turns + 1
        conn.execute(
            insert(TURNS).values(
                round_id=round_id,
                turn=number,
                **{f.name: getattr(result, f.name) for f in fields(TurnContent)},
            )
        )
        values: dict[str, Any] = {"turns": number, "busy_until": None}
        if record.ended:
            pass  # ended meanwhile (cannot normally happen: the claim holds the round)
        elif result.success_method is not None:
            values.update(
                status="won",
                end_reason="success",
                ended_at=result.finished_at,
                success_turn=number,
                success_method=result.success_method,
                attack_hash=result.attack_hash,
                duplicate_of=_first_win(conn, record, result.attack_hash),
            )
        elif number >= record.turn_limit:
            values.update(status="lost", end_reason="turn_limit", ended_at=result.finished_at)
        elif record.deadline_at <= result.finished_at:
            values.update(status="lost", end_reason="time_limit", ended_at=result.finished_at)
        conn.execute(update(ROUNDS).where(ROUNDS.c.id == round_id).values(**values))
        return _read(conn, round_id)


def _first_win(conn: Connection, record: RoundRecord, attack_hash: str | None) -> str | None:
    if attack_hash is None:
        return None
    row = conn.execute(
        select(ROUNDS.c.id)
        .where(
            ROUNDS.c.challenge_id == record.challenge_id,
            ROUNDS.c.model == record.model,
            ROUNDS.c.attack_hash == attack_hash,
            ROUNDS.c.status == "won",
            ROUNDS.c.duplicate_of.is_(None),
            ROUNDS.c.id != record.id,
        )
        .order_by(ROUNDS.c.ended_at, ROUNDS.c.id)
        .limit(1)
    ).first()
    return row[0] if row else None


# ---------------------------------------------------------------- reading many


# The rounds the boards rate: over, and with at least one answer.
_RATED = (ROUNDS.c.status != "active", ROUNDS.c.turns > 0)


@dataclass(frozen=True, slots=True)
class RatedRound:
    player_id: str
    model: str
    challenge_id: str
    success: bool


def rated_rounds(db: Database, *, include_duplicates: bool = False) -> list[RatedRound]:
    """Ended rounds for the ratings; a duplicate win counts once (its first round). A round
    ended before any answer (given up, or out of time, with no turn) says nothing about the
    model and is left out."""
    query = select(
        ROUNDS.c.player_id, ROUNDS.c.model, ROUNDS.c.challenge_id, ROUNDS.c.status
    ).where(*_RATED)
    if not include_duplicates:
        query = query.where(ROUNDS.c.duplicate_of.is_(None))
    with db.session(read_only=True) as session:
        rows = session.connection().execute(query.order_by(ROUNDS.c.ended_at, ROUNDS.c.id))
        return [RatedRound(r.player_id, r.model, r.challenge_id, r.status == "won") for r in rows]


def ended_round_count(db: Database) -> int:
    """A cheap change marker for cached boards: the rounds they rate, so far (a round that
    ends without an answer changes nothing on them)."""
    with db.session(read_only=True) as session:
        query = select(func.count()).select_from(ROUNDS).where(*_RATED)
        return int(session.connection().execute(query).scalar_one())


def iter_ended_rounds(
    db: Database, *, batch: int = 500, include_excluded: bool = False
) -> Iterator[RoundRecord]:
    """Every ended round with its turns, oldest first, in batches (exports)."""
    last: tuple[Any, str] | None = None
    while True:
        query = select(ROUNDS).where(ROUNDS.c.status != "active")
        if not include_excluded:
            query = query.where(ROUNDS.c.release_excluded.is_(False))
        if last is not None:
            query = query.where(
                or_(
                    ROUNDS.c.ended_at > last[0],
                    and_(ROUNDS.c.ended_at == last[0], ROUNDS.c.id > last[1]),
                )
            )
        query = query.order_by(ROUNDS.c.ended_at, ROUNDS.c.id).limit(batch)
        with db.session(read_only=True) as session:
            conn = session.connection()
            rows = list(conn.execute(query))
            records = [_round(r, _history(conn, r._mapping["id"])) for r in rows]
        yield from records
        if len(rows) < batch:
            return
        last = (records[-1].ended_at, records[-1].id)
