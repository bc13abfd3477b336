"""The one settings object: environment variables prefixed ``YIZHAN_``, plus ``DATABASE_URL``."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_RADIUS_M = 1000.0
"""The service radius, metres: the "one-kilometre" goal counties set. Defined here once."""
MAX_RADIUS_M = 50_000.0
"""The largest radius any analysis accepts, metres."""
DEFAULT_MAX_IMPORT_ROWS = 1_048_576
"""The most rows one station import reads from a file or sheet: Excel's own row limit, so any sheet Excel saves."""
DEFAULT_MAX_UNCOMPRESSED_MB = 1000.0
"""The most an XLSX workbook may unpack to, MB (all its archive members together): a guard against
decompression bombs, checked before a sheet is parsed."""
DEFAULT_MAX_DISTANCE_M = 3000.0
"""Farthest station a rider's nearest search lists by default, metres."""
WALK_KMH = 4.5
"""Walking speed the rider's minutes assume, km/h."""
RIDE_KMH = 15.0
"""Bike and e-bike speed the rider's minutes assume, km/h (a rider's e-bike in town traffic)."""
DEFAULT_TIMEZONE = "Asia/Shanghai"
"""Local time of opening hours and of the times printed in reports (IANA name)."""


def _default_data_dir() -> Path:
    """Where the embedded database and caches live when ``YIZHAN_DATA_DIR`` is not set.

    Root's home is not readable by the ``postgres`` user that runs the embedded server, so root gets
    ``/var/lib/yizhan``; everyone else ``$XDG_DATA_HOME/yizhan`` (``~/.local/share/yizhan``).
    """
    if os.geteuid() == 0:
        return Path("/var/lib/yizhan")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "yizhan"


DEFAULT_SHUTDOWN_GRACE_S = 10
"""Seconds a stopping server waits for requests in flight before cancelling them."""


class Settings(BaseSettings):
    """Runtime configuration. Every field can be set as ``YIZHAN_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="YIZHAN_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "YIZHAN_DATABASE_URL"),
        description="PostGIS server to use; without it yizhan runs its own embedded cluster.",
    )
    data_dir: Path = Field(default_factory=_default_data_dir, description="Embedded cluster, caches.")
    out_dir: Path = Field(default=Path("out"), description="Where maps and reports are written.")
    pg_port: int | None = Field(default=None, description="Port of the embedded cluster (default: a free one).")
    staff_key: SecretStr | None = Field(default=None, description="API key for staff endpoints (no default).")
    cors_origins: list[str] = Field(default_factory=list,
                                    description="Origins allowed to call the API from a browser (JSON list).")
    rate_limit_per_minute: int = Field(default=600, ge=0,
                                       description="Rider requests per client address and minute (0: no limit).")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of the reverse proxies whose X-Forwarded-For and "
                    "X-Forwarded-Proto `yizhan serve` believes (JSON list; '*' any); empty: none, the peer's "
                    "address is the client (as the rate limit counts it).")
    timezone: str = Field(default=DEFAULT_TIMEZONE, description="Local time of opening hours.")
    radius_m: float = Field(default=DEFAULT_RADIUS_M, gt=0, le=MAX_RADIUS_M, description="Service radius in metres.")
    max_snap_m: float = Field(default=300.0, gt=0, description="Farthest a point may lie from a street, metres.")
    cell_size_m: float = Field(default=200.0, ge=50, le=1000, description="Demand grid cell edge, metres.")
    max_k: int = Field(default=100, ge=1, description="Largest k the nearest-station endpoint accepts.")
    max_distance_m: float = Field(default=DEFAULT_MAX_DISTANCE_M, gt=0,
                                  description="Farthest station the nearest-station endpoint lists unless asked "
                                              "otherwise (max_distance_m), metres; beyond it the answer says so.")
    max_upload_mb: float = Field(default=50.0, gt=0, description="Largest station file the API accepts.")
    max_api_import_rows: int = Field(default=200_000, ge=1,
                                     description="Most station rows a file imported through the API may hold; "
                                                 "larger files go through `yizhan stations import`.")
    max_import_rows: int = Field(default=DEFAULT_MAX_IMPORT_ROWS, ge=1,
                                 description="Most rows a station import reads from one file or sheet.")
    max_uncompressed_mb: float = Field(default=DEFAULT_MAX_UNCOMPRESSED_MB, gt=0,
                                       description="Most MB an XLSX workbook may unpack to.")
    shutdown_grace_s: int = Field(default=DEFAULT_SHUTDOWN_GRACE_S, ge=1,
                                  description="`yizhan serve` on SIGTERM or Ctrl-C: longest wait for requests in "
                                              "flight before they are cancelled (an import is rolled back), "
                                              "whole seconds.")
    statement_timeout_ms: int = Field(default=15000, ge=100, description="Per-statement limit for API queries.")
    db_pool_size: int = Field(default=10, ge=1, le=200,
                              description="Connections of the API's async pool (nearest-station searches).")
    db_pool_timeout_s: float = Field(default=10.0, gt=0,
                                     description="Longest wait for a free pooled connection before a 503, seconds.")
    nearest_index_ttl_s: float = Field(default=2.0, ge=0,
                                       description="Nearest-station searches answer from an in-process index of the "
                                                   "active stations, at most this many seconds behind the registry "
                                                   "(0: always ask the database).")
    # the console's accounts (sign-in for staff and planners)
    session_idle_minutes: float = Field(default=120.0, gt=0,
                                        description="A console session ends after this many minutes unused.")
    session_max_hours: float = Field(default=12.0, gt=0,
                                     description="A console session ends this many hours after sign-in, used or not.")
    signin_window_minutes: float = Field(default=15.0, gt=0,
                                         description="The window in which failed sign-ins are counted.")
    signin_failures_per_account: int = Field(default=9, ge=1,
                                             description="Failed sign-ins to one account within the window before "
                                                         "further attempts are refused for the rest of it.")
    signin_failures_per_address: int = Field(default=30, ge=1,
                                             description="Failed sign-ins from one client address within the window "
                                                         "before further attempts from it are refused.")
    # coverage by hour of the week and capacity
    crowded_per_seat: float = Field(default=10.0, ge=0,
                                    description="Orders within reach per seat in a station's peak hour (of a typical "
                                                "week) above which a capacity run lists it as crowded.")
    # partitioned runs on Dask
    partition_workers: int = Field(default=2, ge=1, le=256,
                                   description="Worker processes of the local Dask cluster a partitioned run starts "
                                               "(one thread each; each may use the machine's memory divided by "
                                               "their number).")
    dask_scheduler: str | None = Field(default=None,
                                       description="Address of a running Dask scheduler (tcp://HOST:8786) that "
                                                   "partitioned runs use instead of starting a local cluster.")
    # the planners' map
    min_gap_demand: float = Field(default=5.0, ge=0,
                                  description="Unmet demand below which uncovered cells are not drawn or listed as a "
                                              "gap (same unit as the demand weights: orders).")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
