"""``/api/release-opt-out``: a session keeps its conversations out of released datasets,
past and future battles alike, behind the same session and CSRF rules as every POST, and
the answer says nothing about the session's battles. SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from arena.pipeline.release import export_conversations
from arena.store.models import Battle
from support.web_fakes import ScriptedProvider

NAMES = ("amber-model", "cobalt-model")


def _voted_battle(client, mode: str = "side_by_side") -> str:
    battle = client.new_battle(mode, list(NAMES) if mode == "side_by_side" else None)
    response, _ = client.send(battle, "Tell me about lighthouses.")
    assert response.status_code == 200, response.text
    assert client.vote(battle, "a").status_code == 200
    return battle


def _excluded(db) -> dict[str, bool]:
    with db.session(read_only=True) as s:
        return dict(s.execute(select(Battle.id, Battle.release_excluded)).all())


def test_opt_out_covers_past_and_future_battles(arena_server, own_database_url, tmp_path) -> None:
    arena = arena_server(
        [ScriptedProvider(n, reply=f"{n} answers") for n in NAMES], database_url=own_database_url
    )
    leaving, staying = arena.client(), arena.client()
    assert leaving.get("/api/release-opt-out").json() == {"opted_out": False}

    before = _voted_battle(leaving, "battle")
    pending = leaving.new_battle("side_by_side", list(NAMES))
    other = _voted_battle(staying)

    response = leaving.post("/api/release-opt-out")
    assert response.status_code == 200, response.text
    assert response.json() == {"opted_out": True}  # nothing about the battles
    assert leaving.post("/api/release-opt-out").json() == {"opted_out": True}  # repeatable
    assert leaving.get("/api/release-opt-out").json() == {"opted_out": True}
    assert staying.get("/api/release-opt-out").json() == {"opted_out": False}

    after = _voted_battle(leaving)
    excluded = _excluded(arena.db)
    assert excluded[before] and excluded[pending] and excluded[after]
    assert not excluded[other]

    report = export_conversations(arena.db, tmp_path / "c.jsonl")
    released = (tmp_path / "c.jsonl").read_text(encoding="utf-8")
    assert report.rows == 1 and other in released
    assert before not in released and after not in released
    assert report.excluded["opted_out"] == 2
    leaving.close()
    staying.close()


def test_opt_out_needs_the_session_and_its_csrf_token(arena_server) -> None:
    arena = arena_server([ScriptedProvider(n) for n in NAMES])
    client = arena.client()
    battle = _voted_battle(client)

    no_token = client.post("/api/release-opt-out", csrf=False)
    assert no_token.status_code == 403 and no_token.json()["error"]["code"] == "csrf_failed"
    wrong = client.post("/api/release-opt-out", headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    with httpx.Client(base_url=arena.url) as stranger:
        assert stranger.post("/api/release-opt-out").status_code == 403
        assert stranger.get("/api/release-opt-out").json() == {"opted_out": False}
    assert client.get("/api/release-opt-out").json() == {"opted_out": False}
    assert not _excluded(arena.db)[battle]
    client.close()


def test_opt_out_routes_are_in_the_openapi_schema(arena_server) -> None:
    arena = arena_server([ScriptedProvider(n) for n in NAMES])
    with httpx.Client(base_url=arena.url) as http:
        schema = http.get("/openapi.json").json()
    route = schema["paths"]["/api/release-opt-out"]
    assert set(route) == {"get", "post"}
    ok = route["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/ReleaseOptOutState")
    assert {"403", "400"} <= set(route["post"]["responses"])
    state = schema["components"]["schemas"]["ReleaseOptOutState"]
    assert set(state["properties"]) == {"opted_out"}
