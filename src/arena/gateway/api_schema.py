"""The gateway's OpenAPI schema: the OpenAI routes, ``/health`` and ``/metrics``.

The OpenAI routes are plain Starlette routes answered on a fast lane (see
``arena.gateway.app.GatewayApp``), so FastAPI cannot see their bodies. They are declared a
second time here, with the protocol models, as routes that only the schema sees: their
``matches`` never matches, so no request ever reaches them and the real routes keep their
speed.

Streamed answers are documented event by event (the OpenAPI 3.2 way, which validators
such as Schemathesis read from ``schema``): each ``data`` is ``[DONE]`` or a JSON chunk
(``contentMediaType``/``contentSchema``), an error object when a stream fails midway.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.responses import Response
from starlette.routing import Match

from arena.protocol import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorResponse,
    ModelCard,
    ModelList,
)

COMPONENTS = "#/components/schemas/{model}"


class HealthStatus(BaseModel):
    status: Literal["ok", "down"]


class SchemaOnlyRoute(APIRoute):
    """A route the OpenAPI schema lists but requests never match (the real one answers)."""

    def matches(self, scope: Any) -> tuple[Match, dict[str, Any]]:
        return Match.NONE, {}


_ERRORS = {
    400: "Malformed JSON, or a body that does not match the schema (`param` names the field).",
    401: "Missing, unknown or revoked API key.",
    404: "Unknown model.",
    413: "The request body is over the gateway's size limit.",
    429: "Over the key's requests or tokens per minute; see Retry-After.",
    502: "The model backend failed.",
    503: "No healthy worker serves the model.",
    504: "The model backend did not answer in time.",
}
STREAMED = (
    "The answer: JSON, or with `stream: true` server-sent events, one chunk object per "
    "`data:` line (OpenAI's stream format), ending with `data: [DONE]`."
)


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": ErrorResponse, "description": _ERRORS[c]} for c in codes}


def _event_stream(chunk: type[BaseModel]) -> dict[str, Any]:
    """One server-sent event of a streamed answer: ``data`` is ``[DONE]`` or JSON."""
    payload = {
        "anyOf": [
            {"$ref": COMPONENTS.format(model=chunk.__name__)},
            {"$ref": COMPONENTS.format(model=ErrorResponse.__name__)},
        ]
    }
    data = {
        "type": "string",
        "anyOf": [
            {"const": "[DONE]"},
            {"contentMediaType": "application/json", "contentSchema": payload},
        ],
    }
    event = {"type": "object", "required": ["data"], "properties": {"data": data}}
    return {"text/event-stream": {"schema": event}}


def _generation(model: type[BaseModel], chunk: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"model": model, "description": STREAMED, "content": _event_stream(chunk)},
        **_errors(400, 401, 404, 413, 429, 502, 503, 504),
    }


# Signatures for the schema; never called (their routes never match).
async def list_models() -> ModelList: ...


async def retrieve_model(model: str) -> ModelCard: ...


async def create_chat_completion(body: ChatCompletionRequest) -> ChatCompletion: ...


async def create_completion(body: CompletionRequest) -> Completion: ...


async def create_embedding(body: EmbeddingRequest) -> EmbeddingResponse: ...


async def health() -> HealthStatus: ...


async def metrics() -> None: ...


def document_routes(app: FastAPI) -> None:
    """Add the schema-only twins of the OpenAI routes, ``/health`` and ``/metrics``."""
    openai = ["openai"]
    declared: list[tuple[str, Any, str, dict[str, Any]]] = [
        (
            "/v1/models",
            list_models,
            "GET",
            {"summary": "List the models", "responses": _errors(401)},
        ),
        (
            "/v1/models/{model:path}",
            retrieve_model,
            "GET",
            {"summary": "One model", "responses": _errors(401, 404)},
        ),
        (
            "/v1/chat/completions",
            create_chat_completion,
            "POST",
            {
                "summary": "Chat completion",
                "responses": _generation(ChatCompletion, ChatCompletionChunk),
            },
        ),
        (
            "/v1/completions",
            create_completion,
            "POST",
            {"summary": "Text completion", "responses": _generation(Completion, Completion)},
        ),
        (
            "/v1/embeddings",
            create_embedding,
            "POST",
            {
                "summary": "Embeddings",
                "responses": _errors(400, 401, 404, 413, 429, 502, 503, 504),
            },
        ),
    ]
    for path, endpoint, method, extra in declared:
        _declare(app, path, endpoint, method, tags=openai, **extra)
    _with_stream_components(app)
    _declare(
        app,
        "/health",
        health,
        "GET",
        tags=["operations"],
        summary="Up or down, nothing more",
        responses={503: {"model": HealthStatus, "description": "Down."}},
    )
    _declare(
        app,
        "/metrics",
        metrics,
        "GET",
        tags=["operations"],
        summary="Prometheus metrics (an API key or the metrics token once keys exist)",
        response_class=Response,
        responses={
            200: {
                "description": "The Prometheus text format.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            **_errors(401),
        },
    )


def _with_stream_components(app: FastAPI) -> None:
    """Make ``app.openapi()`` list the chunk models the event streams refer to (no route
    returns them as a whole, so FastAPI would leave them out)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            _, extra = models_json_schema(
                [(ChatCompletionChunk, "serialization"), (Completion, "serialization")],
                ref_template=COMPONENTS,
            )
            known = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in extra.get("$defs", {}).items():
                known.setdefault(name, definition)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def _declare(app: FastAPI, path: str, endpoint: Any, method: str, **options: Any) -> None:
    app.router.add_api_route(
        path,
        endpoint,
        methods=[method],
        operation_id=endpoint.__name__,
        route_class_override=SchemaOnlyRoute,
        **options,
    )
