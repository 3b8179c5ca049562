"""Typed errors, each knowing its HTTP status and its OpenAI-shaped JSON body.

Code raises these anywhere below the web layer; the apps map them to responses once.
"""

from __future__ import annotations

from typing import Any


class ArenaError(Exception):
    """Base error: carries the HTTP status and the OpenAI ``error.type``/``code`` fields."""

    status_code: int = 500
    error_type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def to_body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class BadRequest(ArenaError):
    status_code = 400
    error_type = "invalid_request_error"


class ContextLengthExceeded(BadRequest):
    code = "context_length_exceeded"


class Unauthorized(ArenaError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(ArenaError):
    status_code = 403
    error_type = "permission_error"


class NotFound(ArenaError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class Conflict(ArenaError):
    status_code = 409
    error_type = "invalid_request_error"
    code = "conflict"


class PayloadTooLarge(ArenaError):
    status_code = 413
    error_type = "invalid_request_error"
    code = "request_too_large"


class UnsupportedMediaType(ArenaError):
    status_code = 415
    error_type = "invalid_request_error"
    code = "unsupported_media_type"


class RateLimited(ArenaError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after_s: float, **kwargs: Any) -> None:
        headers = {"Retry-After": str(max(1, int(retry_after_s + 0.999)))}
        super().__init__(message, headers=headers, **kwargs)
        self.retry_after_s = retry_after_s


class UpstreamError(ArenaError):
    """The model backend answered with an error or broke the stream."""

    status_code = 502
    error_type = "upstream_error"
    code = "upstream_error"


class NoHealthyWorker(ArenaError):
    status_code = 503
    error_type = "service_unavailable"
    code = "no_healthy_worker"


class UpstreamTimeout(ArenaError):
    status_code = 504
    error_type = "timeout"
    code = "upstream_timeout"


class NotSupported(BadRequest):
    """The backend cannot do this (e.g. embeddings from a chat-only API)."""

    code = "unsupported"
