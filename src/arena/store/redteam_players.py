"""Red-team players: a keyed hash of their session and an optional nickname.

There are no accounts. A player is whoever holds a session; the store keeps an HMAC of the
session id under the server secret (``player_id_for``), so a nickname on a public board
never leads back to a session cookie. Nicknames are unique regardless of case and of
look-alike letters, so nobody can pass for a player already on the board.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from arena.errors import Conflict
from arena.store.db import Database
from arena.store.models import utcnow
from arena.store.redteam_tables import RedTeamPlayer

PLAYERS = RedTeamPlayer.__table__


def player_id_for(secret: bytes, session_id: str) -> str:
    """The player behind a session, as stored: a keyed hash, never the session id itself."""
    return hmac.new(secret, b"redteam-player:" + session_id.encode(), hashlib.sha256).hexdigest()


def nickname_key(nickname: str) -> str:
    """What two nicknames share when they look alike: case, compatibility forms and other
    scripts' look-alike letters folded (Cyrillic "е" reads as "e", "0" as "o"), hashed to fit
    the column whatever the folding expands to."""
    from arena.redteam.homoglyphs import fold_phrase_text

    folded = fold_phrase_text(nickname, casefold=True).casefold()
    return hashlib.sha256(" ".join(folded.split()).encode()).hexdigest()


def get_nickname(db: Database, player_id: str) -> str | None:
    with db.session(read_only=True) as session:
        row = (
            session.connection()
            .execute(select(PLAYERS.c.nickname).where(PLAYERS.c.player_id == player_id))
            .first()
        )
    return row[0] if row else None


def set_nickname(db: Database, player_id: str, nickname: str | None) -> None:
    """Take (or drop, with None) a nickname. ``Conflict`` when another player holds it."""
    now = utcnow()
    key = nickname_key(nickname) if nickname else None
    try:
        with db.session() as session:
            conn = session.connection()
            found = conn.execute(
                select(PLAYERS.c.player_id).where(PLAYERS.c.player_id == player_id)
            ).first()
            values = {"nickname": nickname, "nickname_key": key, "updated_at": now}
            if found is None:
                conn.execute(insert(PLAYERS).values(player_id=player_id, created_at=now, **values))
            else:
                conn.execute(
                    update(PLAYERS).where(PLAYERS.c.player_id == player_id).values(**values)
                )
    except IntegrityError:
        raise Conflict(
            "That nickname is taken; pick another.", param="nickname", code="nickname_taken"
        ) from None


def nicknames(db: Database, player_ids: Sequence[str]) -> dict[str, str]:
    if not player_ids:
        return {}
    with db.session(read_only=True) as session:
        rows = session.connection().execute(
            select(PLAYERS.c.player_id, PLAYERS.c.nickname).where(
                PLAYERS.c.player_id.in_(list(player_ids)), PLAYERS.c.nickname.is_not(None)
            )
        )
        return {r.player_id: r.nickname for r in rows}
