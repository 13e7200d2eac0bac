"""The signature verifier that approval's settings (``APPROVAL_SIGNING_*``) make."""

from __future__ import annotations

from pathlib import Path

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


class VerifierOnFirstUse:
    """The app's verifier, made on first use and kept (it caches CRLs and checked certificates):
    the development CA is made in the data folder when a signature is first checked, not at start.

    The lifespan puts one in the context (``ApprovalContext.verifier``); the app's HTTP client
    fetches the CRLs.
    """

    __slots__ = ("_http", "_made", "_settings", "_verifier")

    def __init__(self, settings: Settings, *, http: httpx.AsyncClient | None) -> None:
        self._settings = settings
        self._http = http
        self._made = False
        self._verifier: SignatureVerifier | None = None

    def __call__(self) -> SignatureVerifier | None:
        """The verifier (``None``: production without trust anchors, signatures uncheckable)."""
        if not self._made:
            self._verifier = build_verifier(self._settings, http=self._http)
            self._made = True
        return self._verifier
