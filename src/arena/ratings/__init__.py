"""Pure rating math on arrays: Elo, Bradley–Terry, intervals, style control, ranks."""

from arena.ratings.battles import WINNER_CODES, Battles
from arena.ratings.bradley_terry import RatingFit, fit_bradley_terry
from arena.ratings.elo import EloIntervals, EloRatings, compute_elo, elo_intervals
from arena.ratings.errors import DegenerateComparisonError, RatingInputError
from arena.ratings.grouped import GroupedFit, GroupRatings, fit_grouped_bradley_terry
from arena.ratings.intervals import (
    Intervals,
    bootstrap_intervals,
    rank_upper_bound,
    sandwich_intervals,
)
from arena.ratings.matrices import battle_count_matrix, observed_win_fraction, predicted_win_matrix
from arena.ratings.planning import VotesNeeded, votes_needed
from arena.ratings.style_control import StyleFit, fit_style_control, normalize_features

__all__ = [
    "WINNER_CODES",
    "Battles",
    "DegenerateComparisonError",
    "EloIntervals",
    "EloRatings",
    "GroupRatings",
    "GroupedFit",
    "Intervals",
    "RatingFit",
    "RatingInputError",
    "StyleFit",
    "VotesNeeded",
    "battle_count_matrix",
    "bootstrap_intervals",
    "compute_elo",
    "elo_intervals",
    "fit_bradley_terry",
    "fit_grouped_bradley_terry",
    "fit_style_control",
    "normalize_features",
    "observed_win_fraction",
    "predicted_win_matrix",
    "rank_upper_bound",
    "sandwich_intervals",
    "votes_needed",
]
