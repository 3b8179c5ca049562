"""Share links: after the vote anyone can read the battle (names, conversation, verdict)
without a session; before it, its link reads exactly like an unknown one. Also the texts
that say why a named vote is not rated and why demo models refuse images."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from arena.store.models import Battle
from arena.web.share import ShareLinks
from support.web_fakes import ScriptedProvider, spec_for

SECRET = b"web-test-secret"  # the arena_server fixture's secret_key


def _two_models(arena_server):
    return arena_server(
        [
            ScriptedProvider("north-model", reply="North says **hello** <script>x()</script>"),
            ScriptedProvider("south-model", reply="South answers plainly."),
        ]
    )


def _token_of(arena, battle_id: str) -> str:
    """The token the server derives for a battle, from the stored creation time."""
    with arena.db.session() as s:
        created = s.scalars(select(Battle.created_at).where(Battle.id == battle_id)).one()
    return ShareLinks(SECRET).token_for(battle_id, created)


def _answered_battle(arena, client, prompt: str = "Say hello") -> str:
    battle_id = client.new_battle()
    response, events = client.send(battle_id, prompt)
    assert response.status_code == 200 and events[-1].event == "end"
    return battle_id


def _comparable(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    """Status, body and headers, less the two that differ between any two requests."""
    headers = sorted((k.lower(), v) for k, v in response.headers.items() if k.lower() != "date")
    # Server-Timing is present on both, with each request's own duration.
    names = [(k, v if k != "server-timing" else "app") for k, v in headers]
    return response.status_code, response.content, names


def test_vote_reply_links_a_public_page_and_json(arena_server):
    arena = _two_models(arena_server)
    client = arena.client()
    battle_id = _answered_battle(arena, client)
    reply = client.vote(battle_id, "a").json()
    share_url = reply["share_url"]
    assert share_url.startswith("/share/") and battle_id not in share_url
    names = {side: reply["models"][side]["name"] for side in ("a", "b")}
    texts = {
        "north-model": "North says **hello** <script>x()</script>",
        "south-model": "South answers plainly.",
    }

    with httpx.Client(base_url=arena.url) as stranger:  # no session, no cookies
        token = share_url.rsplit("/", 1)[1]
        data = stranger.get(f"/api/share/{token}")
        page = stranger.get(share_url)
    assert data.status_code == 200 and page.status_code == 200
    assert "set-cookie" not in data.headers and "set-cookie" not in page.headers
    shared = data.json()
    assert shared["mode"] == "battle" and shared["vote"] == "a"
    assert {s["side"]: s["model"] for s in shared["sides"]} == names
    assert [t["prompt"] for t in shared["turns"]] == ["Say hello"]
    answers = {a["side"]: a for a in shared["turns"][0]["answers"]}
    for side in ("a", "b"):
        assert answers[side]["text"] == texts[names[side]]
    north_side = next(s for s, n in names.items() if n == "north-model")
    assert "<strong>hello</strong>" in answers[north_side]["html"]
    assert "<script>" not in answers[north_side]["html"]
    assert battle_id not in data.text and battle_id not in page.text

    html = page.text
    assert "north-model" in html and "south-model" in html
    assert "Say hello" in html and "Model A is better" in html
    assert "<strong>hello</strong>" in html and "<script>x()" not in html
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    client.close()


def test_before_the_vote_the_link_reads_like_an_unknown_one(arena_server):
    arena = _two_models(arena_server)
    client = arena.client()
    battle_id = _answered_battle(arena, client)
    token = _token_of(arena, battle_id)
    millis = token.split("-")[0]
    unknown = f"{millis}-{'0' * 32}"  # the same instant, a wrong MAC
    with httpx.Client(base_url=arena.url) as stranger:
        for prefix in ("/api/share/", "/share/"):
            before = _comparable(stranger.get(prefix + token))
            assert before[0] == 404
            assert before == _comparable(stranger.get(prefix + unknown))
            assert before == _comparable(stranger.get(prefix + "not-a-token"))
        # The battle's owner sees the same before the vote.
        assert _comparable(client.get("/api/share/" + token)) == _comparable(
            client.get("/api/share/" + unknown)
        )
        reply = client.vote(battle_id, "tie").json()
        assert reply["share_url"] == f"/share/{token}"  # the very token probed above
        assert stranger.get("/api/share/" + token).json()["vote"] == "tie"
        assert stranger.get("/api/share/" + unknown).status_code == 404
    client.close()


def test_named_side_by_side_is_shared_after_its_vote(arena_server):
    arena = _two_models(arena_server)
    client = arena.client()
    battle_id = client.new_battle("side_by_side", ["south-model", "north-model"])
    client.send(battle_id, "compare")
    token = _token_of(arena, battle_id)
    assert client.get(f"/api/share/{token}").status_code == 404  # names known, not voted
    share_url = client.vote(battle_id, "b").json()["share_url"]
    shared = client.get(share_url.replace("/share/", "/api/share/")).json()
    assert [s["model"] for s in shared["sides"]] == ["south-model", "north-model"]
    assert shared["vote"] == "b" and shared["vote_label"] == "Model B is better"
    client.close()


def test_direct_chat_is_shared_up_to_the_rated_answer(arena_server):
    solo = ScriptedProvider("solo", reply=lambda r: f"answer {len(r.messages)}")
    arena = arena_server([solo])
    client = arena.client()
    battle_id = client.new_battle("direct", ["solo"])
    client.send(battle_id, "first question")
    share_url = client.vote(battle_id, "upvote").json()["share_url"]
    client.send(battle_id, "second, private question")
    with httpx.Client(base_url=arena.url) as stranger:
        shared = stranger.get(share_url.replace("/share/", "/api/share/")).json()
        page = stranger.get(share_url).text
    assert shared["mode"] == "direct" and shared["vote"] == "upvote"
    assert [s["model"] for s in shared["sides"]] == ["solo"]
    assert [t["prompt"] for t in shared["turns"]] == ["first question"]
    assert shared["turns"][0]["answers"][0]["text"] == "answer 1"
    assert "second, private question" not in page
    # Rating the second answer shares the chat up to it.
    client.vote(battle_id, "downvote")
    shared = client.get(share_url.replace("/share/", "/api/share/")).json()
    assert [t["prompt"] for t in shared["turns"]] == ["first question", "second, private question"]
    assert shared["vote"] == "downvote"
    client.close()


def test_named_vote_text_gives_the_real_reason(arena_server):
    arena = _two_models(arena_server)
    client = arena.client()
    battle_id = client.new_battle("side_by_side", ["north-model", "south-model"])
    client.send(battle_id, "compare")
    reply = client.vote(battle_id, "a").json()
    # The page picks its text from these: not counted, and no identity leak.
    assert reply["counted"] is False and reply["leaked"] is False
    script = client.get("/static/arena.js").text
    assert "a model revealed its identity" not in script
    assert "because you knew the models' names" in script
    assert re.search(r'mode === "battle" && result\.leaked', script)
    client.close()


def test_images_sent_to_demo_models_say_why_not_and_what_to_do(arena_server):
    specs = [spec_for("demo-one", provider="demo"), spec_for("demo-two", provider="demo")]
    arena = arena_server([], specs=specs)
    client = arena.client()
    refused = client.post("/api/battles", json={"mode": "battle", "vision": True})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "images_not_supported"
    assert "cannot read images" in error["message"]
    assert "without the image" in error["message"]
    assert "try again" not in error["message"].lower()
    named = client.post(
        "/api/battles", json={"mode": "direct", "models": ["demo-one"], "vision": True}
    )
    assert named.status_code == 400
    assert "cannot read images" in named.json()["error"]["message"]
    assert "without the image" in named.json()["error"]["message"]
    # A text battle with the same models still works.
    assert client.post("/api/battles", json={"mode": "battle"}).status_code == 201
    client.close()
