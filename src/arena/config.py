"""The one settings object. Every knob reads from ``ARENA_*`` environment variables.

Apps and commands receive a ``Settings`` instance instead of reading the environment
themselves, so tests can build as many differently configured apps as they like.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


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

    def resolved_config_path(self) -> Path | None:
        """The model registry file: the configured path, else ./arena.yaml if it exists."""
        if self.config_path is not None:
            return self.config_path
        default = Path("arena.yaml")
        return default if default.exists() else None
