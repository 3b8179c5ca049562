"""The arena JSON API: sessions, models, battles, messages (SSE), regenerate, votes, images."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from arena.errors import BadRequest, NotFound, UnsupportedMediaType
from arena.json_body import loads_json
from arena.web.routing import WEB_SESSION_KEY, ValidationFailed
from arena.web.schemas import (
    SSE_RESPONSE,
    BattleCreated,
    BattleView,
    CreateBattle,
    ImageUploaded,
    ModelInfo,
    ModelsList,
    SendMessage,
    SessionInfo,
    VoteRequest,
    error_responses,
)
from arena.web.sessions import WebSession
from arena.web.share import SharedVoteResult
from arena.web.streaming import EventStream

if TYPE_CHECKING:
    from arena.web.app import WebContext

UPLOAD_ENDPOINTS = frozenset({"upload_image", "send_message"})

_MESSAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": SendMessage.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["text"],
                    "properties": {
                        "text": {"type": "string"},
                        "image": {"type": "string", "format": "binary"},
                        "image_id": {"type": "string"},
                    },
                }
            },
        },
    }
}
_IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {"image": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


def stream_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``error_responses`` for a route whose success is an event stream: FastAPI files a
    response ``model`` under the route's own media type, but errors are JSON."""
    ref = {"$ref": "#/components/schemas/ErrorResponse"}  # listed by the other routes
    return {
        code: {
            "description": entry["description"],
            "content": {"application/json": {"schema": ref}},
        }
        for code, entry in error_responses(*codes).items()
    }


def _session(request: Request) -> WebSession:
    return request.scope[WEB_SESSION_KEY]


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _hit_upload(ctx: WebContext, request: Request) -> None:
    """Count an image upload against the session's and the address's upload rates."""
    await ctx.service.rate_limiter.hit_upload(
        session_id=_session(request).id, ip_hash=ctx.ip_hash(request)
    )


def _message(doc: Any) -> SendMessage:
    try:
        return SendMessage.model_validate(doc)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "body"
        raise ValidationFailed(f"Invalid request: {loc}: {first['msg']}.", param=loc) from None


async def _form_image(ctx: WebContext, request: Request, upload: Any) -> str | None:
    if upload is None or upload == "":
        return None
    if not isinstance(upload, UploadFile):
        raise BadRequest("'image' must be a file upload.", param="image")
    await _hit_upload(ctx, request)
    data = await upload.read(ctx.service.image_limits.max_bytes + 1)
    prepared = await ctx.service.save_image(data)
    return prepared.content_hash


async def _read_message(ctx: WebContext, request: Request) -> tuple[str, str | None]:
    """(text, image id) from a JSON body or a multipart form with an optional file."""
    kind = _content_type(request)
    if kind == "multipart/form-data":
        async with request.form(max_files=1, max_fields=10) as form:
            text = form.get("text")
            if not isinstance(text, str):
                raise BadRequest("The form needs a 'text' field.", param="text")
            given = form.get("image_id")
            if given is not None and not isinstance(given, str):
                raise BadRequest("'image_id' must be a text field.", param="image_id")
            # The same checks as a JSON body, before any upload is read or stored.
            message = _message({"text": text, "image_id": given or None})
            image_id = await _form_image(ctx, request, form.get("image"))
        return message.text, image_id or message.image_id
    if kind not in ("application/json", ""):
        raise UnsupportedMediaType(
            "Send the message as application/json or multipart/form-data.",
            code="unsupported_media_type",
        )
    # orjson, with the nesting bounded: a deeply nested body is a 400, not a RecursionError.
    message = _message(loads_json(await request.body()))
    return message.text, message.image_id


def api_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["arena"], route_class=ctx.route_class)
    service = ctx.service

    @router.get(
        "/session",
        response_model=SessionInfo,
        summary="Start or refresh the anonymous session; returns the CSRF token.",
    )
    async def get_session(request: Request) -> Response:
        session = await ctx.ensure_session(request)
        body = SessionInfo(
            csrf_token=session.csrf_token, expires_in_s=int(ctx.limits.session_ttl_s)
        )
        response = JSONResponse(body.model_dump())
        ctx.sessions.set_cookies(response, session)
        return response

    @router.get("/models", response_model=ModelsList, summary="Models that can be picked by name.")
    async def list_models() -> ModelsList:
        return ModelsList(
            models=[
                ModelInfo(
                    name=s.name,
                    demo=service.is_demo(s.name),
                    vision=s.is_vision,
                    organization=s.organization,
                    description=s.description,
                )
                for s in service.named_models()
            ],
            only_demo=service.only_demo,
        )

    @router.post(
        "/battles",
        status_code=201,
        response_model=BattleCreated,
        responses=error_responses(400, 403, 404, 422, 429, 503),
        summary="Start a battle, a named side-by-side or a direct chat.",
    )
    async def create_battle(body: CreateBattle, request: Request) -> BattleCreated:
        session = _session(request)
        battle = await service.create_battle(
            session_id=session.id,
            ip_hash=ctx.ip_hash(request),
            mode=body.mode,
            models=body.models,
            vision=body.vision,
        )
        view = battle.public_view()
        sides = []
        for side in view["sides"]:
            model = side.get("model")
            sides.append(
                {
                    "side": side["side"],
                    "label": side["label"],
                    "model": model,
                    "demo": service.is_demo(model) if model else None,
                }
            )
        return BattleCreated(
            battle_id=battle.battle_id,
            mode=battle.mode.value,
            sides=sides,
            max_turns=battle.max_turns,
            vision=body.vision,
        )

    @router.get(
        "/battles/{battle_id}",
        response_model=BattleView,
        responses=error_responses(403, 404),
        summary="The battle as this session may see it (names only after the vote).",
    )
    async def get_battle(battle_id: str, request: Request) -> Response:
        session = ctx.sessions.read(request)
        if session is None:
            raise NotFound("No such battle in this session.", param="battle_id")
        stored = await service.load(battle_id, session.id)
        return JSONResponse(service.view(stored))

    async def _stream(
        request: Request, battle_id: str, *, text: str | None, image_id: str | None, regen: bool
    ) -> Response:
        session = _session(request)
        plan = await service.plan_turn(
            battle_id=battle_id,
            session_id=session.id,
            ip_hash=ctx.ip_hash(request),
            text=text,
            image_id=image_id,
            regenerate=regen,
        )
        return EventStream(service.run_turn(plan), on_close=lambda: service.release(battle_id))

    @router.post(
        "/battles/{battle_id}/messages",
        response_class=EventStream,
        status_code=200,
        responses={**SSE_RESPONSE, **stream_errors(400, 403, 404, 409, 413, 415, 422, 429)},
        openapi_extra=_MESSAGE_BODY,
        summary="Send a message; both sides' answers stream back as server-sent events.",
    )
    async def send_message(battle_id: str, request: Request) -> Response:
        text, image_id = await _read_message(ctx, request)
        return await _stream(request, battle_id, text=text, image_id=image_id, regen=False)

    @router.post(
        "/battles/{battle_id}/regenerate",
        response_class=EventStream,
        status_code=200,
        responses={**SSE_RESPONSE, **stream_errors(400, 403, 404, 409, 429)},
        summary="Answer the last message again on every side (before the vote).",
    )
    async def regenerate(battle_id: str, request: Request) -> Response:
        return await _stream(request, battle_id, text=None, image_id=None, regen=True)

    @router.post(
        "/battles/{battle_id}/vote",
        response_model=SharedVoteResult,
        responses=error_responses(400, 403, 404, 409, 422, 429),
        summary="Vote (a, b, tie, bothbad; direct chat: upvote, downvote, flag). "
        "Answers once the vote is committed, with the models' names.",
    )
    async def vote(battle_id: str, body: VoteRequest, request: Request) -> SharedVoteResult:
        session = _session(request)
        result = await service.vote(
            battle_id=battle_id,
            session_id=session.id,
            ip_hash=ctx.ip_hash(request),
            value=body.vote,
        )
        return SharedVoteResult.model_validate(result)

    @router.post(
        "/images",
        status_code=201,
        response_model=ImageUploaded,
        responses=error_responses(400, 403, 413, 415, 422, 429),
        openapi_extra=_IMAGE_BODY,
        summary="Upload an image (PNG, JPEG, WebP, GIF); returns its id for a message.",
    )
    async def upload_image(request: Request) -> ImageUploaded:
        if _content_type(request) != "multipart/form-data":
            raise UnsupportedMediaType(
                "Upload images as multipart/form-data with an 'image' file field.",
                code="unsupported_media_type",
            )
        await _hit_upload(ctx, request)  # before the body is read
        async with request.form(max_files=1, max_fields=5) as form:
            upload = form.get("image")
            if not isinstance(upload, UploadFile):
                raise BadRequest("The form needs an 'image' file field.", param="image")
            data = await upload.read(service.image_limits.max_bytes + 1)
        prepared = await service.save_image(data)
        return ImageUploaded(
            image_id=prepared.content_hash,
            mime_type=prepared.mime_type,
            width=prepared.width,
            height=prepared.height,
            byte_size=len(prepared.data),
            resized=prepared.resized,
        )

    return router
