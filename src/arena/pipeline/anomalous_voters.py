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
  of freedom, however few votes there are. Given vote ids, the uniform is a hash of (seed,
  id), so a vote draws the same one at every screen.
- Fisher's test is checked after n_c = ceil(min_votes · 1.5^c) of a voter's votes, in vote
  order; check c spends α/((c+1)(c+2)) of its budget, which sums to the budget over every c.
- Two more tests cover the failure modes the issue names, where Fisher's is weak. Random
  voting: the score of a "temperature" on the rating gaps (random voting is temperature 0),
  Σ gap·(underdog won − favourite won). Always voting for one model, when that model is
  often the favourite anyway: per model the voter saw, its number of wins given its win
  probabilities, the budget shared over the models by their order of first appearance with
  weights that sum to 1 over every model there will ever be (a model added later never
  raises the total). Both are test martingales (``voter_martingales``), taken at every
  prefix of the voter's votes, in vote order (vote id order when ids are given).
- The pipeline re-screens voters whose votes keep coming after every run, so every test must
  stay valid however often it is looked at: Fisher's looks at fixed prefixes with the budget
  split over them, the two martingales are bounded over all prefixes at once (Ville's
  inequality). Under the ratings as fitted at a screen, an honest voter's p-value is thus
  at most α at any prefix with probability at most α, and with the same ratings at every
  screen no number of screens raises it. The guarantee is conditional on the fitted
  ratings: each screen refits them, so a past p-value moves a little between screens, and
  that drift is not bounded. (Screen version 1 ran the two tests over all of the votes at
  each screen, a new test per run whose errors added up; version 2 split the favourite
  test over the models of each fit, a count that grows.) Spending α/((c+1)(c+2)) on those
  two as well was measured and dropped: at a voter's later checks its cost (×42 at check 5,
  ×56 at check 6) halved detection of always-one-model voters; the martingales cost a fixed
  factor (×2 at "always", ×8 to ×14 elsewhere) and see every vote. The three tests share α
  (α/3 each); a voter is flagged when any rejects.

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

from arena.pipeline.voter_martingales import favourite_test, model_rank_weights, random_test
from arena.ratings import Battles, RatingFit, fit_bradley_terry
from arena.ratings.bradley_terry import davidson_probs, sigmoid
from arena.ratings.errors import RatingInputError

SCREEN_VERSION = "3"  # 3: per-vote draws by vote id, favourite weights by model arrival
DEFAULT_ALPHA = 0.01
DEFAULT_MIN_VOTES = 20
CHECK_GROWTH = 1.5
TESTS = ("fisher", "favourite", "random")
ALL_TIES = "every vote is a tie, so the ratings say nothing about any vote"

_P_FLOOR = 1e-300


@dataclass(frozen=True)
class VoterVerdict:
    """One screened voter. ``test`` names the test with the smallest p-value, and
    ``statistic`` is that test's over the voter's first votes where it stood out most (a
    check of Fisher's, any prefix for the other two; ``reason`` says how many): ``fisher``
    Fisher's χ², ``favourite`` the wins of the voter's most suspicious model, ``random`` the
    gap-weighted count of votes against the higher-rated model (minus those for it).
    ``p_value`` is adjusted for all three tests and for every prefix of the voter's votes,
    under the ratings as this screen fitted them: with those ratings an honest voter gets
    ``p_value <= alpha`` at this or any later screen with probability at most alpha, but the
    ratings are refitted at every screen, and their drift is outside the guarantee.
    ``flagged`` is ``p_value <= alpha``."""

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
    """Vote counts at which Fisher's test checks a voter: ceil(min_votes · 1.5^c), rising."""
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


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 arrays (wrapping arithmetic): a bijective mix whose
    outputs pass BigCrush, so nearby ids give unrelated bits."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def vote_uniforms(seed: int, vote_ids: np.ndarray) -> np.ndarray:
    """One uniform in [0, 1) per vote, a function of (seed, vote id) alone: a vote keeps its
    randomised p-value's draw at every screen, whichever other votes are screened with it."""
    key = _splitmix64(np.array([seed % 2**64], dtype=np.uint64))[0]
    ids = np.asarray(vote_ids, dtype=np.int64).view(np.uint64)
    return (_splitmix64(ids ^ key) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def vote_p_values(
    probs: np.ndarray, outcome: np.ndarray, draws: np.random.Generator | np.ndarray
) -> np.ndarray:
    """Randomised p-value of each vote's outcome (0 A, 1 B, 2 or 3 tie): probability of the
    less likely outcomes plus a uniform share of the equally likely ones. ``draws`` is a
    generator (uniforms in position order) or each vote's uniform (:func:`vote_uniforms`)."""
    column = np.minimum(outcome.astype(np.int64), 2)
    seen = probs[np.arange(len(column)), column][:, None]
    tol = 1e-12
    less = np.where(probs < seen - tol, probs, 0.0).sum(axis=1)
    equal = np.where(np.abs(probs - seen) <= tol, probs, 0.0).sum(axis=1)
    u = draws.random(len(column)) if isinstance(draws, np.random.Generator) else draws
    return np.clip(less + u * equal, _P_FLOOR, 1.0)


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


def _screen_once(
    battles: Battles,
    codes: np.ndarray,
    order: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
    fit: RatingFit,
    draws: np.ndarray,
    min_votes: int,
) -> dict[str, np.ndarray]:
    """The three tests for every voter with at least ``min_votes`` votes: ``{test}_p`` per
    voter, valid however often the voter is screened, with what the reasons quote."""
    probs = outcome_probabilities(fit, battles.model_a, battles.model_b)
    p = vote_p_values(probs, battles.outcome, draws)
    fisher_p, fisher_stat, fisher_n = _fisher_sequential(
        -2.0 * np.log(p[order]), starts, counts, min_votes
    )
    votes = order[(counts >= min_votes)[codes[order]]]  # tested voters' votes, in vote order
    args = (votes, codes[votes])
    columns = (battles.model_a, battles.model_b, battles.outcome, probs)
    weights = model_rank_weights(battles.model_a, battles.model_b, len(battles.models))
    fav = favourite_test(*args, *columns, len(counts), weights)
    rnd = random_test(*args, fit.theta, *columns, len(counts))
    return {
        "fisher_p": fisher_p,
        "fisher_stat": fisher_stat,
        "fisher_n": fisher_n,
        **{f"favourite_{name}": values for name, values in fav.items()},
        **{f"random_{name}": values for name, values in rnd.items()},
    }


def _first(n: int, votes: int) -> str:
    """How a reason names the votes a test counted: all of them, or the first n."""
    return f"{votes}" if n == votes else f"the first {n} of {votes}"


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
        stat = float(out["favourite_wins"][v])
        reason = (
            f"picks {models[out['favourite_model'][v]]} far too often: it won {int(stat)} of "
            f"the {int(out['favourite_trials'][v])} battles it was in among "
            f"{_first(int(out['favourite_prefix'][v]), votes)} votes of this voter, where the "
            f"ratings expect {float(out['favourite_mean'][v]):.1f}"
        )
    else:
        stat = float(out["random_score"][v])
        reason = (
            f"votes at random or against the ratings: sided with the higher-rated model in "
            f"{int(out['random_fav_won'][v])} of {_first(int(out['random_prefix'][v]), votes)}"
            f" votes, where the ratings expect {float(out['random_fav_expected'][v]):.1f}"
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


def _checked_vote_ids(vote_ids: Sequence[int] | np.ndarray, n: int) -> np.ndarray:
    """The vote ids as int64, refused when they are not one unique integer per vote."""
    ids = np.asarray(vote_ids)
    if ids.shape != (n,):
        raise RatingInputError(f"vote_ids has {ids.size} values for {n} votes", param="vote_ids")
    if n and ids.dtype.kind not in "iu":
        raise RatingInputError("vote_ids must be integers", param="vote_ids")
    ids = ids.astype(np.int64)
    if len(np.unique(ids)) != n:
        raise RatingInputError("vote_ids holds the same id twice", param="vote_ids")
    return ids


def _reordered(battles: Battles, order: np.ndarray) -> Battles:
    """The same battles taken in ``order``."""
    return Battles(
        models=battles.models,
        model_a=battles.model_a[order],
        model_b=battles.model_b[order],
        outcome=battles.outcome[order],
    )


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
    vote_ids: Sequence[int] | np.ndarray | None = None,
) -> ScreenResult:
    """Screen every voter of the given votes (in vote order; ``winner`` in the clean-battle
    layout). Give ``vote_ids`` (unique integers, one per vote) when the same votes are
    screened again later: the votes are then taken in id order and each vote's randomised
    p-value draws its uniform from (seed, id), so a vote is judged alike at every screen
    whatever other votes join or leave. Raises :class:`RatingInputError` on unusable
    columns or parameters."""
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
    if vote_ids is None:
        draws = np.random.default_rng(seed).random(battles.n_battles)
    else:
        ids = _checked_vote_ids(vote_ids, battles.n_battles)
        by_id = np.argsort(ids, kind="stable")
        battles, codes, ids = _reordered(battles, by_id), codes[by_id], ids[by_id]
        draws = vote_uniforms(seed, ids)
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
        out = _screen_once(battles, codes, order, starts, counts, fit, draws, min_votes)
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
