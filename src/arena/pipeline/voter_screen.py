"""The anomalous-voter screen over the store: read the battle votes, screen every voter
against the current ratings (``arena.pipeline.anomalous_voters``), replace the stored flags.

A vote has two voter identities and the screen judges both, apart: votes grouped by session
(the session id's one-way hash, ``voter_kind`` "session") and votes grouped by keyed IP hash
(``voter_kind`` "ip"); a vote lacking one identity is judged under the other only. So one
person rotating IPs under one session is still one session voter, and many sessions opened
behind one IP are still one IP voter. Both groupings are tested against ratings fitted on
every vote, and each at alpha/2 (Bonferroni over the two groupings), so the chance that an
honest voter is flagged under either identity stays at most alpha, as with one grouping.
Screening twice costs two screens' time.

The export leaves excluded votes out of ratings by default (a vote whose session is flagged
as a session or whose IP hash is flagged as an IP), so the flags follow the newest screen: a
voter who is no longer flagged is cleared. A screen that changes who is flagged marks the
pipeline changed, so the live leaderboard is recomputed without them. A store with nothing
to judge (no votes, one model, only ties, nobody with ``min_votes`` votes) flags nobody and
says why in ``skipped``.
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
from arena.store.pipeline_tables import VOTER_KINDS, VoterFlag
from arena.store.voter_flags import (
    FlaggedIdentities,
    FlaggedVoter,
    replace_voter_flags,
    session_judge,
)

_BATCH = 50_000
_TWO_MODEL_MODES = ("battle", "side_by_side")
_WINNERS = {"a": "model_a", "b": "model_b", "tie": "tie", "bothbad": "tie (bothbad)"}
_KIND_NAMES = {"session": "session", "ip": "IP"}
_OTHER_KIND = {"session": "ip", "ip": "session"}


@dataclass(frozen=True)
class StoredVotes:
    """Battle votes in vote order, each with both voter identities: the session's hash and
    the keyed IP hash (None where the vote has none). ``anonymous`` counts votes with
    neither, which are left out."""

    session: list[str | None]
    ip: list[str | None]
    model_a: list[str]
    model_b: list[str]
    winner: list[str]
    anonymous: int

    def identities(self, kind: str) -> list[str | None]:
        """Each vote's identity of ``kind`` ("session" or "ip")."""
        return self.session if kind == "session" else self.ip


@dataclass(frozen=True)
class IdentityScreen:
    """The screen of one grouping: votes that have this identity, how many distinct ones,
    how many had enough votes to be judged, how many were flagged, and at what alpha."""

    voter_kind: str
    votes: int
    voters: int
    tested_voters: int
    flagged_voters: int
    alpha: float
    note: str = ""


@dataclass(frozen=True)
class VoterScreenReport:
    """What a screen did: how many votes and voter identities it judged (sessions and IPs
    counted apart), whom it flagged under which identity and why, and how many votes leave
    the ratings (``excluded_votes``: a vote flagged under both identities counts once)."""

    votes: int
    voters: int
    tested_voters: int
    excluded_votes: int
    flags: tuple[FlaggedVoter, ...]
    by_test: tuple[tuple[str, int], ...]
    alpha: float
    min_votes: int
    anonymous_votes: int = 0
    skipped: str | None = None
    version: str = SCREEN_VERSION
    flags_changed: bool = False
    by_kind: tuple[IdentityScreen, ...] = ()

    @property
    def flagged_voters(self) -> int:
        return len(self.flags)

    @property
    def flagged_by_kind(self) -> dict[str, int]:
        """Flags per ``voter_kind``, every kind named (0 where none)."""
        counts = Counter(f.voter_kind for f in self.flags)
        return {kind: counts.get(kind, 0) for kind in VOTER_KINDS}

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the counts, per identity too, and each flag with its reason (no
        timestamps)."""
        return {
            "votes": self.votes,
            "voters": self.voters,
            "tested_voters": self.tested_voters,
            "flagged_voters": self.flagged_voters,
            "flagged_by_kind": self.flagged_by_kind,
            "excluded_votes": self.excluded_votes,
            "anonymous_votes": self.anonymous_votes,
            "by_test": dict(self.by_test),
            "by_kind": {
                k.voter_kind: {
                    "votes": k.votes,
                    "voters": k.voters,
                    "tested_voters": k.tested_voters,
                    "flagged_voters": k.flagged_voters,
                    "alpha": k.alpha,
                    "note": k.note,
                }
                for k in self.by_kind
            },
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
        """One line for people: counts per identity, votes excluded, reasons by test."""
        if self.skipped:
            return f"voter screen skipped: {self.skipped}"
        tests = ", ".join(f"{n} {test}" for test, n in self.by_test) or "none"
        kinds = ", ".join(f"{n} by {_KIND_NAMES[k]}" for k, n in self.flagged_by_kind.items())
        return (
            f"voter screen: {self.flagged_voters} of {self.tested_voters} voters with at least "
            f"{self.min_votes} votes flagged at alpha {self.alpha:g} ({kinds}; sessions and "
            f"IPs screened apart at alpha/2 each); {self.excluded_votes} of {self.votes} votes "
            f"excluded; by test: {tests}"
        )


def load_votes(db: Database) -> StoredVotes:
    """Every battle vote (two-model modes), read in batches in vote order."""
    sessions: list[str | None] = []
    ips: list[str | None] = []
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
            session_hash = session_judge(session_id)
            known = bool(ip_hash or session_hash)
            if not known or a == b:
                anonymous += not known
                continue
            sessions.append(session_hash)
            ips.append(ip_hash or None)
            model_a.append(a)
            model_b.append(b)
            winner.append(_WINNERS[kind])
        if len(rows) < _BATCH:
            return StoredVotes(sessions, ips, model_a, model_b, winner, anonymous)
        last_id = rows[-1][0]


def _screen_identity(
    votes: StoredVotes, kind: str, *, alpha: float, min_votes: int, seed: int
) -> tuple[IdentityScreen, list[FlaggedVoter], Counter[str]]:
    """Screen the voters of ``kind`` (their votes grouped by that identity) at ``alpha``.

    The ratings the screen tests against are fitted on every vote, as the leaderboard's are:
    a vote lacking this identity joins the fit under its other identity (its verdict is not
    this grouping's and is dropped; the other grouping judges it), so the adversaries of
    either kind still leave the second pass's refit."""
    mine, other = votes.identities(kind), votes.identities(_OTHER_KIND[kind])
    with_identity = sum(v is not None for v in mine)
    if not with_identity:
        note = f"no votes with a known {_KIND_NAMES[kind]}"
        return IdentityScreen(kind, 0, 0, 0, 0, alpha, note), [], Counter()
    prefix = f"{kind}:"
    labels = [
        prefix + v if v is not None else f"{_OTHER_KIND[kind]}:{o}"
        for v, o in zip(mine, other, strict=True)
    ]
    result = screen_voters(
        labels,
        votes.model_a,
        votes.model_b,
        votes.winner,
        alpha=alpha,
        min_votes=min_votes,
        seed=seed,
    )
    verdicts = [v for v in result.verdicts if v.voter.startswith(prefix)]
    flagged = [v for v in verdicts if v.flagged]
    flags = [
        FlaggedVoter(
            kind, v.voter[len(prefix) :], v.votes, v.statistic, v.p_value, v.reason, result.version
        )
        for v in flagged
    ]
    note = "" if verdicts else result.note or f"no voter has at least {min_votes} votes"
    screen = IdentityScreen(
        kind,
        with_identity,
        len({v for v in mine if v is not None}),
        len(verdicts),
        len(flags),
        alpha,
        note,
    )
    return screen, flags, Counter(v.test for v in flagged)


def _skip_reason(screens: list[IdentityScreen]) -> str:
    """Why nobody was judged: the notes of the groupings that had votes (else of all)."""
    notes = [s.note for s in screens if s.votes] or [s.note for s in screens]
    unique = list(dict.fromkeys(notes))
    if len(unique) == 1:
        return unique[0]
    return "; ".join(f"{_KIND_NAMES[s.voter_kind]}: {s.note}" for s in screens if s.note)


def run_voter_screen(
    db: Database,
    *,
    alpha: float = DEFAULT_ALPHA,
    min_votes: int = DEFAULT_MIN_VOTES,
    seed: int = 0,
) -> VoterScreenReport:
    """Screen every voter of the store, once by session and once by IP at ``alpha``/2 each
    (Bonferroni: at most ``alpha`` in all), and replace the stored flags with the result;
    when that changes who is flagged, mark the pipeline changed (the leaderboard
    recomputes). Raises :class:`arena.ratings.errors.RatingInputError` on an unusable alpha
    or min_votes."""
    check_parameters(alpha=alpha, min_votes=min_votes)
    votes = load_votes(db)
    n = len(votes.winner)
    before = _stored_flag_keys(db)

    def skipped(why: str, by_kind: tuple[IdentityScreen, ...] = ()) -> VoterScreenReport:
        changed = _replace_flags(db, [], before)
        voters = sum(len({v for v in votes.identities(k) if v}) for k in VOTER_KINDS)
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
            by_kind=by_kind,
        )

    if n == 0:
        return skipped("no battle votes with a known voter")
    if len(set(votes.model_a) | set(votes.model_b)) < 2:
        return skipped("the votes involve fewer than two models")
    if all(w.startswith("tie") for w in votes.winner):
        return skipped(ALL_TIES)
    per_kind = alpha / len(VOTER_KINDS)
    screens: list[IdentityScreen] = []
    flags: list[FlaggedVoter] = []
    by_test: Counter[str] = Counter()
    for kind in VOTER_KINDS:
        screen, kind_flags, kind_tests = _screen_identity(
            votes, kind, alpha=per_kind, min_votes=min_votes, seed=seed
        )
        screens.append(screen)
        flags.extend(kind_flags)
        by_test.update(kind_tests)
    if not any(s.tested_voters for s in screens):
        return skipped(_skip_reason(screens), tuple(screens))
    changed = _replace_flags(db, flags, before)
    return VoterScreenReport(
        votes=n,
        voters=sum(s.voters for s in screens),
        tested_voters=sum(s.tested_voters for s in screens),
        excluded_votes=_excluded_votes(votes, flags),
        flags=tuple(flags),
        by_test=tuple(sorted(by_test.items())),
        alpha=alpha,
        min_votes=min_votes,
        anonymous_votes=votes.anonymous,
        flags_changed=changed,
        by_kind=tuple(screens),
    )


def _excluded_votes(votes: StoredVotes, flags: list[FlaggedVoter]) -> int:
    """Votes the flags take out of the ratings, each once (the exports' rule)."""
    flagged = FlaggedIdentities(
        frozenset(f.voter_hash for f in flags if f.voter_kind == "session"),
        frozenset(f.voter_hash for f in flags if f.voter_kind == "ip"),
    )
    if not flagged:
        return 0
    return sum(flagged.flags_hashes(ip, s) for ip, s in zip(votes.ip, votes.session, strict=True))


def _stored_flag_keys(db: Database) -> frozenset[tuple[str, str]]:
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
