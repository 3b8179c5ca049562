"""The ``/v1`` FastAPI app: models, chat and text completions, embeddings, health, metrics.

``create_gateway_app`` is used twice: by ``arena serve`` (registry providers plus workers,
API keys, limits, worker registration) and by ``arena worker`` (one local provider, no
keys). The routes are the same code in both.

The app is a ``GatewayApp`` (``fast_lane.py``); its parts: the OpenAI routes
(``openai_routes.py``, ``completion_routes.py``) and their shared state (``app_state.py``),
the lifespan (``lifespan.py``), ``/health``, ``/metrics``, the schema and its docs page
(``operator_routes.py``, guarded by the keys), and the schema's view of the OpenAI routes
(``api_schema.py``).
"""

from __future__ import annotations

from fastapi import FastAPI

from arena.config import Settings
from arena.gateway.api_schema import document_routes
from arena.gateway.app_state import Access, Gateway
from arena.gateway.auth import OpenAccess
from arena.gateway.fast_lane import GatewayApp
from arena.gateway.http_errors import install_error_handlers
from arena.gateway.lifespan import gateway_lifespan
from arena.gateway.metrics import GatewayMetrics
from arena.gateway.openai_routes import add_openai_routes
from arena.gateway.operator_routes import add_operator_routes
from arena.gateway.rate_limit import KeyRateLimiter
from arena.gateway.routing import ModelRouter

__all__ = ["GatewayApp", "create_gateway_app"]


def create_gateway_app(
    settings: Settings,
    *,
    router: ModelRouter,
    access: Access | None = None,
    limiter: KeyRateLimiter | None = None,
    title: str = "Arena gateway",
) -> FastAPI:
    """The ``/v1`` app. ``access`` defaults to open (no keys); ``limiter`` to none."""
    metrics = GatewayMetrics()
    gateway = Gateway(
        settings=settings,
        router=router,
        access=access or OpenAccess(),
        limiter=limiter,
        metrics=metrics,
    )
    if router.pool is not None:
        metrics.watch_workers(router.pool.counts)

    # FastAPI's own schema and docs routes are off: ours check access (operator_routes.py).
    app = GatewayApp(
        title=title,
        lifespan=gateway_lifespan(gateway),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.gateway = gateway
    install_error_handlers(app)
    add_openai_routes(app)
    add_operator_routes(app)
    document_routes(app)
    return app
