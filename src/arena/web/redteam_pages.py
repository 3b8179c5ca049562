"""The red-team game's pages: ``/redteam`` (pick a challenge, play a round) and
``/redteam/leaderboard`` (players, models and challenges rated together).

The pages carry the challenges as a player may see them (``public_challenge``: targets and
limits, never the models); the round itself is played by ``redteam.js`` through
``/api/redteam``, so nothing in the HTML depends on the model a round draws.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from arena.web.i18n import N_, i18n_of
from arena.web.pages import secure_html
from arena.web.redteam_game import RedTeamGame, public_challenge
from arena.web.share import page_context

if TYPE_CHECKING:
    from arena.web.app import WebContext

# Labels are msgids: the templates translate them for each request.
KIND_LABELS = {
    "say_phrase": N_("Say the phrase"),
    "leak_secret": N_("Leak the secret"),
    "judge_goal": N_("Reach the goal"),
}
MATCH_LABELS = {
    "exact": N_("exact match"),
    "case_insensitive": N_("any letter case"),
    "fuzzy": N_("small typos forgiven"),
}
SECRET_LABELS = {
    "credential": N_("an API key"),
    "training_record": N_("a private record"),
}
NAV_KEY = "redteam"


def redteam_pages_router(ctx: WebContext, game: RedTeamGame) -> APIRouter:
    router = APIRouter(include_in_schema=False, route_class=ctx.route_class)

    async def render(request: Request, template: str, **extra: Any) -> Response:
        session = await ctx.ensure_session(request)
        context = {
            **page_context(ctx, NAV_KEY),
            "csrf_token": session.csrf_token,
            "redteam_href": f"{ctx.root_path}/redteam",
            "redteam_board_href": f"{ctx.root_path}/redteam/leaderboard",
            "redteam_api": f"{ctx.root_path}/api/redteam",
            **extra,
        }
        response = ctx.templates.TemplateResponse(request, template, context)
        secure_html(response)
        response.headers["Cache-Control"] = "no-store"
        ctx.sessions.set_cookies(response, session)
        i18n_of(ctx.templates).remember(request, response, ctx.root_path or "/")
        return response

    @router.get("/redteam", response_class=HTMLResponse, name="redteam_page")
    async def redteam_page(request: Request) -> Response:
        return await render(
            request,
            "redteam.html",
            challenges=[public_challenge(c) for c in game.playable()],
            kind_labels=KIND_LABELS,
            match_labels=MATCH_LABELS,
            secret_labels=SECRET_LABELS,
            max_input_chars=ctx.limits.max_input_chars,
        )

    @router.get("/redteam/leaderboard", response_class=HTMLResponse, name="redteam_board_page")
    async def redteam_board_page(request: Request) -> Response:
        return await render(request, "redteam_leaderboard.html")

    return router
