"""Named side-by-side, direct chat, regenerate, vision, upstream failures, client
disconnects, bad input and the OpenAPI schema, through the real app on loopback."""

from __future__ import annotations

import hashlib
import io
import time

import httpx
from PIL import Image
from sqlalchemy import func, select

from arena.store.models import Message, StoredImage, Vote
from support.processes import wait_until
from support.web_fakes import ScriptedProvider


def _image(fmt: str = "PNG", size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buf, fmt)
    return buf.getvalue()


def test_side_by_side_names_are_shown_and_vote_counts_once(arena_server):
    arena = arena_server([ScriptedProvider("left-model"), ScriptedProvider("right-model")])
    client = arena.client()
    models = client.get("/api/models").json()["models"]
    assert [m["name"] for m in models] == ["left-model", "right-model"]
    created = client.post(
        "/api/battles", json={"mode": "side_by_side", "models": ["right-model", "left-model"]}
    )
    assert created.status_code == 201
    sides = {s["side"]: s["model"] for s in created.json()["sides"]}
    assert sides == {"a": "right-model", "b": "left-model"}
    battle_id = created.json()["battle_id"]
    _response, events = client.send(battle_id, "compare")
    assert {e.data["side"] for e in events if e.event == "done"} == {"a", "b"}
    assert client.vote(battle_id, "bothbad").json()["counted"] is False  # named: not rated
    assert client.vote(battle_id, "a").status_code == 409
    bad = client.post("/api/battles", json={"mode": "side_by_side", "models": ["left-model"]})
    assert bad.status_code == 400
    unknown = client.post("/api/battles", json={"mode": "direct", "models": ["nope"]})
    assert unknown.status_code == 404
    client.close()


def test_direct_chat_feedback_and_multi_turn_history(arena_server):
    echo = ScriptedProvider(
        "solo", reply=lambda r: f"turn {sum(m.role == 'user' for m in r.messages)}"
    )
    arena = arena_server([echo])
    client = arena.client()
    battle_id = client.new_battle("direct", ["solo"])
    assert client.vote(battle_id, "upvote").status_code == 400  # nothing to rate yet
    _, events = client.send(battle_id, "first")
    assert [e.event for e in events] == ["delta", "delta", "done", "end"]
    _, events = client.send(battle_id, "second")
    assert "turn 2" in next(e for e in events if e.event == "done").data["html"]
    history = echo.requests[-1].messages
    assert [m.role for m in history] == ["user", "assistant", "user"]
    assert history[1].content == "turn 1"
    assert client.vote(battle_id, "a").status_code == 400  # battle votes are not for direct
    for value in ("upvote", "flag"):
        assert client.vote(battle_id, value).status_code == 200
    with arena.db.session() as s:
        votes = s.scalars(select(Vote).where(Vote.battle_id == battle_id)).all()
        assert sorted(v.type for v in votes) == ["flag", "upvote"]
        assert all(v.message_id is not None for v in votes)
    client.close()


def test_regenerate_replaces_the_last_answers(arena_server):
    counter = {"n": 0}

    def reply(_request):
        counter["n"] += 1
        return f"version {counter['n']}"

    arena = arena_server(
        [ScriptedProvider("one", reply=reply), ScriptedProvider("two", reply=reply)]
    )
    client = arena.client()
    battle_id = client.new_battle()
    assert client.regenerate(battle_id)[0].status_code == 400  # nothing to regenerate
    client.send(battle_id, "hi")
    response, events = client.regenerate(battle_id)
    assert response.status_code == 200
    texts = sorted(e.data["html"] for e in events if e.event == "done")
    assert texts == ["<p>version 3</p>\n", "<p>version 4</p>\n"]
    view = client.get(f"/api/battles/{battle_id}").json()
    assert len(view["turns"]) == 1 and view["turns"][0]["regenerations"] == 1
    assert sorted(a["text"] for a in view["turns"][0]["answers"]) == ["version 3", "version 4"]
    assert client.vote(battle_id, "tie").status_code == 200
    assert client.regenerate(battle_id)[0].status_code == 409  # voted: no more changes
    assert client.send(battle_id, "more?")[0].status_code == 409
    client.close()


def test_vision_battles_only_draw_vision_models(arena_server):
    providers = [
        ScriptedProvider("eye-1", vision=True, reply="I see red."),
        ScriptedProvider("eye-2", vision=True, reply="A red square."),
        ScriptedProvider("blind-1"),
        ScriptedProvider("blind-2"),
    ]
    arena = arena_server(providers)
    client = arena.client()
    upload = client.post(
        "/api/images", files={"image": ("photo.jpg", _image("JPEG"), "image/jpeg")}
    )
    assert upload.status_code == 201 and upload.json()["mime_type"] == "image/jpeg"
    image_id = upload.json()["image_id"]
    for _ in range(4):
        battle_id = client.new_battle(vision=True)
        response, events = client.send(battle_id, "what is this?", image_id=image_id)
        assert response.status_code == 200 and events[-1].event == "end"
    assert not providers[2].requests and not providers[3].requests
    parts = providers[0].requests[-1].messages[-1].content
    assert parts[1].image_url.url.startswith("data:image/jpeg;base64,")
    # Multipart message with the file inline works too.
    battle_id = client.new_battle(vision=True)
    multipart = client.post(
        f"/api/battles/{battle_id}/messages",
        data={"text": "and this?"},
        files={"image": ("g.gif", _image("GIF"), "image/gif")},
    )
    assert multipart.status_code == 200 and b"event: end" in multipart.content
    # An image sent to a battle whose models cannot see is refused with a clear message.
    text_battle = client.new_battle("side_by_side", ["blind-1", "blind-2"])
    refused = client.send(text_battle, "look", image_id=image_id)[0]
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "vision_not_supported"
    with arena.db.session() as s:
        stored = s.scalars(select(StoredImage)).all()
        assert len(stored) == 2
        for row in stored:  # in the database (any replica serves it), keyed by its hash
            assert row.data and hashlib.sha256(row.data).hexdigest() == row.content_hash
    client.close()


def test_bad_input_gets_clear_errors(arena_server):
    arena = arena_server(
        [ScriptedProvider("p-1", vision=True), ScriptedProvider("p-2", vision=True)]
    )
    client = arena.client()
    battle_id = client.new_battle()

    def err(response, status, code=None):
        assert response.status_code == status, response.text
        body = response.json()["error"]
        assert body["message"]
        if code:
            assert body["code"] == code
        return body

    err(
        client.post("/api/battles", content=b"{bad", headers={"Content-Type": "application/json"}),
        400,
        "malformed_json",
    )
    err(
        client.post(
            f"/api/battles/{battle_id}/messages",
            content=b"[1,",
            headers={"Content-Type": "application/json"},
        ),
        400,
        "malformed_json",
    )
    err(client.post("/api/battles", json={"mode": "tournament"}), 422)
    err(client.post(f"/api/battles/{battle_id}/messages", json={"txt": "x"}), 422)
    err(client.send(battle_id, "z" * 20_000)[0], 413)
    err(
        client.post(
            f"/api/battles/{battle_id}/messages",
            content=b"text",
            headers={"Content-Type": "text/plain"},
        ),
        415,
    )
    err(client.send("0" * 32, "hello")[0], 404)
    err(client.send(battle_id, "hi", image_id="a" * 64)[0], 400, "text_only_battle")
    err(client.send(client.new_battle(vision=True), "hi", image_id="a" * 64)[0], 404)
    err(client.vote(battle_id, "a"), 400, "vote_before_answer")
    # Images: wrong type (decoded, not trusted by name), junk, too big.
    bmp = io.BytesIO()
    Image.new("RGB", (8, 8)).save(bmp, "BMP")
    err(client.post("/api/images", files={"image": ("fake.png", bmp.getvalue(), "image/png")}), 415)
    err(
        client.post(
            "/api/images", files={"image": ("a.png", b"<svg onload=alert(1)>", "image/png")}
        ),
        415,
    )
    err(client.post("/api/images", json={"image": "x"}), 415)
    huge = b"\x89PNG" + b"0" * (9 * 1024 * 1024)
    err(client.post("/api/images", files={"image": ("big.png", huge, "image/png")}), 413)
    client.send(battle_id, "hello")
    assert client.vote(battle_id, "b").status_code == 200
    err(client.vote(battle_id, "a"), 409, "already_voted")
    with arena.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Vote)) == 1
    client.close()


def test_failing_side_does_not_stop_the_other_and_names_nothing(arena_server):
    providers = [
        ScriptedProvider("healthy-model", reply="All good here."),
        ScriptedProvider("broken-model", fail="before"),
    ]
    arena = arena_server(providers)
    client = arena.client()
    battle_id = client.new_battle()
    _response, events = client.send(battle_id, "hi")
    done = [e for e in events if e.event == "done"]
    errors = [e for e in events if e.event == "error"]
    assert len(done) == 1 and len(errors) == 1
    assert "broken" not in errors[0].data["message"] and "Model" in errors[0].data["message"]
    assert errors[0].data["kind"] == "failed"  # how it failed is held back before the vote
    end = events[-1].data
    assert (
        end["can_vote"] is False and end["can_regenerate"] and "cannot be voted" in end["message"]
    )
    refused = client.vote(battle_id, "a")  # a vote against an error says nothing: refused
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "answer_failed"
    with arena.db.session() as s:
        stored_error = s.scalars(select(Message.error).where(Message.error.is_not(None))).one()
        assert "broken-model" in stored_error  # the raw error is kept server-side
    client.close()


def test_hanging_model_times_out_and_client_disconnect_frees_the_battle(arena_server):
    from arena.web.streaming import StreamLimits

    providers = [
        ScriptedProvider("slowpoke", reply="a b c d e f", fail="hang"),
        ScriptedProvider("sprinter", reply="fast answer"),
    ]
    # Limits a healthy model meets even on a busy machine; the hang lasts an hour.
    arena = arena_server(
        providers,
        stream_limits=StreamLimits(
            first_token_timeout_s=5.0, idle_timeout_s=5.0, total_timeout_s=60
        ),
    )
    client = arena.client()
    battle_id = client.new_battle()
    started = time.monotonic()
    response, events = client.send(battle_id, "go")
    assert time.monotonic() - started < 40  # cut off by a limit, well before the total
    error = next(e for e in events if e.event == "error")
    assert error.data["kind"] == "failed" and "could not answer" in error.data["message"]

    # Now a client that leaves mid-stream: the turn is recorded and the battle is free.
    battle_id = client.new_battle()
    providers[1].interval_s = 0.2
    providers[1].reply = "one two three four five six seven eight nine ten"
    providers[0].fail = None
    providers[0].interval_s = 0.2
    raw = httpx.Client(base_url=arena.url, cookies=client.http.cookies, timeout=10)
    with raw.stream(
        "POST",
        f"/api/battles/{battle_id}/messages",
        json={"text": "long one"},
        headers={"X-CSRF-Token": client.csrf},
    ) as streaming:
        for chunk in streaming.iter_bytes():
            if b"event: delta" in chunk:
                break  # leave mid-stream
    raw.close()

    def ready_view() -> dict | None:
        view = client.get(f"/api/battles/{battle_id}").json()
        return view if view["state"] == "ready" else None

    view = wait_until(ready_view, what="the battle to be free again")
    assert len(view["turns"]) == 1
    assert all(a["failed"] for a in view["turns"][0]["answers"])
    assert sum(p.cancelled for p in providers) >= 1  # upstream generation was cancelled
    response, events = client.regenerate(battle_id)
    assert response.status_code == 200 and events[-1].event == "end"

    # A named chat shows its models anyway, so it may say how the side failed.
    providers[0].fail, providers[0].interval_s = "hang", 0.0
    named = client.new_battle("side_by_side", ["slowpoke", "sprinter"])
    _response, events = client.send(named, "go")
    error = next(e for e in events if e.event == "error")
    assert error.data["kind"] == "timeout" and "did not answer in time" in error.data["message"]
    client.close()


def test_openapi_documents_the_arena_api(arena_server):
    arena = arena_server([ScriptedProvider("d-1"), ScriptedProvider("d-2")])
    schema = httpx.get(arena.url + "/openapi.json").json()
    paths = schema["paths"]
    create = paths["/api/battles"]["post"]
    assert "BattleCreated" in str(create["responses"]["201"])
    assert {"400", "403", "422", "429"} <= set(create["responses"])
    messages = paths["/api/battles/{battle_id}/messages"]["post"]
    assert "text/event-stream" in messages["responses"]["200"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(messages["requestBody"]["content"])
    assert {"404", "409", "413", "415"} <= set(messages["responses"])
    vote = paths["/api/battles/{battle_id}/vote"]["post"]
    assert "VoteResult" in str(vote["responses"]["200"]) and "409" in vote["responses"]
    assert "ErrorResponse" in str(vote["responses"]["409"])
    assert "/api/images" in paths and "/api/battles/{battle_id}/regenerate" in paths


def test_a_model_that_is_no_longer_served_fails_its_side_or_gets_a_clear_503(arena_server):
    arena = arena_server([ScriptedProvider("gone-soon"), ScriptedProvider("still-here")])
    client = arena.client()
    battle_id = client.new_battle()
    named = client.new_battle("side_by_side", ["gone-soon", "still-here"])
    del arena.app.state.web.service.providers["gone-soon"]
    # Anonymous: the lost model fails like any side would; a 503 would single out the
    # battles it is in.
    response, events = client.send(battle_id, "hello?")
    assert response.status_code == 200 and "gone-soon" not in response.text
    assert [e.data["kind"] for e in events if e.event == "error"] == ["failed"]
    assert [e.event for e in events if e.event == "done"] == ["done"]
    # Named: the chat shows its models anyway.
    response = client.send(named, "hello?")[0]
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "models_unavailable"
    # New battles draw only from what is served: fewer than two models is a clear 503 too.
    refused = client.post("/api/battles", json={"mode": "battle"})
    assert refused.status_code == 503 and "gone-soon" not in refused.text
    client.close()
