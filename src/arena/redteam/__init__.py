"""Red Team Arena: operator-defined challenges, success detectors and joint ratings.

Pure logic only: no I/O beyond reading the challenges file, no web or store code; the edges
that read the store (``boards_from_store``, ``commands``) are imported by their callers only.
The joint ratings (``arena.redteam.ratings``) need SciPy, which the command line should not
pay for at start-up, so they are imported from their own module.
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

__all__ = [
    "CanaryDetector",
    "Challenge",
    "ChallengeFileError",
    "ChallengeSet",
    "Detection",
    "JudgeGoalChallenge",
    "LeakSecretChallenge",
    "PhraseDetector",
    "PlantedSecret",
    "SayPhraseChallenge",
    "StreamingCheck",
    "detector_for",
    "load_challenges",
    "make_canary",
    "parse_challenges",
]
