"""The anomalous-voter screen over a real store (SQLite and PostgreSQL): battles and votes
written through the store API, one adversary who always votes for the weakest model, the flag
written under the export's ``judge`` identity, the export leaving that voter's votes out, and a
later screen replacing the flags."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import numpy as np
import pytest

from arena.pipeline.voter_screen import load_votes, run_voter_screen
from arena.ratings.errors import RatingInputError
from arena.store.battles import create_battle
from arena.store.conversations import add_message
from arena.store.db import Database
from arena.store.export import clean_battles
from arena.store.sessions import create_session
from arena.store.voter_flags import flagged_judges, judge_value, list_voter_flags
from arena.store.votes import record_vote
from support.empty_store import empty_store

# Rating points 300 / 150 / 0, in natural-log units (scale 400, base 10).
THETA = {"strong": 300 / 173.72, "middle": 150 / 173.72, "weak": 0.0}
TIE_NU = 0.3
HONEST_VOTERS = 8
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


@pytest.fixture
def arena_votes(voter_db: Database) -> dict[str, str]:
    """Eight honest voters (IP hashes) and one adversary (a session, no IP) who votes for
    "weak" in every battle, interleaved; returns the adversary's session id."""
    rng = np.random.default_rng(11)
    models = list(THETA)
    adversary = create_session(voter_db, ttl_s=3600).id
    honest_ips = [hashlib.sha256(f"ip-{i}".encode()).hexdigest() for i in range(HONEST_VOTERS)]
    for round_ in range(VOTES_EACH):
        for ip in honest_ips:
            a, b = rng.choice(models, 2, replace=False)
            _battle(voter_db, str(a), str(b), _honest_vote(rng, str(a), str(b)), ip_hash=ip)
        other = ["strong", "middle"][round_ % 2]
        a, b = ("weak", other) if round_ % 3 else (other, "weak")
        _battle(voter_db, a, b, "a" if a == "weak" else "b", session_id=adversary)
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
    json.dumps(report.to_dict())

    stored = list_voter_flags(voter_db)
    assert [(f.voter_kind, f.voter_hash) for f in stored] == [
        (f.voter_kind, f.voter_hash) for f in report.flags
    ]
    assert adversary_judges <= flagged_judges(voter_db)
    assert all(len(f.voter_hash) <= 64 for f in stored)

    # The export leaves the flagged voter's votes out unless asked to keep them.
    after = clean_battles(voter_db)
    assert not adversary_judges & {r["judge"] for r in after}
    assert len(after) == len(before) - report.flagged_votes
    kept = clean_battles(voter_db, include_flagged=True)
    assert len(kept) == len(before)


def test_a_later_screen_replaces_the_flags(voter_db, arena_votes):
    assert run_voter_screen(voter_db, alpha=0.01).flagged_voters >= 1
    assert list_voter_flags(voter_db)
    # At an absurdly strict level nobody is flagged, and the old flags go.
    report = run_voter_screen(voter_db, alpha=1e-100)
    assert report.flagged_voters == 0
    assert list_voter_flags(voter_db) == []
    assert flagged_judges(voter_db) == frozenset()


def test_votes_load_in_order_with_voter_identities(voter_db, arena_votes):
    votes = load_votes(voter_db)
    assert len(votes.voter) == (HONEST_VOTERS + 1) * VOTES_EACH
    kinds = {v.partition(":")[0] for v in votes.voter}
    assert kinds == {"ip", "session"}
    assert set(votes.winner) <= {"model_a", "model_b", "tie"}
    # No session cookie leaves the store: only its hash does.
    assert arena_votes["adversary"] not in "".join(votes.voter)


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
