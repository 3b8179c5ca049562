"""Red Team Arena: operator-defined challenges, success detectors and joint ratings.

Pure logic only: no I/O beyond reading the challenges file, no web or store code.
"""

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
from arena.redteam.ratings import Board, BoardRow, RedTeamBoards, RedTeamRound, rate_rounds

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
