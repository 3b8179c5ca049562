"""Read-only share links of finished battles: ``/share/{token}`` (a page) and
``/api/share/{token}`` (JSON), open to anyone, no session needed.

The battle id is a session's capability, so a link never carries it. A token is the
battle's creation time in milliseconds (a locator the shared page shows anyway) and an
HMAC of the battle id under the server secret: unguessable, nothing stored, and only the
battle whose id it was made from matches. A battle is shared once it has a verdict: the
vote of an anonymous or named battle, or a direct chat's feedback (the chat is shown up to
the rated answer, so later messages stay private). Before that, every token of the battle
reads exactly like an unknown one: the same 404, whichever models are in the battle.
Changing the secret key retires every link.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from pydantic import Field
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from arena.battles.battle_types import BattleMode
from arena.battles.battle_views import ANSWER_FAILED_NOTICE
from arena.errors import NotFound
from arena.store.battle_history import Verdict, battle_verdict, battles_created_between
from arena.store.battles import battle_snapshot
from arena.web.i18n import N_, i18n_of
from arena.web.markdown import render_markdown
from arena.web.pages import secure_html, site_nav
from arena.web.records import in_one_transaction, rebuild_battle
from arena.web.schemas import VoteResult, error_responses

if TYPE_CHECKING:
    from arena.web.app import WebContext

SHARE_NOT_FOUND = "No shared battle at this link."
_TOKEN = re.compile(r"^([0-9a-f]{1,13})-([0-9a-f]{32})$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# English in the JSON API; msgids the pages translate.
VOTE_LABELS = {
    "a": N_("Model A is better"),
    "b": N_("Model B is better"),
    "tie": N_("Tie"),
    "bothbad": N_("Both are bad"),
    "upvote": N_("Upvote"),
    "downvote": N_("Downvote"),
    "flag": N_("Flagged"),
}
MODE_LABELS = {
    "battle": N_("Anonymous battle"),
    "side_by_side": N_("Side by side"),
    "direct": N_("Direct chat"),
}
# The shared page's title, whole per mode (a translation may put the words in any order).
SHARED_TITLES = {
    "battle": N_("Shared anonymous battle"),
    "side_by_side": N_("Shared side by side"),
    "direct": N_("Shared direct chat"),
}
SIDE_LABELS = {"a": N_("Model A"), "b": N_("Model B")}
SINGLE_SIDE_LABEL = N_("Model")
# The page's word for a failed answer (the JSON keeps battle_views' English text); a shared
# battle is finished, so it offers no retry.
FAILED_ANSWER_TEXT = N_("This model could not answer.")


class SharedVoteResult(VoteResult):
    share_url: str | None = Field(
        None, description="A read-only link to this battle that anyone can open."
    )


class ShareLinks:
    """Makes and checks share tokens under the server secret."""

    def __init__(self, secret: bytes, root_path: str = "") -> None:
        self._secret = secret
        self.root_path = root_path

    def _mac(self, battle_id: str) -> str:
        digest = hmac.new(self._secret, f"share:{battle_id}".encode(), hashlib.sha256)
        return digest.hexdigest()[:32]

    def token_for(self, battle_id: str, created_at: datetime) -> str:
        millis = (created_at - _EPOCH) // timedelta(milliseconds=1)
        return f"{millis:x}-{self._mac(battle_id)}"

    def url_for(self, battle_id: str, created_at: datetime) -> str:
        return f"{self.root_path}/share/{self.token_for(battle_id, created_at)}"

    def candidates(self, token: str) -> tuple[datetime, datetime, str] | None:
        """(created from, created before, mac) of a well-formed token."""
        match = _TOKEN.match(token)
        if match is None:
            return None
        start = _EPOCH + timedelta(milliseconds=int(match.group(1), 16))
        return start, start + timedelta(milliseconds=1), match.group(2)

    def matches(self, battle_id: str, mac: str) -> bool:
        return hmac.compare_digest(self._mac(battle_id), mac)


def shareable(mode: str, status: str, verdict: Verdict | None) -> bool:
    """A battle with its vote in (anonymous or named), or a direct chat with feedback."""
    if verdict is None:
        return False
    if mode == BattleMode.DIRECT.value:
        return verdict.message_id is not None
    return status == "voted" and verdict.message_id is None


def _rated_turn(snapshot: Any, message_id: int) -> tuple[int, str] | None:
    """(turn index, text) of the rated answer in a direct chat."""
    turn = -1
    for message in snapshot.conversations[0].messages:
        if message.role == "user":
            turn += 1
        elif message.id == message_id:
            return turn, message.content
    return None


def shared_answer(text: str, failed: bool) -> dict[str, Any]:
    """One answer as the link shows it (a failed one: the neutral English notice, which the
    page words in its reader's language)."""
    shown = ANSWER_FAILED_NOTICE if failed else text
    return {"text": shown, "html": render_markdown(shown) if shown else "", "failed": failed}


def shared_view(ctx: WebContext, battle_id: str, tx: Any) -> dict[str, Any] | None:
    """What the link shows, read in the caller's transaction; None when not shareable."""
    verdict = battle_verdict(tx, battle_id)
    snapshot = battle_snapshot(tx, battle_id)
    if not shareable(snapshot.battle.mode, snapshot.battle.status, verdict):
        return None
    assert verdict is not None
    battle = rebuild_battle(
        tx,
        battle_id,
        max_turns=ctx.service.battles.max_turns,
        now=datetime.now(UTC),
        in_flight=False,
        stale_after_s=ctx.service.battles.stale_after_s,
    ).battle
    turns = list(battle.turns)
    rated: tuple[int, str] | None = None
    if verdict.message_id is not None:
        rated = _rated_turn(snapshot, verdict.message_id)
        if rated is None:
            return None
        turns = turns[: rated[0] + 1]
    out_turns = []
    for i, turn in enumerate(turns):
        answers = []
        for side in battle.sides:
            answer = turn.answer(side)
            if rated is not None and i == rated[0]:
                entry = shared_answer(rated[1], False)
            elif answer is None:
                entry = shared_answer("", True)
            else:
                entry = shared_answer(answer.text, answer.failed)
            answers.append({"side": side, **entry})
        out_turns.append({"prompt": turn.prompt, "images": len(turn.image_ids), "answers": answers})
    return {
        "mode": battle.mode.value,
        "mode_label": MODE_LABELS[battle.mode.value],
        "created_at": battle.created_at.isoformat(),
        "voted_at": verdict.created_at.isoformat(),
        "vote": verdict.type,
        "vote_label": VOTE_LABELS.get(verdict.type, verdict.type),
        "identity_leaked": battle.anonymous and battle.leaked,
        "sides": [
            {
                "side": side,
                "label": SIDE_LABELS.get(side, f"Model {side.upper()}")
                if len(battle.sides) > 1
                else SINGLE_SIDE_LABEL,
                "model": battle.model_for(side),
                "demo": ctx.service.is_demo(battle.model_for(side)),
            }
            for side in battle.sides
        ],
        "turns": out_turns,
    }


async def load_shared(ctx: WebContext, links: ShareLinks, token: str) -> dict[str, Any]:
    """The shared battle behind ``token``, or the one 404 every other token gets."""
    parsed = links.candidates(token)
    if parsed is not None:
        start, end, mac = parsed
        store = ctx.service.store
        ids = await store.read(battles_created_between, store.db, start, end)
        for battle_id in ids:
            if links.matches(battle_id, mac):
                try:
                    view = await store.read(
                        in_one_transaction,
                        store.db,
                        lambda tx, bid=battle_id: shared_view(ctx, bid, tx),
                        read_only=True,
                    )
                except NotFound:  # deleted meanwhile; its own message names the id
                    view = None
                if view is not None:
                    return view
                break
    raise NotFound(SHARE_NOT_FOUND, param="token")


def page_context(ctx: WebContext, active: str) -> dict[str, Any]:
    """What base.html needs, for pages that are not the chat pages."""
    root = ctx.root_path
    return {
        "csrf_token": "",
        "nav": site_nav(root, ctx.leaderboard_href),
        "active": active,
        "root_path": root,
        "static_url": ctx.static_url,
        "highlight_css_url": ctx.static_url("highlight.css"),
        "only_demo_models": ctx.service.only_demo,
    }


def share_router(ctx: WebContext, links: ShareLinks) -> APIRouter:
    router = APIRouter(route_class=ctx.route_class)

    @router.get(
        "/api/share/{token}",
        tags=["arena"],
        responses=error_responses(404),
        summary="A shared battle (read-only, no session): names, conversation and vote.",
    )
    async def shared_battle(token: str) -> Response:
        view = await load_shared(ctx, links, token)
        return JSONResponse(view, headers={"Cache-Control": "no-store"})

    @router.get("/share/{token}", response_class=HTMLResponse, include_in_schema=False)
    async def shared_page(token: str, request: Request) -> Response:
        try:
            view: dict[str, Any] | None = await load_shared(ctx, links, token)
            status = 200
        except NotFound:
            view, status = None, 404
        response = ctx.templates.TemplateResponse(
            request,
            "share.html",
            {
                **page_context(ctx, "share"),
                "shared": view,
                "shared_titles": SHARED_TITLES,
                "failed_answer_text": FAILED_ANSWER_TEXT,
            },
            status_code=status,
        )
        secure_html(response)
        i18n_of(ctx.templates).remember(request, response, ctx.root_path or "/")
        response.headers["Cache-Control"] = "no-store"
        return response

    return router
