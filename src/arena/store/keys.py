"""API keys: created once (plaintext shown a single time), stored only as a SHA-256 hash.

Keys are 256-bit random tokens, so a fast unsalted hash is enough: there is nothing to
brute-force, and lookups stay a single indexed equality query.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select

from arena.errors import BadRequest
from arena.store.db import Database
from arena.store.models import ApiKey, check_fits, utcnow

KEY_PREFIX = "sk-arena-"
_PREFIX_RANDOM_CHARS = 8


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    rpm_limit: int | None
    tpm_limit: int | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_api_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def _info(row: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        rpm_limit=row.rpm_limit,
        tpm_limit=row.tpm_limit,
    )


def _check_limit(name: str, value: int | None) -> None:
    if value is not None and value <= 0:
        raise BadRequest(f"{name} must be a positive integer or None, got {value}", param=name)


def create_api_key(
    db: Database, name: str, *, rpm_limit: int | None = None, tpm_limit: int | None = None
) -> tuple[str, ApiKeyInfo]:
    """Create a key; returns the plaintext (show it once, it is not stored) and its info."""
    if not name.strip():
        raise BadRequest("an API key needs a non-empty name", param="name")
    check_fits(name.strip(), ApiKey.name, param="name")
    _check_limit("rpm_limit", rpm_limit)
    _check_limit("tpm_limit", tpm_limit)
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        name=name.strip(),
        key_hash=hash_api_key(plaintext),
        prefix=plaintext[: len(KEY_PREFIX) + _PREFIX_RANDOM_CHARS],
        rpm_limit=rpm_limit,
        tpm_limit=tpm_limit,
        created_at=utcnow(),
    )
    with db.session() as session:
        session.add(row)
        session.flush()
        info = _info(row)
    return plaintext, info


def revoke_api_key(db: Database, key_id_or_prefix: int | str) -> bool:
    """Revoke by numeric id, by displayed prefix, or by the full plaintext key.

    Returns False when nothing active matched. A prefix shared by several active keys is
    refused (BadRequest) rather than revoking more than was meant.
    """
    text = str(key_id_or_prefix).strip()
    with db.session() as session:
        query = select(ApiKey).where(ApiKey.revoked_at.is_(None))
        if text.isdigit():
            query = query.where(ApiKey.id == int(text))
        else:
            query = query.where(or_(ApiKey.prefix == text, ApiKey.key_hash == hash_api_key(text)))
        rows = session.scalars(query).all()
        if len(rows) > 1:
            raise BadRequest(f"prefix {text!r} matches {len(rows)} keys; revoke by id")
        if not rows:
            return False
        rows[0].revoked_at = utcnow()
        return True


def list_api_keys(db: Database) -> list[ApiKeyInfo]:
    with db.session(read_only=True) as session:
        return [_info(row) for row in session.scalars(select(ApiKey).order_by(ApiKey.id))]


def lookup_api_key(db: Database, plaintext: str) -> ApiKeyInfo | None:
    """The active key with this plaintext, or None (unknown or revoked)."""
    if not plaintext:
        return None
    with db.session(read_only=True) as session:
        row = session.scalars(
            select(ApiKey).where(
                ApiKey.key_hash == hash_api_key(plaintext), ApiKey.revoked_at.is_(None)
            )
        ).first()
        return None if row is None else _info(row)


def count_active_keys(db: Database) -> int:
    with db.session(read_only=True) as session:
        return (
            session.scalar(
                select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))
            )
            or 0
        )
