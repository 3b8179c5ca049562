"""The anonymous browser session and its CSRF token.

A visitor's session id (a random token the store created) travels in a signed, HttpOnly,
SameSite=Lax cookie together with when the session began and when it was last seen, so
expiry (``arena.battles.limits.session_expired``) needs no database read. Every
state-changing request must echo a CSRF token twice (the ``arena_csrf`` cookie and the
``X-CSRF-Token`` header — the double submit), and the token must be the HMAC of that
session id, so a token lifted from one session is useless in another.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from arena.battles.limits import ArenaLimits, check_session, session_expired
from arena.errors import Forbidden

SESSION_COOKIE = "arena_session"
CSRF_COOKIE = "arena_csrf"
CSRF_HEADER = "x-csrf-token"
_MAC_HEX = 32


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True, slots=True)
class WebSession:
    id: str
    issued_at: float
    last_seen_at: float
    csrf_token: str


class SessionManager:
    """Signs, reads and checks session cookies; holds no per-session state itself."""

    def __init__(self, secret: bytes, limits: ArenaLimits, *, secure_cookies: bool = False):
        self._secret = secret
        self.limits = limits
        self.secure_cookies = secure_cookies

    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self._secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def csrf_token_for(self, session_id: str) -> str:
        return self._mac("csrf", session_id)

    def session_for(self, session_id: str, issued_at: float) -> WebSession:
        return WebSession(session_id, issued_at, issued_at, self.csrf_token_for(session_id))

    def _cookie_value(self, session: WebSession) -> str:
        body = f"{session.id}.{int(session.issued_at)}.{int(session.last_seen_at)}"
        return f"{body}.{self._mac('session', body)[:_MAC_HEX]}"

    def _parse(self, request: Request) -> WebSession | None:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw or raw.count(".") != 3:
            return None
        sid, issued_s, seen_s, mac = raw.split(".")
        expected = self._mac("session", f"{sid}.{issued_s}.{seen_s}")[:_MAC_HEX]
        if not hmac.compare_digest(mac, expected) or not (issued_s.isdigit() and seen_s.isdigit()):
            return None
        return WebSession(sid, float(issued_s), float(seen_s), self.csrf_token_for(sid))

    def expired(self, session: WebSession, *, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return session_expired(
            _dt(session.issued_at), _dt(session.last_seen_at), _dt(now), self.limits
        )

    def read(self, request: Request) -> WebSession | None:
        """The request's valid, unexpired session, or None."""
        session = self._parse(request)
        if session is None or self.expired(session):
            return None
        return session

    def touch(self, session: WebSession) -> WebSession:
        return replace(session, last_seen_at=float(int(time.time())))

    def set_cookies(self, response: Response, session: WebSession) -> None:
        # The cookie outlives the session by an hour so that a late request is told its
        # session expired (and to reload) instead of failing an anonymous CSRF check.
        max_age = max(1, int(session.issued_at + self.limits.session_ttl_s - time.time())) + 3600
        for name, value, http_only in (
            (SESSION_COOKIE, self._cookie_value(session), True),
            # Readable by the page's script: it is the second half of the double submit.
            (CSRF_COOKIE, session.csrf_token, False),
        ):
            response.set_cookie(
                name,
                value,
                max_age=max_age,
                httponly=http_only,
                samesite="lax",
                secure=self.secure_cookies,
                path="/",
            )

    def require(self, request: Request) -> WebSession:
        """The session of a state-changing request, after the CSRF check.

        403 without a valid session cookie or with a missing or wrong token; 400 when the
        session has expired (the page must be reloaded for a new one).
        """
        session = self._parse(request)
        if session is None:
            raise Forbidden(
                "No valid session: reload the page (or GET /api/session) to start one.",
                code="csrf_failed",
            )
        header = request.headers.get(CSRF_HEADER, "")
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if not header or not cookie:
            raise Forbidden(
                "Missing CSRF token: send the X-CSRF-Token header along with the arena_csrf "
                "cookie.",
                code="csrf_failed",
            )
        if not (
            hmac.compare_digest(header, cookie) and hmac.compare_digest(header, session.csrf_token)
        ):
            raise Forbidden("CSRF token mismatch: reload the page and retry.", code="csrf_failed")
        check_session(
            _dt(session.issued_at), _dt(session.last_seen_at), _dt(time.time()), self.limits
        )
        return session
