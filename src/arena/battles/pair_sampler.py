"""Which two models meet in an anonymous battle, and which models a user may pick by name.

Two sampling modes, chosen by ``SamplerConfig.mode``:

``weighted`` (default)
    Each eligible model has its registry ``arena.sampling_weight``. The first model is drawn
    by weight; its rival is drawn by weight among the models it may meet. A model with
    ``battle_targets`` draws its rival from those targets with probability
    ``target_boost`` (and from everyone, targets included, otherwise). A model with
    ``strict_targets`` only ever meets its targets, from either side of the draw.

``active``
    Spend votes where they shrink the leaderboard's uncertainty most, after Chiang et al.
    (2024), "Chatbot Arena", section on efficient approximate ranking. There, pair *a* is
    drawn with probability proportional to ``sqrt(Σ_a / n_a) - sqrt(Σ_a / (n_a + 1))``: the
    expected shrinkage of the pair's confidence interval from one more battle, where
    ``Σ_a`` is the asymptotic variance of the pair's estimate and ``n_a`` its battle count.
    We apply the same rule to the rating *difference* of models i and j, whose current
    variance is ``V_ij = Σ_ii + Σ_jj - 2 Σ_ij`` from the leaderboard's rating covariance.
    Treating ``V_ij`` as ``σ²_ij / n_ij`` gives the weight
    ``sqrt(V_ij) * (1 - sqrt(n_ij / (n_ij + 1)))``: pairs never played yet get their whole
    ``sqrt(V_ij)``, well-played pairs about ``sqrt(V_ij) / (2 n_ij)``. A model the
    leaderboard does not know yet counts as never played (n = 0) with the largest known
    ``V``, so new models are played in first.
    A small uniform share (``active_exploration``) keeps every allowed pair reachable.
    Sampling weights (other than 0) and target boosts are ignored in this mode; eligibility
    and strict targets still apply.

Every draw swaps left and right at random (``swap_sides``), so position says nothing.
All randomness comes from the ``numpy.random.Generator`` the caller passes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from arena.battles.battle_types import BattleMode
from arena.errors import BadRequest, ModelNotFound, NoHealthyWorker
from arena.providers.registry import ModelSpec

SamplingMode = Literal["weighted", "active"]


class NotEnoughModels(NoHealthyWorker):
    """Fewer than two models can battle right now (disabled, in outage, or filtered out)."""

    code = "not_enough_models"


@dataclass(frozen=True, slots=True)
class SamplerConfig:
    """How anonymous pairs are drawn. ``mode`` switches between weighted and active."""

    mode: SamplingMode = "weighted"
    target_boost: float = 0.5
    active_exploration: float = 0.05
    swap_sides: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("weighted", "active"):
            raise ValueError(f"mode must be 'weighted' or 'active', not {self.mode!r}")
        if not 0.0 <= self.target_boost <= 1.0:
            raise ValueError("target_boost must be within [0, 1]")
        if not 0.0 <= self.active_exploration <= 1.0:
            raise ValueError("active_exploration must be within [0, 1]")


@dataclass(frozen=True, slots=True)
class LeaderboardSnapshot:
    """What active sampling needs from the current leaderboard.

    ``covariance`` is the (k, k) covariance of the fitted ratings (any scale: only ratios
    matter), ``battle_counts`` the symmetric (k, k) matrix of battles played per pair.
    """

    models: tuple[str, ...]
    covariance: np.ndarray
    battle_counts: np.ndarray

    def __post_init__(self) -> None:
        k = len(self.models)
        if len(set(self.models)) != k:
            raise ValueError("snapshot models must be unique")
        cov = np.asarray(self.covariance, dtype=float)
        counts = np.asarray(self.battle_counts, dtype=float)
        if cov.shape != (k, k) or counts.shape != (k, k):
            raise ValueError(
                f"covariance {cov.shape} and battle_counts {counts.shape} must both be "
                f"({k}, {k}) for {k} models"
            )
        if np.any(counts < 0):
            raise ValueError("battle_counts must be non-negative")
        object.__setattr__(self, "covariance", cov)
        object.__setattr__(self, "battle_counts", counts)


@dataclass(frozen=True, slots=True)
class PairDistribution:
    """A probability for every unordered pair that may be drawn (zero-probability pairs
    are left out)."""

    pairs: tuple[tuple[str, str], ...]
    probabilities: np.ndarray

    def probability(self, a: str, b: str) -> float:
        for (x, y), p in zip(self.pairs, self.probabilities, strict=True):
            if {x, y} == {a, b}:
                return float(p)
        return 0.0

    def draw(self, rng: np.random.Generator, *, swap_sides: bool = True) -> SampledPair:
        """One pair from this distribution, on random sides unless ``swap_sides`` is off."""
        i = int(rng.choice(len(self.pairs), p=self.probabilities))
        left, right = self.pairs[i]
        if swap_sides and rng.random() < 0.5:
            left, right = right, left
        return SampledPair(left=left, right=right, pair_probability=float(self.probabilities[i]))

    def model_marginals(self) -> dict[str, float]:
        """Probability that each model takes part in the next battle."""
        out: dict[str, float] = {}
        for (a, b), p in zip(self.pairs, self.probabilities, strict=True):
            out[a] = out.get(a, 0.0) + float(p)
            out[b] = out.get(b, 0.0) + float(p)
        return out


@dataclass(frozen=True, slots=True)
class SampledPair:
    left: str
    right: str
    pair_probability: float

    @property
    def models(self) -> tuple[str, str]:
        return (self.left, self.right)


# ---- eligibility ------------------------------------------------------------------------


def selectable(
    spec: ModelSpec,
    mode: BattleMode | str,
    *,
    unavailable: Collection[str] = frozenset(),
    vision: bool = False,
) -> bool:
    """May ``spec`` appear in a chat of this mode right now?

    Disabled models never; models in outage never; ``anonymous_only`` models only in
    anonymous battles; vision chats only vision-capable models.
    """
    mode = BattleMode(mode)
    if not spec.arena.enabled or spec.name in unavailable:
        return False
    if spec.arena.anonymous_only and mode is not BattleMode.BATTLE:
        return False
    return not (vision and not spec.is_vision)


def eligible_for_battle(
    specs: Iterable[ModelSpec],
    *,
    unavailable: Collection[str] = frozenset(),
    vision: bool = False,
) -> tuple[ModelSpec, ...]:
    """Models an anonymous battle may draw: selectable and with a positive weight."""
    return tuple(
        s
        for s in specs
        if selectable(s, BattleMode.BATTLE, unavailable=unavailable, vision=vision)
        and s.arena.sampling_weight > 0
    )


def check_named_choice(
    specs: Sequence[ModelSpec],
    names: Sequence[str],
    mode: BattleMode | str,
    *,
    unavailable: Collection[str] = frozenset(),
    vision: bool = False,
) -> tuple[ModelSpec, ...]:
    """Validate the models a user picked for a named side-by-side or direct chat.

    Raises ``ModelNotFound`` for a name that does not exist or may not be shown by name
    (``anonymous_only`` models are reported as unknown so their existence is not confirmed),
    ``BadRequest`` for a wrong count, a repeated model, an outage or a non-vision model in a
    vision chat.
    """
    mode = BattleMode(mode)
    if mode is BattleMode.BATTLE:
        raise BadRequest("anonymous battles draw their models; they cannot be picked")
    want = len(mode.sides)
    if len(names) != want:
        raise BadRequest(f"pick {want} model(s) for a {mode.value} chat", param="models")
    if len(set(names)) != len(names):
        raise BadRequest("pick two different models", param="models")
    by_name = {s.name: s for s in specs}
    chosen = []
    for name in names:
        spec = by_name.get(name)
        if spec is None or not spec.arena.enabled or spec.arena.anonymous_only:
            raise ModelNotFound(f"model {name!r} does not exist", param="models")
        if name in unavailable:
            raise BadRequest(
                f"model {name!r} is unavailable right now; pick another",
                param="models",
                code="model_unavailable",
            )
        if vision and not spec.is_vision:
            raise BadRequest(
                f"model {name!r} cannot read images; pick a model marked 'vision', or send "
                "the message without the image",
                param="models",
                code="not_vision_capable",
            )
        chosen.append(spec)
    return tuple(chosen)


# ---- the allowed-pair structure -------------------------------------------------------------


def allowed_pair_mask(specs: Sequence[ModelSpec]) -> np.ndarray:
    """(k, k) boolean: may models i and j meet? Strict targets bind from either side."""
    names = [s.name for s in specs]
    k = len(names)
    mask = ~np.eye(k, dtype=bool)
    for i, spec in enumerate(specs):
        if spec.arena.strict_targets:
            targets = set(spec.arena.battle_targets)
            for j, other in enumerate(names):
                if other not in targets:
                    mask[i, j] = False
                    mask[j, i] = False
    return mask


def _to_distribution(names: Sequence[str], pair_matrix: np.ndarray) -> PairDistribution:
    iu, ju = np.triu_indices(len(names), k=1)
    probs = pair_matrix[iu, ju]
    keep = probs > 0
    total = probs[keep].sum()
    pairs = tuple((names[i], names[j]) for i, j in zip(iu[keep], ju[keep], strict=True))
    if len(pairs) == 0 or not np.isfinite(total) or total <= 0:
        raise NotEnoughModels(
            "fewer than two models can battle right now; try again later",
        )
    probabilities = probs[keep] / total
    probabilities.setflags(write=False)  # samplers share distributions between draws
    return PairDistribution(pairs=pairs, probabilities=probabilities)


def _at_least_two(specs: Sequence[ModelSpec]) -> list[str]:
    """The models' names; NotEnoughModels when fewer than two can battle."""
    if len(specs) < 2:
        raise NotEnoughModels(
            f"fewer than two models can battle right now ({len(specs)} eligible); try again later"
        )
    return [s.name for s in specs]


def weighted_pair_distribution(
    specs: Sequence[ModelSpec], *, target_boost: float = 0.5
) -> PairDistribution:
    """The exact pair probabilities of the weighted two-step draw (see module docstring)."""
    names = _at_least_two(specs)
    k = len(names)
    w = np.array([s.arena.sampling_weight for s in specs], dtype=float)
    allowed = allowed_pair_mask(specs)
    index = {n: i for i, n in enumerate(names)}

    # Conditional rival distribution for each possible first model.
    cond = np.zeros((k, k))
    for i, spec in enumerate(specs):
        rivals = allowed[i] & (w > 0)
        if not rivals.any():
            continue
        base = np.where(rivals, w, 0.0)
        base /= base.sum()
        targets = np.zeros(k, dtype=bool)
        for t in spec.arena.battle_targets:
            j = index.get(t)
            if j is not None:
                targets[j] = True
        targets &= rivals
        if spec.arena.strict_targets or not targets.any():
            cond[i] = base
        else:
            boosted = np.where(targets, w, 0.0)
            boosted /= boosted.sum()
            cond[i] = target_boost * boosted + (1.0 - target_boost) * base

    first = np.where(cond.sum(axis=1) > 0, w, 0.0)
    if first.sum() <= 0:
        raise NotEnoughModels("no two eligible models are allowed to meet; try again later")
    first /= first.sum()
    ordered = first[:, None] * cond
    return _to_distribution(names, ordered + ordered.T)


def active_pair_distribution(
    specs: Sequence[ModelSpec],
    snapshot: LeaderboardSnapshot,
    *,
    exploration: float = 0.05,
) -> PairDistribution:
    """Pair probabilities that favour the largest expected CI shrinkage (module docstring)."""
    names = _at_least_two(specs)
    k = len(names)
    allowed = allowed_pair_mask(specs)
    pos = {n: i for i, n in enumerate(snapshot.models)}
    idx = np.array([pos.get(n, -1) for n in names])
    known = idx >= 0
    cov, counts = snapshot.covariance, snapshot.battle_counts

    gain = np.full((k, k), np.nan)
    diff_var = np.full((k, k), np.nan)
    ki = np.flatnonzero(known)
    if ki.size:
        sub = idx[ki]
        var_i = np.diag(cov)[sub]
        v = np.clip(var_i[:, None] + var_i[None, :] - 2.0 * cov[np.ix_(sub, sub)], 0.0, None)
        n = counts[np.ix_(sub, sub)]
        with np.errstate(invalid="ignore"):
            g = np.sqrt(v) * (1.0 - np.sqrt(n / (n + 1.0)))
        gain[np.ix_(ki, ki)] = g
        diff_var[np.ix_(ki, ki)] = v
    # A pair with an unknown model (or an undefined variance) has never been played and is
    # at least as uncertain as the most uncertain known difference: n = 0, V = max V.
    finite_var = np.isfinite(diff_var) & allowed
    top_var = diff_var[finite_var].max() if finite_var.any() else 0.0
    fill = np.sqrt(top_var) if top_var > 0 else 1.0
    gain = np.where(np.isfinite(gain), gain, fill)
    gain = np.where(allowed, gain, 0.0)
    np.fill_diagonal(gain, 0.0)

    uniform = allowed.astype(float)
    total_gain = gain[np.triu_indices(k, 1)].sum()
    total_uniform = uniform[np.triu_indices(k, 1)].sum()
    if total_uniform == 0:
        raise NotEnoughModels("no two eligible models are allowed to meet; try again later")
    if total_gain > 0:
        mixed = (1.0 - exploration) * gain / total_gain + exploration * uniform / total_uniform
    else:
        mixed = uniform / total_uniform
    return _to_distribution(names, mixed)


# ---- the sampler ------------------------------------------------------------------------


class PairSampler:
    """Draws anonymous battle pairs from registry specs under a ``SamplerConfig``.

    Stateless apart from its inputs: pass the current outage set, whether the chat has
    images, a ``LeaderboardSnapshot`` for active mode, and a ``numpy.random.Generator``.
    """

    def __init__(self, specs: Sequence[ModelSpec], config: SamplerConfig | None = None):
        self.specs = tuple(specs)
        self.config = config or SamplerConfig()
        # Weighted distributions depend only on (outages, vision): computed once per case.
        self._weighted: dict[tuple[frozenset[str], bool], PairDistribution] = {}

    def distribution(
        self,
        *,
        unavailable: Collection[str] = frozenset(),
        vision: bool = False,
        snapshot: LeaderboardSnapshot | None = None,
    ) -> PairDistribution:
        """Pair probabilities for the next draw (useful for admin pages and tests).

        Active mode needs the current leaderboard's ``snapshot``; until a leaderboard
        exists (``None``) it draws like weighted mode."""
        if self.config.mode != "active" or snapshot is None:
            key = (frozenset(unavailable), vision)
            cached = self._weighted.get(key)
            if cached is None:
                cached = self._weighted[key] = self._distribution(key[0], vision, None)
            return cached
        return self._distribution(unavailable, vision, snapshot)

    def _distribution(
        self, unavailable: Collection[str], vision: bool, snapshot: LeaderboardSnapshot | None
    ) -> PairDistribution:
        candidates = eligible_for_battle(self.specs, unavailable=unavailable, vision=vision)
        if vision and len(candidates) < 2:
            seers = len(eligible_for_battle(self.specs, vision=True))
            if seers < 2:  # not an outage: waiting will not help
                raise BadRequest(
                    f"These models cannot read images: a battle with an image needs two "
                    f"models that can, and this arena has {seers}. Send your message without "
                    "the image, or ask whoever runs this arena to add vision models.",
                    param="vision",
                    code="images_not_supported",
                )
        if len(candidates) < 2:
            what = "vision-capable models" if vision else "models"
            raise NotEnoughModels(
                f"fewer than two {what} can battle right now ({len(candidates)} eligible); "
                "try again later"
            )
        if self.config.mode == "active" and snapshot is not None:
            return active_pair_distribution(
                candidates, snapshot, exploration=self.config.active_exploration
            )
        return weighted_pair_distribution(candidates, target_boost=self.config.target_boost)

    def sample(
        self,
        rng: np.random.Generator,
        *,
        unavailable: Collection[str] = frozenset(),
        vision: bool = False,
        snapshot: LeaderboardSnapshot | None = None,
    ) -> SampledPair:
        """Draw one pair and put it on random sides."""
        dist = self.distribution(unavailable=unavailable, vision=vision, snapshot=snapshot)
        return dist.draw(rng, swap_sides=self.config.swap_sides)
