"""The anomalous-voter screen over the store: read the battle votes, screen every voter
against the current ratings (``arena.pipeline.anomalous_voters``), replace the stored flags.

The export leaves flagged voters' votes out of ratings by default, so the flags follow the
newest screen: a voter who is no longer flagged is cleared. A screen that changes who is
flagged marks the pipeline changed, so the live leaderboard is recomputed without them.
A store with nothing to judge (no votes, one model, only ties, nobody with ``min_votes``
votes) flags nobody and says why in ``skipped``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from arena.pipeline.anomalous_voters import (
    ALL_TIES,
    DEFAULT_ALPHA,
    DEFAULT_MIN_VOTES,
    SCREEN_VERSION,
    check_parameters,
    screen_voters,
)
from arena.store.db import Database
from arena.store.leaderboard_sets import mark_pipeline_changed
from arena.store.models import Battle, Vote
from arena.store.pipeline_tables import VoterFlag
from arena.store.voter_flags import FlaggedVoter, replace_voter_flags, voter_identity

_BATCH = 50_000
_TWO_MODEL_MODES = ("battle", "side_by_side")
_WINNERS = {"a": "model_a", "b": "model_b", "tie": "tie", "bothbad": "tie (bothbad)"}


@dataclass(frozen=True)
class StoredVotes:
    """Battle votes in vote order, with each vote's voter as ``kind:hash``."""

    voter: list[str]
    model_a: list[str]
    model_b: list[str]
    winner: list[str]
    anonymous: int


@dataclass(frozen=True)
class VoterScreenReport:
    """What a screen did: how many votes and voters it judged, whom it flagged and why."""

    votes: int
    voters: int
    tested_voters: int
    flagged_votes: int
    flags: tuple[FlaggedVoter, ...]
    by_test: tuple[tuple[str, int], ...]
    alpha: float
    min_votes: int
    anonymous_votes: int = 0
    skipped: str | None = None
    version: str = SCREEN_VERSION
    flags_changed: bool = False

    @property
    def flagged_voters(self) -> int:
        return len(self.flags)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the counts, and each flag with its reason (no timestamps)."""
        return {
            "votes": self.votes,
            "voters": self.voters,
            "tested_voters": self.tested_voters,
            "flagged_voters": self.flagged_voters,
            "flagged_votes": self.flagged_votes,
            "anonymous_votes": self.anonymous_votes,
            "by_test": dict(self.by_test),
            "alpha": self.alpha,
            "min_votes": self.min_votes,
            "skipped": self.skipped,
            "version": self.version,
            "flags_changed": self.flags_changed,
            "flags": [
                {
                    "voter_kind": f.voter_kind,
                    "voter_hash": f.voter_hash,
                    "votes": f.votes,
                    "p_value": f.p_value,
                    "reason": f.reason,
                }
                for f in self.flags
            ],
        }

    def summary(self) -> str:
        """One line for people: counts and the reasons by test."""
        if self.skipped:
            return f"voter screen skipped: {self.skipped}"
        tests = ", ".join(f"{n} {test}" for test, n in self.by_test) or "none"
        return (
            f"voter screen: {self.flagged_voters} of {self.tested_voters} voters with at least "
            f"{self.min_votes} votes flagged at alpha {self.alpha:g} ({self.flagged_votes} of "
            f"{self.votes} votes; by test: {tests})"
        )


def load_votes(db: Database) -> StoredVotes:
    """Every battle vote (two-model modes), read in batches in vote order."""
    voter: list[str] = []
    model_a: list[str] = []
    model_b: list[str] = []
    winner: list[str] = []
    anonymous = 0
    last_id = 0
    while True:
        query = (
            select(
                Vote.id, Vote.type, Vote.ip_hash, Vote.session_id, Battle.model_a, Battle.model_b
            )
            .join(Battle, Battle.id == Vote.battle_id)
            .where(
                Vote.message_id.is_(None),
                Vote.id > last_id,
                Battle.mode.in_(_TWO_MODEL_MODES),
                Battle.model_b.is_not(None),
            )
            .order_by(Vote.id)
            .limit(_BATCH)
        )
        with db.session(read_only=True) as session:
            rows = session.execute(query).all()
        for _id, kind, ip_hash, session_id, a, b in rows:
            identity = voter_identity(ip_hash, session_id)
            if identity is None or a == b:
                anonymous += identity is None
                continue
            voter.append(f"{identity[0]}:{identity[1]}")
            model_a.append(a)
            model_b.append(b)
            winner.append(_WINNERS[kind])
        if len(rows) < _BATCH:
            return StoredVotes(voter, model_a, model_b, winner, anonymous)
        last_id = rows[-1][0]


def run_voter_screen(
    db: Database,
    *,
    alpha: float = DEFAULT_ALPHA,
    min_votes: int = DEFAULT_MIN_VOTES,
    seed: int = 0,
) -> VoterScreenReport:
    """Screen every voter of the store and replace the stored flags with the result; when
    that changes who is flagged, mark the pipeline changed (the leaderboard recomputes).
    Raises :class:`arena.ratings.errors.RatingInputError` on an unusable alpha or min_votes."""
    check_parameters(alpha=alpha, min_votes=min_votes)
    votes = load_votes(db)
    n = len(votes.winner)
    before = flagged_identities(db)

    def skipped(why: str) -> VoterScreenReport:
        changed = _replace_flags(db, [], before)
        voters = len(set(votes.voter))
        return VoterScreenReport(
            n,
            voters,
            0,
            0,
            (),
            (),
            alpha,
            min_votes,
            votes.anonymous,
            skipped=why,
            flags_changed=changed,
        )

    if n == 0:
        return skipped("no battle votes with a known voter")
    if len(set(votes.model_a) | set(votes.model_b)) < 2:
        return skipped("the votes involve fewer than two models")
    if all(w.startswith("tie") for w in votes.winner):
        return skipped(ALL_TIES)
    result = screen_voters(
        votes.voter,
        votes.model_a,
        votes.model_b,
        votes.winner,
        alpha=alpha,
        min_votes=min_votes,
        seed=seed,
    )
    flags = []
    for verdict in result.flagged:
        kind, _, voter_hash = verdict.voter.partition(":")
        flags.append(
            FlaggedVoter(
                kind,
                voter_hash,
                verdict.votes,
                verdict.statistic,
                verdict.p_value,
                verdict.reason,
                result.version,
            )
        )
    if not result.verdicts:
        return skipped(result.note or "no voter could be judged")
    changed = _replace_flags(db, flags, before)
    flagged_votes = int(sum(f.votes for f in flags))
    by_test = Counter(v.test for v in result.flagged)
    return VoterScreenReport(
        votes=n,
        voters=result.voters,
        tested_voters=len(result.verdicts),
        flagged_votes=flagged_votes,
        flags=tuple(flags),
        by_test=tuple(sorted(by_test.items())),
        alpha=alpha,
        min_votes=min_votes,
        anonymous_votes=votes.anonymous,
        flags_changed=changed,
    )


def flagged_identities(db: Database) -> frozenset[tuple[str, str]]:
    """(voter_kind, voter_hash) of every stored flag: what decides which votes count."""
    with db.session(read_only=True) as session:
        rows = session.execute(select(VoterFlag.voter_kind, VoterFlag.voter_hash))
        return frozenset((kind, voter) for kind, voter in rows)


def _replace_flags(
    db: Database, flags: list[FlaggedVoter], before: frozenset[tuple[str, str]]
) -> bool:
    """Store ``flags``; when who is flagged changed, have the live leaderboard recomputed
    (its reasons and p-values alone do not move the board). Returns whether it changed."""
    replace_voter_flags(db, flags)
    changed = frozenset((f.voter_kind, f.voter_hash) for f in flags) != before
    if changed:
        mark_pipeline_changed(db)
    return changed
