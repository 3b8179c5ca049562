"""Before the vote, nothing the server sends names either model; leaks are flagged."""

from __future__ import annotations

import io

from PIL import Image
from sqlalchemy import select

from arena.store.models import Battle, Vote
from support.web_fakes import ScriptedProvider, spec_for

NAME_A = "zephyrquill-omega-9b"
NAME_B = "tarnwick-lumen-2"
ORG_A = "Nimbusforge"
ORG_B = "Quorvex Systems"
SECRETS = [NAME_A, NAME_B, ORG_A, ORG_B, "zephyrquill", "tarnwick", "nimbusforge", "quorvex"]


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def _assert_no_names(raw: bytes) -> None:
    lowered = raw.lower()
    for secret in SECRETS:
        assert secret.lower().encode() not in lowered, f"{secret!r} leaked before the vote"


def _arena(arena_server, *, fail_b: str | None = None, reply_a: str = "First answer **bold**."):
    providers = [
        ScriptedProvider(NAME_A, reply=reply_a, vision=True),
        ScriptedProvider(NAME_B, reply="Second answer with `code`.", vision=True, fail=fail_b),
    ]
    specs = [
        spec_for(NAME_A, vision=True, organization=ORG_A),
        spec_for(NAME_B, vision=True, organization=ORG_B),
    ]
    return arena_server(providers, specs=specs)


def test_no_byte_names_a_model_before_the_vote(arena_server):
    arena = _arena(arena_server, fail_b="during")
    client = arena.client()
    client.get("/")  # the battle page itself
    battle_id = client.new_battle(vision=True)
    assert NAME_A not in battle_id and len(battle_id) == 32

    response, events = client.send(battle_id, "hello there")
    assert response.status_code == 200
    kinds = [e.event for e in events]
    assert kinds[-1] == "end" and "done" in kinds and "error" in kinds
    error = next(e for e in events if e.event == "error")
    assert error.data["side"] in ("a", "b") and "Model" in error.data["message"]
    upload = client.post("/api/images", files={"image": ("x.png", _png(), "image/png")})
    assert upload.status_code == 201
    image_id = upload.json()["image_id"]
    assert client.send(battle_id, "and this picture?", image_id=image_id)[0].status_code == 400
    assert client.vote(battle_id, "a").status_code == 400  # a failed side takes no vote

    response, events = client.regenerate(battle_id)  # fails again
    assert response.status_code == 200 and events[-1].event == "end"
    arena.providers[NAME_B].fail = None
    response, events = client.regenerate(battle_id)
    assert response.status_code == 200 and events[-1].data["can_vote"]

    # An image turn, an upload, error answers of every kind.
    response, _ = client.send(battle_id, "and this picture?", image_id=image_id)
    assert response.status_code == 200
    assert client.send(battle_id, "x" * 100_000)[0].status_code == 413
    assert client.post(f"/api/battles/{battle_id}/vote", json={"vote": "maybe"}).status_code == 422
    assert client.get(f"/api/battles/{battle_id}").status_code == 200
    assert client.get("/api/battles/ffffffffffffffffffffffffffffffff").status_code == 404
    assert (
        client.post("/api/battles", json={"mode": "battle", "models": [NAME_A]}).status_code == 400
    )

    view = client.get(f"/api/battles/{battle_id}").json()
    assert view["state"] == "ready" and view["can_vote"]
    assert all("model" not in side for side in view["sides"])
    _assert_no_names(bytes(client.received))
    for cookie in client.http.cookies.jar:
        _assert_no_names(f"{cookie.name}={cookie.value}".encode())

    vote = client.vote(battle_id, "a")
    assert vote.status_code == 200
    revealed = vote.json()["models"]
    assert {revealed["a"]["name"], revealed["b"]["name"]} == {NAME_A, NAME_B}
    view = client.get(f"/api/battles/{battle_id}").json()
    assert {s["model"] for s in view["sides"]} == {NAME_A, NAME_B}
    assert client.vote(battle_id, "b").status_code == 409
    client.close()


def test_identity_leak_is_flagged_told_and_excluded(arena_server):
    arena = _arena(arena_server, reply_a=f"Hello! I am {NAME_A.upper()}, made by {ORG_A}.")
    client = arena.client()
    battle_id = client.new_battle()
    _response, events = client.send(battle_id, "who are you?")
    leaks = [e for e in events if e.event == "leak"]
    assert len(leaks) == 1 and leaks[0].data["side"] in ("a", "b")
    assert "will not count" in leaks[0].data["message"]
    end = events[-1]
    assert end.event == "end" and end.data["identity_leaked"] and end.data["message"]
    # The leak notice itself never repeats the name.
    for secret in SECRETS:
        assert secret.lower() not in str(leaks[0].data).lower()

    view = client.get(f"/api/battles/{battle_id}").json()
    assert view["identity_leaked"] and view["notice"]

    vote = client.vote(battle_id, "tie")
    assert vote.status_code == 200
    body = vote.json()
    assert body["leaked"] is True and body["counted"] is False
    assert body["models"][leaks[0].data["side"]]["name"] == NAME_A  # the side that said it
    with arena.db.session() as s:
        battle = s.get(Battle, battle_id)
        assert battle.leaked and battle.status == "voted"
        votes = s.scalars(select(Vote).where(Vote.battle_id == battle_id)).all()
        assert [v.type for v in votes] == ["tie"]
    client.close()
