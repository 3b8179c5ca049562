"""The one settings object. Every knob reads from ``ARENA_*`` environment variables.

Apps and commands receive a ``Settings`` instance instead of reading the environment
themselves, so tests can build as many differently configured apps as they like.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TieModel = Literal["half", "davidson"]
IntervalMethod = Literal["bootstrap", "sandwich"]
Simultaneous = Literal["bonferroni", "chi2"]
Reweight = Literal["ipw"]
StyleNormalization = Literal["reference", "fastchat"]
# Leaderboard method settings and their allowed values (None: the "none" choice).
LEADERBOARD_CHOICES: dict[str, tuple[str | None, ...]] = {
    "leaderboard_ties": get_args(TieModel),
    "leaderboard_ci": get_args(IntervalMethod),
    "leaderboard_simultaneous": (None, *get_args(Simultaneous)),
    "leaderboard_reweight": (None, *get_args(Reweight)),
    "leaderboard_style_normalization": get_args(StyleNormalization),
}


def _env_name(info: ValidationInfo) -> str:
    return f"ARENA_{str(info.field_name).upper()}"


def _listed(choices: tuple[str | None, ...]) -> str:
    return ", ".join(c or "none" for c in choices)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARENA_", env_file=None, extra="ignore")

    # Where things live.
    data_dir: Path = Field(
        default=Path("arena-data"), description="SQLite file, images, artifacts."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; defaults to a SQLite file under data_dir.",
    )
    config_path: Path | None = Field(
        default=None, description="Model registry YAML; defaults to ./arena.yaml when present."
    )

    # Network.
    host: str = "127.0.0.1"
    port: int = 8000

    # Upstream calls.
    request_timeout_s: float = Field(default=600.0, description="Whole-request upstream limit.")
    connect_timeout_s: float = 10.0
    first_token_timeout_s: float = Field(default=120.0, description="Limit to the first byte.")
    stream_idle_timeout_s: float = Field(default=60.0, description="Limit between stream chunks.")
    max_request_bytes: int = 10 * 1024 * 1024

    # Workers.
    heartbeat_interval_s: float = 15.0
    heartbeat_expiry_s: float = 45.0
    dispatch_policy: str = Field(
        default="shortest_queue", pattern="^(shortest_queue|weighted_random)$"
    )
    worker_secret: str | None = Field(
        default=None, description="Shared secret workers present to register with the gateway."
    )
    # NoDecode: the environment gives "model=ENV_VAR,other=ENV_VAR2", not JSON.
    worker_upstream_keys: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Per model, the environment variable holding the API key the gateway "
        "sends to registered OpenAI-compatible upstreams of that model; workers never choose it.",
    )
    worker_allow_link_local: bool = Field(
        default=False,
        description="Accept worker URLs on link-local and cloud metadata addresses.",
    )

    # Gateway keys and limits.
    redis_url: str | None = Field(
        default=None, description="Shared rate-limit counters (redis://...); in-memory if unset."
    )
    key_cache_ttl_s: float = Field(
        default=5.0, ge=0, description="How long an API key lookup is cached (revocation delay)."
    )
    metrics_token: str | None = Field(
        default=None,
        description="A bearer token that may read /metrics (for a Prometheus scraper) besides "
        "API keys; once set, /metrics needs it or a key even on a gateway without keys.",
    )

    # Arena web limits; rates use the `limits` notation ("10/minute;100/hour").
    max_input_chars: int = Field(default=16_000, ge=1)
    max_turns: int = Field(default=10, ge=1)
    session_ttl_s: float = Field(default=24 * 3600.0, gt=0)
    requests_per_session: str = "20/minute;300/hour"
    requests_per_ip: str = "60/minute;1000/hour"
    votes_per_session: str = "10/minute;100/hour"
    votes_per_ip: str = "30/minute;300/hour"
    uploads_per_session: str = "10/minute;100/hour"
    uploads_per_ip: str = "30/minute;300/hour"
    image_max_pixels: int = Field(
        default=24_000_000,
        ge=1,
        description="Pixels an uploaded image may decode to (read from its header first; "
        "larger ones are refused with 413 before decoding).",
    )
    image_decode_concurrency: int = Field(
        default=2, ge=1, description="Uploaded images decoded at once per process."
    )
    blocked_words_path: Path | None = Field(
        default=None, description="Moderation word list (one word or phrase per line)."
    )
    leaderboard_refresh_s: float = Field(
        default=30.0,
        ge=0,
        description="Least time between leaderboard recomputations as votes arrive.",
    )
    leaderboard_rounds: int = Field(
        default=200, ge=10, description="Bootstrap rounds of the live leaderboard."
    )
    # How the live leaderboard is computed (see arena.leaderboard.compute.RatingSettings).
    leaderboard_ties: TieModel = Field(
        default="half", description="Ties: half a win each (`half`) or the `davidson` model."
    )
    leaderboard_ci: IntervalMethod = Field(
        default="bootstrap", description="Intervals: `bootstrap` or `sandwich` (model-based)."
    )
    leaderboard_simultaneous: Simultaneous | None = Field(
        default=None,
        description="Intervals for all models at once: `bonferroni`, `chi2`, or none.",
    )
    leaderboard_reweight: Reweight | None = Field(
        default=None, description="Reweight votes by inverse sampling probability (`ipw`)."
    )
    leaderboard_style_normalization: StyleNormalization = Field(
        default="reference", description="Style features normalised as `reference` or `fastchat`."
    )
    leaderboard_min_battles: int = Field(
        default=300, ge=0, description="Models with fewer battles are preliminary (unranked)."
    )
    leaderboard_elo: bool = Field(
        default=False, description="Also show online Elo with a bootstrap interval."
    )
    leaderboard_votes_needed_width: float | None = Field(
        default=None,
        gt=0,
        description="Interval width to estimate each model's votes needed for; unset for none.",
    )
    judge_results_dir: Path | None = Field(
        default=None,
        description="Folder of `arena judge show --json` reports whose MT-Bench and "
        "Arena-Hard scores the leaderboard shows beside the arena rating; defaults to "
        "data_dir/judge.",
    )
    redteam_challenges_path: Path | None = Field(
        default=None,
        description="Red-team challenges YAML (the /redteam game); unset: the built-in demo "
        "challenges when only demo models run, else no game.",
    )
    redteam_judge_model: str | None = Field(
        default=None,
        description="Registry model that decides judge-goal challenges; challenges of that "
        "kind are left out of the game without one.",
    )
    redteam_preliminary_rounds: int = Field(
        default=10,
        ge=1,
        description="Red-team boards mark a player, model or challenge with fewer rated rounds "
        "than this as preliminary.",
    )
    pair_sampling: str = Field(
        default="weighted",
        pattern="^(weighted|active)$",
        description="How anonymous pairs are drawn: registry weights, or the pair that most "
        "shrinks the live leaderboard's uncertainty (weighted until a leaderboard exists).",
    )
    active_exploration: float = Field(
        default=0.05, ge=0, le=1, description="Share of uniform draws in active sampling."
    )
    health_interval_s: float = Field(
        default=30.0, gt=0, description="How often every arena model's health is probed."
    )
    health_timeout_s: float = Field(
        default=10.0, gt=0, description="How long one health probe may take."
    )
    db_concurrency: int = Field(
        default=4,
        ge=1,
        description="Arena database calls in flight per process (votes go first); SQLite "
        "writes are always one at a time.",
    )

    # Security.
    secret_key: str | None = Field(
        default=None, description="Signs sessions and salts hashed IPs; generated under data_dir."
    )
    secure_cookies: bool = Field(
        default=False,
        description="Mark the arena's cookies Secure (set it when clients reach Arena over "
        "HTTPS, directly or through a TLS-terminating proxy).",
    )
    # NoDecode: the environment gives "10.0.0.1, 10.1.0.0/16", not JSON.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Proxies whose X-Forwarded-For is believed."
    )

    # The embedded default registry (no registry file): these Hub models, run locally, when
    # the local extra is installed and each is cached or the Hub answers; "" for none.
    default_hub_models: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "Qwen/Qwen2.5-0.5B-Instruct",
            "HuggingFaceTB/SmolLM2-360M-Instruct",
        ],
        description="Hub ids of the small instruct models the default registry offers.",
    )

    @field_validator("trusted_proxies", "default_hub_models", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator(*LEADERBOARD_CHOICES, mode="before")
    @classmethod
    def _leaderboard_choice(cls, value: object, info: ValidationInfo) -> object:
        choices = LEADERBOARD_CHOICES[str(info.field_name)]
        if value is None or not isinstance(value, str):
            if value is None and None in choices:
                return None
            raise ValueError(f"{_env_name(info)} must be one of {_listed(choices)}")
        text = value.strip().lower()
        if text in ("", "none") and None in choices:
            return None
        if text not in choices:
            raise ValueError(f"{_env_name(info)} must be one of {_listed(choices)}, not {value!r}")
        return text

    @field_validator("leaderboard_votes_needed_width", mode="before")
    @classmethod
    def _unset_width(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None
        return value

    @field_validator("worker_upstream_keys", mode="before")
    @classmethod
    def _split_model_envs(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        pairs: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in value.split(","))):
            model, sep, env = part.rpartition("=")
            if not sep or not model.strip() or not env.strip():
                raise ValueError(f"{part!r} is not MODEL=ENV_VAR")
            pairs[model.strip()] = env.strip()
        return pairs

    @field_validator("worker_upstream_keys")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for model, env in value.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
                raise ValueError(f"{env!r} (for {model!r}) is not an environment variable name")
        return value

    def resolved_database_url(self) -> str:
        """The database URL to use: the configured one or the SQLite file under data_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'arena.db').resolve()}"

    def resolved_judge_results_dir(self) -> Path:
        """The folder of judge reports: the configured one or ``data_dir/judge``."""
        return self.judge_results_dir or self.data_dir / "judge"

    def resolved_config_path(self) -> Path | None:
        """The model registry file: the configured path, else ./arena.yaml if it exists."""
        if self.config_path is not None:
            return self.config_path
        default = Path("arena.yaml")
        return default if default.exists() else None


def database_url_or_default(database_url: str | None) -> str:
    """A command's ``--database-url`` when given, else the database ``arena serve`` uses."""
    return database_url or Settings().resolved_database_url()
