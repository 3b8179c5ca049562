"""The live leaderboard of ``arena serve``: how it is computed (the ``ARENA_LEADERBOARD_*``
settings) and the refresher and sync that keep one board for every replica."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from arena.config import Settings
    from arena.leaderboard.compute import RatingSettings
    from arena.web.app import WebContext


def live_rating_settings(settings: Settings) -> RatingSettings:
    """How the live leaderboard is computed, from the ``ARENA_LEADERBOARD_*`` settings."""
    from arena.leaderboard.compute import RatingSettings

    return RatingSettings(
        rounds=settings.leaderboard_rounds,
        ties=settings.leaderboard_ties,
        ci=settings.leaderboard_ci,
        simultaneous=settings.leaderboard_simultaneous,
        reweight=settings.leaderboard_reweight,
        style_normalization=settings.leaderboard_style_normalization,
        min_battles=settings.leaderboard_min_battles,
        elo=settings.leaderboard_elo,
        votes_needed_width=settings.leaderboard_votes_needed_width,
    )


def live_leaderboard(ctx: WebContext) -> tuple[Any, Any]:
    """One leaderboard for every replica on the database: after votes arrive (coalesced, at
    most once per ``settings.leaderboard_refresh_s``) one replica recomputes and publishes the
    set to the store; every replica's sync thread installs the newest published set locally
    and asks for a recompute while votes exist beyond it. Returns (refresher, sync)."""
    import os
    import socket
    import uuid
    from functools import partial

    from arena.leaderboard.refresher import ArtifactRefresher
    from arena.leaderboard.shared import LeaderboardSync, recompute_shared

    db = ctx.service.db
    artifacts_dir = ctx.settings.data_dir / "leaderboard"
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    recompute = partial(
        recompute_shared,
        db.url,
        artifacts_dir,
        owner=owner,
        settings=live_rating_settings(ctx.settings),
    )
    refresher = ArtifactRefresher(
        recompute,
        min_interval_s=ctx.settings.leaderboard_refresh_s,
        in_child_process=True,
    )
    ctx.service.on_vote = refresher.request
    sync = LeaderboardSync(
        db,
        artifacts_dir,
        refresher.request,
        interval_s=min(max(ctx.settings.leaderboard_refresh_s, 0.2), 5.0),
        owner=owner,
    )
    return refresher, sync  # the sync starts and ends with the server (start/stop)
