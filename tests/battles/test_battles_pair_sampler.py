"""Pair sampling: weights, outages, flags, targets, vision, sides, errors, active mode."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from arena.battles.pair_sampler import (
    LeaderboardSnapshot,
    NotEnoughModels,
    PairSampler,
    SamplerConfig,
    active_pair_distribution,
    check_named_choice,
    weighted_pair_distribution,
)
from arena.errors import BadRequest, ModelNotFound
from arena.providers.registry import ModelSpec


def spec(name: str, **arena) -> ModelSpec:
    caps = arena.pop("capabilities", ["text"])
    return ModelSpec(name=name, provider="demo", capabilities=caps, arena=arena)


def draw(sampler: PairSampler, n: int, seed: int = 0, **kw) -> Counter:
    """Unordered pairs from ``n`` draws (through ``sample`` for a few, then in bulk)."""
    rng = np.random.default_rng(seed)
    counts = Counter(frozenset(sampler.sample(rng, **kw).models) for _ in range(min(n, 50)))
    dist = sampler.distribution(**kw)
    counts.update(frozenset(dist.draw(rng).models) for _ in range(n - min(n, 50)))
    return counts


def test_equal_weights_give_every_pair_the_same_probability():
    specs = [spec(f"m{i}") for i in range(5)]
    dist = PairSampler(specs).distribution()
    assert len(dist.pairs) == 10
    np.testing.assert_allclose(dist.probabilities, 0.1)
    counts = draw(PairSampler(specs), 5000)
    assert set(counts) == {frozenset(p) for p in itertools.combinations([s.name for s in specs], 2)}
    assert all(abs(c / 5000 - 0.1) < 0.025 for c in counts.values())


def test_weights_follow_the_two_step_draw_exactly():
    specs = [spec("a", sampling_weight=3.0), spec("b"), spec("c")]
    dist = weighted_pair_distribution(specs)
    # P(a,b) = P(a first)P(b|a) + P(b first)P(a|b) = 3/5*1/2 + 1/5*3/4
    assert dist.probability("a", "b") == pytest.approx(3 / 5 * 1 / 2 + 1 / 5 * 3 / 4)
    assert dist.probability("b", "c") == pytest.approx(2 * (1 / 5 * 1 / 4))
    assert dist.probabilities.sum() == pytest.approx(1.0)
    counts = draw(PairSampler(specs), 8000, seed=1)
    for pair, p in zip(dist.pairs, dist.probabilities, strict=True):
        assert abs(counts[frozenset(pair)] / 8000 - p) < 0.02
    assert dist.model_marginals()["a"] > dist.model_marginals()["b"]


def test_outages_disabled_and_zero_weight_models_are_never_drawn():
    specs = [
        spec("up1"),
        spec("up2"),
        spec("up3"),
        spec("down"),
        spec("off", enabled=False),
        spec("zero", sampling_weight=0.0),
    ]
    counts = draw(PairSampler(specs), 2000, unavailable={"down"})
    seen = set().union(*counts)
    assert seen == {"up1", "up2", "up3"}


def test_anonymous_only_models_battle_but_cannot_be_picked_by_name():
    specs = [spec("public"), spec("secret", anonymous_only=True), spec("other")]
    seen = set().union(*draw(PairSampler(specs), 500))
    assert "secret" in seen
    with pytest.raises(ModelNotFound):
        check_named_choice(specs, ["public", "secret"], "side_by_side")
    with pytest.raises(ModelNotFound):
        check_named_choice(specs, ["secret"], "direct")
    assert [s.name for s in check_named_choice(specs, ["other", "public"], "side_by_side")] == [
        "other",
        "public",
    ]


def test_named_choice_errors_are_clear():
    specs = [spec("a"), spec("b"), spec("v", capabilities=["text", "vision"])]
    with pytest.raises(BadRequest, match="pick 2"):
        check_named_choice(specs, ["a"], "side_by_side")
    with pytest.raises(BadRequest, match="different"):
        check_named_choice(specs, ["a", "a"], "side_by_side")
    with pytest.raises(ModelNotFound):
        check_named_choice(specs, ["nope"], "direct")
    with pytest.raises(BadRequest, match="unavailable") as e:
        check_named_choice(specs, ["a"], "direct", unavailable={"a"})
    assert e.value.code == "model_unavailable"
    with pytest.raises(BadRequest, match="cannot read images"):
        check_named_choice(specs, ["a", "v"], "side_by_side", vision=True)
    with pytest.raises(BadRequest):
        check_named_choice(specs, ["a", "b"], "battle")


def test_vision_battles_use_only_vision_models():
    specs = [
        spec("t1"),
        spec("t2"),
        spec("v1", capabilities=["text", "vision"]),
        spec("v2", capabilities=["vision"]),
        spec("v3", capabilities=["text", "vision"]),
    ]
    seen = set().union(*draw(PairSampler(specs), 500, vision=True))
    assert seen == {"v1", "v2", "v3"}
    with pytest.raises(NotEnoughModels, match="vision"):
        PairSampler(specs).sample(np.random.default_rng(0), vision=True, unavailable={"v1", "v2"})


def test_fewer_than_two_models_is_a_typed_503():
    specs = [spec("a"), spec("b")]
    with pytest.raises(NotEnoughModels) as e:
        PairSampler(specs).sample(np.random.default_rng(0), unavailable={"b"})
    assert e.value.status_code == 503
    assert e.value.code == "not_enough_models"
    assert "fewer than two" in e.value.message
    with pytest.raises(NotEnoughModels):
        PairSampler([]).distribution()


def test_battle_targets_are_boosted():
    specs = [spec("new", battle_targets=["champ"]), spec("champ"), spec("x"), spec("y")]
    plain = weighted_pair_distribution(specs, target_boost=0.0)
    boosted = weighted_pair_distribution(specs, target_boost=0.8)
    assert plain.probability("new", "champ") == pytest.approx(1 / 6)
    # new first (1/4): champ with 0.8 + 0.2/3; champ first (1/4): new with 1/3.
    expected = 0.25 * (0.8 + 0.2 / 3) + 0.25 / 3
    assert boosted.probability("new", "champ") == pytest.approx(expected)
    counts = draw(PairSampler(specs, SamplerConfig(target_boost=0.8)), 6000, seed=3)
    assert abs(counts[frozenset({"new", "champ"})] / 6000 - expected) < 0.02


def test_strict_targets_only_ever_meet_their_targets():
    specs = [
        spec("strict", strict_targets=True, battle_targets=["t1", "t2", "missing"]),
        spec("t1"),
        spec("t2"),
        spec("other1"),
        spec("other2"),
    ]
    counts = draw(PairSampler(specs), 4000, seed=2)
    for pair in counts:
        if "strict" in pair:
            assert pair & {"t1", "t2"}
    assert any("strict" in p for p in counts)
    # Its targets in outage: it sits out, everyone else still battles.
    counts = draw(PairSampler(specs), 500, unavailable={"t1", "t2"})
    assert "strict" not in set().union(*counts)
    # Only it and a non-target left: nobody can battle.
    with pytest.raises(NotEnoughModels):
        PairSampler(specs).distribution(unavailable={"t1", "t2", "other2"})


def test_sides_are_swapped_at_random_and_draws_are_reproducible():
    specs = [spec("a"), spec("b")]
    rng = np.random.default_rng(7)
    lefts = Counter(PairSampler(specs).sample(rng).left for _ in range(2000))
    assert abs(lefts["a"] / 2000 - 0.5) < 0.05
    fixed = PairSampler(specs, SamplerConfig(swap_sides=False))
    assert {fixed.sample(np.random.default_rng(s)).left for s in range(20)} == {"a"}
    one = [PairSampler(specs).sample(np.random.default_rng(11)).models for _ in range(3)]
    assert len(set(one)) == 1


def test_config_is_validated():
    with pytest.raises(ValueError):
        SamplerConfig(mode="greedy")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SamplerConfig(target_boost=1.5)
    with pytest.raises(ValueError):
        SamplerConfig(active_exploration=-0.1)


# ---- active mode ----------------------------------------------------------------------------


def snapshot(models, variances, counts, corr=0.0):
    k = len(models)
    sd = np.sqrt(np.asarray(variances, dtype=float))
    cov = np.outer(sd, sd) * corr
    np.fill_diagonal(cov, sd**2)
    return LeaderboardSnapshot(tuple(models), cov, np.asarray(counts, dtype=float).reshape(k, k))


def test_active_weights_follow_the_paper_rule():
    specs = [spec("a"), spec("b"), spec("c")]
    counts = [[0, 100, 10], [100, 0, 10], [10, 10, 0]]
    snap = snapshot(["a", "b", "c"], [100.0, 100.0, 400.0], counts)
    dist = active_pair_distribution(specs, snap, exploration=0.0)

    def gain(v, n):
        return np.sqrt(v) * (1 - np.sqrt(n / (n + 1)))

    g = {("a", "b"): gain(200, 100), ("a", "c"): gain(500, 10), ("b", "c"): gain(500, 10)}
    total = sum(g.values())
    for pair, value in g.items():
        assert dist.probability(*pair) == pytest.approx(value / total)
    assert dist.probability("a", "c") > 5 * dist.probability("a", "b")


def test_active_mode_plays_newcomers_and_respects_eligibility():
    specs = [
        spec("a"),
        spec("b"),
        spec("c"),
        spec("fresh"),
        spec("strict", strict_targets=True, battle_targets=["a"]),
    ]
    snap = snapshot(
        ["a", "b", "c"], [50.0, 50.0, 50.0], [[0, 500, 500], [500, 0, 500], [500, 500, 0]]
    )
    sampler = PairSampler(specs, SamplerConfig(mode="active", active_exploration=0.05))
    dist = sampler.distribution(snapshot=snap)
    marg = dist.model_marginals()
    assert marg["fresh"] > marg["b"] > 0
    assert dist.probability("strict", "b") == 0.0
    assert dist.probability("strict", "a") > 0.0
    seen = set().union(*draw(sampler, 300, snapshot=snap, unavailable={"fresh"}))
    assert "fresh" not in seen
    # Before any leaderboard exists there is no snapshot: draws are weighted meanwhile.
    weighted = PairSampler(specs).distribution()
    fallback = sampler.distribution()
    assert fallback.pairs == weighted.pairs
    assert np.allclose(fallback.probabilities, weighted.probabilities)


def test_snapshot_shapes_are_checked():
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        LeaderboardSnapshot(("a", "b"), np.eye(3), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="non-negative"):
        LeaderboardSnapshot(("a", "b"), np.eye(2), -np.ones((2, 2)))
    with pytest.raises(ValueError, match="unique"):
        LeaderboardSnapshot(("a", "a"), np.eye(2), np.zeros((2, 2)))
