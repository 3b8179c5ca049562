"""What a client sees of a turn: the SSE frames that stream each side's answer (raw deltas,
then throttled ``render`` frames of its markdown so far), announce its finished or failed
answer, an identity leak, and the turn's end.

A ``render`` frame is the sanitized HTML of exactly the text the side's deltas have already
sent (``LiveMarkdown`` keeps its own copy of it), so it reveals nothing the deltas did not;
its timing follows the deltas' own pace and the render's cost, never the model drawn.

Before the vote, a frame of an anonymous battle depends on nothing but that side's own
answer (its words, whether it failed): a failure reads the same for every model
(``streaming.anonymous_error``), finish reasons wait for the vote (a model's token limit,
or an upstream's own word for "stop", tells models apart), and identity leaks are looked
for among the terms of every registry model, since a flag raised only for the drawn pair's
terms would confirm that a model the answer names is in the battle.

Every notice a frame carries as English ``message`` (for API clients) also comes as a code
the page translates: an ``error`` frame's ``kind`` (``side`` null: the turn itself failed),
a ``leak`` frame's ``code`` and an ``end`` frame's ``notice`` (``battle_views.NOTICES``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import anyio

from arena.battles.battle import Battle
from arena.battles.battle_views import NOTICE_IDENTITY_LEAK
from arena.battles.identity_leak import IdentityLeakDetector
from arena.web.markdown import render_markdown
from arena.web.streaming import SideOutcome, sse

LEAK_EVENT_MESSAGE = (
    "Model {label}'s answer names a model, which may give the battle away. You can still "
    "vote, but the vote will be stored as flagged and will not count toward the leaderboard."
)
TURN_FAILED_MESSAGE = "The server could not finish this turn. Try regenerating."


def delta_frame(side: str, text: str) -> bytes:
    return sse("delta", {"side": side, "text": text})


def render_frame(side: str, html: str) -> bytes:
    return sse("render", {"side": side, "html": html})


@dataclass
class LiveMarkdown:
    """Throttled re-rendering of each side's streamed text, for ``render`` frames.

    A side is rendered again only when its text changed, at most once per ``min_interval_s``,
    and never more often than ``cost_factor`` times its last render took: a long answer
    (whose every render costs more) is rendered less often, so rendering holds at most about
    ``1 / cost_factor`` of a core per side. The final render is the ``done`` frame's. A long
    text is rendered in a worker thread, so that other requests keep being served meanwhile.
    """

    min_interval_s: float = 0.15
    cost_factor: float = 8.0
    thread_from_chars: int = 8_000  # about 15 ms of rendering: worth a thread hop beyond
    clock: Callable[[], float] = time.monotonic
    render: Callable[[str], str] = render_markdown
    _parts: dict[str, list[str]] = field(default_factory=dict)
    _dirty: set[str] = field(default_factory=set)
    _next_at: dict[str, float] = field(default_factory=dict)

    def add(self, side: str, text: str) -> None:
        """Text a delta frame of ``side`` has just sent."""
        self._parts.setdefault(side, []).append(text)
        self._dirty.add(side)

    def finish(self, side: str) -> None:
        """The side is done (or failed): its ``done``/``error`` frame says the rest."""
        self._dirty.discard(side)
        self._parts.pop(side, None)

    @property
    def pending(self) -> bool:
        return bool(self._dirty)

    async def due_frames(self) -> list[bytes]:
        """``render`` frames for the sides whose text changed and whose interval is over."""
        frames = []
        for side in sorted(self._dirty):
            now = self.clock()
            if now < self._next_at.get(side, 0.0):
                continue
            text = "".join(self._parts[side])
            if len(text) >= self.thread_from_chars:
                html = await anyio.to_thread.run_sync(self.render, text)
            else:
                html = self.render(text)
            cost = self.clock() - now
            self._next_at[side] = now + max(self.min_interval_s, cost * self.cost_factor)
            self._dirty.discard(side)
            frames.append(render_frame(side, html))
        return frames


def failure_frame(outcome: SideOutcome) -> bytes:
    """A failed side: the public message and kind ``streaming`` chose for this battle."""
    return sse(
        "error", {"side": outcome.side, "message": outcome.error, "kind": outcome.public_kind}
    )


def turn_failed_frame() -> bytes:
    """The server itself failed after the stream began (no side, no name)."""
    return sse("error", {"side": None, "message": TURN_FAILED_MESSAGE, "kind": "internal"})


def answer_frames(
    battle: Battle, outcome: SideOutcome, *, leak_detector: IdentityLeakDetector, now: datetime
) -> tuple[Battle, list[bytes]]:
    """Record one side's finished answer; the battle after it and the frames announcing it
    (``done``, then ``leak`` when an anonymous answer names a registry model)."""
    side = outcome.side
    battle = battle.record_answer(side, outcome.text, now=now, finish_reason=outcome.finish_reason)
    done = {
        "side": side,
        "html": render_markdown(outcome.text),
        "finish_reason": None if battle.anonymous else outcome.finish_reason,
    }
    frames = [sse("done", done)]
    if battle.anonymous:
        leak = leak_detector.check_answer(
            outcome.text,
            side_model=battle.model_for(side),
            battle_models=battle.models,
            scope="all",
        )
        if leak is not None:
            battle = battle.flag_identity_leak(side, leak.term, now=now)
            message = LEAK_EVENT_MESSAGE.format(label=side.upper())
            frames.append(
                sse("leak", {"side": side, "message": message, "code": NOTICE_IDENTITY_LEAK})
            )
    return battle, frames


def end_frame(battle: Battle, *, can_vote: bool | None = None) -> bytes:
    """The turn is over: what the client may do next, from the battle's public view."""
    view = battle.public_view()
    return sse(
        "end",
        {
            "battle_id": battle.battle_id,
            "state": view["state"],
            "can_vote": view["can_vote"] if can_vote is None else can_vote,
            "can_regenerate": view["can_regenerate"],
            "can_continue": view["can_continue"],
            "turns_left": view["turns_left"],
            "identity_leaked": view["identity_leaked"],
            "message": view["notice"],
            "notice": view["notice_code"],
        },
    )
