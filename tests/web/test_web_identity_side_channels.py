"""The two attacks of the identity side-channel report, replayed against a real app, and
the rule that a battle with a failed side never reaches the ratings.

1. A failed side used to put its model in outage at once, so ``GET /api/models`` and the
   side-by-side picker stopped listing it while the battle was still open: the model that
   vanished was the one that failed (7 of 7 battles).
2. An image in a text battle used to be taken only when both drawn models saw images, so an
   accepted image said "these are the vision models" (8 of 8 accepted battles).
"""

from __future__ import annotations

import io
import re

from PIL import Image

from arena.store.battles import get_battle
from arena.store.export import clean_battles
from arena.store.votes import record_vote
from support.web_fakes import ScriptedProvider

UNLIMITED = {
    "requests_per_session": "100000/minute",
    "requests_per_ip": "100000/minute",
    "votes_per_session": "100000/minute",
    "votes_per_ip": "100000/minute",
    "health_interval_s": 3600,  # one probe round at start; none while the test runs
}


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 90, 200)).save(buf, "PNG")
    return buf.getvalue()


def _picker_names(html: str) -> list[str]:
    return re.findall(r'<option value="([^"]+)"', html)


def test_a_failed_side_no_longer_drops_its_model_from_any_list_before_the_vote(arena_server):
    providers = [
        ScriptedProvider("alder-chat-7b", reply="One answer."),
        ScriptedProvider("birch-chat-13b", reply="Another answer."),
        ScriptedProvider("cedar-chat-70b", fail="before"),  # its probe still says healthy
    ]
    arena = arena_server(providers, settings=UNLIMITED)
    attacker = arena.client()
    models_before = attacker.get("/api/models").content
    picker_before = attacker.get("/side-by-side").text
    assert set(_picker_names(picker_before)) == {
        "alder-chat-7b",
        "birch-chat-13b",
        "cedar-chat-70b",
    }

    failed_battles = 0
    for _ in range(200):  # the attack as reported: battle until 7 have a failed side
        battle_id = attacker.new_battle()
        response, events = attacker.send(battle_id, "hello")
        assert response.status_code == 200
        if not any(e.event == "error" for e in events):
            continue
        failed_battles += 1
        # Before the vote: does a model list now lack the model that failed?
        vanished = set(_picker_names(picker_before)) - set(
            _picker_names(attacker.get("/side-by-side").text)
        )
        assert not vanished, f"failed battle {failed_battles} revealed {vanished}"
        assert attacker.get("/api/models").content == models_before
        if failed_battles == 7:
            break
    assert failed_battles == 7
    assert arena.app.state.web.service.health.down == set()
    attacker.close()


def test_an_image_in_a_text_battle_is_refused_alike_whatever_was_drawn(arena_server):
    providers = [
        ScriptedProvider("iris-vision-8b", vision=True),
        ScriptedProvider("jade-vision-32b", vision=True),
        ScriptedProvider("kelp-text-7b"),
    ]
    arena = arena_server(providers, settings=UNLIMITED)
    attacker = arena.client()
    upload = attacker.post("/api/images", files={"image": ("p.png", _png(), "image/png")})
    assert upload.status_code == 201
    image_id = upload.json()["image_id"]

    service = arena.app.state.web.service
    refusals: set[tuple[int, bytes]] = set()
    pairs_refused: set[frozenset[str]] = set()
    for _ in range(30):  # the attack as reported: send images into text battles
        battle_id = attacker.new_battle()
        response, _events = attacker.send(battle_id, "what is this?", image_id=image_id)
        refusals.add((response.status_code, response.content.replace(battle_id.encode(), b"")))
        info = get_battle(arena.db, battle_id)  # server side: every pair was covered
        pairs_refused.add(frozenset((info.model_a, info.model_b)))
    assert len(refusals) == 1, "the refusal must not differ between drawn pairs"
    ((status, body),) = refusals
    assert status == 400 and b"text_only_battle" in body
    assert len(pairs_refused) == 3, "all three pairs were drawn and refused alike"
    assert not any(p.requests for p in providers)  # no image ever reached a model

    # A battle declared a vision battle takes the image, drawn among vision models only.
    for _ in range(4):
        battle_id = attacker.new_battle(vision=True)
        response, events = attacker.send(battle_id, "what is this?", image_id=image_id)
        assert response.status_code == 200 and events[-1].event == "end"
    assert not providers[2].requests
    assert service.health.down == set()
    attacker.close()


def test_a_battle_with_a_failed_side_never_reaches_the_rating_input(arena_server, database_url):
    providers = [
        ScriptedProvider("larch-chat-7b", reply="Here is one answer."),
        ScriptedProvider("maple-chat-9b", reply="Here is another, longer answer."),
    ]
    arena = arena_server(providers, settings=UNLIMITED, database_url=database_url)
    client = arena.client()

    providers[1].fail = "during"
    failed = client.new_battle()
    _response, events = client.send(failed, "hello")
    assert [e.data["kind"] for e in events if e.event == "error"] == ["failed"]
    assert events[-1].data["can_vote"] is False
    for choice in ("a", "b", "tie", "bothbad"):
        refused = client.vote(failed, choice)
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "answer_failed"
    assert client.send(failed, "go on")[0].status_code == 400  # no new turn either

    # A regenerate that replaces the failed answer makes the battle whole and votable.
    providers[1].fail = None
    mended = client.new_battle()
    providers[1].fail = "before"
    client.send(mended, "hello")
    providers[1].fail = None
    _response, events = client.regenerate(mended)
    assert events[-1].data["can_vote"] is True
    assert client.vote(mended, "a").json()["counted"] is True

    # A row written past the web layer (or stored before the rule) is still left out.
    legacy = client.new_battle()
    providers[1].fail = "before"
    client.send(legacy, "hello")
    record_vote(arena.db, legacy, "b", status="voted")

    rated = {row["question_id"] for row in clean_battles(arena.db)}
    assert mended in rated and failed not in rated and legacy not in rated
    client.close()
