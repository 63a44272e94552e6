"""Configuration, read from LANDMARK_* environment variables (and a .env file)."""

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LANDMARK_", env_file=".env", extra="ignore")

    # Empty: an embedded SQLite file under var_dir. Else e.g. postgresql+asyncpg://u@host/db.
    database_url: str = ""
    var_dir: Path = Path("var")
    # The public URL clients reach this server at (token issuer, LeanIX instanceUrl, links).
    base_url: str = "http://127.0.0.1:8000"

    max_body_bytes: int = 10 * 1024 * 1024
    import_max_bytes: int = 100 * 1024 * 1024  # POST /v1/import only (CSV files)
    csrf_protection: bool = True

    # Credentials
    token_pepper: str = ""  # keyed hash of tokens; generated and kept in var_dir when empty
    access_token_seconds: int = 300  # JWTs from /oauth/token (XClarity One: 5 minutes)
    mtm_token_seconds: int = 3599  # JWTs from the LeanIX MTM token endpoint
    api_key_secret_days: int = 182  # an API key's secret expires 6 months after it is issued
    token_max_days: int = 366
    token_idle_days: int = 90  # a personal token unused this long expires
    auth_cache_seconds: float = 2.0  # how long a process trusts a checked credential
    lockout_attempts: int = 5
    lockout_seconds: int = 300

    # Rate limits per credential; accounts may override both.
    rate_limit: int = 1800
    rate_limit_window: int = 60
    redis_url: str = ""

    # Background work (core/jobs.py). Each server process runs a worker loop unless turned off;
    # `landmark worker` runs more of them as separate processes.
    worker_in_process: bool = True
    worker_poll_seconds: float = 1.0
    worker_lease_seconds: int = 60  # a job whose worker is silent this long is taken again
    worker_concurrency: int = 1  # jobs one worker loop runs at once
    job_retry_seconds: int = 30  # backoff after a failed attempt: 30 s, 60 s, 120 s, ...
    job_retry_max_seconds: int = 3600
    job_retention_days: int = 30  # jobs.purge deletes finished jobs older than this
    archive_retention_days: int = 90  # eam.purge_archived deletes fact sheets archived longer

    # Webhooks (webhooks/). Targets on internal addresses are refused unless listed here
    # (comma-separated host names, IP addresses or CIDR networks, e.g. "127.0.0.1,10.0.0.0/8").
    webhook_allowed_hosts: str = ""
    webhook_retry_seconds: float = 50.0  # a failing subscription is retried this often
    webhook_connect_timeout_seconds: float = 3.0
    webhook_timeout_seconds: float = 10.0  # the whole attempt, answer included
    webhook_response_max_bytes: int = 8192  # read and kept of an answer
    webhook_max_connections: int = 256  # one worker's connection pool, all targets
    webhook_target_concurrency: int = 32  # requests one worker has in flight per subscription
    webhook_in_flight: int = 512  # requests one worker has in flight in all
    webhook_claim_batch: int = 256  # deliveries claimed per statement
    webhook_fanout_batch: int = 1000  # events fanned out per transaction
    webhook_poll_seconds: float = 0.05  # how often a worker looks for new events and deliveries
    webhook_lease_seconds: int = 60  # a claimed delivery is taken again after this long
    webhook_event_retention_days: int = 30  # PULL events and the deliveries log

    log_level: str = "INFO"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+asyncpg://" + url.split("://", 1)[1]
            return url
        self.var_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{(self.var_dir / 'landmark.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
