"""Anomalous voters: people whose votes the rating model finds too unlikely to be honest.

The test follows the Chatbot Arena paper (arXiv 2403.04132, on detecting anomalous users):
every vote gets a p-value for its outcome under the current Bradley–Terry model, and each
voter's p-values are combined with Fisher's method, checked sequentially as their votes
accumulate, with the error budget split over the checks. Our choices where the paper leaves room:

- The model is the Bradley–Terry fit (``arena.ratings``) of the screened votes, with Davidson's
  tie model when the votes hold both ties and wins, so a tie has a probability of its own;
  "tie (bothbad)" counts as a tie.
- A vote's p-value is the model probability of the outcomes less likely than the one seen, plus
  a seeded uniform share of the outcomes exactly as likely (a randomised p-value). Under the
  model it is exactly uniform, so Fisher's statistic over n votes is exactly χ² with 2n degrees
  of freedom, however few votes there are.
- Checks happen after n_c = ceil(min_votes · 1.5^c) of a voter's votes, in vote order; check c
  spends α/((c+1)(c+2)) of the budget, which sums to α over every c. Re-screening a voter
  whose votes keep coming therefore never tests them beyond α in total.
- Two more tests cover the failure modes the issue names, where Fisher's is weak. Random
  voting: the score of a "temperature" on the rating gaps (random voting is temperature 0),
  Σ gap·(underdog won − favourite won) over the voter's votes. Always voting for one model,
  when that model is often the favourite anyway: per model the voter saw, its number of wins
  given its win probabilities, Bonferroni over the models seen. Both tails are Chernoff bounds
  (valid at any count, exact at the most extreme outcome), over all of the voter's votes.
  The three tests share α (α/3 each); a voter is flagged when any rejects.

The fit includes the screened votes themselves, so a heavy adversary drags the ratings toward
its votes. ``passes=2`` (the default) refits without the voters the first pass flagged and
screens everyone again against that cleaner model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import pyarrow as pa
from scipy.stats import chi2

from arena.ratings import Battles, RatingFit, fit_bradley_terry
from arena.ratings.battles import A_WINS, B_WINS
from arena.ratings.bradley_terry import davidson_probs, sigmoid
from arena.ratings.errors import RatingInputError

SCREEN_VERSION = "1"
DEFAULT_ALPHA = 0.01
DEFAULT_MIN_VOTES = 20
CHECK_GROWTH = 1.5
TESTS = ("fisher", "favourite", "random")
ALL_TIES = "every vote is a tie, so the ratings say nothing about any vote"

_P_FLOOR = 1e-300
_LAMBDA_MAX = 200.0
_BISECTIONS = 50


@dataclass(frozen=True)
class VoterVerdict:
    """One screened voter. ``test`` names the test with the smallest p-value, and
    ``statistic`` is that test's: ``fisher`` Fisher's χ² at the decisive check, ``favourite``
    the wins of the voter's most suspicious model, ``random`` the gap-weighted count of votes
    against the higher-rated model (minus those for it). ``p_value`` is adjusted for every
    check and all three tests, so ``flagged`` is ``p_value <= alpha``."""

    voter: str
    votes: int
    statistic: float
    p_value: float
    flagged: bool
    test: str
    reason: str


@dataclass(frozen=True)
class ScreenResult:
    """The screen of a set of votes; ``verdicts`` holds the voters with at least
    ``min_votes`` votes (the others, ``untested_voters``, are too few to judge); ``note``
    says why nobody was judged when that happens."""

    verdicts: tuple[VoterVerdict, ...]
    votes: int
    voters: int
    untested_voters: int
    alpha: float
    min_votes: int
    passes: int
    model_warnings: tuple[str, ...] = ()
    version: str = SCREEN_VERSION
    note: str = ""

    @property
    def flagged(self) -> tuple[VoterVerdict, ...]:
        return tuple(v for v in self.verdicts if v.flagged)


def check_schedule(min_votes: int, largest: int) -> np.ndarray:
    """Vote counts at which a voter is checked: ceil(min_votes · 1.5^c), strictly rising."""
    checks: list[int] = []
    c = 0
    while True:
        n = max(math.ceil(min_votes * CHECK_GROWTH**c), checks[-1] + 1 if checks else 1)
        if n > largest:
            return np.array(checks, dtype=np.int64)
        checks.append(n)
        c += 1


def outcome_probabilities(fit: RatingFit, model_a: np.ndarray, model_b: np.ndarray) -> np.ndarray:
    """(n, 3) model probabilities of A wins, B wins, tie for battles given as model indices."""
    d = fit.theta[model_a] - fit.theta[model_b]
    if fit.ties == "davidson" and fit.tie_param:
        pa, pb, pt = davidson_probs(d, math.log(fit.tie_param))
        return np.column_stack([pa, pb, pt])
    pa = sigmoid(d)
    return np.column_stack([pa, 1.0 - pa, np.zeros_like(pa)])


def vote_p_values(probs: np.ndarray, outcome: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Randomised p-value of each vote's outcome (0 A, 1 B, 2 or 3 tie): probability of the
    less likely outcomes plus a uniform share of the equally likely ones."""
    column = np.minimum(outcome.astype(np.int64), 2)
    seen = probs[np.arange(len(column)), column][:, None]
    tol = 1e-12
    less = np.where(probs < seen - tol, probs, 0.0).sum(axis=1)
    equal = np.where(np.abs(probs - seen) <= tol, probs, 0.0).sum(axis=1)
    return np.clip(less + rng.random(len(column)) * equal, _P_FLOOR, 1.0)


def _fisher_sequential(
    neg2log: np.ndarray, starts: np.ndarray, counts: np.ndarray, min_votes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per voter (votes grouped, in order): the smallest budget-adjusted p-value over the
    checks, Fisher's statistic there and the number of votes it covered."""
    cum = np.concatenate([[0.0], np.cumsum(neg2log)])
    best_p = np.full(len(counts), np.inf)
    best_stat = np.zeros(len(counts))
    best_n = np.zeros(len(counts), dtype=np.int64)
    largest = int(counts.max()) if len(counts) else 0
    for c, n in enumerate(check_schedule(min_votes, largest)):
        idx = np.flatnonzero(counts >= n)
        stat = cum[starts[idx] + n] - cum[starts[idx]]
        p = np.minimum(chi2.sf(stat, 2 * n) * (c + 1) * (c + 2), 1.0)
        better = p < best_p[idx]  # the first check always counts, later ones when smaller
        take = idx[better]
        best_p[take], best_stat[take], best_n[take] = p[better], stat[better], n
    return np.minimum(best_p, 1.0), best_stat, best_n


def chernoff_log_tail(
    values: np.ndarray, probs: np.ndarray, owner: np.ndarray, observed: np.ndarray
) -> np.ndarray:
    """Per group, a Chernoff bound on log P(Σ X ≥ observed) for independent discrete X: row i
    takes ``values[i, o]`` with probability ``probs[i, o]`` and belongs to group ``owner[i]``.
    The bound is min over λ ≥ 0 of Σ log E[exp(λX)] − λ·observed (0 where observed is at
    most the mean); at the largest possible sum it is the exact probability."""
    groups = len(observed)
    bound = np.zeros(groups)
    mean0 = np.bincount(owner, (probs * values).sum(axis=1), minlength=groups)
    active = observed > mean0 + 1e-9
    if not active.any():
        return bound
    rows = active[owner]
    index = np.cumsum(active) - 1
    owner, values, probs = index[owner[rows]], values[rows], probs[rows]
    observed = observed[active]
    groups = len(observed)
    log_p = np.log(np.clip(probs, _P_FLOOR, 1.0))
    log_p[probs <= 0] = -np.inf
    lo, hi = np.zeros(groups), np.full(groups, _LAMBDA_MAX)
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        tilt = log_p + mid[owner, None] * values
        tilt -= tilt.max(axis=1, keepdims=True)
        weight = np.exp(tilt)
        mean = (weight * values).sum(axis=1) / weight.sum(axis=1)
        low = np.bincount(owner, mean, minlength=groups) < observed
        lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
    lam = 0.5 * (lo + hi)
    tilt = log_p + lam[owner, None] * values
    top = tilt.max(axis=1)
    log_mgf = top + np.log(np.exp(tilt - top[:, None]).sum(axis=1))
    bound[active] = np.minimum(np.bincount(owner, log_mgf, minlength=groups) - lam * observed, 0)
    return bound


def _favourite_test(
    voter: np.ndarray, model: np.ndarray, win_p: np.ndarray, won: np.ndarray, n_models: int
) -> dict[str, np.ndarray]:
    """Per (voter, model) cell: voter, model, wins, trials, expected wins and the log tail
    bound of the wins; cells come sorted by voter."""
    key = voter.astype(np.int64) * n_models + model
    order = np.argsort(key, kind="stable")
    key, win_p, won = key[order], win_p[order], won[order]
    cell_keys, cell_starts, trials = np.unique(key, return_index=True, return_counts=True)
    wins = np.add.reduceat(won.astype(np.float64), cell_starts)
    mean = np.add.reduceat(win_p, cell_starts)
    owner = np.repeat(np.arange(len(cell_keys)), trials)
    log_tail = chernoff_log_tail(
        np.broadcast_to([1.0, 0.0], (len(win_p), 2)),
        np.column_stack([win_p, 1.0 - win_p]),
        owner,
        wins,
    )
    return {
        "voter": cell_keys // n_models,
        "model": cell_keys % n_models,
        "wins": wins,
        "trials": trials,
        "mean": mean,
        "log_tail": log_tail,
    }


def _fit(battles: Battles, keep: np.ndarray | None) -> RatingFit:
    """Bradley–Terry on the kept votes, Davidson ties when there are ties and wins."""
    if keep is not None and not keep.all():
        battles = Battles(
            models=battles.models,
            model_a=battles.model_a,
            model_b=battles.model_b,
            outcome=battles.outcome,
            weights=keep.astype(np.float64),
        )
    weight = np.ones(battles.n_battles) if keep is None else keep
    tie_mass = float(weight[battles.outcome >= 2].sum())
    ties = "davidson" if 0 < tie_mass < float(weight.sum()) else "half"
    return fit_bradley_terry(battles, ties=ties)


def _decisive(battles: Battles, keep: np.ndarray | None) -> bool:
    """Whether the kept votes hold a win: ties alone say nothing about any rating gap."""
    decisive = battles.outcome < 2
    return bool((decisive if keep is None else decisive & keep).any())


def _agreement_test(
    fit: RatingFit, battles: Battles, probs: np.ndarray, owner: np.ndarray, groups: int
) -> dict[str, np.ndarray]:
    """Per voter, how far their votes side with the higher-rated model less than the model
    says: the score of a "temperature" on the rating gaps (a random voter has temperature 0),
    Σ gap·(underdog won − favourite won), bounded by Chernoff. ``owner`` maps each vote to its
    voter, -1 for votes left out."""
    rows = owner >= 0
    gap = np.abs(fit.theta[battles.model_a[rows]] - fit.theta[battles.model_b[rows]])
    a_is_fav = fit.theta[battles.model_a[rows]] >= fit.theta[battles.model_b[rows]]
    p = probs[rows]
    p_fav = np.where(a_is_fav, p[:, 0], p[:, 1])
    p_under = np.where(a_is_fav, p[:, 1], p[:, 0])
    outcome = battles.outcome[rows]
    fav_won = np.where(a_is_fav, outcome == A_WINS, outcome == B_WINS)
    under_won = np.where(a_is_fav, outcome == B_WINS, outcome == A_WINS)
    values = np.column_stack([-gap, gap, np.zeros_like(gap)])
    observed = np.bincount(owner[rows], gap * (under_won.astype(float) - fav_won), groups)
    log_tail = chernoff_log_tail(
        values, np.column_stack([p_fav, p_under, p[:, 2]]), owner[rows], observed
    )
    return {
        "p": np.exp(log_tail),
        "score": observed,
        "fav_won": np.bincount(owner[rows], fav_won, groups),
        "fav_expected": np.bincount(owner[rows], p_fav, groups),
    }


def _screen_once(
    battles: Battles,
    codes: np.ndarray,
    order: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
    fit: RatingFit,
    seed: int,
    min_votes: int,
) -> dict[str, np.ndarray]:
    """The three tests for every voter with at least ``min_votes`` votes."""
    probs = outcome_probabilities(fit, battles.model_a, battles.model_b)
    p = vote_p_values(probs, battles.outcome, np.random.default_rng(seed))
    fisher_p, fisher_stat, fisher_n = _fisher_sequential(
        -2.0 * np.log(p[order]), starts, counts, min_votes
    )
    n_voters = len(counts)
    sel = (counts >= min_votes)[codes]
    agree = _agreement_test(fit, battles, probs, np.where(sel, codes, -1), n_voters)
    cells = _favourite_test(
        np.concatenate([codes[sel], codes[sel]]),
        np.concatenate([battles.model_a[sel], battles.model_b[sel]]),
        np.concatenate([probs[sel, 0], probs[sel, 1]]),
        np.concatenate([battles.outcome[sel] == A_WINS, battles.outcome[sel] == B_WINS]),
        len(battles.models),
    )
    seen_models = np.bincount(cells["voter"], minlength=n_voters)
    log_adj = cells["log_tail"] + np.log(np.maximum(seen_models[cells["voter"]], 1))
    # Each voter's most suspicious model: the cell with the smallest adjusted tail.
    by_voter = np.lexsort((log_adj, cells["voter"]))
    sorted_voter = cells["voter"][by_voter]
    first = by_voter[np.r_[True, sorted_voter[1:] != sorted_voter[:-1]][: len(by_voter)]]
    best_cell = np.full(n_voters, -1)
    best_cell[cells["voter"][first]] = first
    fav_p = np.ones(n_voters)
    fav_p[cells["voter"][first]] = np.minimum(np.exp(log_adj[first]), 1.0)
    return {
        "fisher_p": fisher_p,
        "fisher_stat": fisher_stat,
        "fisher_n": fisher_n,
        "favourite_p": fav_p,
        "best_cell": best_cell,
        "random_p": agree["p"],
        "random_score": agree["score"],
        "fav_won": agree["fav_won"],
        "fav_expected": agree["fav_expected"],
        **{f"cell_{name}": values for name, values in cells.items()},
    }


def _verdict(
    out: dict[str, np.ndarray], v: int, name: str, votes: int, models, alpha
) -> VoterVerdict:
    """One voter's verdict: the test with the smallest p-value speaks for them."""
    p_values = {test: float(out[f"{test}_p"][v]) for test in TESTS}
    test = min(TESTS, key=lambda t: p_values[t])
    overall = min(len(TESTS) * p_values[test], 1.0)
    if test == "fisher":
        n, stat = int(out["fisher_n"][v]), float(out["fisher_stat"][v])
        reason = (
            f"votes disagree with the ratings: Fisher chi-square {stat:.1f} over the first "
            f"{n} of {votes} votes, where an honest voter averages {2 * n}"
        )
    elif test == "favourite":
        cell = int(out["best_cell"][v])
        stat = float(out["cell_wins"][cell])
        reason = (
            f"picks {models[out['cell_model'][cell]]} far too often: it won {int(stat)} of "
            f"the {int(out['cell_trials'][cell])} battles of this voter it was in, where the "
            f"ratings expect {float(out['cell_mean'][cell]):.1f}"
        )
    else:
        stat = float(out["random_score"][v])
        reason = (
            f"votes at random or against the ratings: sided with the higher-rated model in "
            f"{int(out['fav_won'][v])} of {votes} votes, where the ratings expect "
            f"{float(out['fav_expected'][v]):.1f}"
        )
    return VoterVerdict(name, votes, stat, overall, overall <= alpha, test, reason)


def check_parameters(*, alpha: float, min_votes: int, passes: int = 1) -> None:
    """Raise :class:`RatingInputError` naming the first unusable screen parameter."""
    if not 0 < alpha < 1:
        raise RatingInputError(f"alpha must be between 0 and 1, got {alpha}", param="alpha")
    if min_votes < 1:
        raise RatingInputError(f"min_votes must be at least 1, got {min_votes}", param="min_votes")
    if passes < 1:
        raise RatingInputError(f"passes must be at least 1, got {passes}", param="passes")


def screen_voters(
    voter: Sequence[str] | np.ndarray,
    model_a: Sequence[str] | np.ndarray,
    model_b: Sequence[str] | np.ndarray,
    winner: Sequence[str] | np.ndarray,
    *,
    alpha: float = DEFAULT_ALPHA,
    min_votes: int = DEFAULT_MIN_VOTES,
    passes: int = 2,
    seed: int = 0,
) -> ScreenResult:
    """Screen every voter of the given votes (in vote order; ``winner`` in the clean-battle
    layout). Raises :class:`RatingInputError` on unusable columns or parameters."""
    check_parameters(alpha=alpha, min_votes=min_votes, passes=passes)
    battles = Battles.from_columns(model_a, model_b, winner)
    voters = voter if isinstance(voter, pa.Array) else pa.array(voter, type=pa.string())
    if len(voters) != battles.n_battles:
        raise RatingInputError(f"voter has {len(voters)} values for {battles.n_battles} votes")
    if voters.null_count:
        raise RatingInputError("voter has missing (None) values", param="voter")
    encoded = voters.dictionary_encode()
    names = encoded.dictionary.to_pylist()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=len(names))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    tested = np.flatnonzero(counts >= min_votes)
    result = partial(
        ScreenResult,
        votes=battles.n_battles,
        voters=len(names),
        untested_voters=len(names) - len(tested),
        alpha=alpha,
        min_votes=min_votes,
        passes=passes,
    )
    if len(tested) == 0:  # nobody has enough votes to judge: no fit, no flags
        return result(verdicts=(), note=f"no voter has at least {min_votes} votes")
    if not _decisive(battles, None):
        return result(verdicts=(), untested_voters=len(names), note=ALL_TIES)

    keep: np.ndarray | None = None
    flagged = np.zeros(len(names), dtype=bool)
    for _ in range(passes):
        fit = _fit(battles, keep)
        out = _screen_once(battles, codes, order, starts, counts, fit, seed, min_votes)
        smallest = np.minimum.reduce([out[f"{test}_p"] for test in TESTS])
        now_flagged = (counts >= min_votes) & (len(TESTS) * smallest <= alpha)
        if np.array_equal(now_flagged, flagged):
            break
        flagged, keep = now_flagged, ~now_flagged[codes]
        if not _decisive(battles, keep):
            break  # the unflagged votes alone rate nothing: this pass's verdicts stand
    verdicts = tuple(
        _verdict(out, v, str(names[v]), int(counts[v]), battles.models, alpha) for v in tested
    )
    return result(verdicts=verdicts, model_warnings=fit.warnings)
