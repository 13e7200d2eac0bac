"""Settings every service has; each service subclasses with its own env prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings

from govshared.auth import ensure_dev_keypair


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
            "Database connections a process keeps open (half as many again in a burst): at least "
            "the requests one web process serves at once, or connections churn under load"
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
    db_retry_after_seconds: int = Field(
        default=2,
        ge=0,
        description="Retry-After of a 503 database_unavailable (and of /readyz when not ready)",
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
        default=None, description="kid of this service's key in the verifiers' JWKS (key rotation)"
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
        has_verifier = self.jwt_public_key_file or self.jwt_jwks_file or self.jwt_jwks_url
        if self.environment == "production":
            if not has_verifier:
                raise ValueError(
                    "production needs JWT_PUBLIC_KEY_FILE, JWT_JWKS_FILE or JWT_JWKS_URL"
                )
            if not self.service_private_key_file:
                raise ValueError("production needs SERVICE_PRIVATE_KEY_FILE")
            if self.database_url.startswith("sqlite"):
                raise ValueError("production needs a PostgreSQL DATABASE_URL")
        else:
            # Development: one key pair in the data folder signs and verifies everything.
            private, public = ensure_dev_keypair(self.data_dir / "keys")
            if not has_verifier:
                self.jwt_public_key_file = str(public)
            self.service_private_key_file = self.service_private_key_file or str(private)
        return self

    def default_db_name(self) -> str:
        """File name of the embedded SQLite database."""
        return "service.db"
