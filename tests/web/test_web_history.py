"""The session's history: its own battles only, newest first, paged; names only where the
session has already seen them, share links only where the battle can be shared."""

from __future__ import annotations

import httpx

from support.web_fakes import ScriptedProvider

NAMES = ("amber-model", "cobalt-model")


def _arena(arena_server):
    return arena_server([ScriptedProvider(name, reply=f"{name} here") for name in NAMES])


def _entries(client, **params) -> list[dict]:
    response = client.get("/api/history", params=params)
    assert response.status_code == 200, response.text
    return response.json()["battles"]


def test_history_lists_own_battles_newest_first_with_names_once_revealed(arena_server):
    arena = _arena(arena_server)
    client = arena.client()
    voted = client.new_battle()
    client.send(voted, "first")
    vote_reply = client.vote(voted, "b").json()
    pending = client.new_battle()
    client.send(pending, "second")
    named = client.new_battle("side_by_side", list(NAMES))
    direct = client.new_battle("direct", ["cobalt-model"])
    client.send(direct, "third")
    client.vote(direct, "upvote")

    raw = client.get("/api/history")
    entries = {e["battle_id"]: e for e in raw.json()["battles"]}
    assert [e["battle_id"] for e in raw.json()["battles"]] == [direct, named, pending, voted]
    assert raw.json()["next_cursor"] is None

    assert entries[voted]["models"] == {
        side: vote_reply["models"][side]["name"] for side in ("a", "b")
    }
    assert entries[voted]["vote"] == "b"
    assert entries[voted]["share_url"] == vote_reply["share_url"]
    # The unvoted anonymous battle: nothing that depends on its models.
    assert {k: v for k, v in entries[pending].items() if k not in ("battle_id", "created_at")} == {
        "mode": "battle",
        "models": None,
        "vote": None,
        "share_url": None,
    }
    assert entries[named]["models"] == {"a": NAMES[0], "b": NAMES[1]}
    assert entries[named]["vote"] is None and entries[named]["share_url"] is None
    assert entries[direct]["models"] == {"a": "cobalt-model"}
    assert entries[direct]["vote"] == "upvote" and entries[direct]["share_url"]
    with httpx.Client(base_url=arena.url) as stranger:
        assert stranger.get(entries[direct]["share_url"]).status_code == 200
    client.close()


def test_history_pages_with_a_cursor(arena_server):
    arena = _arena(arena_server)
    client = arena.client()
    created = [client.new_battle("side_by_side", list(NAMES)) for _ in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/history", params=params).json()
        assert len(body["battles"]) <= 2
        seen += [e["battle_id"] for e in body["battles"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == created[::-1]
    assert client.get("/api/history", params={"limit": 0}).status_code == 422
    assert client.get("/api/history", params={"limit": 101}).status_code == 422
    bad = client.get("/api/history", params={"cursor": "%%%not-a-cursor"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "cursor"
    client.close()


def test_another_session_never_sees_the_history(arena_server):
    arena = _arena(arena_server)
    owner = arena.client()
    older = owner.new_battle("side_by_side", list(NAMES))
    battle_id = owner.new_battle()
    owner.send(battle_id, "mine")
    owner.vote(battle_id, "a")
    first = owner.get("/api/history", params={"limit": 1}).json()
    assert [e["battle_id"] for e in first["battles"]] == [battle_id]
    assert first["next_cursor"] is not None

    other = arena.client()
    assert _entries(other) == []
    # Even with the owner's own cursor shape, only the caller's battles are listed.
    assert _entries(other, cursor=first["next_cursor"]) == []
    assert [e["battle_id"] for e in _entries(owner, cursor=first["next_cursor"])] == [older]
    page = other.get("/history")
    assert page.status_code == 200
    assert battle_id not in page.text and older not in page.text
    assert "No battles yet" in page.text
    for name in NAMES:
        assert name not in page.text
    with httpx.Client(base_url=arena.url) as no_session:
        assert _entries(no_session) == []
    owner.close()
    other.close()


def test_history_page_is_linked_from_the_nav_and_lists_battles(arena_server):
    arena = _arena(arena_server)
    client = arena.client()
    battle_id = client.new_battle()
    client.send(battle_id, "hi")
    home = client.get("/")
    assert 'href="/history"' in home.text
    page = client.get("/history")
    assert page.status_code == 200
    assert 'aria-current="page">History<' in page.text
    assert "names hidden until you vote" in page.text
    for name in NAMES:
        assert name not in page.text
    share_url = client.vote(battle_id, "tie").json()["share_url"]
    page = client.get("/history").text
    assert f'href="{share_url}"' in page and "Tie" in page
    assert all(name in page for name in NAMES)
    client.close()
