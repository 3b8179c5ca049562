"""The leaderboard web page and its JSON API, served from the newest artifact set.

``leaderboard_router(artifacts_dir, templates)`` returns an ``APIRouter`` with:

- ``GET /leaderboard``: the page (sortable table; category, style control, organization,
  license and minimum-votes filters; vanilla JS, no CDN).
- ``GET /api/leaderboard``: the same data as JSON (query: ``category``, ``style_control``,
  ``organization``, ``license``, ``min_votes``), built by ``leaderboard_payload.py``:
  warnings, preliminary models and unbounded intervals included, never NaN or Infinity.
- ``GET /leaderboard/plots``: the page's charts (server-rendered SVG, see
  ``leaderboard_plots.py``) as an HTML fragment, same query; the page swaps it in when a
  filter changes.
- ``GET /leaderboard/assets/{leaderboard.js,leaderboard.css,favicon.svg}``: the page's files.
- ``POST /api/leaderboard/refresh`` (only when a ``refresh`` callable is given): asks for a
  recomputation and answers 202 at once. Pass a coalescing, rate-limited hook such as
  ``ArtifactRefresher.request`` and protect the route like any admin action.

Every request looks for the newest artifact set on disk, so recomputed artifacts show up
without a restart. Organization and license come from the model registry mapping given;
MT-Bench and Arena-Hard columns from the ``arena judge show --json`` reports in
``judge_results`` (a folder), when they score a model of the board.
The page carries the arena pages' security headers (``pages.secure_html``); the JSON API
documents its answers, errors included, in the OpenAPI schema.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from arena import __version__
from arena.errors import ArenaError, NotFound
from arena.leaderboard.artifacts import ArtifactSet, list_sets
from arena.leaderboard.table import Leaderboard
from arena.protocol import ErrorResponse
from arena.web.i18n import N_, i18n_of, make_templates
from arena.web.judge_results import JudgeResultsFolder
from arena.web.leaderboard_payload import LeaderboardData, ModelInfo, leaderboard_payload
from arena.web.leaderboard_plots import Figure, PastBoard, page_figures
from arena.web.leaderboard_text import ENGLISH, Words
from arena.web.pages import secure_html

PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS = {
    "common.js": "text/javascript",
    "leaderboard.js": "text/javascript",
    "leaderboard.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
# Linked with the version in its query, so a changed icon comes with a new URL.
LONG_CACHE = "public, max-age=31536000, immutable"
__all__ = ["LeaderboardData", "leaderboard_payload", "leaderboard_router"]


API_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": LeaderboardData, "description": "The leaderboard, filters applied."},
    400: {
        "model": ErrorResponse,
        "description": "A malformed query parameter (as served by `arena serve`).",
    },
    404: {
        "model": ErrorResponse,
        "description": "No leaderboard computed yet (code `no_leaderboard`), or none for "
        "that category and style control.",
    },
}


@dataclass
class BoardQuery:
    """Which board the page, its plots and the API show, and how its rows are filtered."""

    category: str | None = Query(None, max_length=200)
    style_control: bool = False
    organization: str | None = Query(None, max_length=200)
    license: str | None = Query(None, max_length=200)
    min_votes: int = Query(0, ge=0)

    def args(self) -> tuple[Any, ...]:
        return (self.category, self.style_control, self.organization, self.license, self.min_votes)


def default_templates() -> Jinja2Templates:
    return make_templates(PACKAGE_DIR / "templates")


class _BoardCache:
    """Parsed leaderboards of the artifact sets on disk (dropped once their set is gone):
    the newest set's boards, and the older sets' boards the rating history reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._boards: dict[tuple[str, str, str, bool], Leaderboard] = {}

    def get(self, artifact_set: ArtifactSet, category: str, style_control: bool) -> Leaderboard:
        key = (artifact_set.directory.name, artifact_set.created, category, style_control)
        with self._lock:
            board = self._boards.get(key)
        if board is None:
            board = artifact_set.get(category, style_control)
            with self._lock:
                self._boards[key] = board
        return board

    def keep_only(self, sets: list[ArtifactSet]) -> None:
        live = {(s.directory.name, s.created) for s in sets}
        with self._lock:
            for key in [k for k in self._boards if k[:2] not in live]:
                del self._boards[key]


@dataclass(frozen=True)
class _View:
    """One request's board: the artifact sets on disk (newest first), the board, its JSON."""

    sets: list[ArtifactSet]
    board: Leaderboard
    data: dict[str, Any]


def _error(e: ArenaError) -> JSONResponse:
    return JSONResponse(e.to_body(), status_code=e.status_code, headers=e.headers or None)


def page_error(e: ArenaError, style_control: bool, tr: Words = ENGLISH) -> str:
    """The page's line for a board it cannot show, in the reader's language, worded from
    the error's code and field (the JSON API keeps its English); the server's text only
    for an error this page does not know."""
    if e.code == "not_found" and e.param == "category":
        if style_control:
            text = N_("There is no leaderboard with style control for this category.")
        else:
            text = N_("There is no leaderboard for this category.")
        return tr.gettext(text)
    return e.message


def leaderboard_router(
    artifacts_dir: Path,
    templates: Jinja2Templates | None = None,
    *,
    model_info: ModelInfo | Callable[[], ModelInfo] | None = None,
    refresh: Callable[[], Any] | None = None,
    page_context: Callable[[Request], Mapping[str, Any]] | None = None,
    judge_results: Path | None = None,
) -> APIRouter:
    """Routes for the leaderboard page and API, reading artifacts from ``artifacts_dir``.

    ``model_info`` maps model name → (organization, license), or is a callable returning
    such a mapping (re-read per request, so a reloaded registry shows up). ``page_context``
    adds template variables (e.g. the site's navigation) to the page. ``judge_results`` is
    a folder of ``arena judge show --json`` reports (none: no judge columns).
    """
    artifacts_dir = Path(artifacts_dir)
    templates = templates or default_templates()
    cache = _BoardCache()
    judge = JudgeResultsFolder(judge_results)
    router = APIRouter()

    def info() -> ModelInfo:
        if model_info is None:
            return {}
        return model_info() if callable(model_info) else model_info

    def view(
        category: str | None,
        style_control: bool,
        organization: str | None,
        license: str | None,
        min_votes: int,
    ) -> _View:
        sets = list_sets(artifacts_dir)
        cache.keep_only(sets)
        if not sets:
            raise NotFound("no leaderboard has been computed yet", code="no_leaderboard")
        artifact_set = sets[0]
        chosen = category or (
            "full" if "full" in artifact_set.categories else artifact_set.categories[0]
        )
        board = cache.get(artifact_set, chosen, style_control)
        data = leaderboard_payload(
            artifact_set,
            board,
            model_info=info(),
            organization=organization or None,
            license=license or None,
            min_votes=min_votes,
            judge=judge.results(),
        )
        return _View(sets, board, data)

    def payload(*query: Any) -> dict[str, Any]:
        return view(*query).data

    def figures(v: _View, tr: Words = ENGLISH) -> list[Figure]:
        category, style = v.board.category, v.board.style_control
        latest = v.sets[0]
        plain = None
        if style and latest.has(category, False):
            plain = cache.get(latest, category, False)
        past = []
        for s in v.sets:
            if not s.has(category, style):
                continue
            try:
                board = v.board if s is latest else cache.get(s, category, style)
            except (OSError, ValueError, KeyError, ArenaError):
                continue  # pruned or unreadable since it was listed: no point from it
            past.append(PastBoard(s.created, s.meta.get("source"), s.meta.get("filters"), board))
        return page_figures(v.board, v.data["models"], plain=plain, past=past, tr=tr)

    def page_view(tr: Words, *query: Any) -> tuple[dict[str, Any], list[Figure]]:
        v = view(*query)
        return v.data, figures(v, tr)

    def words(request: Request) -> Words:
        """The request's catalog: the charts are drawn in the page's language."""
        i18n = i18n_of(templates)
        return i18n.languages[i18n.choose(request)].translations

    @router.get("/api/leaderboard", name="leaderboard_api", responses=API_RESPONSES)
    async def leaderboard_api(
        query: Annotated[BoardQuery, Depends()],
    ) -> Response:
        try:
            data = await run_in_threadpool(payload, *query.args())
        except ArenaError as e:
            return _error(e)
        return JSONResponse(data, headers={"Cache-Control": "no-cache"})

    @router.get(
        "/leaderboard",
        name="leaderboard_page",
        response_class=HTMLResponse,
        include_in_schema=False,
    )
    async def leaderboard_page(
        request: Request,
        query: Annotated[BoardQuery, Depends()],
    ) -> Response:
        status = 200
        error = None
        empty = False
        figures_: list[Figure] = []
        try:
            data, figures_ = await run_in_threadpool(page_view, words(request), *query.args())
        except ArenaError as e:
            data, error = None, page_error(e, query.style_control, words(request))
            # An empty leaderboard is a normal state of a fresh install, not an error.
            empty = e.code == "no_leaderboard"
            status = 200 if empty else e.status_code
        context = {
            "data": data,
            "error": error,
            "empty": empty,
            "figures": figures_,
            "api_url": str(request.url_for("leaderboard_api").path),
            "plots_url": str(request.url_for("leaderboard_plots").path),
            "asset_url": lambda name: str(request.url_for("leaderboard_asset", name=name).path),
            "version": __version__,
            **(page_context(request) if page_context else {}),
        }
        response = templates.TemplateResponse(
            request, "leaderboard.html", context, status_code=status
        )
        i18n_of(templates).remember(request, response)
        return secure_html(response)

    @router.get(
        "/leaderboard/plots",
        name="leaderboard_plots",
        response_class=HTMLResponse,
        include_in_schema=False,
    )
    async def leaderboard_plots(
        request: Request,
        query: Annotated[BoardQuery, Depends()],
    ) -> Response:
        try:
            _, figures_ = await run_in_threadpool(page_view, words(request), *query.args())
        except ArenaError as e:
            return _error(e)
        response = templates.TemplateResponse(
            request, "_leaderboard_plots.html", {"figures": figures_}
        )
        response.headers["Cache-Control"] = "no-cache"
        response.headers.append("Vary", "Accept-Language")  # drawn in the page's language
        return secure_html(response)

    @router.get("/leaderboard/assets/{name}", name="leaderboard_asset", include_in_schema=False)
    async def leaderboard_asset(name: str) -> Response:
        if name not in ASSETS:
            return _error(NotFound(f"no asset {name!r}"))
        cache_control = LONG_CACHE if name == "favicon.svg" else "no-cache"
        return FileResponse(
            PACKAGE_DIR / "static" / name,
            media_type=ASSETS[name],
            headers={"Cache-Control": cache_control, "X-Content-Type-Options": "nosniff"},
        )

    if refresh is not None:

        @router.post("/api/leaderboard/refresh", name="leaderboard_refresh", status_code=202)
        async def leaderboard_refresh() -> Response:
            await run_in_threadpool(refresh)
            return JSONResponse({"status": "accepted"}, status_code=202)

    return router
