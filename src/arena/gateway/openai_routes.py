"""The OpenAI routes of the gateway: their table, and the ``/v1/models`` and ``/v1/embeddings``
handlers (chat and text completions are in ``completion_routes.py``)."""

from __future__ import annotations

import base64
import struct

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from arena.errors import ArenaError, ModelNotFound
from arena.gateway.app_state import CLIENT_CLOSED, Gateway, json_response
from arena.gateway.client_connection import ClientDisconnected, cancel_on_disconnect
from arena.gateway.completion_routes import chat_completions, completions
from arena.gateway.routing import call_with_failover
from arena.gateway.streaming import usage_dict
from arena.protocol import EmbeddingRequest
from arena.providers.base import TokenUsage


def _encode_vector(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector


async def embeddings(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    started = gw.begin("embeddings")
    model_label = "unknown"
    status = 500
    try:
        caller, body = await gw.admit(request, EmbeddingRequest)
        targets = gw.router.targets(body.model)
        model_label = body.model
        _, result = await cancel_on_disconnect(
            request.receive,
            call_with_failover(
                targets,
                lambda provider: provider.embed(body),
                gw.timeouts,
                on_failure=gw.upstream_failed,
            ),
        )
        usage = TokenUsage(prompt_tokens=result.prompt_tokens)
        await gw.account(caller, body.model, usage)
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": _encode_vector(v, body.encoding_format),
            }
            for i, v in enumerate(result.vectors)
        ]
        status = 200
        u = usage_dict(usage) or {}
        return json_response(
            {
                "object": "list",
                "data": data,
                "model": body.model,
                "usage": {"prompt_tokens": u["prompt_tokens"], "total_tokens": u["total_tokens"]},
            }
        )
    except ClientDisconnected:
        status = CLIENT_CLOSED
        return Response(status_code=CLIENT_CLOSED)
    except ArenaError as e:
        status = e.status_code
        raise
    finally:
        gw.finish("embeddings", model_label, status, started)


async def list_models(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    await gw.access.authenticate(request)
    return json_response({"object": "list", "data": gw.router.model_cards(gw.created)})


async def get_model(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    await gw.access.authenticate(request)
    name = request.path_params["model"]
    for card in gw.router.model_cards(gw.created):
        if card["id"] == name:
            return json_response(card)
    raise ModelNotFound(f"the model {name!r} does not exist", param="model")


def add_openai_routes(app: FastAPI) -> None:
    """Plain Starlette routes: the handlers parse and validate bodies themselves (to give
    OpenAI-shaped errors and enforce the size limit), so FastAPI's per-request dependency
    solving would be pure overhead on the hot path. ``api_schema.py`` documents them."""
    for path, endpoint, method in (
        ("/v1/models", list_models, "GET"),
        ("/v1/models/{model:path}", get_model, "GET"),
        ("/v1/chat/completions", chat_completions, "POST"),
        ("/v1/completions", completions, "POST"),
        ("/v1/embeddings", embeddings, "POST"),
    ):
        app.router.add_route(path, endpoint, methods=[method], include_in_schema=False)
