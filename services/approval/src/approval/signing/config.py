"""Signing settings (``APPROVAL_SIGNING_*``) and the verifier they make."""

from __future__ import annotations

from pathlib import Path

import httpx
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from govshared.signing import CrlSource, SignatureVerifier, parse_certificate
from govshared.signing.devca import DevCA


class SigningSettings(BaseSettings):
    """Trust anchors and their CRLs; sessions' lifetime."""

    model_config = SettingsConfigDict(env_prefix="APPROVAL_SIGNING_", env_file=None, extra="ignore")

    trust_anchor_files: list[str] = Field(
        default_factory=list,
        description="PEM certificates of the CAs trusted to certify seals (empty in development: "
        "the development CA in data_dir/keys/signing-ca)",
    )
    crl_urls: list[str] = Field(
        default_factory=list,
        description="Where each anchor publishes its CRL (file path or http(s) URL), in order",
    )
    crl_cache_seconds: float = Field(default=300.0, ge=0, description="How long a CRL is reused")
    session_minutes: int = Field(default=10, ge=1, le=60, description="A signing session's life")


def dev_ca_directory(data_dir: Path) -> Path:
    """Where the development CA lives (``make seal`` writes there too)."""
    return data_dir / "keys" / "signing-ca"


def build_verifier(
    settings: SigningSettings, *, data_dir: Path, production: bool, http: httpx.AsyncClient | None
) -> SignatureVerifier | None:
    """The verifier of the configured anchors; the development CA when none is set (never in
    production, where no anchors means signatures cannot be checked: ``None``)."""
    if not settings.trust_anchor_files:
        if production:
            return None
        ca = DevCA(dev_ca_directory(data_dir))
        source = CrlSource(
            str(ca.crl_path), ca.certificate, ttl=settings.crl_cache_seconds, http=http
        )
        return SignatureVerifier([(ca.certificate, source)])
    anchors = []
    for index, path in enumerate(settings.trust_anchor_files):
        anchor = parse_certificate(Path(path).read_text())
        url = settings.crl_urls[index] if index < len(settings.crl_urls) else None
        # An anchor without a CRL location is refused at start: revocation must be checkable.
        if not url:
            raise ValueError(f"APPROVAL_SIGNING_CRL_URLS names no CRL for {path}")
        anchors.append((anchor, CrlSource(url, anchor, ttl=settings.crl_cache_seconds, http=http)))
    return SignatureVerifier(anchors)
