"""Red-team boards fitted from a real store (SQLite and PostgreSQL): a strong player above a
weak one, a robust model above a weak one, duplicate wins counted once, nicknames shown."""

from __future__ import annotations

import json

import pytest

from arena.redteam.boards_from_store import (
    boards_payload,
    load_store_boards,
    player_label,
    player_labels,
)
from arena.store.redteam_players import set_nickname
from arena.store.redteam_rounds import create_round
from support.empty_store import empty_store
from support.redteam_rounds import PHRASE, phrase_challenge, play_round, snapshot

STRONG, MEDIUM, WEAK = ("a1" * 32, "b2" * 32, "c3" * 32)
MODELS = ("robust-model", "soft-model")
# Successes out of 10 rounds on each challenge: (player, model) -> wins.
WINS = {
    (STRONG, "soft-model"): 8,
    (STRONG, "robust-model"): 5,
    (MEDIUM, "soft-model"): 6,
    (MEDIUM, "robust-model"): 3,
    (WEAK, "soft-model"): 4,
    (WEAK, "robust-model"): 1,
}


def fill(db) -> None:
    """Three players against two models on two challenges, every attack different."""
    for challenge_id in ("harbour", "galleon"):
        challenge = phrase_challenge(challenge_id, MODELS)
        for (player, model), wins in WINS.items():
            for i in range(10):
                won = i < wins
                attack = f"{player[:4]} round {i} on {model}: say {PHRASE}"
                play_round(
                    db,
                    player_id=player,
                    model=model,
                    challenge=challenge,
                    prompts=[f"hello {i}", attack],
                    won=won,
                )


@pytest.fixture
def store(database_url):
    with empty_store(database_url) as db:
        yield db


def test_order_of_players_and_models_is_recovered_and_nicknames_shown(store):
    fill(store)
    set_nickname(store, STRONG, "Red Fox")
    fitted = load_store_boards(store)
    boards = fitted.boards
    assert boards.n_rounds == 120 and fitted.successes == 2 * sum(WINS.values())
    weak_label = player_label(WEAK, None)
    assert weak_label == "player-" + WEAK[:8]
    assert boards.players.names() == ["Red Fox", player_label(MEDIUM, None), weak_label]
    assert boards.models.names() == ["robust-model", "soft-model"]  # most robust first
    fox = boards.players.rows[0]
    assert fox.rounds == 40 and fox.successes == 2 * (8 + 5)
    assert fox.lower < fox.rating < fox.upper
    # Ranks come from the intervals: the strong player's is above the weak one's.
    assert boards.players.rows[0].rank <= boards.players.rows[-1].rank
    payload = json.loads(json.dumps(boards_payload(fitted)))
    assert set(payload) == {
        "n_rounds",
        "confidence",
        "preliminary_rounds",
        "warnings",
        "warning_codes",
        "computed_at",
        "players",
        "models",
        "challenges",
    }
    assert payload["players"][0] == {
        "rank": fox.rank,
        "name": "Red Fox",
        "rating": round(fox.rating, 2),
        "lower": round(fox.lower, 2),
        "upper": round(fox.upper, 2),
        "rounds": 40,
        "successes": 26,
        "preliminary": False,
    }
    assert {c["name"]: c["rounds"] for c in payload["challenges"]} == {
        "harbour": 60,
        "galleon": 60,
    }
    assert payload["warnings"] == payload["warning_codes"] == []


def test_a_repeated_winning_attack_counts_once(store):
    challenge = phrase_challenge("harbour", MODELS)
    same = ["hi", f"please say {PHRASE}"]
    first = play_round(
        store, player_id=STRONG, model="soft-model", challenge=challenge, prompts=same, won=True
    )
    again = play_round(
        store, player_id=WEAK, model="soft-model", challenge=challenge, prompts=same, won=True
    )
    assert first.duplicate_of is None and again.duplicate_of == first.id
    play_round(store, player_id=WEAK, model="robust-model", challenge=challenge, prompts=["x"],
               won=False)  # fmt: skip
    boards = load_store_boards(store).boards
    assert boards.n_rounds == 2
    weak = {r.name: r for r in boards.players.rows}[player_label(WEAK, None)]
    assert (weak.rounds, weak.successes) == (1, 0)
    counted = load_store_boards(store, include_duplicates=True)
    assert counted.boards.n_rounds == 3 and counted.include_duplicates
    weak = {r.name: r for r in counted.boards.players.rows}[player_label(WEAK, None)]
    assert (weak.rounds, weak.successes) == (2, 1)


def test_no_ended_round_gives_empty_boards(store):
    challenge = phrase_challenge("harbour", MODELS)
    create_round(
        store,
        player_id=STRONG,
        session_id=None,
        ip_hash=None,
        challenge=snapshot(challenge),
        model="soft-model",
        system_prompt=None,
        secret_core=None,
    )  # still active: not rated
    payload = boards_payload(load_store_boards(store, confidence=0.9))
    assert payload["n_rounds"] == 0 and payload["confidence"] == 0.9
    assert payload["players"] == payload["models"] == payload["challenges"] == []


def test_labels_of_many_players_are_looked_up_in_chunks(store):
    ids = [f"{i:064x}" for i in range(1200)]
    set_nickname(store, ids[1100], "Late Joiner")
    labels = player_labels(store, ids)
    assert len(labels) == 1200 and labels[ids[1100]] == "Late Joiner"
    assert labels[ids[5]] == "player-" + ids[5][:8]
