"""Routers on synthetic data where the topic decides the winner: each trained router must
beat ``random`` on held-out prompts; similarity-weighted ranking is the rating engine's fit;
several models route to the cheapest adequate one."""

from __future__ import annotations

import numpy as np
import pytest

from arena.ratings.battles import Battles
from arena.ratings.bradley_terry import fit_bradley_terry, sigmoid
from arena.routing.cascade import choose_models
from arena.routing.data import PreferenceData
from arena.routing.errors import RoutingError
from arena.routing.evaluation import apgr, routing_curve
from arena.routing.router import RandomRouter
from arena.routing.training import train_router

from .conftest import MID, STRONG, WEAK, make_prompts, pair_battles, pair_table


@pytest.mark.parametrize("kind", ["sw-ranking", "mf", "classifier"])
def test_trained_router_beats_random_on_held_out_prompts(kind):
    train = pair_battles(400, seed=1)
    held = pair_table(200, seed=2)  # other prompts (different seed and ids)
    assert not set(train.prompts) & set(held.prompts)
    router = train_router(kind, train, strong=STRONG, weak=WEAK)
    rate = router.strong_win_rate(list(held.prompts))
    trained = apgr(routing_curve(rate, held.strong_quality, held.weak_quality))
    baseline = RandomRouter(strong=STRONG, weak=WEAK).strong_win_rate(list(held.prompts))
    rand = apgr(routing_curve(baseline, held.strong_quality, held.weak_quality))
    # The optimum here is 0.75 (half the prompts need the strong model); random ≈ 0.5.
    assert trained > 0.7
    assert trained > rand + 0.15
    needs_strong = held.weak_quality == 0
    assert rate[needs_strong].mean() > rate[~needs_strong].mean()


def test_routes_follow_the_threshold():
    router = train_router("classifier", pair_battles(300, seed=3), strong=STRONG, weak=WEAK)
    prompts, topics = make_prompts(40, ["math", "chat"], seed=9)
    routes = router.route(prompts, threshold=0.5)
    assert {r for r, t in zip(routes, topics, strict=True) if t == "math"} == {STRONG}
    assert {r for r, t in zip(routes, topics, strict=True) if t == "chat"} == {WEAK}
    assert router.route(prompts, threshold=1.01) == [WEAK] * 40
    assert router.route(prompts, threshold=0.0) == [STRONG] * 40


def test_similarity_router_is_the_rating_engines_weighted_fit():
    data = pair_battles(120, seed=4)
    flat = train_router("sw-ranking", data, strong=STRONG, weak=WEAK, sharpness=0.0)
    fit = fit_bradley_terry(
        Battles.from_columns(data.model_a.tolist(), data.model_b.tolist(), data.winner.tolist())
    )
    i, j = fit.models.index(STRONG), fit.models.index(WEAK)
    expected = sigmoid(fit.theta[i] - fit.theta[j])
    got = flat.strong_win_rate(["integral hello", "movie recipe"])
    np.testing.assert_allclose(got, expected, atol=1e-9)
    sharp = train_router("sw-ranking", data, strong=STRONG, weak=WEAK, sharpness=10.0)
    math_rate, chat_rate = sharp.strong_win_rate(
        ["integral derivative theorem", "hello weather movie recipe vacation"]
    )
    assert math_rate > 0.7
    assert chat_rate < 0.45


def test_default_pair_is_best_and_worst_rated():
    router = train_router("mf", pair_battles(200, seed=5))
    assert (router.strong, router.weak) == (STRONG, WEAK)


def test_classifier_needs_battles_of_its_pair():
    data = pair_battles(50, seed=6)
    with pytest.raises(RoutingError, match="not in the training battles"):
        train_router("classifier", data, strong=STRONG, weak="nobody")
    router = train_router("classifier", data, strong=STRONG, weak=WEAK)
    with pytest.raises(RoutingError, match="only knows"):
        router.win_probability(["x"], STRONG, "other")


def _three_model_battles(n: int, seed: int) -> PreferenceData:
    """small ties big on chat and loses on math and code; mid ties big on chat and code."""
    prompts, topics = make_prompts(n, ["math", "chat", "code"], seed)
    rng = np.random.default_rng(seed)
    rows = []
    for p, t in zip(prompts, topics, strict=True):
        for cheap in (WEAK, MID):
            good = t == "chat" or (cheap == MID and t == "code")
            outcome = "tie" if good else "model_b"
            if rng.random() < 0.05:
                outcome = "model_a" if outcome == "tie" else "tie"
            rows.append((p, cheap, STRONG, outcome))
        rows.append((p, WEAK, MID, "tie" if t == "chat" else "model_b"))
    return PreferenceData(
        tuple(r[0] for r in rows),
        np.array([r[1] for r in rows], dtype=object),
        np.array([r[2] for r in rows], dtype=object),
        np.array([r[3] for r in rows], dtype=object),
        np.ones(len(rows)),
    )


@pytest.mark.parametrize("kind", ["mf", "sw-ranking"])
def test_more_than_two_models_pick_the_cheapest_adequate(kind):
    params = {"sharpness": 30.0} if kind == "sw-ranking" else {}
    router = train_router(kind, _three_model_battles(450, seed=7), **params)
    prompts, topics = make_prompts(60, ["math", "chat", "code"], seed=8)
    costs = {WEAK: 1.0, MID: 3.0, STRONG: 10.0}
    chosen = choose_models(router, prompts, costs, threshold=0.3)
    by_topic = {
        t: [c for c, tt in zip(chosen, topics, strict=True) if tt == t] for t in TOPIC_ORDER
    }
    assert np.mean([c == WEAK for c in by_topic["chat"]]) >= 0.9
    assert np.mean([c == MID for c in by_topic["code"]]) >= 0.8
    assert np.mean([c == STRONG for c in by_topic["math"]]) >= 0.9
    # a threshold no model reaches keeps everything on the strongest
    assert set(choose_models(router, prompts, costs, threshold=0.99)) == {STRONG}
    with pytest.raises(RoutingError, match="at least two"):
        choose_models(router, prompts, {STRONG: 1.0}, threshold=0.5)


TOPIC_ORDER = ("math", "chat", "code")
