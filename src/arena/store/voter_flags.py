"""Flagged voters: who they are (keyed hashes, never the session cookie), reading and
replacing the flags the anomalous-voter screen writes, and the one rule that decides which
votes the flags exclude.

A vote has two voter identities, judged apart: its session (``voter_kind`` "session", a
one-way hash of the session id, :func:`session_judge`, stored with the vote as
``votes.session_hash`` so it outlives the session row) and its keyed IP hash (``voter_kind``
"ip"). A vote is excluded when its session is flagged, OR its IP is flagged and its session
was not tested and cleared by the same screen (:meth:`FlaggedIdentities.excludes_vote`): so
neither rotating IPs under one session nor opening a session per vote behind one IP escapes
the screen, while an honest session the screen judged on its own votes keeps them behind a
flagged shared IP (a NAT). The clean-battle export's ``judge`` stays one value per vote (the
IP hash, else the session hash): :func:`judge_value`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select

from arena.store.db import Database
from arena.store.models import utcnow
from arena.store.pipeline_tables import VOTER_KINDS, VoterClearedSession, VoterFlag

JUDGE_PREFIX = "arena_user_"
_INSERT_BATCH = 10_000


@dataclass(frozen=True)
class FlaggedVoter:
    """One flag as stored. ``p_value`` is adjusted for the screen's tests and for its two
    identity groupings, so a voter is flagged exactly when ``p_value <= alpha``."""

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
    """The flagged session hashes and IP hashes, and the session hashes the same screen
    tested and cleared: what every reader of votes (exports, leaderboards, the release)
    needs to leave flagged votes out. No flags means "exclude nothing"."""

    sessions: frozenset[str] = frozenset()
    ips: frozenset[str] = frozenset()
    cleared_sessions: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.sessions or self.ips)

    def excludes_vote(self, ip_hash: str | None, session_hash: str | None) -> bool:
        """Whether a vote with these identities (its stored ``session_hash``, never the raw
        session id) is excluded: its session is flagged, or its IP is flagged and its
        session was not cleared (a vote without a session goes with its IP)."""
        if session_hash and session_hash in self.sessions:
            return True
        if not (ip_hash and ip_hash in self.ips):
            return False
        return not (session_hash and session_hash in self.cleared_sessions)


def load_flagged_identities(db: Database) -> FlaggedIdentities:
    """Every stored flag, split by kind, and the cleared sessions (read only when an IP is
    flagged: they matter for nothing else)."""
    sessions: set[str] = set()
    ips: set[str] = set()
    cleared: frozenset[str] = frozenset()
    with db.session(read_only=True) as session:
        for kind, voter_hash in session.execute(select(VoterFlag.voter_kind, VoterFlag.voter_hash)):
            if kind == "session":
                sessions.add(voter_hash)
            elif kind == "ip":
                ips.add(voter_hash)
        if ips:
            cleared = frozenset(session.scalars(select(VoterClearedSession.session_hash)))
    return FlaggedIdentities(frozenset(sessions), frozenset(ips), cleared)


def judge_value(voter_hash: str) -> str:
    """The clean-battle ``judge`` value of a voter hash."""
    return f"{JUDGE_PREFIX}{voter_hash}"


def replace_voter_flags(
    db: Database,
    flags: Iterable[FlaggedVoter],
    *,
    cleared_sessions: Iterable[str] = (),
    screen_version: str | None = None,
) -> int:
    """Replace every stored flag with ``flags`` and every cleared session with
    ``cleared_sessions`` (screened by ``screen_version``), in one transaction: a screen
    judges all voters afresh, so a voter no longer flagged loses the flag, and readers never
    see one screen's flags with another's cleared sessions. Returns the flags stored."""
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
    cleared = [
        {"session_hash": h, "screen_version": screen_version, "screened_at": now}
        for h in sorted(set(cleared_sessions))
    ]
    if cleared and not screen_version:
        raise ValueError("cleared sessions need the screen_version that cleared them")
    with db.session() as session:
        session.execute(delete(VoterFlag))
        session.execute(delete(VoterClearedSession))
        session.add_all(rows)
        session.flush()
        for start in range(0, len(cleared), _INSERT_BATCH):
            session.execute(insert(VoterClearedSession), cleared[start : start + _INSERT_BATCH])
    return len(rows)


def list_cleared_sessions(db: Database) -> frozenset[str]:
    """The session hashes the newest screen tested and cleared."""
    with db.session(read_only=True) as session:
        return frozenset(session.scalars(select(VoterClearedSession.session_hash)))


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
