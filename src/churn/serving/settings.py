"""The service's settings: environment variables, documented in the README."""

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from churn.core.errors import ChurnError


class Settings(BaseSettings):
    """Environment variables of the service (documented in the README)."""

    model_config = SettingsConfigDict(extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    model_ref: str | None = None  # e.g. churn-model@v1.0.0; default: the workspace model
    max_batch: int = Field(1000, ge=1)
    # Refused (413) before parsing; default: MAX_BATCH customers of 4 KiB each.
    max_body_bytes: int | None = Field(None, ge=1)
    cors_origins: list[str] = []
    params_file: str = "params.yaml"
    # Off by default: append this share of scored customers (features and probability)
    # as JSON lines to PREDICTION_LOG, which `make monitor INPUT=...` reads directly.
    prediction_log: str | None = None
    log_sample_rate: float = Field(0.0, ge=0.0, le=1.0)

    @property
    def body_limit(self) -> int:
        """The largest request body read, in bytes."""
        return self.max_body_bytes or 4096 * self.max_batch


def load_settings() -> Settings:
    """The settings from the environment; a bad value is one line naming the variable."""
    try:
        return Settings()
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "environment"
        raise ChurnError(f"{name}: {first['msg']} (got {first.get('input')!r})") from None
