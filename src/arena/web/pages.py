"""The HTML pages: battle, side by side, direct chat and about (the leaderboard page is
``leaderboard_page.py``'s). Pages carry no model names in battle mode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from arena.errors import NotFound
from arena.web.i18n import N_, i18n_of
from arena.web.markdown import highlight_css

if TYPE_CHECKING:
    from arena.web.app import WebContext

STATIC_FILES = {
    "arena.css": "text/css",
    "favicon.svg": "image/svg+xml",
    # The page scripts, in the order the templates load them (each needs those before it).
    "common.js": "text/javascript",
    "api_errors.js": "text/javascript",
    "history_release.js": "text/javascript",
    "answer_html.js": "text/javascript",
    "event_stream.js": "text/javascript",
    "arena.js": "text/javascript",
    "redteam.css": "text/css",
    "redteam_text.js": "text/javascript",
    "redteam.js": "text/javascript",
    "redteam_leaderboard.js": "text/javascript",
}
# Vendored front-end libraries (static/vendor/, see its README.md), by file type.
VENDOR_TYPES = {".js": "text/javascript", ".css": "text/css", ".woff2": "font/woff2"}
# static_url puts the version in the query, so the icon can be kept for a year.
FAVICON_CACHE = "public, max-age=31536000, immutable"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; font-src 'self'; "
    "img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def secure_html(response: Response) -> Response:
    """Give an HTML page the site's security headers: the one place every page gets them
    (arena pages here, the leaderboard page in ``leaderboard_page.py``)."""
    response.headers.update(SECURITY_HEADERS)
    return response


# Labels are msgids: the templates translate them (``_(v.label)``) for each request.
BATTLE_VOTES = [
    {"value": "a", "label": N_("A is better")},
    {"value": "b", "label": N_("B is better")},
    {"value": "tie", "label": N_("Tie")},
    {"value": "bothbad", "label": N_("Both are bad")},
]
DIRECT_VOTES = [
    {"value": "upvote", "label": N_("Upvote")},
    {"value": "downvote", "label": N_("Downvote")},
    {"value": "flag", "label": N_("Flag")},
]
BATTLE_VOTE_GROUP = N_("Which answer is better?")


def site_nav(root: str, leaderboard_href: str) -> list[dict[str, str]]:
    """The site's main navigation (labels are msgids, translated by the templates)."""
    return [
        {"key": "battle", "label": N_("Arena"), "href": f"{root}/"},
        {"key": "side_by_side", "label": N_("Side by side"), "href": f"{root}/side-by-side"},
        {"key": "direct", "label": N_("Direct chat"), "href": f"{root}/direct"},
        {"key": "leaderboard", "label": N_("Leaderboard"), "href": leaderboard_href},
        {"key": "redteam", "label": N_("Red team"), "href": f"{root}/redteam"},
        {"key": "about", "label": N_("About"), "href": f"{root}/about"},
    ]


def pages_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(include_in_schema=False, route_class=ctx.route_class)
    templates = ctx.templates
    service = ctx.service
    i18n = i18n_of(templates)

    def nav() -> list[dict[str, str]]:
        return site_nav(ctx.root_path, ctx.leaderboard_href)

    def models_for_picker() -> list[dict[str, Any]]:
        return [
            {"name": s.name, "demo": service.is_demo(s.name), "vision": s.is_vision}
            for s in service.named_models()
        ]

    async def render(request: Request, template: str, active: str, **extra: Any) -> Response:
        session = await ctx.ensure_session(request)
        context = {
            "csrf_token": session.csrf_token,
            "nav": nav(),
            "active": active,
            "root_path": ctx.root_path,
            "static_url": ctx.static_url,
            "highlight_css_url": ctx.static_url("highlight.css"),
            "only_demo_models": service.only_demo,
            "max_input_chars": ctx.limits.max_input_chars,
            "max_turns": ctx.limits.max_turns,
            "max_image_mb": round(service.image_limits.max_bytes / 1024 / 1024, 1),
            "leaderboard_href": ctx.leaderboard_href,
            **extra,
        }
        response = templates.TemplateResponse(request, template, context)
        secure_html(response)
        response.headers["Cache-Control"] = "no-store"
        ctx.sessions.set_cookies(response, session)
        i18n.remember(request, response, ctx.root_path or "/")
        return response

    chat_common = {
        "placeholder": N_("Ask anything…  (Enter sends, Shift+Enter for a new line)"),
    }

    @router.get("/", response_class=HTMLResponse, name="arena_battle_page")
    async def battle_page(request: Request) -> Response:
        return await render(
            request,
            "arena.html",
            "battle",
            sides=[{"key": "a", "label": N_("Model A")}, {"key": "b", "label": N_("Model B")}],
            votes=BATTLE_VOTES,
            vote_group_label=BATTLE_VOTE_GROUP,
            **chat_common,
        )

    @router.get("/side-by-side", response_class=HTMLResponse, name="arena_side_by_side_page")
    async def side_by_side_page(request: Request) -> Response:
        return await render(
            request,
            "side_by_side.html",
            "side_by_side",
            sides=[
                {"key": "a", "label": N_("Model A"), "default_index": 0},
                {"key": "b", "label": N_("Model B"), "default_index": 1},
            ],
            votes=BATTLE_VOTES,
            vote_group_label=BATTLE_VOTE_GROUP,
            models=models_for_picker(),
            **chat_common,
        )

    @router.get("/direct", response_class=HTMLResponse, name="arena_direct_page")
    async def direct_page(request: Request) -> Response:
        return await render(
            request,
            "direct.html",
            "direct",
            sides=[{"key": "a", "label": N_("Answer")}],
            votes=DIRECT_VOTES,
            vote_group_label=N_("Rate the latest answer"),
            models=models_for_picker(),
            **chat_common,
        )

    @router.get("/about", response_class=HTMLResponse, name="arena_about_page")
    async def about_page(request: Request) -> Response:
        models = [
            {
                "name": s.name,
                "demo": service.is_demo(s.name),
                "vision": s.is_vision,
                "organization": s.organization,
                "description": s.description,
            }
            for s in service.specs
            if s.arena.enabled and s.name in service.providers
        ]
        return await render(request, "about.html", "about", models=models)

    @router.get("/static/{name}", name="arena_static")
    async def static_file(name: str) -> Response:
        headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
        if name == "highlight.css":
            return Response(highlight_css(), media_type="text/css", headers=headers)
        media_type = STATIC_FILES.get(name)
        if media_type is None:
            raise NotFound(f"No static file {name!r}.")
        if name == "favicon.svg":
            headers["Cache-Control"] = FAVICON_CACHE
        return FileResponse(ctx.static_dir / name, media_type=media_type, headers=headers)

    @router.get("/static/vendor/{path:path}", name="arena_vendor_static")
    async def vendor_file(path: str) -> Response:
        vendor_dir = (ctx.static_dir / "vendor").resolve()
        file = (vendor_dir / path).resolve()
        media_type = VENDOR_TYPES.get(file.suffix)
        if media_type is None or not file.is_relative_to(vendor_dir) or not file.is_file():
            raise NotFound(f"No static file {path!r}.")
        headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
        return FileResponse(file, media_type=media_type, headers=headers)

    return router
