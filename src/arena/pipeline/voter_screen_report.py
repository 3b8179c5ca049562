"""What a voter screen did, for people and for JSON: counts per identity (session, IP),
the flags with their reasons, and the votes that leave the ratings.

Kept apart from ``arena.pipeline.voter_screen`` (which reads the store and runs the screen)
so the report's shape is read in one place.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from arena.pipeline.anomalous_voters import SCREEN_VERSION
from arena.store.pipeline_tables import VOTER_KINDS
from arena.store.voter_flags import FlaggedVoter

KIND_NAMES = {"session": "session", "ip": "IP"}


@dataclass(frozen=True)
class IdentityScreen:
    """The screen of one grouping: votes that have this identity, how many distinct ones,
    how many had enough votes to be judged, how many were flagged, and at what alpha."""

    voter_kind: str
    votes: int
    voters: int
    tested_voters: int
    flagged_voters: int
    alpha: float
    note: str = ""


@dataclass(frozen=True)
class VoterScreenReport:
    """What a screen did: how many votes and voter identities it judged (sessions and IPs
    counted apart), whom it flagged under which identity and why, and how many votes leave
    the ratings (``excluded_votes``: a vote flagged under both identities counts once)."""

    votes: int
    voters: int
    tested_voters: int
    excluded_votes: int
    flags: tuple[FlaggedVoter, ...]
    by_test: tuple[tuple[str, int], ...]
    alpha: float
    min_votes: int
    anonymous_votes: int = 0
    skipped: str | None = None
    version: str = SCREEN_VERSION
    flags_changed: bool = False
    by_kind: tuple[IdentityScreen, ...] = ()

    @property
    def flagged_voters(self) -> int:
        return len(self.flags)

    @property
    def flagged_by_kind(self) -> dict[str, int]:
        """Flags per ``voter_kind``, every kind named (0 where none)."""
        counts = Counter(f.voter_kind for f in self.flags)
        return {kind: counts.get(kind, 0) for kind in VOTER_KINDS}

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the counts, per identity too, and each flag with its reason (no
        timestamps)."""
        return {
            "votes": self.votes,
            "voters": self.voters,
            "tested_voters": self.tested_voters,
            "flagged_voters": self.flagged_voters,
            "flagged_by_kind": self.flagged_by_kind,
            "excluded_votes": self.excluded_votes,
            "anonymous_votes": self.anonymous_votes,
            "by_test": dict(self.by_test),
            "by_kind": {
                k.voter_kind: {
                    "votes": k.votes,
                    "voters": k.voters,
                    "tested_voters": k.tested_voters,
                    "flagged_voters": k.flagged_voters,
                    "alpha": k.alpha,
                    "note": k.note,
                }
                for k in self.by_kind
            },
            "alpha": self.alpha,
            "min_votes": self.min_votes,
            "skipped": self.skipped,
            "version": self.version,
            "flags_changed": self.flags_changed,
            "flags": [
                {
                    "voter_kind": f.voter_kind,
                    "voter_hash": f.voter_hash,
                    "votes": f.votes,
                    "p_value": f.p_value,
                    "reason": f.reason,
                }
                for f in self.flags
            ],
        }

    def summary(self) -> str:
        """One line for people: counts per identity, votes excluded, reasons by test."""
        if self.skipped:
            return f"voter screen skipped: {self.skipped}"
        tests = ", ".join(f"{n} {test}" for test, n in self.by_test) or "none"
        kinds = ", ".join(f"{n} by {KIND_NAMES[k]}" for k, n in self.flagged_by_kind.items())
        return (
            f"voter screen: {self.flagged_voters} of {self.tested_voters} voters with at least "
            f"{self.min_votes} votes flagged at alpha {self.alpha:g} ({kinds}; sessions and "
            f"IPs screened apart at alpha/2 each); {self.excluded_votes} of {self.votes} votes "
            f"excluded; by test: {tests}"
        )
