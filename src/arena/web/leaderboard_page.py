"""The leaderboard web page and its JSON API, served from the newest artifact set.

``leaderboard_router(artifacts_dir, templates)`` returns an ``APIRouter`` with:

- ``GET /leaderboard``: the page (sortable table; category, style control, organization,
  license and minimum-votes filters; vanilla JS, no CDN).
- ``GET /api/leaderboard``: the same data as JSON (query: ``category``, ``style_control``,
  ``organization``, ``license``, ``min_votes``).
- ``GET /leaderboard/assets/{leaderboard.js,leaderboard.css}``: the page's own files.
- ``POST /api/leaderboard/refresh`` (only when a ``refresh`` callable is given): asks for a
  recomputation and answers 202 at once. Pass a coalescing, rate-limited hook such as
  ``ArtifactRefresher.request`` and protect the route like any admin action.

Every request looks for the newest artifact set on disk, so recomputed artifacts show up
without a restart. Organization and license come from the model registry mapping given.
The page carries the arena pages' security headers (``pages.secure_html``); the JSON API
documents its answers, errors included, in the OpenAPI schema.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from arena.errors import ArenaError, NotFound
from arena.leaderboard.artifacts import ArtifactSet, list_sets
from arena.leaderboard.filters import category_label
from arena.leaderboard.table import Leaderboard
from arena.protocol import ErrorResponse
from arena.web.pages import secure_html

PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS = {"leaderboard.js": "text/javascript", "leaderboard.css": "text/css"}
ModelInfo = Mapping[str, tuple[str, str]]


class LeaderboardRow(BaseModel):
    rank: int
    model: str
    rating: float
    ci_lower: float
    ci_upper: float
    num_battles: int
    win_rate: float
    organization: str
    license: str


class LeaderboardCategory(BaseModel):
    name: str
    label: str
    style_control: list[bool]


class LeaderboardFilters(BaseModel):
    organization: str | None
    license: str | None
    min_votes: int


class LeaderboardMeta(BaseModel):
    counts: dict[str, Any]
    method: dict[str, Any]
    data_sha256: str | None = None
    created: str | None = None
    arena_version: str | None = None


class LeaderboardData(BaseModel):
    """``GET /api/leaderboard`` (documentation only: the route returns the dict as is)."""

    snapshot: str
    created: str
    category: str
    category_label: str
    style_control: bool
    categories: list[LeaderboardCategory]
    organizations: list[str]
    licenses: list[str]
    filters: LeaderboardFilters
    total_models: int
    models: list[LeaderboardRow]
    style_coefficients: dict[str, dict[str, float]]
    meta: LeaderboardMeta


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


def default_templates() -> Jinja2Templates:
    return Jinja2Templates(directory=str(PACKAGE_DIR / "templates"))


class _BoardCache:
    """Parsed leaderboards of the current snapshot (dropped when a newer snapshot appears)."""

    def __init__(self) -> None:
        self.snapshot: str | None = None
        self.boards: dict[tuple[str, bool], Leaderboard] = {}

    def get(self, artifact_set: ArtifactSet, category: str, style_control: bool) -> Leaderboard:
        key = (artifact_set.directory.name, artifact_set.created)
        if self.snapshot != repr(key):
            self.snapshot, self.boards = repr(key), {}
        if (category, style_control) not in self.boards:
            self.boards[(category, style_control)] = artifact_set.get(category, style_control)
        return self.boards[(category, style_control)]


def _latest(artifacts_dir: Path) -> ArtifactSet | None:
    sets = list_sets(artifacts_dir)
    return sets[0] if sets else None


def leaderboard_payload(
    artifact_set: ArtifactSet,
    board: Leaderboard,
    *,
    model_info: ModelInfo,
    organization: str | None = None,
    license: str | None = None,
    min_votes: int = 0,
) -> dict[str, Any]:
    """The JSON the page and the API share (filters applied, ranks as computed)."""
    rows = []
    for row in board.models:
        org, lic = model_info.get(row.model, ("", ""))
        if organization and org != organization:
            continue
        if license and lic != license:
            continue
        if row.num_battles < min_votes:
            continue
        rows.append(
            {
                "rank": row.rank_ub,
                "model": row.model,
                "rating": round(row.rating, 2),
                "ci_lower": round(row.ci_lower, 2),
                "ci_upper": round(row.ci_upper, 2),
                "num_battles": row.num_battles,
                "win_rate": round(row.win_rate, 4),
                "organization": org,
                "license": lic,
            }
        )
    rated = [m.model for m in board.models]
    categories = []
    for name in artifact_set.categories:
        categories.append(
            {
                "name": name,
                "label": category_label(name),
                "style_control": [mode for mode in (False, True) if artifact_set.has(name, mode)],
            }
        )
    meta = board.meta
    return {
        "snapshot": artifact_set.snapshot,
        "created": artifact_set.created,
        "category": board.category,
        "category_label": category_label(board.category),
        "style_control": board.style_control,
        "categories": categories,
        "organizations": sorted({model_info[m][0] for m in rated if m in model_info} - {""}),
        "licenses": sorted({model_info[m][1] for m in rated if m in model_info} - {""}),
        "filters": {"organization": organization, "license": license, "min_votes": min_votes},
        "total_models": len(board.models),
        "models": rows,
        "style_coefficients": board.style_coefficients,
        "meta": {
            "counts": meta.get("counts", {}),
            "method": meta.get("method", {}),
            "data_sha256": meta.get("data_sha256"),
            "created": meta.get("created"),
            "arena_version": meta.get("arena_version"),
        },
    }


def _error(e: ArenaError) -> JSONResponse:
    return JSONResponse(e.to_body(), status_code=e.status_code, headers=e.headers or None)


def leaderboard_router(
    artifacts_dir: Path,
    templates: Jinja2Templates | None = None,
    *,
    model_info: ModelInfo | Callable[[], ModelInfo] | None = None,
    refresh: Callable[[], Any] | None = None,
    page_context: Callable[[Request], Mapping[str, Any]] | None = None,
) -> APIRouter:
    """Routes for the leaderboard page and API, reading artifacts from ``artifacts_dir``.

    ``model_info`` maps model name → (organization, license), or is a callable returning
    such a mapping (re-read per request, so a reloaded registry shows up). ``page_context``
    adds template variables (e.g. the site's navigation) to the page.
    """
    artifacts_dir = Path(artifacts_dir)
    templates = templates or default_templates()
    cache = _BoardCache()
    router = APIRouter()

    def info() -> ModelInfo:
        if model_info is None:
            return {}
        return model_info() if callable(model_info) else model_info

    def payload(
        category: str | None,
        style_control: bool,
        organization: str | None,
        license: str | None,
        min_votes: int,
    ) -> dict[str, Any]:
        artifact_set = _latest(artifacts_dir)
        if artifact_set is None:
            raise NotFound("no leaderboard has been computed yet", code="no_leaderboard")
        chosen = category or (
            "full" if "full" in artifact_set.categories else artifact_set.categories[0]
        )
        board = cache.get(artifact_set, chosen, style_control)
        return leaderboard_payload(
            artifact_set,
            board,
            model_info=info(),
            organization=organization or None,
            license=license or None,
            min_votes=min_votes,
        )

    @router.get("/api/leaderboard", name="leaderboard_api", responses=API_RESPONSES)
    async def leaderboard_api(
        category: str | None = Query(None, max_length=200),
        style_control: bool = False,
        organization: str | None = Query(None, max_length=200),
        license: str | None = Query(None, max_length=200),
        min_votes: int = Query(0, ge=0),
    ) -> Response:
        try:
            data = await run_in_threadpool(
                payload, category, style_control, organization, license, min_votes
            )
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
        category: str | None = Query(None, max_length=200),
        style_control: bool = False,
        organization: str | None = Query(None, max_length=200),
        license: str | None = Query(None, max_length=200),
        min_votes: int = Query(0, ge=0),
    ) -> Response:
        status = 200
        error = None
        try:
            data = await run_in_threadpool(
                payload, category, style_control, organization, license, min_votes
            )
        except ArenaError as e:
            data, error = None, e.message
            # An empty leaderboard is a normal state of a fresh install, not an error.
            status = 200 if e.code == "no_leaderboard" else e.status_code
        context = {
            "data": data,
            "error": error,
            "api_url": str(request.url_for("leaderboard_api").path),
            "asset_url": lambda name: str(request.url_for("leaderboard_asset", name=name).path),
            **(page_context(request) if page_context else {}),
        }
        response = templates.TemplateResponse(
            request, "leaderboard.html", context, status_code=status
        )
        return secure_html(response)

    @router.get("/leaderboard/assets/{name}", name="leaderboard_asset", include_in_schema=False)
    async def leaderboard_asset(name: str) -> Response:
        if name not in ASSETS:
            return _error(NotFound(f"no asset {name!r}"))
        return FileResponse(
            PACKAGE_DIR / "static" / name,
            media_type=ASSETS[name],
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    if refresh is not None:

        @router.post("/api/leaderboard/refresh", name="leaderboard_refresh", status_code=202)
        async def leaderboard_refresh() -> Response:
            await run_in_threadpool(refresh)
            return JSONResponse({"status": "accepted"}, status_code=202)

    return router
