"""``/api/redteam``: the red-team game's JSON API (in the OpenAPI schema under ``redteam``).

A player needs no account: the session cookie (and its CSRF token, on every state-changing
call, as in the arena) makes them a player; a nickname is optional. Starting a round and
sending a message count against the arena's per-session and per-address request limits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from arena.errors import NotFound
from arena.web.api import stream_errors
from arena.web.redteam_game import RedTeamGame, public_challenge, round_view
from arena.web.redteam_turns import RedTeamTurns
from arena.web.routing import WEB_SESSION_KEY
from arena.web.schemas import error_responses
from arena.web.streaming import EventStream

if TYPE_CHECKING:
    from arena.web.app import WebContext


class StartRound(BaseModel):
    model_config = ConfigDict(extra="forbid")
    challenge_id: str = Field(min_length=1, max_length=64)


class SendAttack(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1)


class NicknameBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nickname: str | None = Field(
        default=None, max_length=200, description="3-32 characters; null drops the nickname."
    )


class PlayerInfo(BaseModel):
    nickname: str | None


class ChallengeList(BaseModel):
    challenges: list[dict[str, Any]]


class RoundView(BaseModel):
    """A round as its player sees it: ``model`` and ``secret`` stay null until it is over."""

    model_config = ConfigDict(extra="allow")
    round_id: str
    status: str = Field(description="active, won or lost")
    end_reason: str | None = Field(description="success, gave_up, time_limit or turn_limit")
    model: str | None
    secret: str | None
    turns_left: int
    seconds_left: float


REDTEAM_SSE = {
    200: {
        "description": (
            "A text/event-stream. Events: `delta` {text} (the answer as it streams), then "
            "`error` {kind, message} (the model could not answer; every failure reads alike "
            "and the turn is not counted) or `checked` {success, method} (target phrase or "
            "planted secret found) or `judge` {status, achieved, explanation} (judge-decided "
            "goals), then `round` (the round view; names the model once the round is over), "
            "then `done`."
        ),
        "content": {"text/event-stream": {"schema": {"type": "object"}}},
    }
}


def redteam_router(ctx: WebContext, game: RedTeamGame) -> APIRouter:
    router = APIRouter(prefix="/api/redteam", tags=["redteam"], route_class=ctx.route_class)
    turns = RedTeamTurns(game, ctx.service.stream_limits, ctx.limits.max_input_chars)
    limiter = ctx.service.rate_limiter

    def session_id(request: Request) -> str:
        return request.scope[WEB_SESSION_KEY].id

    def reader_session(request: Request) -> str:
        session = ctx.sessions.read(request)
        if session is None:
            raise NotFound("No such round in this session.", param="round_id")
        return session.id

    @router.get(
        "/challenges",
        response_model=ChallengeList,
        summary="Challenges that can be played (target, limits; never the models).",
    )
    async def list_challenges() -> ChallengeList:
        return ChallengeList(challenges=[public_challenge(c) for c in game.playable()])

    @router.post(
        "/rounds",
        status_code=201,
        response_model=RoundView,
        responses=error_responses(400, 403, 404, 422, 429, 503),
        summary="Start a round: an anonymous model drawn among those the challenge allows.",
    )
    async def start_round(body: StartRound, request: Request) -> JSONResponse:
        sid = session_id(request)
        ip_hash = ctx.ip_hash(request)
        await limiter.hit_request(session_id=sid, ip_hash=ip_hash)
        record = await game.start_round(
            session_id=sid, ip_hash=ip_hash, challenge_id=body.challenge_id
        )
        return JSONResponse(round_view(record), status_code=201)

    @router.get(
        "/rounds/{round_id}",
        response_model=RoundView,
        responses=error_responses(404),
        summary="The round as its player may see it (the model only once it is over).",
    )
    async def get_round(round_id: str, request: Request) -> JSONResponse:
        record = await game.load(round_id, reader_session(request))
        return JSONResponse(round_view(record))

    @router.post(
        "/rounds/{round_id}/messages",
        response_class=EventStream,
        status_code=200,
        responses={**REDTEAM_SSE, **stream_errors(400, 403, 404, 409, 413, 422, 429)},
        summary="Send an attack message; the answer streams back and is checked as it grows.",
    )
    async def send_attack(round_id: str, body: SendAttack, request: Request) -> Response:
        sid = session_id(request)
        await limiter.hit_request(session_id=sid, ip_hash=ctx.ip_hash(request))
        plan = await turns.plan(round_id, sid, body.text)
        return EventStream(turns.run(plan), on_close=lambda: None)

    @router.post(
        "/rounds/{round_id}/end",
        response_model=RoundView,
        responses=error_responses(403, 404, 409),
        summary="Give up: the round is lost and the model is named.",
    )
    async def give_up(round_id: str, request: Request) -> JSONResponse:
        record = await game.give_up(round_id, session_id(request))
        return JSONResponse(round_view(record))

    @router.get("/player", response_model=PlayerInfo, summary="This session's nickname.")
    async def get_player(request: Request) -> PlayerInfo:
        session = ctx.sessions.read(request)
        return PlayerInfo(nickname=await game.nickname(session.id) if session else None)

    @router.put(
        "/player",
        response_model=PlayerInfo,
        responses=error_responses(400, 403, 409, 422),
        summary="Pick (or drop) a nickname for the red-team boards.",
    )
    async def set_player(body: NicknameBody, request: Request) -> PlayerInfo:
        return PlayerInfo(nickname=await game.set_nickname(session_id(request), body.nickname))

    return router
