"""Reading a request body into a validated protocol model, with OpenAI-shaped failures.

The size limit is checked twice: against Content-Length before reading, and against the
bytes actually received (chunked uploads have no Content-Length). Malformed JSON and
validation failures become ``BadRequest`` naming the offending parameter, as OpenAI does;
so does a body nested deeper than any real request (``arena.json_body``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from arena.errors import BadRequest, PayloadTooLarge
from arena.json_body import loads_json

ModelT = TypeVar("ModelT", bound=BaseModel)


async def read_body(request: Request, max_bytes: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise BadRequest("Content-Length is not a number") from None
        if declared > max_bytes:
            raise PayloadTooLarge(
                f"request body is {declared} bytes; the limit is {max_bytes} bytes"
            )
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise PayloadTooLarge(f"request body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise BadRequest("the request body is empty; expected a JSON object")
    doc = loads_json(body)  # 400 for malformed JSON and for nesting deeper than any request
    if not isinstance(doc, dict):
        raise BadRequest("the request body must be a JSON object")
    return doc


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "dict", "list", "none"})


def param_name(loc: tuple[Any, ...]) -> str | None:
    """``("messages", 0, "content", "str")`` -> ``"messages[0].content"``.

    Pydantic puts the union member it tried into ``loc`` (``str``, ``list[...]``,
    ``function-after[...]``, model class names); those are not parameter names.
    """
    if not loc:
        return None
    name = str(loc[0])
    for part in loc[1:]:
        if isinstance(part, int):
            name += f"[{part}]"
        elif (
            isinstance(part, str)
            and part.isidentifier()
            and part[:1].islower()
            and part not in _TYPE_TAGS
        ):
            name += f".{part}"
    return name


def validation_error(error: ValidationError) -> BadRequest:
    first = error.errors()[0]
    param = param_name(tuple(first.get("loc", ())))
    problems = "; ".join(
        f"{param_name(tuple(e.get('loc', ()))) or 'body'}: {e['msg']}" for e in error.errors()[:5]
    )
    return BadRequest(f"invalid request: {problems}", param=param)


def validate(model: type[ModelT], doc: dict[str, Any]) -> ModelT:
    try:
        return model.model_validate(doc)
    except ValidationError as e:
        raise validation_error(e) from None


async def read_model(request: Request, model: type[ModelT], max_bytes: int) -> ModelT:
    return validate(model, parse_json_object(await read_body(request, max_bytes)))
