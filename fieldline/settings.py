"""Every FIELDLINE_* environment variable, typed and validated in one place.

Each package reads its settings from here through `get_settings()`; nothing else looks at
`os.environ` for configuration, so the README table and this class cannot drift apart.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(Exception):
    """A FIELDLINE_* variable has a value Fieldline cannot use."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FIELDLINE_", extra="ignore", frozen=True)

    database_url: str = "postgresql+psycopg://localhost/fieldline"
    test_database_url: str = "postgresql+psycopg://localhost/fieldline_test"
    redis_url: str = "redis://localhost:6379/0"
    mqtt_url: str = "mqtt://localhost:1883"

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    web_workers: Annotated[int, Field(ge=1, le=64)] = 2
    web_threads: Annotated[int, Field(ge=1, le=64)] = 4

    # The utility's own projected CRS, offered next to WGS 84 and Web Mercator.
    local_crs: str = "EPSG:3067"
    page_size: Annotated[int, Field(ge=1, le=10_000)] = 100
    max_page_size: Annotated[int, Field(ge=1, le=100_000)] = 10_000
    max_radius_m: Annotated[float, Field(gt=0)] = 50_000.0
    max_nearest_k: Annotated[int, Field(ge=1)] = 1_000
    max_request_bytes: Annotated[int, Field(ge=1024)] = 10 * 1024 * 1024
    # Files uploaded to /api/v1/imports (a utility's GeoPackage is larger than any API body).
    max_upload_bytes: Annotated[int, Field(ge=1024)] = 200 * 1024 * 1024

    log_level: str = "INFO"
    # Role of a request that carries no credentials (the local operator until sign-in exists).
    anonymous_role: str = "admin"

    @field_validator("database_url", "test_database_url")
    @classmethod
    def _postgres_only(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgresql+psycopg://")):
            raise ValueError("must be a postgresql:// or postgresql+psycopg:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_scheme(cls, value: str) -> str:
        if not value.startswith(("mqtt://", "mqtts://")):
            raise ValueError("must be an mqtt:// or mqtts:// URL")
        return value

    @field_validator("local_crs")
    @classmethod
    def _known_crs(cls, value: str) -> str:
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        try:
            CRS.from_user_input(value)
        except CRSError as exc:
            raise ValueError(f"unknown coordinate reference system: {exc}") from exc
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value

    @field_validator("anonymous_role")
    @classmethod
    def _role(cls, value: str) -> str:
        from fieldline.roles import ROLES

        if value not in ROLES:
            raise ValueError("must be one of " + ", ".join(ROLES))
        return value

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the psycopg 3 driver named, as SQLAlchemy needs it."""
        return to_sqlalchemy_url(self.database_url)


def to_sqlalchemy_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def load_settings(**overrides: object) -> Settings:
    """Read the environment; a bad value raises SettingsError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            problems.append(f"FIELDLINE_{field.upper()}: {error['msg']}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
