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
