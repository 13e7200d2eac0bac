"""License settings, read from ``LICENSE_*`` environment variables."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from govshared.seal.production import refuse_dev_seal
from govshared.settings import CommonSettings

LateRenewal = Literal["decide_without_deemed_renewal", "refuse"]


class Settings(CommonSettings):
    """Settings of the license service."""

    model_config = SettingsConfigDict(env_prefix="LICENSE_", env_file=None, extra="ignore")

    port: int = 8002
    migrate_on_start: bool = Field(default=True, description="Apply migrations before serving")
    load_demo_catalogue: bool = Field(
        default=True, description="Load the shipped reform catalogue and licence types at start"
    )
    notify_events_url: str = Field(
        default="http://127.0.0.1:8003/api/v1/events", description="Where the relay posts events"
    )
    approval_url: str = Field(
        default="http://127.0.0.1:8001",
        description="Approval's base URL: issuance is reported back to it (Art. 44); empty: never",
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8002",
        description=(
            "Public address of this service (the gateway in production): certificates' QR codes "
            "and verification links start with it"
        ),
    )
    timer_poll_seconds: float = Field(default=60.0, description="How often the licence timers run")
    calendar_refresh_seconds: float = Field(
        default=3600.0,
        gt=0,
        description=(
            "How often the workers fetch this and next year's official holiday schedules (调休 "
            "included) from approval's public calendar (a minute after a failed fetch); every "
            "process re-reads the ones kept each minute"
        ),
    )
    renewal_lead_days: int = Field(
        default=30,
        ge=0,
        description="Art. 50: renewal is applied for no later than this many days before expiry "
        "(届满三十日前; a law, regulation or rule may set another figure)",
    )
    late_renewal: LateRenewal = Field(
        default="decide_without_deemed_renewal",
        description="A renewal applied for later than that: decide_without_deemed_renewal (the "
        "authority may still decide it before expiry, but Art. 50's deemed renewal does not "
        "protect it) or refuse",
    )
    renewal_reminder_days: list[int] = Field(
        default_factory=lambda: [90, 45],
        description="Days before expiry a renewal reminder goes out (before the last day to apply)",
    )
    commitment_verification_days: int = Field(
        default=60, description="Days after a commitment grant by which it is verified (核查)"
    )
    commitment_on_site_share: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="Share of commitment grants drawn for on-site checks",
    )
    inspectors: list[str] = Field(
        default_factory=lambda: [
            "执法人员甲",
            "执法人员乙",
            "执法人员丙",
            "执法人员丁",
            "执法人员戊",
        ],
        description="Pool from which two inspectors are drawn at random (双随机)",
    )
    inspection_ratios: dict[str, float] = Field(
        default_factory=lambda: {"A": 0.03, "B": 0.05, "C": 0.15, "D": 0.4},
        description="双随机: default sampling ratio per 信用风险分类 A (低) … D (高), higher risk "
        "never lower; a plan may set its own",
    )
    inspection_due_working_days: int = Field(
        default=20,
        ge=1,
        le=120,
        description="Working days from the draw to an inspection's due date",
    )
    inspection_publication_working_days: int = Field(
        default=20,
        ge=0,
        le=20,
        description="一公开: a result is public within this many working days of the inspection "
        "(at most 20); license publishes it when it is recorded",
    )
    reinspection_working_days: int = Field(
        default=5, ge=1, le=60, description="Working days after a 限期整改 deadline to re-inspect"
    )

    max_upload_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1, description="Largest PDF the public verification accepts"
    )
    storage_backend: str = Field(
        default="filesystem",
        pattern="^(filesystem|s3)$",
        description="Where sealed certificates are kept: filesystem (data_dir/certificates) or s3",
    )
    s3_endpoint: str | None = Field(default=None, description="S3-compatible endpoint URL")
    s3_bucket: str = Field(default="license-certificates", description="Bucket of certificates")
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str = "cn-east-1"
    sealer_poll_seconds: float = Field(
        default=0.5, gt=0, description="How often the sealer looks for certificates to seal"
    )
    sealer_batch_size: int = Field(
        default=20, ge=1, le=500, description="Certificates sealed per transaction by the sealer"
    )
    seal_backend: str = Field(
        default="local",
        pattern="^(local|http)$",
        description="Who signs certificates: local (SM2 key file) or http (external seal service)",
    )
    seal_private_key_file: str | None = Field(
        default=None,
        description="SM2 private key (hex) for the local backend; a dev key is made if unset",
    )
    seal_id: str = Field(
        default="DEV-SEAL-LICENSE-0001",
        description="印章编码 of the configured seal (key file or seal service)",
    )
    seal_authority: str = Field(
        default="上海市浦东新区行政审批局（开发用章）",
        description=(
            "Authority named on the configured seal; with neither a key file nor the seal "
            "service, each authority signs with a development seal of its own"
        ),
    )
    seal_valid_from: date = Field(default=date(2026, 1, 1), description="First day the seal signs")
    seal_valid_until: date = Field(default=date(2030, 12, 31), description="Last day it signs")
    seal_service_url: str | None = Field(default=None, description="Seal service base URL (http)")
    seal_service_token: SecretStr | None = Field(
        default=None, description="Bearer token of it (from a Secret; never logged)"
    )
    seal_public_key: str | None = Field(
        default=None, description="Pinned SM2 public key (hex x‖y) of the seal service's seal"
    )

    @model_validator(mode="after")
    def _inspection_ratios(self) -> Settings:
        ratios = [self.inspection_ratios.get(c) for c in "ABCD"]
        if set(self.inspection_ratios) != set("ABCD") or any(
            r is None or not 0.0 <= r <= 1.0 for r in ratios
        ):
            raise ValueError("LICENSE_INSPECTION_RATIOS needs a ratio in [0, 1] for A, B, C and D")
        if ratios != sorted(ratios):  # type: ignore[type-var]
            raise ValueError("LICENSE_INSPECTION_RATIOS: a higher risk class needs a higher ratio")
        return self

    @model_validator(mode="after")
    def _seal(self) -> Settings:
        if self.seal_backend == "http" and not self.seal_service_url:
            raise ValueError("LICENSE_SEAL_BACKEND=http needs LICENSE_SEAL_SERVICE_URL")
        if (
            self.environment == "production"
            and self.seal_backend == "local"
            and not self.seal_private_key_file
        ):
            raise ValueError("production needs LICENSE_SEAL_PRIVATE_KEY_FILE or the http seal")
        if self.environment == "production":
            refuse_dev_seal(self, prefix="LICENSE_")
        return self

    @property
    def verify_url(self) -> str:
        """The public verification page each certificate's QR code opens."""
        return f"{self.public_base_url.rstrip('/')}/licences/verify"

    @property
    def approval_events_url(self) -> str | None:
        """Where the relay posts the events approval subscribes to."""
        return f"{self.approval_url.rstrip('/')}/api/v1/events" if self.approval_url else None

    def default_db_name(self) -> str:
        """Embedded database file name."""
        return "license.db"
