"""Flagged voters: who they are (keyed hashes, never the session cookie), reading and
replacing the flags the anomalous-voter screen writes, and the one rule that decides which
votes the flags exclude.

A vote has two voter identities, judged apart: its session (``voter_kind`` "session", a
one-way hash of the session id, :func:`session_judge`) and its keyed IP hash (``voter_kind``
"ip"). A vote is excluded when its session hash is flagged as a session OR its IP hash is
flagged as an IP (:class:`FlaggedIdentities`), so neither rotating IPs under one session nor
opening a session per vote behind one IP escapes the screen. The clean-battle export's
``judge`` stays one value per vote (the IP hash, else the session hash): :func:`judge_value`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from arena.store.db import Database
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


def session_judge(session_id: str | None) -> str | None:
    """A stable voter id from a session id. The session id itself is the visitor's cookie,
    so it must never appear in a published dataset: a one-way hash of it goes out instead."""
    if not session_id:
        return None
    return "s" + hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class FlaggedIdentities:
    """The flagged session hashes and IP hashes: what every reader of votes (exports,
    leaderboards, the release) leaves out by default. Empty means "exclude nothing"."""

    sessions: frozenset[str] = frozenset()
    ips: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.sessions or self.ips)

    def flags_hashes(self, ip_hash: str | None, session_hash: str | None) -> bool:
        """Whether a vote with these identities (the session already hashed) is excluded."""
        return bool(
            (ip_hash and ip_hash in self.ips) or (session_hash and session_hash in self.sessions)
        )

    def excludes(self, ip_hash: str | None, session_id: str | None) -> bool:
        """Whether a stored vote (its IP hash, its raw session id) is excluded."""
        if ip_hash and ip_hash in self.ips:
            return True
        return bool(self.sessions) and session_judge(session_id) in self.sessions


def load_flagged_identities(db: Database) -> FlaggedIdentities:
    """Every stored flag, split by kind, in one query."""
    sessions: set[str] = set()
    ips: set[str] = set()
    with db.session(read_only=True) as session:
        for kind, voter_hash in session.execute(select(VoterFlag.voter_kind, VoterFlag.voter_hash)):
            if kind == "session":
                sessions.add(voter_hash)
            elif kind == "ip":
                ips.add(voter_hash)
    return FlaggedIdentities(frozenset(sessions), frozenset(ips))


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
