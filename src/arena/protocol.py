"""Pydantic models of the OpenAI wire format: requests, responses, stream chunks, errors.

One definition serves the gateway, the worker, every provider and the clients in tests.
Requests accept unknown fields (``extra="allow"``) so that backend-specific parameters an
OpenAI-compatible engine understands (``top_k``, ``repetition_penalty``…) pass through.

Every number whose cost grows with its value (vector sizes, batch sizes, stop strings,
output tokens) is bounded where OpenAI bounds it or a little beyond, so an oversized request
is a 400 naming the field instead of memory or CPU spent on it; integers stay within 64 bits
so any request can be forwarded as JSON.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Inputs per embeddings request and prompts per completions request (OpenAI's own limit).
MAX_BATCH_INPUTS = 2048
# The widest embedding any model has produced is 12,288 values; the demo model computes a
# vector of whatever width is asked, so the width is bounded...
MAX_EMBEDDING_DIMENSIONS = 16_384
# ...and so is the whole answer: OpenAI's largest (2,048 inputs of 3,072 values) fits.
MAX_EMBEDDING_VALUES = MAX_BATCH_INPUTS * 4096
# Beyond any model's output window; keeps the number a 32-bit engine can take.
MAX_OUTPUT_TOKENS = 1 << 20
# OpenAI accepts 4 stop strings; engines that accept more rarely see over a handful. Each is
# matched against every generated piece, so their count and length are bounded.
MAX_STOP_SEQUENCES = 16
MAX_STOP_CHARS = 512

Int64 = Annotated[int, Field(ge=-(1 << 63), le=(1 << 63) - 1)]
TokenId = Annotated[int, Field(ge=0, le=(1 << 32) - 1)]
OutputTokens = Annotated[int, Field(ge=1, le=MAX_OUTPUT_TOKENS)]


def _check_batch(value: Any, what: str) -> Any:
    if isinstance(value, list) and len(value) > MAX_BATCH_INPUTS:
        raise ValueError(
            f"{len(value)} {what} in one request; at most {MAX_BATCH_INPUTS} are accepted"
        )
    return value


def _check_stop(value: str | list[str] | None) -> str | list[str] | None:
    stops = [value] if isinstance(value, str) else value or []
    if len(stops) > MAX_STOP_SEQUENCES:
        raise ValueError(f"{len(stops)} stop strings; at most {MAX_STOP_SEQUENCES} are accepted")
    if any(len(stop) > MAX_STOP_CHARS for stop in stops):
        raise ValueError(f"a stop string is longer than {MAX_STOP_CHARS} characters")
    return value


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now_s() -> int:
    return int(time.time())


# ---------------------------------------------------------------- messages


class ImageURL(BaseModel):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class TextPart(BaseModel):
    type: Literal["text"] = "text"
    text: str


class ImagePart(BaseModel):
    type: Literal["image_url"] = "image_url"
    image_url: ImageURL


ContentPart = TextPart | ImagePart


class FunctionCall(BaseModel):
    name: str | None = None
    arguments: str | None = None


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The message's text, with image parts left out."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    def images(self) -> list[str]:
        """URLs (http or data:) of the images in this message."""
        if not isinstance(self.content, list):
            return []
        return [p.image_url.url for p in self.content if isinstance(p, ImagePart)]


# ---------------------------------------------------------------- requests


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=None, ge=1, le=16)
    max_tokens: OutputTokens | None = None
    max_completion_tokens: OutputTokens | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    seed: Int64 | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    user: str | None = None

    _bounded_stop = field_validator("stop")(_check_stop)

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def wants_usage_chunk(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)

    def has_images(self) -> bool:
        return any(m.images() for m in self.messages)


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    prompt: str | list[str] | list[TokenId] | list[list[TokenId]] = ""
    suffix: str | None = None
    max_tokens: OutputTokens | None = 16
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=None, ge=1, le=16)
    best_of: int | None = Field(default=None, ge=1, le=20)
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: int | None = Field(default=None, ge=0, le=5)
    echo: bool | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: Int64 | None = None
    user: str | None = None

    @field_validator("prompt")
    @classmethod
    def _bounded_batch(cls, v: Any) -> Any:
        # A list of token ids is one prompt; a list of strings or of id lists is a batch.
        if isinstance(v, list) and v and not isinstance(v[0], int):
            return _check_batch(v, "prompts")
        return v

    _bounded_stop = field_validator("stop")(_check_stop)

    @model_validator(mode="after")
    def _bounded_choices(self) -> CompletionRequest:
        prompt = self.prompt
        batch = (
            len(prompt)
            if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int)
            else 1
        )
        if batch * (self.n or 1) > MAX_BATCH_INPUTS:
            raise ValueError(
                f"{batch} prompts with n={self.n} ask for {batch * (self.n or 1)} completions; "
                f"at most {MAX_BATCH_INPUTS} are made per request"
            )
        return self

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def prompts(self) -> list[str]:
        """Text prompts; token-id prompts are rejected by backends that need text."""
        if isinstance(self.prompt, str):
            return [self.prompt]
        if all(isinstance(p, str) for p in self.prompt):
            return list(self.prompt)  # type: ignore[arg-type]
        raise ValueError("token-id prompts are not supported by this backend")

    def wants_usage_chunk(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    input: str | list[str] | list[TokenId] | list[list[TokenId]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1, le=MAX_EMBEDDING_DIMENSIONS)
    user: str | None = None

    @field_validator("input")
    @classmethod
    def _not_empty(cls, v: Any) -> Any:
        if isinstance(v, list) and not v:
            raise ValueError("input must not be empty")
        if isinstance(v, list) and not isinstance(v[0], int):
            return _check_batch(v, "inputs")
        return v

    @model_validator(mode="after")
    def _bounded_answer(self) -> EmbeddingRequest:
        if self.dimensions is not None:
            count = self.input_count()
            if count * self.dimensions > MAX_EMBEDDING_VALUES:
                raise ValueError(
                    f"{count} inputs of {self.dimensions} dimensions make "
                    f"{count * self.dimensions:,} values; at most {MAX_EMBEDDING_VALUES:,} "
                    "are returned per request (send fewer inputs or fewer dimensions)"
                )
        return self

    def input_count(self) -> int:
        """How many vectors the answer holds (a list of token ids is one input)."""
        if isinstance(self.input, str) or isinstance(self.input[0], int):
            return 1
        return len(self.input)

    def texts(self) -> list[str]:
        if isinstance(self.input, str):
            return [self.input]
        if all(isinstance(x, str) for x in self.input):
            return list(self.input)  # type: ignore[arg-type]
        raise ValueError("token-id input is not supported by this backend")


# ---------------------------------------------------------------- responses


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class AssistantMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None


class ChatCompletion(BaseModel):
    id: str = Field(default_factory=lambda: new_id("chatcmpl"))
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=now_s)
    model: str
    choices: list[ChatChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class ChunkDelta(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: ChunkDelta
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None


class Completion(BaseModel):
    id: str = Field(default_factory=lambda: new_id("cmpl"))
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=now_s)
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=now_s)
    owned_by: str = "arena"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
