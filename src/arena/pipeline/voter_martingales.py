"""The anomalous-voter screen's "favourite" and "random" tests, valid at every vote count.

A voter is re-screened each time the pipeline runs, so each test is looked at again and
again as their votes come in. Both tests are therefore test martingales: under the rating
model, M_t = Σ_k w_k · exp(λ_k·S_t − Σ_{i≤t} log E[exp(λ_k·X_i)]) (a mixture over a grid of
tilts λ_k with weights summing to 1) has mean 1 at every t, and Ville's inequality bounds the
chance that it ever reaches 1/α by α. The p-value 1 / max_{t ≤ votes} M_t is taken over every
prefix of the voter's votes in vote order. All of this is under the rating model as the
screen fitted it: were the ratings the same at every screen, the p-value could only fall as
votes come in and an honest voter would be flagged at any screen with probability at most
α, however many screens there are. The ratings are refitted at each screen, so the
win probabilities, and with them past p-values, move a little between screens; that drift
is outside the guarantee. The price of the mixture is its weights: p is at most the
fixed-count Chernoff bound at any grid λ_k divided by its weight w_k.

- ``favourite``: per model the voter saw, X_i = 1 when it won the vote (ties are not wins),
  with its model win probability; half the weight sits at λ = 20, which for a voter whose
  model has won every time is between Π p_i (the exact tail) and twice it. The models share
  the budget by weights fixed before their votes are seen: the r-th model to appear in the
  vote order gets w_r = (K+1)/((r+K)(r+K+1)), which sums to 1 over all r, and the voter's
  p-value is min_r p_r / w_r. Bonferroni over the fit's N models (version 2) was not
  valid across screens: N grows as models are added, and the union over screens reached
  about α·(1 + ln(N_last/N_first)). The r-th model's factor is (r+K)(r+K+1)/(K+1): with
  K = 30, about the models an arena runs at once, 32 for the first, 118 for the 30th and
  1,051 for the 150th, against Bonferroni's N. K = 0, w_r = 1/(r(r+1)), charges the 30th
  930 and lost 9 to 12 points of detection on the tests' simulated 30-model arena, where
  K = 30 lost 4 to 6 and K = 10 (better there, worse for a later, 150th model) 2 to 3.
- ``random``: X_i = gap·(underdog won − favourite won), the score of a "temperature" on the
  rating gaps (random voting is temperature 0), λ over a grid of powers of 2.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from arena.ratings.battles import A_WINS, B_WINS

_ALL_WINS = 20.0  # exp(-20) is below any win probability the screen meets
FAVOURITE_LAMBDAS = np.r_[2.0 ** np.arange(-3, 4), _ALL_WINS]
FAVOURITE_WEIGHTS = np.r_[np.full(7, 0.5 / 7), 0.5]
MODEL_RANK_SHIFT = 30  # K of model_rank_weights; see the module docstring
RANDOM_LAMBDAS = 2.0 ** np.arange(-4, 4)
RANDOM_WEIGHTS = np.full(8, 1 / 8)


def _segment_cumsum(x: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Running sums of ``x`` restarting at every segment start."""
    total = np.cumsum(x)
    before = np.r_[0.0, total][starts]
    return total - np.repeat(before, lengths)


def max_log_mixture(
    step: Callable[[float], np.ndarray],
    lambdas: np.ndarray,
    weights: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per segment (rows in vote order), the largest log M_t over its prefixes (0 for the
    empty one) and the row where it is reached (-1 when the empty prefix is the largest).
    ``step(λ)`` gives each row's λ·X_i − log E[exp(λ·X_i)]."""
    log_m = np.full(int(lengths.sum()), -np.inf)
    for lam, weight in zip(lambdas, weights, strict=True):
        log_m = np.logaddexp(log_m, np.log(weight) + _segment_cumsum(step(lam), starts, lengths))
    largest = np.maximum(np.maximum.reduceat(log_m, starts), 0.0)
    at_largest = np.flatnonzero(log_m >= np.repeat(largest, lengths))
    segment = np.repeat(np.arange(len(starts)), lengths)[at_largest]
    first = np.r_[True, np.diff(segment) > 0] if len(segment) else np.zeros(0, dtype=bool)
    best_row = np.full(len(starts), -1)
    best_row[segment[first]] = at_largest[first]
    return largest, best_row


def model_rank_weights(model_a: np.ndarray, model_b: np.ndarray, n_models: int) -> np.ndarray:
    """Each model's share of the favourite test's budget, by the rank r its first appearance
    takes in vote order (A before B): w_r = (K+1) / ((r+K)(r+K+1)), which sums to 1 over
    every r ≥ 1 (it telescopes), so models added between screens never raise the total."""
    seen = np.column_stack([model_a, model_b]).ravel()
    present, first = np.unique(seen, return_index=True)
    rank = np.zeros(n_models)
    rank[present[np.argsort(first)]] = np.arange(1, len(present) + 1)
    k, r = MODEL_RANK_SHIFT, rank[rank > 0]
    weights = np.zeros(n_models)  # a model never voted on has no votes to test
    weights[rank > 0] = (k + 1) / ((r + k) * (r + k + 1))
    return weights


def _segments(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and lengths of the runs of equal values of a sorted key."""
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    return starts, np.diff(np.r_[starts, len(key)])


def favourite_test(
    votes: np.ndarray,
    voter: np.ndarray,
    model_a: np.ndarray,
    model_b: np.ndarray,
    outcome: np.ndarray,
    probs: np.ndarray,
    n_voters: int,
    model_weights: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per voter: ``p`` (min over models of p_model / weight, ``model_weights`` summing to at
    most 1; see :func:`model_rank_weights`), and for their most suspicious model ``model``,
    ``wins``, ``trials`` and ``mean`` (expected wins) over the prefix where it stood out
    most, of ``prefix`` votes. ``votes`` are battle indices, grouped by voter in vote order;
    ``voter`` is each one's voter."""
    n_models = len(model_weights)
    voter_starts, voter_lengths = _segments(voter)
    local = np.arange(len(votes)) - np.repeat(voter_starts, voter_lengths)  # voter's nth vote
    side = np.repeat([0, 1], len(votes))
    both, position, cell_voter = np.r_[votes, votes], np.r_[local, local], np.r_[voter, voter]
    model = np.r_[model_a[votes], model_b[votes]]
    row = np.lexsort((position, cell_voter * n_models + model))
    both, position, cell_voter, model, side = (
        x[row] for x in (both, position, cell_voter, model, side)
    )
    win_p = probs[both, side]
    won = outcome[both] == np.where(side == 0, A_WINS, B_WINS)
    starts, lengths = _segments(cell_voter * n_models + model)
    largest, best_row = max_log_mixture(
        lambda lam: lam * won - np.log1p(win_p * np.expm1(lam)),
        FAVOURITE_LAMBDAS,
        FAVOURITE_WEIGHTS,
        starts,
        lengths,
    )
    # Each voter's most suspicious model: the cell with the smallest weighted p-value.
    log_p = np.log(model_weights[model[starts]]) + largest  # −log(p_model / weight)
    by_voter = np.lexsort((-log_p, cell_voter[starts]))
    owner = cell_voter[starts][by_voter]
    cell = by_voter[np.r_[True, owner[1:] != owner[:-1]]]
    end = np.where(best_row[cell] >= 0, best_row[cell] + 1, starts[cell])
    wins, trials, mean = (np.r_[0.0, np.cumsum(x)] for x in (won, np.ones(len(won)), win_p))
    out = {name: np.zeros(n_voters) for name in ("wins", "trials", "mean", "prefix")}
    out["p"], out["model"] = np.ones(n_voters), np.zeros(n_voters, dtype=np.int64)
    v = cell_voter[starts[cell]]
    out["p"][v] = np.minimum(np.exp(-log_p[cell]), 1.0)
    out["model"][v] = model[starts[cell]]
    for name, total in (("wins", wins), ("trials", trials), ("mean", mean)):
        out[name][v] = total[end] - total[starts[cell]]
    out["prefix"][v] = np.where(best_row[cell] >= 0, position[end - 1], -1) + 1
    return out


def random_test(
    votes: np.ndarray,
    voter: np.ndarray,
    theta: np.ndarray,
    model_a: np.ndarray,
    model_b: np.ndarray,
    outcome: np.ndarray,
    probs: np.ndarray,
    n_voters: int,
) -> dict[str, np.ndarray]:
    """Per voter: ``p``, and over the prefix where they stood out most (``prefix`` votes)
    ``score`` (Σ gap·(underdog won − favourite won)), ``fav_won`` and ``fav_expected``.
    ``votes`` are battle indices, grouped by voter in vote order."""
    gap = np.abs(theta[model_a[votes]] - theta[model_b[votes]])
    a_is_fav = theta[model_a[votes]] >= theta[model_b[votes]]
    p = probs[votes]
    p_fav = np.where(a_is_fav, p[:, 0], p[:, 1])
    p_under = np.where(a_is_fav, p[:, 1], p[:, 0])
    seen = outcome[votes]
    fav_won = np.where(a_is_fav, seen == A_WINS, seen == B_WINS)
    under_won = np.where(a_is_fav, seen == B_WINS, seen == A_WINS)
    x = gap * (under_won.astype(np.float64) - fav_won)

    def step(lam: float) -> np.ndarray:
        # log E[exp(λX)] = λ·gap + log(p_fav·e^(−2λ·gap) + p_under + p_tie·e^(−λ·gap))
        shrink = np.exp(-lam * gap)
        return lam * (x - gap) - np.log(p_fav * shrink * shrink + p_under + p[:, 2] * shrink)

    starts, lengths = _segments(voter)
    largest, best_row = max_log_mixture(step, RANDOM_LAMBDAS, RANDOM_WEIGHTS, starts, lengths)
    end = np.where(best_row >= 0, best_row + 1, starts)
    v = voter[starts]
    out = {"p": np.ones(n_voters)}
    out["p"][v] = np.minimum(np.exp(-largest), 1.0)
    for name, values in (("score", x), ("fav_won", fav_won), ("fav_expected", p_fav)):
        total = np.r_[0.0, np.cumsum(values)]
        out[name] = np.zeros(n_voters)
        out[name][v] = total[end] - total[starts]
    out["prefix"] = np.zeros(n_voters)
    out["prefix"][v] = end - starts
    return out
