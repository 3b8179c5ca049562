"""A routed model as an arena contestant: before the vote, nothing the browser receives names
the target the router chose (the web arena streams through ``stream_chat``, which reveals
nothing); after the vote the contestant is revealed by its own (router) name, and the stored
answer keeps the target it was routed to (``params.routed_model``)."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from arena.config import Settings
from arena.protocol import ChatCompletionRequest, ChatMessage
from arena.providers.router import RouterProvider
from arena.routing.router import RandomRouter
from arena.store.db import Database
from arena.store.models import Message
from arena.web.app import create_web_app
from support.servers import serve_app
from support.web_fakes import ArenaClient, ScriptedProvider, spec_for

ROUTED = "router-random-0.5"
HIDDEN = ("hidden-strong-target", "hidden-weak-target")


def routed_contestant() -> tuple[RouterProvider, dict[str, ScriptedProvider]]:
    targets = {name: ScriptedProvider(name, reply="An answer from a target.") for name in HIDDEN}
    provider = RouterProvider(
        ROUTED, RandomRouter(), targets, threshold=0.5, strong=HIDDEN[0], weak=HIDDEN[1]
    )
    return provider, targets


def test_stream_chat_delegates_and_carries_no_target_name():
    provider, targets = routed_contestant()
    request = ChatCompletionRequest(
        model=ROUTED, messages=[ChatMessage(role="user", content="hi")], stream=True
    )

    async def collect():
        choice = await provider.route(request)
        deltas = [d async for d in provider.stream_chat(request)]
        return choice, deltas

    choice, deltas = asyncio.run(collect())
    assert "".join(d.text for d in deltas) == "An answer from a target."
    assert all(HIDDEN[0] not in repr(d) and HIDDEN[1] not in repr(d) for d in deltas)
    # The target that answered is the one ``route`` names, and only it was asked.
    assert len(targets[choice.model].requests) == 1
    assert sum(len(t.requests) for t in targets.values()) == 1


def test_routed_target_stays_hidden_in_an_anonymous_battle(tmp_path, database_url):
    provider, targets = routed_contestant()
    rival = ScriptedProvider("rival-model", reply="The rival's answer.")
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key="routing-test-secret",
    )
    app = create_web_app(
        settings,
        registry=[spec_for(ROUTED), spec_for(rival.name)],
        providers={ROUTED: provider, rival.name: rival},
    )
    with serve_app(app) as url:
        client = ArenaClient(url)
        client.start()
        try:
            battle_id = client.new_battle("battle")
            response, events = client.send(battle_id, "Which answer is better?")
            assert response.status_code == 200
            assert {e.data["side"] for e in events if e.event == "done"} == {"a", "b"}
            answered = [name for name, t in targets.items() if t.requests]
            assert len(answered) == 1  # the router asked exactly one target
            before_vote = bytes(client.received)
            for name in (*HIDDEN, ROUTED, rival.name):
                assert name.encode() not in before_vote, name
            vote = client.vote(battle_id, "a")
            assert vote.status_code == 200
            after = bytes(client.received[len(before_vote) :])
            assert ROUTED.encode() in after  # revealed by the contestant's own name
            assert not any(name.encode() in after for name in HIDDEN)
        finally:
            client.close()
    # The answer is stored under the contestant's name, with the target it routed to.
    db = Database(settings.resolved_database_url())
    try:
        with db.session() as session:
            rows = session.scalars(select(Message).where(Message.role == "assistant")).all()
    finally:
        db.dispose()
    by_model = {row.model: row.params for row in rows}
    assert by_model == {ROUTED: {"routed_model": answered[0]}, rival.name: None}
