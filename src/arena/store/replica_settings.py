"""Settings every replica on one database must share, checked when a replica starts.

The first replica records a fingerprint of its secret key (an HMAC of a fixed label keyed
by the secret: the key itself never reaches the database); each later one computes its own
and refuses to start on a mismatch. Replicas with different secrets would reject each
other's session cookies and hash the same visitor's address differently, so a visitor
behind a load balancer would lose their battles and slip past per-address limits.
"""

from __future__ import annotations

import hashlib
import hmac

from arena.store.db import Database
from arena.store.models import ReplicaSetting, utcnow

SECRET_FINGERPRINT = "secret_key_fingerprint"
FINGERPRINT_LABEL = b"arena replica secret-key fingerprint v1"
FROM_ENVIRONMENT = "set by ARENA_SECRET_KEY"
GENERATED = "generated in a data dir"
RESET_HINT = (
    "to change the key on purpose, stop every replica, delete the row "
    f"name='{SECRET_FINGERPRINT}' from the replica_settings table, and start them all "
    "with the new key"
)


class ReplicaMismatch(RuntimeError):
    """This replica's settings differ from the ones the database was set up with."""


def secret_fingerprint(secret: bytes) -> str:
    return hmac.new(secret, FINGERPRINT_LABEL, hashlib.sha256).hexdigest()


def check_secret_fingerprint(db: Database, secret: bytes, *, from_environment: bool) -> None:
    """Record the secret's fingerprint the first time; raise ``ReplicaMismatch`` when the
    database already holds a different one."""
    values = {
        "name": SECRET_FINGERPRINT,
        "value": secret_fingerprint(secret),
        "origin": FROM_ENVIRONMENT if from_environment else GENERATED,
        "created_at": utcnow(),
    }
    statement = db.conflict_insert(ReplicaSetting).values(**values).on_conflict_do_nothing()
    with db.session() as session:
        session.execute(statement)
        row = session.get(ReplicaSetting, SECRET_FINGERPRINT)
        assert row is not None
        stored, origin = row.value, row.origin
    if hmac.compare_digest(stored, values["value"]):
        return
    if from_environment:
        raise ReplicaMismatch(
            "this replica's ARENA_SECRET_KEY differs from the one the database was set up "
            f"with; every replica must share it: set the same ARENA_SECRET_KEY on every "
            f"replica (the database's key was {origin}; {RESET_HINT})."
        )
    raise ReplicaMismatch(
        "this replica has no ARENA_SECRET_KEY, and the key it generated in its data dir "
        f"differs from the one the database was set up with (that key was {origin}); every "
        "replica must share it: set the same ARENA_SECRET_KEY on every replica "
        f"({RESET_HINT})."
    )
