"""Config of the bandit stage: the online creative selector, its state store and its simulation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class SimulateConfig:
    """``caig bandit simulate``: TS with priors vs TS without vs MABWiser's TS on the same simulated traffic."""

    n_impressions: int = 100_000  # simulated impressions, drawn over products and segments like the logs
    batch_size: int = 200  # impressions served between posterior updates (delayed feedback, as in ad serving)
    prior_strength: float = 50.0  # pseudo-impressions behind an empirical-Bayes prior (how sure the "RM" is)
    shrinkage: float = (
        200.0  # pseudo-impressions pulling each creative's logged CTR towards its product's mean
    )
    history_fraction: float = 0.1  # share of the world's logged events the empirical-Bayes priors may see
    seed: int = 0  # seed of the traffic, of the clicks and of every policy's draws

    def __post_init__(self) -> None:
        if self.n_impressions < 1 or self.batch_size < 1:
            raise ValueError("n_impressions and batch_size must be positive")
        if self.prior_strength <= 0 or self.shrinkage < 0:
            raise ValueError("prior_strength must be > 0 and shrinkage >= 0")
        if not 0 < self.history_fraction <= 1:
            raise ValueError("history_fraction must be in (0, 1]")


@dataclass
class BanditConfig:
    """The creative selector: Thompson sampling per (product, segment) on Beta posteriors with RM priors.

    Paths are relative to the run directory given to ``caig serve selector --run DIR`` unless absolute.
    """

    store: Literal["sqlite", "redis"] = "sqlite"  # where counts and seen event ids live
    sqlite_path: str = "bandit/state.sqlite"  # SQLite state file (store: sqlite)
    redis_url: str = "redis://127.0.0.1:6379/0"  # Redis server shared by every replica (store: redis)
    redis_prefix: str = "caig:bandit:"  # prefix of every Redis key this selector writes
    redis_username: str = ""  # Redis ACL user (store: redis); empty: the default user
    redis_password_env: str = ""  # NAME of the environment variable holding the Redis password (a Secret
    # mounted as env, e.g. CAIG_REDIS_PASSWORD); empty: no password. TLS: a rediss:// redis_url
    dedupe_window_s: float = 7 * 86400.0  # store redis: a repeated event_id within this many seconds of the
    # first is a duplicate; later it counts again. Wider than any feedback delay; bounds Redis memory
    feedback_log_maxlen: int = 1_000_000  # store redis: feedback-log stream entries kept (newest; ~ trim)
    store_timeout_s: float = 0.5  # Redis connect and socket timeout: past it a request answers 503
    refresh_ms: float = 200.0  # store redis: selections read counts from a per-replica snapshot refreshed
    # in the background this often (feedback from any replica shows within about it); 0: read Redis per selection
    retry_after_s: int = 1  # Retry-After of a 503 while the store is unavailable; the store is not
    # asked again before it has passed (readiness reports false meanwhile)
    provider: Literal["parquet", "feast"] = (
        "parquet"  # candidates and priors: parquet files or Feast (features.*)
    )
    feast_cache_seconds: float = (
        30.0  # provider feast: reuse a product's candidates this long (0: every request)
    )
    catalog_path: str = "world/catalog.parquet"  # products (provider: parquet)
    creatives_path: str = "world/creatives.parquet"  # creatives per product (provider: parquet)
    priors_path: str = "features/rm_priors.parquet"  # RM priors per creative; missing -> Beta(1, 1) priors
    segments: list[str] = field(
        default_factory=lambda: ["young", "family", "professional", "senior"]
    )  # [] = any
    propensity_samples: int = (
        1000  # Monte Carlo draws estimating P(TS picks the chosen arm), cached per state
    )
    propensity_cache: int = 100_000  # posterior states whose propensities are kept in memory
    seed: int | None = None  # seed of the selector's draws; null for fresh entropy per process
    host: str = "127.0.0.1"  # address `caig serve selector` binds; 0.0.0.0 inside a container
    simulate: SimulateConfig = field(default_factory=SimulateConfig)  # caig bandit simulate

    def __post_init__(self) -> None:
        if self.propensity_samples < 10:
            raise ValueError("propensity_samples must be at least 10")
        if self.store_timeout_s <= 0 or self.retry_after_s < 1:
            raise ValueError("store_timeout_s must be > 0 and retry_after_s >= 1")
        if not 0 <= self.refresh_ms < float("inf"):  # also rejects NaN
            raise ValueError(
                "refresh_ms must be finite and >= 0 (milliseconds between refreshes of the replica's "
                "counts snapshot; 0 reads Redis on every selection), e.g. 200"
            )
        if self.feast_cache_seconds < 0:
            raise ValueError("feast_cache_seconds must be >= 0")
        if self.propensity_cache < 0:
            raise ValueError("propensity_cache must be >= 0")
        if not self.redis_prefix:
            raise ValueError("redis_prefix must not be empty (several selectors may share one Redis)")
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                f"redis_url '{self.redis_url}' must start with redis://, rediss:// (TLS) or unix://"
            )
        if self.redis_password_env and not _ENV_NAME.match(self.redis_password_env):
            raise ValueError(
                f"redis_password_env '{self.redis_password_env}' must be the NAME of an environment "
                "variable (letters, digits, '_'), e.g. CAIG_REDIS_PASSWORD, not the password itself"
            )
        if not 0 < self.dedupe_window_s < float("inf"):  # also rejects NaN
            raise ValueError(
                "dedupe_window_s must be finite and > 0 (seconds a repeated event_id is a duplicate); "
                "make it wider than any feedback delay, e.g. 604800 (7 days)"
            )
        if self.feedback_log_maxlen < 1:
            raise ValueError("feedback_log_maxlen must be >= 1 (feedback-log entries Redis keeps)")
        if len(set(self.segments)) != len(self.segments):
            raise ValueError("segments must not repeat")
