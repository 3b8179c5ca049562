"""``/api/release-opt-out``: a visitor keeps their conversations out of released datasets.

``POST`` (session cookie and CSRF token, like every state-changing arena route) records the
opt-out for the caller's session; its battles, past and future, are left out of
``arena export conversations``. ``GET`` says whether the session has opted out. Neither
answer says anything about the session's battles (not even how many there are).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.requests import Request

from arena.errors import BadRequest, NotFound
from arena.store.release_opt_outs import is_opted_out, opt_out_session
from arena.web.routing import WEB_SESSION_KEY
from arena.web.schemas import error_responses
from arena.web.write_queue import VOTE

if TYPE_CHECKING:
    from arena.web.app import WebContext


class ReleaseOptOutState(BaseModel):
    opted_out: bool = Field(
        description="True once this session asked that its conversations stay out of "
        "released datasets (it applies to every battle of the session, past and future)."
    )


def release_opt_out_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["arena"], route_class=ctx.route_class)
    store = ctx.service.store

    @router.get(
        "/release-opt-out",
        response_model=ReleaseOptOutState,
        summary="Whether this session's conversations are kept out of released datasets.",
    )
    async def release_opt_out_state(request: Request) -> ReleaseOptOutState:
        session = ctx.sessions.read(request)
        if session is None:
            return ReleaseOptOutState(opted_out=False)
        return ReleaseOptOutState(opted_out=await store.read(is_opted_out, store.db, session.id))

    @router.post(
        "/release-opt-out",
        response_model=ReleaseOptOutState,
        responses=error_responses(400, 403),
        summary="Keep this session's conversations (past and future) out of released "
        "datasets. Safe to repeat.",
    )
    async def release_opt_out(request: Request) -> ReleaseOptOutState:
        session = request.scope[WEB_SESSION_KEY]
        try:
            # A privacy request goes ahead of message writes, as votes do.
            await store.write(opt_out_session, store.db, session.id, priority=VOTE)
        except NotFound:  # the session row is gone (expired and cleaned up, or a new db)
            raise BadRequest(
                "Your session is no longer valid: reload the page to start a new one.",
                code="session_expired",
            ) from None
        return ReleaseOptOutState(opted_out=True)

    return router
