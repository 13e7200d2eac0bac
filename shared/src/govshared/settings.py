"""Settings every service has; each service subclasses with its own env prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings

from govshared.auth import (
    DEFAULT_SERVICE_ISSUER,
    DEV_IDP_KEY,
    DEV_SERVICE_KEY,
    ensure_dev_keypair,
    is_dev_key_file,
)


class CommonSettings(BaseSettings):
    """12-factor settings shared by the three services (prefix set by each subclass)."""

    environment: Literal["development", "production", "test"] = "development"
    data_dir: Path = Field(
        default=Path("data"), description="Local data folder (SQLite, keys, files)"
    )
    database_url: str = Field(
        default="", description="sqlalchemy async URL; SQLite in data_dir if empty"
    )
    db_pool_size: int = Field(
        default=20,
        ge=1,
        description=(
            "Database connections a process keeps open, and half as many again in a burst (each "
            "opened when first needed, then kept): at least the requests one web process serves "
            "at once, or requests wait for a connection under load"
        ),
    )
    db_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description=(
            "Longest a request waits to open a database connection or get a free one from the "
            "pool before it answers 503 database_unavailable"
        ),
    )
    db_statement_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Longest a statement waits for the database's answer before the request answers 503 "
            "database_unavailable (a network partition gives no other sign); the server ends a "
            "session idle inside a transaction for twice this, at least 60 s (PostgreSQL)"
        ),
    )
    db_retry_after_seconds: int = Field(
        default=2,
        ge=0,
        description="Retry-After of a 503 database_unavailable (and of /readyz when not ready)",
    )
    sql_on_driver: bool = Field(
        default=True,
        description=(
            "Send the hot paths' statements straight to asyncpg (govshared.sql); false runs them "
            "through SQLAlchemy's session.execute: slower, same result"
        ),
    )
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = True
    cors_origins: list[str] = Field(default_factory=list)
    jwt_public_key_file: str | None = Field(default=None, description="PEM public key of the IdP")
    jwt_jwks_file: str | None = None
    jwt_jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    service_private_key_file: str | None = Field(
        default=None, description="PEM private key this service signs its service tokens with"
    )
    service_key_id: str | None = Field(
        default=None,
        description="kid of this service's key in the verifiers' JWKS, <service>-<generation>: "
        "it binds the key to this service (required in production)",
    )
    service_jwt_keys_file: str | None = Field(
        default=None,
        description=(
            "PEM public key or JWKS of the services' keys: the only keys trusted for role=service "
            "(the IdP's keys are trusted for enterprise and staff roles only)"
        ),
    )
    service_token_issuer: str = Field(
        default=DEFAULT_SERVICE_ISSUER,
        min_length=1,
        description="iss of service tokens: what this service's tokens carry and the services' keys assert",
    )
    jwt_max_lifetime_seconds: int = Field(
        default=12 * 3600,
        ge=60,
        description="Longest token lifetime accepted (exp − iat, and exp − now)",
    )
    max_header_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        description="Largest request line and headers together (431 beyond; uvicorn h11 limit too)",
    )
    max_json_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body that is not a multipart upload (413 beyond, before reading)",
    )
    migrate_on_start: bool = Field(
        default=True, description="Apply migrations at start (embedded); production runs a Job"
    )
    worker_metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port where a worker process serves /metrics (0: none; web serves its own)",
    )
    run_workers: bool = Field(default=True, description="Run relay and timers in the web process")
    relay_poll_seconds: float = Field(
        default=0.2,
        description="Relay poll interval (an in-process relay is also woken by each commit)",
    )
    wake_min_interval_seconds: float = Field(
        default=0.01,
        ge=0,
        le=1.0,
        description=(
            "PostgreSQL: shortest time between two NOTIFYs a web process sends its workers after "
            "commits (commits in between share the next; one after a quiet spell goes at once)"
        ),
    )
    relay_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description=(
            "How long a relay's claim on outbox rows lasts: a relay that dies mid-delivery leaves "
            "them to another for this long; at least twice the HTTP timeout"
        ),
    )
    relay_probe_max_seconds: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Longest pause of deliveries to a neighbour that fails before one probe tries it again "
            "(the pause doubles from 0.5 s up to this)"
        ),
    )
    http_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Timeout of each phase of a call to another service"
    )

    @model_validator(mode="after")
    def _defaults(self) -> CommonSettings:
        if self.relay_lease_seconds < 2 * self.http_timeout_seconds:
            # A relay gives each post at most half its lease; a lease shorter than that would let
            # another relay take rows still being delivered (a duplicate, which inboxes absorb,
            # but also wasted work on every slow neighbour).
            raise ValueError("RELAY_LEASE_SECONDS must be at least twice HTTP_TIMEOUT_SECONDS")
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / self.default_db_name()}"
        if self.environment == "production":
            refuse_unsafe_production(self)
        else:
            # Development: a key pair of the identity provider (enterprise and staff tokens) and
            # one of the services (service tokens), each trusted only for what it mints.
            # Made only where a setting leaves one out (an RSA key takes a while to generate).
            if not (self.jwt_public_key_file or self.jwt_jwks_file or self.jwt_jwks_url):
                _, idp_public = ensure_dev_keypair(self.data_dir / "keys", DEV_IDP_KEY)
                self.jwt_public_key_file = str(idp_public)
            if not (self.service_private_key_file and self.service_jwt_keys_file):
                service_private, service_public = ensure_dev_keypair(
                    self.data_dir / "keys", DEV_SERVICE_KEY
                )
                self.service_private_key_file = self.service_private_key_file or str(
                    service_private
                )
                self.service_jwt_keys_file = self.service_jwt_keys_file or str(service_public)
        return self

    def default_db_name(self) -> str:
        """File name of the embedded SQLite database."""
        return "service.db"


def refuse_unsafe_production(settings: CommonSettings) -> None:
    """Refuse, at start-up, settings that are safe in development only (``ValueError`` naming one).

    The development key pairs (anyone with a checkout can mint any token with them), a JWKS fetched
    over plain http (anyone on the path can swap the keys), CORS open to every origin, and tokens
    whose issuer and audience go unchecked (a token for another system would be accepted).
    """
    if not (settings.jwt_public_key_file or settings.jwt_jwks_file or settings.jwt_jwks_url):
        raise ValueError("production needs JWT_PUBLIC_KEY_FILE, JWT_JWKS_FILE or JWT_JWKS_URL")
    if not settings.service_private_key_file:
        raise ValueError("production needs SERVICE_PRIVATE_KEY_FILE")
    if not settings.service_jwt_keys_file:
        raise ValueError("production needs SERVICE_JWT_KEYS_FILE (the services' public keys)")
    if settings.database_url.startswith("sqlite"):
        raise ValueError("production needs a PostgreSQL DATABASE_URL")
    for name in (
        "jwt_public_key_file",
        "jwt_jwks_file",
        "service_private_key_file",
        "service_jwt_keys_file",
    ):
        if is_dev_key_file(getattr(settings, name)):
            raise ValueError(f"production refuses the development key {getattr(settings, name)}")
    if settings.jwt_jwks_url and not settings.jwt_jwks_url.lower().startswith("https://"):
        raise ValueError("production needs JWT_JWKS_URL over https")
    if "*" in settings.cors_origins:
        raise ValueError('production refuses CORS_ORIGINS=["*"]: list the portal\'s origins')
    if not settings.jwt_issuer or not settings.jwt_audience:
        raise ValueError("production needs JWT_ISSUER and JWT_AUDIENCE")
