"""Adds the red-team game to the web app: its challenges, its judge, its routes.

The challenges come from ``settings.redteam_challenges_path``; without one, an arena that
runs only the built-in demo models offers the demo challenges (so the game can be tried
offline), and any other arena offers none (the page says how to add some). A file that names
a model the registry lacks, or a judge model that is not there, stops the start with a
``ChallengeFileError`` that says which.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from arena.redteam import ChallengeFileError, ChallengeSet, load_challenges
from arena.redteam.challenges import JudgeGoalChallenge
from arena.web.redteam_game import RedTeamGame, check_challenge_models

if TYPE_CHECKING:
    from arena.web.app import WebContext

log = logging.getLogger("arena.web.redteam")
JUDGE_PARAMS = {"temperature": 0.0, "max_tokens": 512}


def _challenges(ctx: WebContext) -> ChallengeSet:
    path = ctx.settings.redteam_challenges_path
    if path is not None:
        return load_challenges(path)
    if ctx.service.only_demo:
        demo = resources.files("arena.redteam") / "data" / "demo_challenges.yaml"
        with resources.as_file(demo) as demo_path:
            challenges = load_challenges(demo_path)
        # Played against whichever demo models this arena runs (a registry may name its own).
        names = tuple(s.name for s in ctx.service.specs if ctx.service.is_demo(s.name))
        return ChallengeSet(
            challenges=tuple(c.model_copy(update={"models": names}) for c in challenges.challenges)
        )
    return ChallengeSet.model_construct(challenges=())


def _judge_callers(ctx: WebContext, challenges: ChallengeSet) -> dict[str, Any]:
    """A judge caller per judge model in use: the setting's, and any a challenge names."""
    from arena.judge.calls import JudgeCaller

    default = ctx.settings.redteam_judge_model
    goals = [c for c in challenges.challenges if isinstance(c, JudgeGoalChallenge)]
    wanted = {c.judge_model or default for c in goals} | ({default} if default else set())
    wanted.discard(None)
    if any(c.judge_model is None for c in goals) and default is None:
        log.warning(
            "red team: judge-goal challenges without a judge_model are left out: set "
            "ARENA_REDTEAM_JUDGE_MODEL to a registry model that decides them"
        )
    callers = {}
    for name in sorted(wanted):
        provider = ctx.service.providers.get(name)
        if provider is None:
            source = "redteam_judge_model" if name == default else "a challenge's judge_model"
            raise ChallengeFileError(f"{source} {name!r} is not a model of the registry")
        callers[name] = JudgeCaller(name, provider, params=JUDGE_PARAMS)
    return callers


def include_redteam(app: FastAPI, ctx: WebContext) -> RedTeamGame:
    from arena.web.redteam_api import redteam_router
    from arena.web.redteam_leaderboard_api import redteam_leaderboard_router
    from arena.web.redteam_pages import redteam_pages_router

    challenges = _challenges(ctx)
    check_challenge_models(challenges, ctx.service.specs)
    game = RedTeamGame(
        challenges=challenges,
        specs=ctx.service.specs,
        providers=ctx.service.providers,
        models=ctx.service.models,
        store=ctx.service.store,
        secret=ctx.secret,
        judge_callers=_judge_callers(ctx, challenges),
        default_judge=ctx.settings.redteam_judge_model,
    )
    app.include_router(redteam_router(ctx, game))
    app.include_router(redteam_leaderboard_router(ctx, game))
    app.include_router(redteam_pages_router(ctx, game))
    return game
