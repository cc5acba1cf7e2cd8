"""The service's settings: environment variables, documented in the README."""

import os
import re
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from churn.core.errors import ChurnError, clip


class Settings(BaseSettings):
    """Environment variables of the service (documented in the README)."""

    model_config = SettingsConfigDict(extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    model_ref: str | None = None  # e.g. churn-model@v1.0.0; default: the workspace model
    # Bounded: a list length limit must fit the parsers' sizes (and a batch, memory).
    max_batch: int = Field(1000, ge=1, le=1_000_000)
    # Refused (413) before parsing; default: MAX_BATCH customers of 4 KiB each.
    max_body_bytes: int | None = Field(None, ge=1)
    cors_origins: list[str] = []
    params_file: str = Field("params.yaml", min_length=1)  # "" would be the directory "."
    # Off by default: append this share of scored customers (features and probability)
    # as JSON lines to PREDICTION_LOG, which `make monitor INPUT=...` reads directly.
    prediction_log: str | None = None
    log_sample_rate: float = Field(0.0, ge=0.0, le=1.0)
    # Limits against hostile or careless clients (README, "Serving the model").
    max_errors: int = Field(20, ge=1)  # per-field 422 entries listed; the rest only counted
    max_header_bytes: int = Field(32 * 1024, ge=1024)  # request line + headers, else 431
    # Seconds to receive a request's line + headers, then its body (else 408); inf would
    # turn the deadline off, and 1e-300 close every connection before its first byte.
    header_timeout: float = Field(10.0, ge=0.1, allow_inf_nan=False)
    body_timeout: float = Field(30.0, ge=0.1, allow_inf_nan=False)
    keepalive_timeout: int = Field(5, ge=1)  # seconds an idle keep-alive connection stays open
    max_concurrent: int = Field(16, ge=1)  # predictions in flight; beyond, 503 + Retry-After
    max_connections: int = Field(1000, ge=1)  # open connections; beyond, new ones are closed

    @property
    def body_limit(self) -> int:
        """The largest request body read, in bytes."""
        return self.max_body_bytes or 4096 * self.max_batch


def load_settings() -> Settings:
    """The settings from the environment; a bad value is one line naming the variable."""
    try:
        settings = Settings()
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "environment"
        raise ChurnError(f"{name}: {first['msg']} (got {clip(repr(first.get('input')))})") from None
    except SettingsError as err:  # a list setting that is not a JSON list
        found = re.search(r'field "(\w+)"', str(err))
        name = found.group(1).upper() if found else "environment"
        got = clip(repr(os.environ.get(name, "")))
        raise ChurnError(f"{name}: not a JSON list of strings (got {got})") from None
    check_prediction_log(settings)
    return settings


def check_prediction_log(settings: Settings) -> None:
    """PREDICTION_LOG, when sampling is on, must be a file the service can append to."""
    named = bool((settings.prediction_log or "").strip())
    if named and "log_sample_rate" not in settings.model_fields_set:
        # A log named and no rate (0 by default): the log would silently stay empty.
        raise ChurnError(
            "PREDICTION_LOG is set but LOG_SAMPLE_RATE is not (0, nothing logged, by default): "
            "set LOG_SAMPLE_RATE, 1 to log every customer"
        )
    if settings.log_sample_rate <= 0:
        return
    if not named:
        # Sampling into nothing: the log a user expects would silently stay empty.
        raise ChurnError(
            f"LOG_SAMPLE_RATE={settings.log_sample_rate:g} needs PREDICTION_LOG, the file to "
            f"append the sampled predictions to (got {settings.prediction_log!r})"
        )
    path = Path(settings.prediction_log)
    if path.exists() and not path.is_file():  # a FIFO's open waits for a reader: start-up hung
        raise ChurnError(f"PREDICTION_LOG: {path} is not a regular file")
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as err:
        raise ChurnError(f"PREDICTION_LOG: cannot append to {path} ({err.strerror})") from None
