"""Request and response models of the arena JSON API (they are the OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from arena.protocol import ErrorResponse

VoteValue = Literal["a", "b", "tie", "bothbad", "upvote", "downvote", "flag"]


class CreateBattle(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["battle", "side_by_side", "direct"] = Field(
        default="battle",
        description="battle: two anonymous models; side_by_side: two named models; "
        "direct: one named model.",
    )
    models: list[str] | None = Field(
        default=None,
        description="The models to use in side_by_side (two) and direct (one) modes; "
        "not allowed in battle mode, where they are drawn.",
    )
    vision: bool = Field(
        default=False, description="The chat will include images: only vision models are used."
    )


class SideInfo(BaseModel):
    side: Literal["a", "b"]
    label: str
    model: str | None = Field(default=None, description="Shown only when the names are known.")
    demo: bool | None = Field(default=None, description="A built-in demo model (named modes).")


class BattleCreated(BaseModel):
    battle_id: str = Field(description="An opaque random token.")
    mode: str
    sides: list[SideInfo]
    max_turns: int
    vision: bool


class SendMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="The user's message.")
    image_id: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="An id returned by POST /api/images.",
    )


class VoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vote: VoteValue = Field(
        description="Two-model modes: a, b, tie, bothbad. Direct chat: upvote, downvote, flag."
    )


class RevealedModel(BaseModel):
    name: str
    demo: bool
    organization: str = ""


class VoteResult(BaseModel):
    battle_id: str
    vote: str
    counted: bool = Field(
        description="False when the vote is stored but left out of the ratings "
        "(identity leak, named or direct mode)."
    )
    leaked: bool
    models: dict[str, RevealedModel] = Field(description="The names, by side.")


class ImageUploaded(BaseModel):
    image_id: str = Field(description="SHA-256 of the stored bytes.")
    mime_type: str
    width: int
    height: int
    byte_size: int
    resized: bool


class ModelInfo(BaseModel):
    name: str
    demo: bool
    vision: bool
    organization: str = ""
    description: str = ""


class ModelsList(BaseModel):
    models: list[ModelInfo]
    only_demo: bool


class SessionInfo(BaseModel):
    csrf_token: str = Field(description="Send it back in the X-CSRF-Token header.")
    expires_in_s: int


class BattleView(BaseModel):
    """``GET /api/battles/{id}``: names appear only after the vote in battle mode."""

    model_config = ConfigDict(extra="allow")
    battle_id: str
    mode: str
    state: str
    can_vote: bool
    can_regenerate: bool
    can_continue: bool
    turns_left: int
    identity_leaked: bool
    notice: str | None = None
    vote: str | None = None
    vision: bool = Field(
        default=False,
        description="Declared at creation: the chat takes images (an anonymous battle takes "
        "them only then).",
    )
    sides: list[dict[str, Any]]
    turns: list[dict[str, Any]]


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the error statuses an endpoint may return."""
    text = {
        400: "Bad input (malformed JSON, empty or flagged message, invalid move).",
        403: "Missing or wrong CSRF token, or no valid session.",
        404: "Unknown battle or image.",
        409: "Conflict: already voted, or the models are still answering.",
        413: "Too large (message text or image).",
        415: "Unsupported image type or content type.",
        422: "The body does not match the schema.",
        429: "Too many requests or votes; see Retry-After.",
        503: "Not enough models are available.",
    }
    return {c: {"model": ErrorResponse, "description": text[c]} for c in codes}


def _payload(event: str, required: list[str], **properties: Any) -> dict[str, Any]:
    """The JSON ``data`` of one kind of event (``contentSchema``, applied when it is that
    kind: validators such as Schemathesis check each event of a stream against it)."""
    payload = {"type": "object", "required": required, "properties": properties}
    data = {"contentMediaType": "application/json", "contentSchema": payload}
    return {
        "if": {"properties": {"event": {"const": event}}},
        "then": {"properties": {"data": data}},
    }


_SIDE = {"enum": ["a", "b"]}
_TEXT = {"type": "string"}
_MAYBE_TEXT = {"type": ["string", "null"]}
_FLAG = {"type": "boolean"}
SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"enum": ["delta", "render", "done", "error", "leak", "end"]},
        "data": {"type": "string"},
    },
    "allOf": [
        _payload("delta", ["side", "text"], side=_SIDE, text=_TEXT),
        _payload("render", ["side", "html"], side=_SIDE, html=_TEXT),
        _payload("done", ["side", "html"], side=_SIDE, html=_TEXT, finish_reason=_MAYBE_TEXT),
        _payload(
            "error",
            ["side", "message"],
            side={"enum": ["a", "b", None]},
            message=_TEXT,
            kind=_MAYBE_TEXT,
        ),
        _payload("leak", ["side", "message"], side=_SIDE, message=_TEXT),
        _payload(
            "end",
            ["state", "can_vote", "can_regenerate", "turns_left"],
            battle_id=_TEXT,
            state=_TEXT,
            can_vote=_FLAG,
            can_regenerate=_FLAG,
            can_continue=_FLAG,
            turns_left={"type": "integer", "minimum": 0},
            identity_leaked=_FLAG,
            message=_MAYBE_TEXT,
        ),
    ],
}
SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "A text/event-stream. Events: `delta` {side, text} (raw text as it streams), "
            "`render` {side, html} (the text streamed so far, rendered and sanitized, sent "
            "at most every 150 ms while it changes), "
            "`done` {side, html, finish_reason} (the final answer rendered from markdown and "
            "sanitized; finish_reason is null in an anonymous battle), `error` {side, "
            "message, kind} (one side failed; the message never names the model, and in an "
            "anonymous battle every failure reads alike, kind `failed`), `leak` {side, "
            "message} (an answer names a model: the vote will not count), `end` {state, "
            "can_vote, can_regenerate, turns_left}."
        ),
        "content": {"text/event-stream": {"schema": SSE_EVENT}},
    }
}
