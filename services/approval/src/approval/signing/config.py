"""The signature verifier that approval's settings (``APPROVAL_SIGNING_*``) make."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from approval.config import Settings
from govshared.signing import CrlSource, SignatureVerifier, parse_certificate
from govshared.signing.devca import DevCA


def dev_ca_directory(data_dir: Path) -> Path:
    """Where the development CA lives (``make seal`` writes there too)."""
    return data_dir / "keys" / "signing-ca"


def build_verifier(
    settings: Settings, *, http: httpx.AsyncClient | None
) -> SignatureVerifier | None:
    """The verifier of the configured anchors; the development CA when none is set (never in
    production, where no anchors means signatures cannot be checked: ``None``)."""
    ttl = settings.signing_crl_cache_seconds
    if not settings.signing_trust_anchor_files:
        if settings.environment == "production":
            return None
        ca = DevCA(dev_ca_directory(settings.data_dir))
        source = CrlSource(str(ca.crl_path), ca.certificate, ttl=ttl, http=http)
        return SignatureVerifier([(ca.certificate, source)])
    anchors = []
    for index, path in enumerate(settings.signing_trust_anchor_files):
        anchor = parse_certificate(Path(path).read_text())
        url = settings.signing_crl_urls[index] if index < len(settings.signing_crl_urls) else None
        # An anchor without a CRL location is refused at start: revocation must be checkable.
        if not url:
            raise ValueError(f"APPROVAL_SIGNING_CRL_URLS names no CRL for {path}")
        anchors.append((anchor, CrlSource(url, anchor, ttl=ttl, http=http)))
    return SignatureVerifier(anchors)


def app_verifier(state: Any) -> SignatureVerifier | None:
    """The app's verifier, made on first use and kept (it caches CRLs and checked certificates)."""
    if not hasattr(state, "signing_verifier"):
        # The app's HTTP client fetches CRLs (the lifespan's context; nothing set app.state.http,
        # so each fetch made its own client before).
        state.signing_verifier = build_verifier(state.settings, http=state.context.http)
    verifier: SignatureVerifier | None = state.signing_verifier
    return verifier
