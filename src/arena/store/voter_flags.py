"""Flagged voters: who they are (a keyed hash, never the session cookie), reading and
replacing the flags the anomalous-voter screen writes.

A voter is what the clean-battle export calls the ``judge``: the vote's keyed IP hash, else a
hash of its session id (``arena.store.export``). ``voter_hash`` holds that value without the
export's ``arena_user_`` prefix (the column holds 64 characters, an IP hash alone fills it);
:func:`judge_value` and :func:`flagged_judges` give the exact ``judge`` strings of the export.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from arena.store.db import Database
from arena.store.export import session_judge
from arena.store.models import utcnow
from arena.store.pipeline_tables import VOTER_KINDS, VoterFlag

JUDGE_PREFIX = "arena_user_"


@dataclass(frozen=True)
class FlaggedVoter:
    """One flag as stored."""

    voter_kind: str
    voter_hash: str
    votes: int
    statistic: float
    p_value: float
    reason: str
    screen_version: str
    flagged_at: datetime | None = None

    @property
    def judge(self) -> str:
        return judge_value(self.voter_hash)


def voter_identity(ip_hash: str | None, session_id: str | None) -> tuple[str, str] | None:
    """(voter_kind, voter_hash) of a vote, as the export's ``judge`` names it; None for a
    vote with neither an IP hash nor a session (the export calls it anonymous)."""
    if ip_hash:
        return "ip", ip_hash
    session = session_judge(session_id)
    return ("session", session) if session else None


def judge_value(voter_hash: str) -> str:
    """The clean-battle ``judge`` value of a voter hash."""
    return f"{JUDGE_PREFIX}{voter_hash}"


def replace_voter_flags(db: Database, flags: Iterable[FlaggedVoter]) -> int:
    """Replace every stored flag with ``flags`` in one transaction (a screen judges all
    voters afresh, so a voter no longer flagged loses the flag). Returns the number stored."""
    rows = []
    now = utcnow()
    for flag in flags:
        if flag.voter_kind not in VOTER_KINDS:
            raise ValueError(f"voter_kind must be one of {VOTER_KINDS}, got {flag.voter_kind!r}")
        rows.append(
            VoterFlag(
                voter_kind=flag.voter_kind,
                voter_hash=flag.voter_hash,
                votes=flag.votes,
                statistic=float(flag.statistic),
                p_value=float(flag.p_value),
                reason=flag.reason,
                screen_version=flag.screen_version,
                flagged_at=flag.flagged_at or now,
            )
        )
    with db.session() as session:
        session.execute(delete(VoterFlag))
        session.add_all(rows)
    return len(rows)


def list_voter_flags(db: Database) -> list[FlaggedVoter]:
    """Every stored flag, most suspicious (smallest p-value) first."""
    with db.session(read_only=True) as session:
        rows = session.scalars(
            select(VoterFlag).order_by(VoterFlag.p_value, VoterFlag.voter_hash)
        ).all()
        return [
            FlaggedVoter(
                r.voter_kind,
                r.voter_hash,
                r.votes,
                r.statistic,
                r.p_value,
                r.reason,
                r.screen_version,
                r.flagged_at,
            )
            for r in rows
        ]


def flagged_judges(db: Database) -> frozenset[str]:
    """The clean-battle ``judge`` values of every flagged voter (what the export leaves out)."""
    with db.session(read_only=True) as session:
        hashes = session.scalars(select(VoterFlag.voter_hash)).all()
    return frozenset(judge_value(h) for h in hashes)
