"""Notify settings, read from ``NOTIFY_*`` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from govshared.chinatime import CHINA_ZONE_NAME
from govshared.settings import CommonSettings
from notify.channels.egress import EgressPolicy
from notify.models import Channel
from notify.templates import RenderLimits

# The deadline of a whole delivery attempt, in HTTP_TIMEOUT_SECONDS (each of which bounds one
# phase: a read, a connect, an SMTP command, not the attempt). A webhook resolves, connects and
# posts; an SMS posts to the gateway; an email may fetch its sealed PDF, then opens an SMTP
# session (connect, EHLO, STARTTLS, AUTH) and sends. A receiver that drips its answer a byte at a
# time, or an SMTP server that answers each command just in time, is cut off at the deadline.
DEADLINE_FACTORS: dict[Channel, float] = {Channel.WEBHOOK: 3, Channel.SMS: 3, Channel.EMAIL: 4}


class Settings(CommonSettings):
    """Settings of the notify service."""

    model_config = SettingsConfigDict(env_prefix="NOTIFY_", env_file=None, extra="ignore")

    port: int = 8003
    approval_events_url: str = Field(
        default="http://127.0.0.1:8001/api/v1/events",
        description="Where proof-of-service events for approval's notices are posted",
    )
    license_events_url: str = Field(
        default="http://127.0.0.1:8002/api/v1/events",
        description="Where proof-of-service events for license's notices are posted",
    )
    # Sealed documents: their PDFs are fetched from the service that issued them (the event's
    # source) with notify's service token, to be attached to emails.
    approval_url: str = Field(
        default="http://127.0.0.1:8001",
        description="Approval's base URL: sealed notices and decisions are fetched from it",
    )
    license_url: str = Field(
        default="http://127.0.0.1:8002",
        description="License's base URL: sealed licence certificates are fetched from it",
    )
    approval_public_url: str = Field(
        default="",
        description=(
            "Where users reach approval (the gateway in production): download links in messages "
            "start with it; empty: NOTIFY_APPROVAL_URL"
        ),
    )
    license_public_url: str = Field(
        default="",
        description=(
            "Where users reach license (the gateway in production): download links in messages "
            "start with it; empty: NOTIFY_LICENSE_URL"
        ),
    )
    mail_attachment_max_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1,
        description="Largest sealed PDF attached to an email; a larger one is only linked",
    )
    # Email: an empty host keeps the embedded default, .eml files in the data folder.
    smtp_host: str = Field(default="", description="SMTP server; empty writes .eml files instead")
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = Field(default=False, description="Upgrade the connection with STARTTLS")
    smtp_tls: bool = Field(default=False, description="Implicit TLS (SMTPS, usually port 465)")
    smtp_connections: int = Field(default=4, ge=1, le=64, description="Open SMTP connections kept")
    mail_from: str = "一网通办通知 <noreply@onestop.gov.cn>"
    # SMS through a provider gateway with pre-approved templates.
    sms_gateway_url: str = Field(default="", description="Provider gateway base URL; empty: no SMS")
    sms_api_key: SecretStr | None = None
    sms_sign_name: str = Field(default="一网通办", description="Approved SMS signature (签名)")
    sms_receipt_secret: SecretStr | None = Field(
        default=None, description="HMAC secret the provider signs delivery receipts with"
    )
    sms_fallback_channels: list[str] = Field(
        default_factory=lambda: ["inbox", "email"],
        description="Channels a dead SMS falls back to",
    )
    webhook_allow_http: bool | None = Field(
        default=None, description="Allow plain-http webhook URLs (default: outside production)"
    )
    webhook_allow_loopback: bool = Field(
        default=False,
        description=(
            "Development and tests only: let webhooks reach 127.0.0.0/8, ::1 and localhost "
            "(private, link-local and metadata addresses stay refused; refused in production)"
        ),
    )
    webhook_ports: list[int] = Field(
        default_factory=lambda: [443],
        description=(
            "TCP ports webhook URLs may use, as JSON (an http URL without a port is 80), checked "
            "at registration and at every delivery. Keep it within the notify-worker "
            "NetworkPolicy's egress ports (deploy/k8s/base/notify.yaml lets webhooks out on 443 "
            "only): a webhook on another port could never be delivered. Empty: any port, "
            "development and tests only (refused in production)"
        ),
    )
    webhook_denied_host_suffixes: list[str] = Field(
        default_factory=list,
        description=(
            'Further internal DNS suffixes webhooks may not name, as JSON (e.g. ["gov.sh.cn"]); '
            ".internal, .local, .svc, … and single-label names are always refused"
        ),
    )
    # Templates are admin-written: every render runs in a bounded sandbox (see docs/security.md).
    template_max_output_chars: int = Field(
        default=20_000, ge=100, le=1_000_000, description="Longest rendered title or body"
    )
    template_max_steps: int = Field(
        default=100_000,
        ge=100,
        le=10_000_000,
        description="Loop turns, calls and output pieces one render may spend",
    )
    template_max_seconds: float = Field(
        default=1.0, gt=0, le=30, description="Time one render may take before it is refused"
    )
    template_max_format_width: int = Field(
        default=200, ge=1, le=10_000, description="Widest width or precision of a format spec"
    )
    # Delivery worker.
    named_recipients: dict[str, list[str]] = Field(
        default_factory=dict,
        description=(
            "Named users to tell of events, as JSON: event type pattern → user subjects, e.g. "
            '{"cn.gov.approval.application.clock_overdue.*": ["head-310000-wang"]}'
        ),
    )
    delivery_batch_size: int = Field(default=200, ge=1, le=1000)
    delivery_poll_seconds: float = 0.5
    delivery_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description=(
            "How long a worker's claim on a batch of deliveries lasts (a worker that dies leaves "
            "them to another for this long). An attempt starts only while its whole deadline "
            "(3 × HTTP_TIMEOUT_SECONDS for a webhook or an SMS, 4 × for an email) and a quarter "
            "of the lease remain, else it goes back to the queue unsent, so that no delivery is "
            "sent twice; at least twice the longest attempt"
        ),
    )
    delivery_max_attempts: int = Field(default=6, ge=1)
    delivery_base_backoff_seconds: float = 5.0
    delivery_max_backoff_seconds: float = 3600.0
    # Rate limits per recipient and channel, per hour (critical notices are never held back).
    rate_limit_sms_per_hour: int = 5
    rate_limit_email_per_hour: int = 60
    rate_limit_webhook_per_hour: int = 3600
    default_time_zone: str = CHINA_ZONE_NAME
    sse_poll_seconds: float = 1.0
    sse_max_seconds: float = Field(
        default=300.0,
        description="A stream ends after this; EventSource reconnects with Last-Event-ID",
    )

    @field_validator("webhook_allow_loopback")
    @classmethod
    def _no_loopback_in_production(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("environment") == "production":
            raise ValueError("NOTIFY_WEBHOOK_ALLOW_LOOPBACK is for development and tests only")
        return value

    @field_validator("webhook_ports")
    @classmethod
    def _ports_are_ports(cls, value: list[int], info: ValidationInfo) -> list[int]:
        if any(not 1 <= port <= 65535 for port in value):
            raise ValueError("NOTIFY_WEBHOOK_PORTS lists TCP ports (1-65535)")
        if not value and info.data.get("environment") == "production":
            raise ValueError(
                "NOTIFY_WEBHOOK_PORTS may be empty (any port) in development and tests only"
            )
        return sorted(set(value))

    @model_validator(mode="after")
    def _notify_defaults(self) -> Settings:
        if self.webhook_allow_http is None:
            self.webhook_allow_http = self.environment != "production"
        longest = max(self.attempt_seconds(channel) for channel in DEADLINE_FACTORS)
        if self.delivery_lease_seconds < 2 * longest:
            raise ValueError(
                "DELIVERY_LEASE_SECONDS must be at least twice the longest delivery attempt "
                f"(4 × HTTP_TIMEOUT_SECONDS = {longest:g} s)"
            )
        if (
            self.environment == "production"
            and self.sms_gateway_url
            and not self.sms_receipt_secret
        ):
            raise ValueError("production SMS needs NOTIFY_SMS_RECEIPT_SECRET")
        return self

    def template_limits(self) -> RenderLimits:
        """The limits every template render runs within."""
        return RenderLimits(
            max_output=self.template_max_output_chars,
            max_steps=self.template_max_steps,
            max_seconds=self.template_max_seconds,
            max_format_width=self.template_max_format_width,
        )

    def attempt_seconds(self, channel: Channel) -> float:
        """The deadline of one whole delivery attempt on a channel (``DEADLINE_FACTORS``)."""
        return DEADLINE_FACTORS.get(channel, 1) * self.http_timeout_seconds

    def egress_policy(self) -> EgressPolicy:
        """Where webhooks may point and connect."""
        return EgressPolicy(
            allow_loopback=self.webhook_allow_loopback,
            denied_suffixes=tuple(self.webhook_denied_host_suffixes),
            ports=tuple(self.webhook_ports),
            resolve_timeout=min(self.http_timeout_seconds, 5.0),
        )

    def default_db_name(self) -> str:
        """Embedded database file name."""
        return "notify.db"
