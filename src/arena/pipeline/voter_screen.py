"""The anomalous-voter screen over the store: read the battle votes, screen every voter
against the current ratings (``arena.pipeline.anomalous_voters``), replace the stored flags.

A vote has two voter identities and the screen judges both, apart: votes grouped by session
(the session id's one-way hash, stored with the vote as ``votes.session_hash`` so it
survives the purge of expired sessions; ``voter_kind`` "session") and votes grouped by keyed
IP hash (``voter_kind`` "ip"); a vote lacking one identity is judged under the other only.
So one person rotating IPs under one session is still one session voter, and many sessions
opened behind one IP are still one IP voter. Both groupings are tested against ratings
fitted on every vote, and each at alpha/2 (Bonferroni over the two groupings), so the chance
that an honest voter is flagged under either identity stays at most alpha, as with one
grouping. Stored and reported p-values are adjusted for the two groupings too (twice the
grouping's own, at most 1), so a voter is flagged exactly when its p-value is <= alpha.
Screening twice costs two screens' time. Each vote's randomisation is keyed by its vote id,
so a re-screen draws the same uniforms for the votes it saw before.

The export leaves excluded votes out of ratings by default: a vote whose session is flagged,
or whose IP is flagged unless its session was tested (``min_votes`` votes) and cleared by
the same screen, so honest sessions behind a flagged shared IP (a NAT) keep their votes
(``arena.store.voter_flags.FlaggedIdentities``). The flags and cleared sessions follow the
newest screen: a voter who is no longer flagged is cleared. A screen that changes which
votes are excluded marks the pipeline changed, so the live leaderboard is recomputed. A
store with nothing to judge (no votes, one model, only ties, nobody with ``min_votes``
votes) flags nobody and says why in ``skipped``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select

from arena.pipeline.anomalous_voters import (
    ALL_TIES,
    DEFAULT_ALPHA,
    DEFAULT_MIN_VOTES,
    SCREEN_VERSION,
    check_parameters,
    screen_voters,
)
from arena.pipeline.voter_screen_report import KIND_NAMES, IdentityScreen, VoterScreenReport
from arena.store.db import Database
from arena.store.leaderboard_sets import mark_pipeline_changed
from arena.store.models import Battle, Vote
from arena.store.pipeline_tables import VOTER_KINDS
from arena.store.voter_flags import (
    FlaggedIdentities,
    FlaggedVoter,
    load_flagged_identities,
    replace_voter_flags,
)

_BATCH = 50_000
_TWO_MODEL_MODES = ("battle", "side_by_side")
_WINNERS = {"a": "model_a", "b": "model_b", "tie": "tie", "bothbad": "tie (bothbad)"}
_OTHER_KIND = {"session": "ip", "ip": "session"}


@dataclass(frozen=True)
class StoredVotes:
    """Battle votes in vote order, each with its id and both voter identities: the stored
    session hash and the keyed IP hash (None where the vote has none). ``anonymous`` counts
    votes with neither, which are left out."""

    vote_ids: list[int]
    session: list[str | None]
    ip: list[str | None]
    model_a: list[str]
    model_b: list[str]
    winner: list[str]
    anonymous: int

    def identities(self, kind: str) -> list[str | None]:
        """Each vote's identity of ``kind`` ("session" or "ip")."""
        return self.session if kind == "session" else self.ip


def load_votes(db: Database) -> StoredVotes:
    """Every battle vote (two-model modes), read in batches in vote order."""
    vote_ids: list[int] = []
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
                Vote.id, Vote.type, Vote.ip_hash, Vote.session_hash, Battle.model_a, Battle.model_b
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
        for vote_id, kind, ip_hash, session_hash, a, b in rows:
            known = bool(ip_hash or session_hash)
            if not known or a == b:
                anonymous += not known
                continue
            vote_ids.append(vote_id)
            sessions.append(session_hash or None)
            ips.append(ip_hash or None)
            model_a.append(a)
            model_b.append(b)
            winner.append(_WINNERS[kind])
        if len(rows) < _BATCH:
            return StoredVotes(vote_ids, sessions, ips, model_a, model_b, winner, anonymous)
        last_id = rows[-1][0]


@dataclass(frozen=True)
class _KindResult:
    """One grouping's screen: its counts, its flags (p-values adjusted for both groupings),
    the tests that flagged them, and the voters it tested and did not flag."""

    screen: IdentityScreen
    flags: list[FlaggedVoter]
    by_test: Counter[str]
    cleared: list[str]


def _screen_identity(
    votes: StoredVotes, kind: str, *, alpha: float, min_votes: int, seed: int
) -> _KindResult:
    """Screen the voters of ``kind`` (their votes grouped by that identity) at ``alpha``.

    The ratings the screen tests against are fitted on every vote, as the leaderboard's are:
    a vote lacking this identity joins the fit under its other identity (its verdict is not
    this grouping's and is dropped; the other grouping judges it), so the adversaries of
    either kind still leave the second pass's refit."""
    mine, other = votes.identities(kind), votes.identities(_OTHER_KIND[kind])
    with_identity = sum(v is not None for v in mine)
    if not with_identity:
        note = f"no votes with a known {KIND_NAMES[kind]}"
        return _KindResult(IdentityScreen(kind, 0, 0, 0, 0, alpha, note), [], Counter(), [])
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
        vote_ids=votes.vote_ids,
    )
    verdicts = [v for v in result.verdicts if v.voter.startswith(prefix)]
    flagged = [v for v in verdicts if v.flagged]
    # Each grouping is screened at alpha / len(VOTER_KINDS): scaling its p-values back up
    # (Bonferroni) makes "flagged <=> p_value <= the overall alpha" hold for what is stored.
    # Doubling is exact in floating point, so the equivalence holds to the last bit.
    groupings = len(VOTER_KINDS)
    flags = [
        FlaggedVoter(
            kind,
            v.voter[len(prefix) :],
            v.votes,
            v.statistic,
            min(groupings * v.p_value, 1.0),
            v.reason,
            result.version,
        )
        for v in flagged
    ]
    cleared = [v.voter[len(prefix) :] for v in verdicts if not v.flagged]
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
    return _KindResult(screen, flags, Counter(v.test for v in flagged), cleared)


def _skip_reason(screens: list[IdentityScreen]) -> str:
    """Why nobody was judged: the notes of the groupings that had votes (else of all)."""
    notes = [s.note for s in screens if s.votes] or [s.note for s in screens]
    unique = list(dict.fromkeys(notes))
    if len(unique) == 1:
        return unique[0]
    return "; ".join(f"{KIND_NAMES[s.voter_kind]}: {s.note}" for s in screens if s.note)


def run_voter_screen(
    db: Database,
    *,
    alpha: float = DEFAULT_ALPHA,
    min_votes: int = DEFAULT_MIN_VOTES,
    seed: int = 0,
) -> VoterScreenReport:
    """Screen every voter of the store, once by session and once by IP at ``alpha``/2 each
    (Bonferroni: at most ``alpha`` in all), and replace the stored flags and cleared
    sessions with the result; when that changes which votes are excluded, mark the pipeline
    changed (the leaderboard recomputes). Raises
    :class:`arena.ratings.errors.RatingInputError` on an unusable alpha or min_votes."""
    check_parameters(alpha=alpha, min_votes=min_votes)
    votes = load_votes(db)
    n = len(votes.winner)
    before = load_flagged_identities(db)

    def skipped(why: str, by_kind: tuple[IdentityScreen, ...] = ()) -> VoterScreenReport:
        changed = _replace_flags(db, votes, [], [], before)
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
    results = [
        _screen_identity(votes, kind, alpha=per_kind, min_votes=min_votes, seed=seed)
        for kind in VOTER_KINDS
    ]
    screens = [r.screen for r in results]
    if not any(s.tested_voters for s in screens):
        return skipped(_skip_reason(screens), tuple(screens))
    flags = [f for r in results for f in r.flags]
    by_test: Counter[str] = Counter()
    for r in results:
        by_test.update(r.by_test)
    cleared = [h for r in results if r.screen.voter_kind == "session" for h in r.cleared]
    changed = _replace_flags(db, votes, flags, cleared, before)
    return VoterScreenReport(
        votes=n,
        voters=sum(s.voters for s in screens),
        tested_voters=sum(s.tested_voters for s in screens),
        excluded_votes=_excluded_votes(votes, _identities(flags, cleared)),
        flags=tuple(flags),
        by_test=tuple(sorted(by_test.items())),
        alpha=alpha,
        min_votes=min_votes,
        anonymous_votes=votes.anonymous,
        flags_changed=changed,
        by_kind=tuple(screens),
    )


def _identities(flags: list[FlaggedVoter], cleared: list[str]) -> FlaggedIdentities:
    """What the stored flags and cleared sessions will say (as ``load_flagged_identities``)."""
    return FlaggedIdentities(
        frozenset(f.voter_hash for f in flags if f.voter_kind == "session"),
        frozenset(f.voter_hash for f in flags if f.voter_kind == "ip"),
        frozenset(cleared),
    )


def _excluded_mask(votes: StoredVotes, flagged: FlaggedIdentities) -> list[bool]:
    """Which votes the flags take out of the ratings (the exports' rule)."""
    if not flagged:
        return [False] * len(votes.winner)
    return [flagged.excludes_vote(ip, s) for ip, s in zip(votes.ip, votes.session, strict=True)]


def _excluded_votes(votes: StoredVotes, flagged: FlaggedIdentities) -> int:
    """Votes the flags take out of the ratings, each once."""
    return sum(_excluded_mask(votes, flagged))


def _replace_flags(
    db: Database,
    votes: StoredVotes,
    flags: list[FlaggedVoter],
    cleared: list[str],
    before: FlaggedIdentities,
) -> bool:
    """Store ``flags`` and ``cleared`` sessions; when who is flagged, or which votes are
    excluded, changed, have the live leaderboard recomputed (reasons and p-values alone do
    not move the board, nor do cleared sessions behind no flagged IP). Returns whether it
    changed."""
    replace_voter_flags(db, flags, cleared_sessions=cleared, screen_version=SCREEN_VERSION)
    after = _identities(flags, cleared)
    if (after.sessions, after.ips) != (before.sessions, before.ips):
        changed = True
    elif not after.ips or after.cleared_sessions == before.cleared_sessions:
        changed = False
    else:
        changed = _excluded_mask(votes, after) != _excluded_mask(votes, before)
    if changed:
        mark_pipeline_changed(db)
    return changed
