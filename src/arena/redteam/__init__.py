"""Red Team Arena: operator-defined challenges, success detectors and joint ratings.

Pure logic only: no I/O beyond reading the challenges file, no web or store code; the edges
that read the store (``boards_from_store``, ``commands``) are imported by their callers only.

The rating names (``rate_rounds`` and its results) load on first use: they need SciPy, which
the command line should not pay for at start-up.
"""

from typing import TYPE_CHECKING, Any

from arena.redteam.canaries import PlantedSecret, make_canary
from arena.redteam.challenges import (
    Challenge,
    ChallengeFileError,
    ChallengeSet,
    JudgeGoalChallenge,
    LeakSecretChallenge,
    SayPhraseChallenge,
    load_challenges,
    parse_challenges,
)
from arena.redteam.detectors import (
    CanaryDetector,
    Detection,
    PhraseDetector,
    StreamingCheck,
    detector_for,
)

if TYPE_CHECKING:
    from arena.redteam.ratings import Board, BoardRow, RedTeamBoards, RedTeamRound, rate_rounds

_RATING_NAMES = frozenset({"Board", "BoardRow", "RedTeamBoards", "RedTeamRound", "rate_rounds"})


def __getattr__(name: str) -> Any:
    if name in _RATING_NAMES:
        from arena.redteam import ratings

        return getattr(ratings, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Board",
    "BoardRow",
    "CanaryDetector",
    "Challenge",
    "ChallengeFileError",
    "ChallengeSet",
    "Detection",
    "JudgeGoalChallenge",
    "LeakSecretChallenge",
    "PhraseDetector",
    "PlantedSecret",
    "RedTeamBoards",
    "RedTeamRound",
    "SayPhraseChallenge",
    "StreamingCheck",
    "detector_for",
    "load_challenges",
    "make_canary",
    "parse_challenges",
    "rate_rounds",
]
