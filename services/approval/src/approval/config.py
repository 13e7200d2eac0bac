"""Approval settings, read from ``APPROVAL_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

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
    load_demo_catalogue: bool = Field(default=True, description="Load the demo catalogue at start")

    def default_db_name(self) -> str:
        """Embedded database file name."""
        return "approval.db"
