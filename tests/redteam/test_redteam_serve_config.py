"""`arena serve` refuses a red-team setup that cannot work, with exit code 2 and a reason."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from arena.cli import app

REGISTRY = "models:\n  - {name: big, provider: demo}\n  - {name: small, provider: demo}\n"


@pytest.mark.parametrize(
    ("challenges", "extra_env", "message"),
    [
        (
            "challenges:\n  - {id: c1, kind: say_phrase, phrase: hi, models: [huge]}\n",
            {},
            "model 'huge' is not in the model registry",
        ),
        ("challenges: []\n", {}, "the file defines no challenges"),
        (
            "challenges:\n  - {id: c1, kind: judge_goal, goal: x, models: [big]}\n",
            {"ARENA_REDTEAM_JUDGE_MODEL": "nobody"},
            "redteam_judge_model 'nobody' is not a model of the registry",
        ),
    ],
)
def test_serve_refuses_unusable_challenges(tmp_path, challenges, extra_env, message):
    config = tmp_path / "models.yaml"
    config.write_text(REGISTRY)
    path = tmp_path / "challenges.yaml"
    path.write_text(challenges)
    env = {
        "ARENA_DATA_DIR": str(tmp_path / "data"),
        "ARENA_DATABASE_URL": f"sqlite:///{tmp_path / 'arena.db'}",
        "ARENA_REDTEAM_CHALLENGES_PATH": str(path),
        **extra_env,
    }
    result = CliRunner().invoke(
        app, ["serve", "--config", str(config), "--port", "1"], env=env, catch_exceptions=False
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
