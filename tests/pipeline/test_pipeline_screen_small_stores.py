"""The anomalous-voter screen never fails on a small or odd store: one voter with a dozen
identical votes, two votes in all, only ties, one model, nobody with enough votes — each
screens to no flags with the reason in the report. Property tests draw small random vote
sets (pure screen) and small random stores (SQLite and PostgreSQL). A screen that changes
who is flagged marks the published leaderboard stale by itself; one that changes nothing
leaves it current. Voters are judged by session and by IP apart: a store where votes carry
either or both screens the same way, and a vote flagged under both identities leaves the
ratings once."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arena.pipeline.anomalous_voters import ALL_TIES, screen_voters
from arena.pipeline.runner import run_pipeline
from arena.pipeline.voter_screen import run_voter_screen
from arena.store.battles import create_battle
from arena.store.conversations import add_message
from arena.store.db import Database
from arena.store.export import clean_battles
from arena.store.leaderboard_sets import publish_set, published_head
from arena.store.sessions import create_session
from arena.store.voter_flags import list_voter_flags, session_judge
from arena.store.votes import record_vote
from pipeline.pipeline_store import add_battle
from support.empty_store import empty_store

WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
VOTES = ("a", "b", "tie", "bothbad")


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    with empty_store(database_url) as database:
        yield database


def _votes(db: Database, rows: list[tuple[str, str, str, str]]) -> None:
    """(voter, model_a, model_b, vote) rows as battles with one prompt each."""
    for voter, a, b, vote in rows:
        add_battle(db, ["Which answer is better?"], model_a=a, model_b=b, vote=vote, ip_hash=voter)


def test_one_voter_with_twelve_identical_votes_is_screened_without_error(db) -> None:
    _votes(db, [("solo", "alpha", "beta", "a")] * 12)
    report = run_voter_screen(db)
    assert report.flagged_voters == 0 and list_voter_flags(db) == []
    assert report.votes == 12 and report.voters == 1 and report.tested_voters == 0
    assert report.skipped == "no voter has at least 20 votes"
    assert "voter screen skipped: no voter has at least 20 votes" in str(report)
    # Judged when the bar is low enough: twelve wins of one model say nothing suspicious
    # about a voter the ratings were fitted on alone.
    judged = run_voter_screen(db, min_votes=5)
    assert judged.skipped is None and judged.tested_voters == 1


def test_two_votes_from_one_voter_are_screened_without_error(db) -> None:
    _votes(db, [("solo", "alpha", "beta", "a"), ("solo", "alpha", "beta", "b")])
    for min_votes in (1, 2, 20):
        report = run_voter_screen(db, min_votes=min_votes)
        assert report.votes == 2 and report.flagged_voters == 0
        assert (report.skipped is None) == (min_votes <= 2)


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ([("v", "alpha", "beta", "tie")] * 30, "every vote is a tie"),
        ([("v", "alpha", "alpha", "a")] * 3, "no battle votes with a known voter"),
    ],
)
def test_stores_with_nothing_to_judge_say_why(db, rows, reason) -> None:
    _votes(db, rows)
    report = run_voter_screen(db, min_votes=1)
    assert report.skipped is not None and report.skipped.startswith(reason)
    assert report.flagged_voters == 0


def test_the_pipeline_run_reports_a_small_store_screen(db) -> None:
    _votes(db, [("solo", "alpha", "beta", "a")] * 12)
    report = run_pipeline(db)
    assert report.voter_screen_note == "anomalous-voter screen ran"
    assert report.voter_screen.skipped == "no voter has at least 20 votes"
    assert report.to_dict()["voter_screen"]["skipped"] == "no voter has at least 20 votes"


@st.composite
def vote_sets(draw):
    """Up to 40 votes among up to 4 voters and 2-4 models, every outcome possible."""
    n_models = draw(st.integers(2, 4))
    n = draw(st.integers(1, 40))
    pairs = st.tuples(st.integers(0, n_models - 1), st.integers(1, n_models - 1))
    drawn = draw(st.lists(pairs, min_size=n, max_size=n))
    voters = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    winners = draw(st.lists(st.sampled_from(WINNERS), min_size=n, max_size=n))
    a = [f"m{i}" for i, _ in drawn]
    b = [f"m{(i + step) % n_models}" for i, step in drawn]
    return [f"v{v}" for v in voters], a, b, winners


@settings(max_examples=300, deadline=None)
@given(
    votes=vote_sets(),
    min_votes=st.integers(1, 25),
    alpha=st.sampled_from([1e-6, 0.01, 0.5, 0.99]),
)
def test_any_small_vote_set_screens_without_error(votes, min_votes, alpha) -> None:
    voter, a, b, winner = votes
    result = screen_voters(voter, a, b, winner, min_votes=min_votes, alpha=alpha)
    counts = {v: voter.count(v) for v in set(voter)}
    judged = {v for v, c in counts.items() if c >= min_votes}
    if all(w.startswith("tie") for w in winner):
        judged = set()  # ties alone rate nothing, so nobody is judged
        assert result.note == ALL_TIES or not result.verdicts
    assert {v.voter for v in result.verdicts} == judged
    assert result.untested_voters == len(counts) - len(result.verdicts)
    for verdict in result.verdicts:
        assert 0.0 <= verdict.p_value <= 1.0
        assert verdict.flagged == (verdict.p_value <= alpha)
    if not result.verdicts:
        assert result.note  # says why nobody was judged


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 30), min_votes=st.integers(1, 12))
def test_any_small_store_screens_without_error(database_url, seed, n, min_votes) -> None:
    rng = random.Random(seed)
    models = ["alpha", "beta", "gamma"][: rng.randint(1, 3)]
    rows = [
        (f"voter-{rng.randrange(3)}", rng.choice(models), rng.choice(models), rng.choice(VOTES))
        for _ in range(n)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        if database_url.startswith("sqlite"):  # a fresh file per example
            database_url = f"sqlite:///{tmp}/arena.db"
        with empty_store(database_url) as db:
            _votes(db, rows)
            report = run_voter_screen(db, min_votes=min_votes)
            stored = list_voter_flags(db)
    assert {(f.voter_kind, f.voter_hash) for f in stored} == {
        (f.voter_kind, f.voter_hash) for f in report.flags
    }
    assert report.votes == sum(1 for _v, a, b, _w in rows if a != b)
    assert (report.skipped is None) == (report.tested_voters > 0)
    report.to_dict()  # JSON-ready either way
    assert report.summary()


def _publish(db: Database) -> None:
    head = published_head(db)
    publish_set(db, "set", head.vote_watermark, b"zip", pipeline_stamp=head.pipeline_stamp)
    assert not published_head(db).stale


def _adversary_store(db: Database) -> None:
    """Four honest voters and one who always picks the model the others beat."""
    rng = random.Random(3)
    rows = []
    for _ in range(24):
        for voter in ("h1", "h2", "h3", "h4"):
            a, b = rng.sample(["strong", "weak"], 2)
            honest = "a" if a == "strong" else "b"
            rows.append((voter, a, b, honest if rng.random() < 0.85 else rng.choice(VOTES)))
        a, b = rng.sample(["strong", "weak"], 2)
        rows.append(("bad", a, b, "a" if a == "weak" else "b"))
    _votes(db, rows)


def test_a_screen_that_changes_the_flags_marks_the_board_stale(db) -> None:
    _adversary_store(db)
    _publish(db)
    first = run_voter_screen(db)
    assert first.flagged_voters >= 1 and first.flags_changed
    assert published_head(db).stale  # the live leaderboard recomputes without them
    _publish(db)
    again = run_voter_screen(db)  # the same voters flagged: nothing to recompute
    assert not again.flags_changed and not published_head(db).stale
    cleared = run_voter_screen(db, alpha=1e-100)
    assert cleared.flagged_voters == 0 and cleared.flags_changed
    assert published_head(db).stale


def test_a_screen_of_a_store_without_flags_leaves_the_board_current(db) -> None:
    _votes(db, [("solo", "alpha", "beta", "a")] * 12)
    _publish(db)
    report = run_voter_screen(db)
    assert not report.flags_changed and not published_head(db).stale


def _identified_votes(db: Database, rows: list[tuple[str | None, str | None, str, str, str]]):
    """(ip_hash, session_id, model_a, model_b, vote) rows as voted one-prompt battles."""
    for ip_hash, session_id, a, b, vote in rows:
        battle = create_battle(db, mode="battle", model_a=a, model_b=b, session_id=session_id)
        for conv in (battle.conversation_a_id, battle.conversation_b_id):
            add_message(db, conv, role="user", content="Which answer is better?")
            add_message(db, conv, role="assistant", content="An answer.")
        record_vote(db, battle.id, vote, ip_hash=ip_hash, session_id=session_id)


def _excluded_by_flags(rows, flags) -> int:
    """Votes of ``rows`` the flags exclude, by the rule itself: session OR IP flagged."""
    keys = {(f.voter_kind, f.voter_hash) for f in flags}
    return sum(
        ("ip", ip) in keys or ("session", session_judge(session)) in keys
        for ip, session, *_ in rows
    )


def test_a_voter_flagged_by_session_and_by_ip_leaves_the_ratings_once(db) -> None:
    rng = random.Random(3)
    honest = [(f"ip-h{i}", create_session(db, ttl_s=3600).id) for i in range(4)]
    bad = ("ip-bad", create_session(db, ttl_s=3600).id)
    rows = []
    for _ in range(24):
        for ip, session in honest:
            a, b = rng.sample(["strong", "weak"], 2)
            vote = "a" if a == "strong" else "b"
            rows.append((ip, session, a, b, vote if rng.random() < 0.85 else rng.choice(VOTES)))
        a, b = rng.sample(["strong", "weak"], 2)
        rows.append((*bad, a, b, "a" if a == "weak" else "b"))
    _identified_votes(db, rows)
    _publish(db)

    report = run_voter_screen(db)

    keys = {(f.voter_kind, f.voter_hash) for f in report.flags}
    assert {("ip", "ip-bad"), ("session", session_judge(bad[1]))} <= keys
    assert report.flagged_by_kind["ip"] >= 1 and report.flagged_by_kind["session"] >= 1
    assert report.excluded_votes == _excluded_by_flags(rows, report.flags)
    assert report.excluded_votes < sum(f.votes for f in report.flags)  # not counted twice
    assert published_head(db).stale
    counts: dict[str, int] = {}
    kept = clean_battles(db, counts=counts)
    assert counts["flagged_excluded"] == report.excluded_votes
    assert len(kept) + report.excluded_votes == len(clean_battles(db, include_flagged=True))
    assert f"{report.flagged_by_kind['ip']} by IP" in report.summary()


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 30), min_votes=st.integers(1, 12))
def test_any_small_store_with_sessions_and_ips_screens_consistently(
    database_url, seed, n, min_votes
) -> None:
    rng = random.Random(seed)
    models = ["alpha", "beta", "gamma"][: rng.randint(1, 3)]
    with tempfile.TemporaryDirectory() as tmp:
        if database_url.startswith("sqlite"):  # a fresh file per example
            database_url = f"sqlite:///{tmp}/arena.db"
        with empty_store(database_url) as db:
            sessions = [create_session(db, ttl_s=3600).id for _ in range(3)]
            rows = []
            for _ in range(n):
                ip = rng.choice([None, "ip-0", "ip-1"])
                session = rng.choice([None, *sessions]) if ip else rng.choice(sessions)
                rows.append(
                    (ip, session, rng.choice(models), rng.choice(models), rng.choice(VOTES))
                )
            _identified_votes(db, rows)
            report = run_voter_screen(db, min_votes=min_votes)
            stored = list_voter_flags(db)
            counts: dict[str, int] = {}
            clean_battles(db, counts=counts)
    assert {(f.voter_kind, f.voter_hash) for f in stored} == {
        (f.voter_kind, f.voter_hash) for f in report.flags
    }
    judged = [r for r in rows if r[2] != r[3]]
    assert report.votes == len(judged)
    assert report.excluded_votes == _excluded_by_flags(judged, report.flags)
    assert counts["flagged_excluded"] == _excluded_by_flags(rows, report.flags)
    assert sum(report.flagged_by_kind.values()) == report.flagged_voters
    assert (report.skipped is None) == (report.tested_voters > 0)
    report.to_dict()
    assert report.summary()
