"""Approval settings, read from ``APPROVAL_*`` environment variables."""

from __future__ import annotations

from datetime import date

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from govshared.seal.production import refuse_dev_seal
from govshared.settings import CommonSettings


class Settings(CommonSettings):
    """Settings of the approval service."""

    model_config = SettingsConfigDict(env_prefix="APPROVAL_", env_file=None, extra="ignore")

    port: int = 8001
    license_url: str = Field(
        default="http://127.0.0.1:8002", description="License service base URL"
    )
    notify_events_url: str = Field(
        default="http://127.0.0.1:8003/api/v1/events", description="Where the relay posts events"
    )
    license_events_url: str = Field(
        default="http://127.0.0.1:8002/api/v1/events",
        description="Where licence-relevant events go",
    )
    reform_mode_cache_seconds: float = Field(
        default=30.0, description="How long a reform mode answer from license is reused"
    )
    remediation_sla_working_days: int = Field(
        default=5, ge=1, le=60, description="Working days to remedy a rating of 2 or less (好差评)"
    )
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, description="Largest material accepted")
    max_image_pixels: int = Field(
        default=50_000_000,
        ge=1,
        description="Largest image (width × height) a material may be; it is decoded whole",
    )
    storage_backend: str = Field(default="filesystem", pattern="^(filesystem|s3)$")
    s3_endpoint: str | None = Field(default=None, description="S3-compatible endpoint URL")
    s3_bucket: str = "approval-materials"
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str = "cn-east-1"
    clock_warn_days: int = Field(
        default=3, ge=0, le=30, description="Working days before a due date that turn it yellow"
    )
    timer_poll_seconds: float = Field(default=60.0, description="How often the timers look")
    sealer_poll_seconds: float = Field(
        default=0.5, gt=0, description="How often the sealer looks for documents to seal"
    )
    sealer_batch_size: int = Field(
        default=20, ge=1, le=500, description="Documents sealed per transaction by the sealer"
    )
    load_demo_catalogue: bool = Field(default=True, description="Load the demo catalogue at start")
    public_base_url: str = Field(
        default="http://127.0.0.1:8001",
        description="Public address of this service, printed in documents' verification QR codes",
    )
    seal_backend: str = Field(
        default="local",
        pattern="^(local|http)$",
        description="Who signs documents: local (SM2 key file) or http (external seal service)",
    )
    seal_id: str = Field(
        default="DEV-SEAL-310115-0001",
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
    seal_private_key_file: str | None = Field(
        default=None,
        description="SM2 private key (hex) for the local backend; a dev key is made if unset",
    )
    seal_service_url: str | None = Field(default=None, description="Seal service base URL (http)")
    seal_service_token: SecretStr | None = Field(
        default=None, description="Bearer token of it (from a Secret; never logged)"
    )
    seal_public_key: str | None = Field(
        default=None, description="Pinned SM2 public key (hex x‖y) of the seal service's seal"
    )
    # Applicants' electronic signatures (docs/signatures.md): the CAs trusted to certify seals.
    signing_trust_anchor_files: list[str] = Field(
        default_factory=list,
        description="PEM certificates of the CAs trusted to certify applicants' seals (电子签名法 "
        "第十六条); empty outside production: the development CA in data_dir/keys/signing-ca",
    )
    signing_crl_urls: list[str] = Field(
        default_factory=list,
        description="Where each anchor publishes its CRL (file path or http(s) URL), in order; "
        "one per anchor, required",
    )
    signing_crl_cache_seconds: float = Field(
        default=300.0, ge=0, description="How long a CA's CRL is reused before it is read again"
    )
    signing_session_minutes: int = Field(
        default=10, ge=1, le=60, description="How long a signing session waits for the signature"
    )

    @model_validator(mode="after")
    def _seal(self) -> Settings:
        if self.seal_backend == "http" and not self.seal_service_url:
            raise ValueError("APPROVAL_SEAL_BACKEND=http needs APPROVAL_SEAL_SERVICE_URL")
        if (
            self.environment == "production"
            and self.seal_backend == "local"
            and not self.seal_private_key_file
        ):
            raise ValueError("production needs APPROVAL_SEAL_PRIVATE_KEY_FILE or the http seal")
        if self.environment == "production":
            refuse_dev_seal(self, prefix="APPROVAL_")
        if len(self.signing_crl_urls) < len(self.signing_trust_anchor_files):
            raise ValueError("APPROVAL_SIGNING_CRL_URLS needs one CRL for each trust anchor")
        return self

    def default_db_name(self) -> str:
        """Embedded database file name."""
        return "approval.db"
