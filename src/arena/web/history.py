"""The session's own past battles: ``GET /api/history`` (JSON, newest first, paged with
``limit`` and an opaque ``cursor``) and the ``/history`` page, with its dataset release box
(the session's opt-out, ``release_opt_out.py``).

Only the caller's session is listed, and names appear only where the session has already
seen them (named chats, anonymous battles after their vote), so an unvoted battle's entry
is the same whichever models are in it.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import TYPE_CHECKING

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from arena.errors import BadRequest
from arena.store.battle_history import PastBattle, session_battles
from arena.store.release_opt_outs import is_opted_out
from arena.web.i18n import i18n_of
from arena.web.pages import secure_html
from arena.web.schemas import error_responses
from arena.web.share import MODE_LABELS, VOTE_LABELS, ShareLinks, page_context, shareable

if TYPE_CHECKING:
    from arena.web.app import WebContext

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class HistoryEntry(BaseModel):
    battle_id: str
    mode: str
    created_at: str
    models: dict[str, str] | None = Field(
        description="Names by side; null for an anonymous battle before its vote."
    )
    vote: str | None = Field(description="The vote, or a direct chat's latest feedback.")
    share_url: str | None


class HistoryPage(BaseModel):
    battles: list[HistoryEntry]
    next_cursor: str | None = Field(description="Pass as ``cursor`` for older battles.")


def encode_cursor(battle: PastBattle) -> str:
    raw = f"{battle.created_at.isoformat()}|{battle.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, battle_id = raw.split("|")
        when = datetime.fromisoformat(created)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest("cursor is not one this API gave out", param="cursor") from None
    if when.tzinfo is None or not battle_id:
        raise BadRequest("cursor is not one this API gave out", param="cursor")
    return when, battle_id


def history_entry(battle: PastBattle, links: ShareLinks) -> HistoryEntry:
    verdict = battle.verdict
    revealed = battle.mode != "battle" or (
        battle.status == "voted" and verdict is not None and verdict.message_id is None
    )
    models = None
    if revealed:
        models = {"a": battle.model_a}
        if battle.model_b is not None:
            models["b"] = battle.model_b
    can_share = shareable(battle.mode, battle.status, verdict)
    return HistoryEntry(
        battle_id=battle.id,
        mode=battle.mode,
        created_at=battle.created_at.isoformat(),
        models=models,
        vote=verdict.type if verdict is not None and revealed else None,
        share_url=links.url_for(battle.id, battle.created_at) if can_share else None,
    )


async def read_history(
    ctx: WebContext, links: ShareLinks, session_id: str | None, limit: int, cursor: str | None
) -> HistoryPage:
    if session_id is None:
        return HistoryPage(battles=[], next_cursor=None)
    before = decode_cursor(cursor) if cursor else None
    store = ctx.service.store
    rows = await store.read(session_battles, store.db, session_id, limit=limit + 1, before=before)
    more = len(rows) > limit
    rows = rows[:limit]
    return HistoryPage(
        battles=[history_entry(b, links) for b in rows],
        next_cursor=encode_cursor(rows[-1]) if more else None,
    )


def history_router(ctx: WebContext, links: ShareLinks) -> APIRouter:
    router = APIRouter(route_class=ctx.route_class)

    @router.get(
        "/api/history",
        tags=["arena"],
        response_model=HistoryPage,
        responses=error_responses(400, 422),
        summary="This session's past battles, newest first (names only once revealed).",
    )
    async def history(
        request: Request,
        limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
        cursor: str | None = Query(None, max_length=200),
    ) -> HistoryPage:
        session = ctx.sessions.read(request)
        return await read_history(ctx, links, session.id if session else None, limit, cursor)

    @router.get("/history", response_class=HTMLResponse, include_in_schema=False)
    async def history_page(request: Request, cursor: str | None = None) -> Response:
        session = await ctx.ensure_session(request)
        page = await read_history(ctx, links, session.id, DEFAULT_LIMIT, cursor)
        store = ctx.service.store
        opted_out = await store.read(is_opted_out, store.db, session.id)
        response = ctx.templates.TemplateResponse(
            request,
            "history.html",
            {
                **page_context(ctx, "history"),
                "csrf_token": session.csrf_token,
                "page": page,
                "mode_labels": MODE_LABELS,
                "vote_labels": VOTE_LABELS,
                "opted_out": opted_out,
            },
        )
        secure_html(response)
        response.headers["Cache-Control"] = "no-store"
        ctx.sessions.set_cookies(response, session)
        i18n_of(ctx.templates).remember(request, response, ctx.root_path or "/")
        return response

    return router
