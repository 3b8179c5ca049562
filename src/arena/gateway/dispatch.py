"""Dispatch policies: in which order to try the workers that serve one model.

Pure functions over small candidate records, so they are easy to reason about and test.
Every policy returns the full ordering (not just a winner) because the gateway falls back
to the next worker when one fails before its first token.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

POLICIES = ("shortest_queue", "weighted_random")


@dataclass(frozen=True, slots=True)
class Candidate:
    key: str
    queue_length: int
    in_flight: int
    weight: float

    @property
    def load(self) -> int:
        # The heartbeat's queue length is global but stale; the gateway's own in-flight
        # count is fresh but local. The larger of the two is the better guess.
        return max(self.queue_length, self.in_flight)


def shortest_queue(candidates: Sequence[Candidate], rng: random.Random) -> list[Candidate]:
    """Least loaded first; ties broken at random so equal workers share the load."""
    return sorted(candidates, key=lambda c: (c.load, rng.random()))


def weighted_random(candidates: Sequence[Candidate], rng: random.Random) -> list[Candidate]:
    """A weighted random order (sampling without replacement, Efraimidis–Spirakis keys)."""
    positive = [c for c in candidates if c.weight > 0]
    zero = [c for c in candidates if c.weight <= 0]
    keyed = sorted(positive, key=lambda c: rng.random() ** (1.0 / c.weight), reverse=True)
    return keyed + zero


def order(policy: str, candidates: Sequence[Candidate], rng: random.Random) -> list[Candidate]:
    if policy == "weighted_random":
        return weighted_random(candidates, rng)
    if policy == "shortest_queue":
        return shortest_queue(candidates, rng)
    raise ValueError(f"unknown dispatch policy {policy!r}; expected one of {POLICIES}")
