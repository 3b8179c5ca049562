"""The ``arena`` command line. Each area registers its own commands from its own module;
those modules import heavy libraries lazily so ``arena --help`` stays fast."""

from __future__ import annotations

import typer

from arena import __version__

app = typer.Typer(
    name="arena",
    help="Serve, compare and rank large language models by human preference.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"arena {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Arena: an OpenAI-compatible gateway, an anonymous arena and a leaderboard."""


def _register_all() -> None:
    from arena.gateway import commands as gateway_commands
    from arena.judge import commands as judge_commands
    from arena.leaderboard import commands as leaderboard_commands
    from arena.pipeline import commands as pipeline_commands
    from arena.redteam import commands as redteam_commands
    from arena.routing import commands as routing_commands
    from arena.store import commands as store_commands

    for module in (
        gateway_commands,
        store_commands,
        leaderboard_commands,
        judge_commands,
        pipeline_commands,
        redteam_commands,
    ):
        module.register(app)
    routing_commands.register(app)
    # Only typer at import time; TRL/PEFT load when `arena train` runs (the train extra).
    from arena.training import commands as training_commands

    training_commands.register(app)


_register_all()
