"""The anomalous-voter screen over a real store (SQLite and PostgreSQL): battles and votes
written through the store API, one adversary who always votes for the weakest model, flagged
under the identity that gives it away (its session, or its IP), the clean-battle export, the
CLI export and the conversation export leaving its votes out, and a later screen replacing
the flags. Honest voters behind one shared IP stay unflagged, and behind a flagged shared IP
an honest session the screen cleared keeps its votes. Session flags hold after expired
sessions are purged. Stored p-values: flagged exactly when p_value <= alpha."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta

import numpy as np
import pytest
from typer.testing import CliRunner

import arena.pipeline.voter_screen as voter_screen
from arena.cli import app
from arena.pipeline.voter_screen import load_votes, run_voter_screen
from arena.ratings.errors import RatingInputError
from arena.store.battles import create_battle
from arena.store.conversation_export import iter_release_battles
from arena.store.conversations import add_message
from arena.store.db import Database
from arena.store.export import clean_battles
from arena.store.models import utcnow
from arena.store.pipeline_tables import VOTER_KINDS
from arena.store.sessions import create_session, delete_expired_sessions
from arena.store.voter_flags import (
    FlaggedIdentities,
    judge_value,
    list_cleared_sessions,
    list_voter_flags,
    load_flagged_identities,
    session_judge,
)
from arena.store.votes import record_vote
from support.empty_store import empty_store

# Rating points 300 / 150 / 0, in natural-log units (scale 400, base 10).
THETA = {"strong": 300 / 173.72, "middle": 150 / 173.72, "weak": 0.0}
TIE_NU = 0.3
HONEST_VOTERS = 8
FEW_HONEST = 4  # the identity scenarios: fewer battles to write, the same verdicts
VOTES_EACH = 24


@pytest.fixture
def voter_db(database_url: str) -> Iterator[Database]:
    """A migrated database with every table empty."""
    with empty_store(database_url) as database:
        yield database


def _battle(db: Database, a: str, b: str, vote: str, *, ip_hash=None, session_id=None) -> None:
    battle = create_battle(db, mode="battle", model_a=a, model_b=b, session_id=session_id)
    for conv in (battle.conversation_a_id, battle.conversation_b_id):
        add_message(db, conv, role="user", content="Which is better?")
        add_message(db, conv, role="assistant", content="An answer.")
    record_vote(db, battle.id, vote, ip_hash=ip_hash, session_id=session_id)


def _honest_vote(rng: np.random.Generator, a: str, b: str) -> str:
    d = THETA[a] - THETA[b]
    ea, eb = np.exp(d / 2), np.exp(-d / 2)
    u = rng.random() * (ea + eb + TIE_NU)
    return "a" if u < ea else "b" if u < ea + eb else "tie"


Identity = tuple[str | None, str | None]  # (ip_hash, session_id) of a vote


def _arena(
    db: Database, honest: list[Identity], adversary: Callable[[int], Identity] | None
) -> None:
    """``VOTES_EACH`` rounds: every honest voter votes as the ratings say, then the adversary
    (its identities drawn per round) votes for "weak" in a battle against another model."""
    rng = np.random.default_rng(11)
    models = list(THETA)
    for round_ in range(VOTES_EACH):
        for ip, session in honest:
            a, b = rng.choice(models, 2, replace=False)
            _battle(
                db,
                str(a),
                str(b),
                _honest_vote(rng, str(a), str(b)),
                ip_hash=ip,
                session_id=session,
            )
        if adversary is not None:
            _weak_vote(db, round_, *adversary(round_))


def _weak_vote(db: Database, round_: int, ip: str | None, session: str | None) -> None:
    """The adversary's vote of a round: "weak" wins a battle against another model."""
    other = ["strong", "middle"][round_ % 2]
    a, b = ("weak", other) if round_ % 3 else (other, "weak")
    _battle(db, a, b, "a" if a == "weak" else "b", ip_hash=ip, session_id=session)


def _session(db: Database) -> str:
    return create_session(db, ttl_s=3600).id


def _own_identities(db: Database, n: int) -> list[Identity]:
    """``n`` honest voters with an IP and a session of their own."""
    return [(hashlib.sha256(f"ip-{i}".encode()).hexdigest(), _session(db)) for i in range(n)]


@pytest.fixture
def arena_votes(voter_db: Database) -> dict[str, str]:
    """Eight honest voters (IP hashes) and one adversary (a session, no IP) who votes for
    "weak" in every battle, interleaved; returns the adversary's session id."""
    adversary = _session(voter_db)
    honest_ips = [hashlib.sha256(f"ip-{i}".encode()).hexdigest() for i in range(HONEST_VOTERS)]
    _arena(voter_db, [(ip, None) for ip in honest_ips], lambda _round: (None, adversary))
    return {"adversary": adversary}


def test_the_adversary_is_flagged_under_its_export_judge_and_leaves_the_export(
    voter_db, arena_votes
):
    before = clean_battles(voter_db)
    adversary_judges = {
        r["judge"] for r in before if r["model_a"] == "weak" or r["model_b"] == "weak"
    } - {judge_value(hashlib.sha256(f"ip-{i}".encode()).hexdigest()) for i in range(HONEST_VOTERS)}
    assert len(adversary_judges) == 1  # the session voter's hashed judge

    report = run_voter_screen(voter_db, alpha=0.01, min_votes=20)

    assert report.votes == (HONEST_VOTERS + 1) * VOTES_EACH
    assert report.voters == HONEST_VOTERS + 1 and report.tested_voters == HONEST_VOTERS + 1
    kinds = {f.voter_kind for f in report.flags}
    adversary_flags = [f for f in report.flags if f.voter_kind == "session"]
    assert len(adversary_flags) == 1 and kinds <= {"session", "ip"}
    flag = adversary_flags[0]
    assert flag.votes == VOTES_EACH and flag.p_value < 1e-6
    assert flag.reason.startswith(("picks weak far too often", "votes at random or against"))
    assert report.flagged_voters - 1 <= 1  # an honest voter flagged at most by chance
    assert "voter screen:" in str(report) and "flagged at alpha 0.01" in str(report)
    assert report.flagged_by_kind["session"] == 1 and "1 by session" in str(report)
    by_kind = report.to_dict()["by_kind"]
    assert by_kind["session"]["alpha"] == by_kind["ip"]["alpha"] == 0.005  # Bonferroni
    json.dumps(report.to_dict())

    stored = list_voter_flags(voter_db)
    assert [(f.voter_kind, f.voter_hash) for f in stored] == [
        (f.voter_kind, f.voter_hash) for f in report.flags
    ]
    assert load_flagged_identities(voter_db).sessions >= {session_judge(arena_votes["adversary"])}
    assert all(len(f.voter_hash) <= 64 for f in stored)

    # The export leaves the flagged voter's votes out unless asked to keep them.
    after = clean_battles(voter_db)
    assert not adversary_judges & {r["judge"] for r in after}
    assert len(after) == len(before) - report.excluded_votes
    kept = clean_battles(voter_db, include_flagged=True)
    assert len(kept) == len(before)


def test_a_later_screen_replaces_the_flags(voter_db, arena_votes):
    assert run_voter_screen(voter_db, alpha=0.01).flagged_voters >= 1
    assert list_voter_flags(voter_db)
    # At an absurdly strict level nobody is flagged, and the old flags go.
    report = run_voter_screen(voter_db, alpha=1e-100)
    assert report.flagged_voters == 0
    assert list_voter_flags(voter_db) == []
    assert not load_flagged_identities(voter_db)


def test_votes_load_in_order_with_voter_identities(voter_db, arena_votes):
    votes = load_votes(voter_db)
    assert len(votes.winner) == len(votes.ip) == len(votes.session)
    assert len(votes.winner) == (HONEST_VOTERS + 1) * VOTES_EACH
    adversary = session_judge(arena_votes["adversary"])
    assert set(votes.session) == {None, adversary}  # honest voters here have no session
    assert sum(ip is None for ip in votes.ip) == VOTES_EACH
    assert set(votes.winner) <= {"model_a", "model_b", "tie"}
    # No session cookie leaves the store: only its hash does.
    assert arena_votes["adversary"] not in "".join(filter(None, votes.session))


def test_an_empty_store_is_skipped_and_clears_old_flags(voter_db):
    report = run_voter_screen(voter_db)
    assert report.skipped == "no battle votes with a known voter"
    assert report.flagged_voters == 0 and "skipped" in str(report)
    assert list_voter_flags(voter_db) == []


def test_bad_parameters_are_refused_before_anything_is_read(voter_db):
    with pytest.raises(RatingInputError, match="alpha must be between 0 and 1"):
        run_voter_screen(voter_db, alpha=1.0)
    with pytest.raises(RatingInputError, match="min_votes must be at least 1"):
        run_voter_screen(voter_db, min_votes=0)


def _excluded_everywhere(db: Database, database_url: str, judges: set[str], tmp_path) -> int:
    """Check the clean-battle export, the CLI export and the conversation export all leave
    out the votes of ``judges`` (and only the CLI's ``--include-flagged`` keeps them);
    returns how many votes the clean-battle export left out."""
    counts: dict[str, int] = {}
    after = clean_battles(db, counts=counts)
    everything = clean_battles(db, include_flagged=True)
    assert not judges & {r["judge"] for r in after}
    assert judges <= {r["judge"] for r in everything}
    assert counts["flagged_excluded"] == len(everything) - len(after)

    out = tmp_path / "battles.jsonl"
    runner = CliRunner()
    for extra, expected in (((), len(after)), (("--include-flagged",), len(everything))):
        args = ["export", "battles", "--database-url", database_url, "--out", str(out), *extra]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert len(out.read_text(encoding="utf-8").splitlines()) == expected

    excluded: Counter[str] = Counter()
    released = list(iter_release_battles(db, excluded))
    assert not judges & {r.judge for r in released}
    assert excluded["flagged_voter"] == counts["flagged_excluded"]
    return counts["flagged_excluded"]


def test_one_session_rotating_ips_is_flagged_by_session(voter_db, database_url, tmp_path):
    adversary = _session(voter_db)
    _arena(
        voter_db, _own_identities(voter_db, FEW_HONEST), lambda r: (f"rotated-ip-{r}", adversary)
    )

    report = run_voter_screen(voter_db, alpha=0.01, min_votes=20)

    flagged = {(f.voter_kind, f.voter_hash) for f in report.flags}
    assert ("session", session_judge(adversary)) in flagged
    assert not any(h.startswith("rotated-ip-") for _kind, h in flagged)  # one vote per IP
    assert report.flagged_voters - 1 <= 1  # an honest voter flagged at most by chance
    # Each IP and each session of an honest voter is judged, the rotated IPs are too few.
    assert report.to_dict()["by_kind"]["ip"]["tested_voters"] == FEW_HONEST
    judges = {judge_value(f"rotated-ip-{r}") for r in range(VOTES_EACH)}  # the export's judge
    left_out = _excluded_everywhere(voter_db, database_url, judges, tmp_path)
    assert left_out == report.excluded_votes >= VOTES_EACH


def test_one_ip_with_a_new_session_per_vote_is_flagged_by_ip(voter_db, database_url, tmp_path):
    _arena(
        voter_db,
        _own_identities(voter_db, FEW_HONEST),
        lambda _r: ("shared-adversary-ip", _session(voter_db)),
    )

    report = run_voter_screen(voter_db, alpha=0.01, min_votes=20)

    flagged = {(f.voter_kind, f.voter_hash) for f in report.flags}
    assert ("ip", "shared-adversary-ip") in flagged
    assert report.flagged_by_kind["ip"] >= 1 and report.flagged_voters - 1 <= 1
    judges = {judge_value("shared-adversary-ip")}
    left_out = _excluded_everywhere(voter_db, database_url, judges, tmp_path)
    assert left_out == report.excluded_votes >= VOTES_EACH


def test_honest_voters_behind_one_nat_ip_are_not_flagged(voter_db):
    sessions = [_session(voter_db) for _ in range(FEW_HONEST)]
    _arena(voter_db, [("office-nat", s) for s in sessions], None)

    report = run_voter_screen(voter_db, alpha=0.01, min_votes=20)

    assert report.tested_voters == FEW_HONEST + 1  # four sessions, one IP
    assert ("ip", "office-nat") not in {(f.voter_kind, f.voter_hash) for f in report.flags}
    assert report.flagged_voters <= 1  # a session flagged at most by chance
    assert report.flagged_by_kind["ip"] == 0


def test_a_vote_flagged_under_both_identities_is_excluded_once(voter_db, database_url, tmp_path):
    adversary = _session(voter_db)
    _arena(voter_db, _own_identities(voter_db, FEW_HONEST), lambda _r: ("adversary-ip", adversary))

    report = run_voter_screen(voter_db, alpha=0.01, min_votes=20)

    flagged = {(f.voter_kind, f.voter_hash) for f in report.flags}
    assert {("ip", "adversary-ip"), ("session", session_judge(adversary))} <= flagged
    # Both flags cover the same VOTES_EACH votes: they leave the ratings once.
    both = sum(
        f.votes for f in report.flags if f.voter_hash in ("adversary-ip", session_judge(adversary))
    )
    assert both == 2 * VOTES_EACH
    left_out = _excluded_everywhere(voter_db, database_url, {judge_value("adversary-ip")}, tmp_path)
    assert left_out == report.excluded_votes
    honest_flagged_votes = sum(f.votes for f in report.flags) - both
    assert VOTES_EACH <= report.excluded_votes <= VOTES_EACH + honest_flagged_votes
    assert report.to_dict()["excluded_votes"] == report.excluded_votes


@pytest.mark.parametrize(
    ("ip_hash", "session_id", "excluded"),
    [
        ("bad-ip", None, True),
        ("bad-ip", "any-session", True),  # an untested session goes with its IP
        ("bad-ip", "cleared-session", False),  # a NAT's honest, tested session stays
        ("good-ip", "bad-session", True),  # rotating IPs do not escape a session flag
        ("bad-ip", "bad-session", True),
        (None, "bad-session", True),
        ("good-ip", "good-session", False),
        ("good-ip", "cleared-session", False),
        (None, None, False),
        # A flag holds for its own kind only: an IP hash equal to a flagged session's hash
        # (or the other way round) is another voter.
        (session_judge("bad-session"), "good-session", False),
    ],
)
def test_flagged_identities_decide_per_kind(ip_hash, session_id, excluded):
    flagged = FlaggedIdentities(
        frozenset({session_judge("bad-session")}),
        frozenset({"bad-ip"}),
        frozenset({session_judge("cleared-session")}),
    )
    assert flagged.excludes_vote(ip_hash, session_judge(session_id)) is excluded
    assert not FlaggedIdentities().excludes_vote(ip_hash, session_judge(session_id))


def test_session_flags_hold_after_the_sessions_are_purged(voter_db, arena_votes):
    """Purging expired sessions clears ``votes.session_id``; the stored session hash keeps
    the adversary's votes out of both exports, and a re-screen flags it again."""
    first = run_voter_screen(voter_db, alpha=0.01, min_votes=20)
    adversary = session_judge(arena_votes["adversary"])
    assert ("session", adversary) in {(f.voter_kind, f.voter_hash) for f in first.flags}
    before = len(clean_battles(voter_db))

    assert delete_expired_sessions(voter_db, now=utcnow() + timedelta(days=1)) >= 1
    assert set(load_votes(voter_db).session) == {None, adversary}  # still known
    counts: dict[str, int] = {}
    after = clean_battles(voter_db, counts=counts)
    assert len(after) == before and counts["flagged_excluded"] == first.excluded_votes
    assert judge_value(adversary) not in {r["judge"] for r in after}
    assert judge_value(adversary) in {
        r["judge"] for r in clean_battles(voter_db, include_flagged=True)
    }
    excluded: Counter[str] = Counter()
    released = list(iter_release_battles(voter_db, excluded))
    assert judge_value(adversary) not in {r.judge for r in released}
    assert excluded["flagged_voter"] == first.excluded_votes

    again = run_voter_screen(voter_db, alpha=0.01, min_votes=20)
    assert [(f.voter_kind, f.voter_hash, f.p_value) for f in again.flags] == [
        (f.voter_kind, f.voter_hash, f.p_value) for f in first.flags
    ]
    assert again.excluded_votes == first.excluded_votes and not again.flags_changed


ONE_VOTE_SESSIONS = 5


def test_behind_a_flagged_nat_ip_only_untested_and_flagged_sessions_leave(voter_db):
    """One IP (an office NAT) shared by an honest session of ``VOTES_EACH`` votes, an
    adversary session of twice as many (enough to flag the IP) and one-vote sessions: the
    IP is flagged, the adversary's session too; the honest session, tested and cleared,
    keeps its votes; the one-vote sessions (too few votes to be judged) go with the IP."""
    honest, adversary = _session(voter_db), _session(voter_db)
    _arena(
        voter_db,
        [*_own_identities(voter_db, FEW_HONEST), ("office-nat", honest)],
        lambda _r: ("office-nat", adversary),
    )
    for round_ in range(VOTES_EACH):
        _weak_vote(voter_db, round_, "office-nat", adversary)
    rng = np.random.default_rng(5)
    for i in range(ONE_VOTE_SESSIONS):
        a, b = ["strong", "middle", "weak"][i % 3], ["middle", "weak", "strong"][i % 3]
        _battle(
            voter_db,
            a,
            b,
            _honest_vote(rng, a, b),
            ip_hash="office-nat",
            session_id=_session(voter_db),
        )

    report = run_voter_screen(voter_db, alpha=0.01, min_votes=20)

    flagged = {(f.voter_kind, f.voter_hash) for f in report.flags}
    assert {("ip", "office-nat"), ("session", session_judge(adversary))} <= flagged
    assert ("session", session_judge(honest)) not in flagged
    assert session_judge(honest) in list_cleared_sessions(voter_db)
    honest_flagged = flagged - {("ip", "office-nat"), ("session", session_judge(adversary))}
    assert not honest_flagged  # these seeds flag no honest voter by chance
    assert report.excluded_votes == 2 * VOTES_EACH + ONE_VOTE_SESSIONS

    counts: dict[str, int] = {}
    kept = clean_battles(voter_db, counts=counts)
    assert counts["flagged_excluded"] == report.excluded_votes
    assert sum(r["judge"] == judge_value("office-nat") for r in kept) == VOTES_EACH  # honest
    excluded: Counter[str] = Counter()
    list(iter_release_battles(voter_db, excluded))
    assert excluded["flagged_voter"] == report.excluded_votes


def test_stored_p_values_are_flagged_exactly_at_or_below_alpha(voter_db, monkeypatch):
    """Each identity is screened at alpha/2; what is stored and reported is the p-value
    adjusted for both (min(2p, 1)), so flagged <=> p_value <= alpha for every tested voter."""
    screens = []
    real = voter_screen.screen_voters

    def spy(*args, **kwargs):
        screens.append(real(*args, **kwargs))
        return screens[-1]

    monkeypatch.setattr(voter_screen, "screen_voters", spy)
    adversary = _session(voter_db)
    _arena(voter_db, _own_identities(voter_db, FEW_HONEST), lambda r: (f"ip-{r % 2}", adversary))
    alpha = 0.01

    report = run_voter_screen(voter_db, alpha=alpha, min_votes=20)

    assert report.alpha == alpha and report.flags
    # The screens run per kind in VOTER_KINDS order; each judges its own kind's voters.
    tested = [
        v
        for kind, result in zip(VOTER_KINDS, screens, strict=True)
        for v in result.verdicts
        if v.voter.startswith(f"{kind}:")
    ]
    assert len(tested) == report.tested_voters
    stored = {(f.voter_kind, f.voter_hash): f.p_value for f in list_voter_flags(voter_db)}
    assert stored == {(f.voter_kind, f.voter_hash): f.p_value for f in report.flags}
    for v in tested:
        kind, voter = v.voter.split(":", 1)
        adjusted = min(2 * v.p_value, 1.0)
        assert v.flagged is (adjusted <= alpha)
        assert ((kind, voter) in stored) is v.flagged
        if v.flagged:
            assert stored[(kind, voter)] == adjusted <= alpha
