"""Trusted token keys: a PEM public key or a JWKS, each key bound to the roles and issuer its
tokens may assert, and the identity provider's JWKS fetched from a URL (``RemoteJwks``).

``govshared.auth.TokenVerifier`` verifies with them; they live apart so that the verifier reads in
one sitting.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

if TYPE_CHECKING:
    from govshared.auth import Role

log = logging.getLogger("govshared.auth")


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A public key the services trust, and what the tokens it signs may assert."""

    key: Any
    algorithm: str
    kid: str | None
    roles: frozenset[Role]
    issuer: str | None
    # The only ``sub`` the key may sign, or None for any: a service's key signs that service's
    # tokens only (``service_trusted_keys``), so a stolen notify key cannot speak for approval.
    subject: str | None = None


def _algorithm_of(key: Any) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    raise ValueError(f"unsupported token key type {type(key).__name__} (RSA or EC P-256 only)")


def trusted_keys(
    text: str, *, roles: frozenset[Role], issuer: str | None, kid: str | None = None
) -> list[TrustedKey]:
    """The keys of a PEM public key or a JWKS (JSON), each bound to ``roles`` and ``issuer``."""
    if text.lstrip().startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
        return [TrustedKey(key, _algorithm_of(key), kid, roles, issuer)]
    keys = []
    skipped = []
    for jwk in jwt.PyJWKSet.from_dict(json.loads(text)).keys:
        try:
            algorithm = _algorithm_of(jwk.key)
        except ValueError:
            # A key of another kind beside ours (an identity provider publishing P-384 or EdDSA
            # keys for other clients): not one we verify with, and no reason to refuse the rest.
            skipped.append(jwk.key_id or type(jwk.key).__name__)
            continue
        keys.append(TrustedKey(jwk.key, algorithm, jwk.key_id, roles, issuer))
    if not keys:
        raise ValueError(f"no RSA or EC P-256 key in the JWKS (skipped: {', '.join(skipped)})")
    if skipped:
        log.warning("JWKS keys skipped: not RSA or EC P-256", extra={"keys": skipped})
    return keys


SERVICE_KID = re.compile(r"([a-z][a-z0-9_]*)-[A-Za-z0-9][A-Za-z0-9._-]*")
"""A service key's ``kid``: ``<service>-<generation>`` (``tools/keys.py`` makes them so)."""


SERVICE_SUBJECT = "service:"
"""The ``sub`` of a service token is this prefix and the service's name: ``service:approval``."""


def subject_of_service(name: str) -> str:
    """The ``sub`` of the named service's tokens."""
    return f"{SERVICE_SUBJECT}{name}"


SERVICE_AUDIENCE = "urn:onestop:services:"
"""The ``aud`` of a service token is this prefix and the name of the service it is sent to: a token
approval's relay sends notify (``urn:onestop:services:notify``) is refused by license, so whoever
receives a service's token cannot replay it to a third service."""


SUITE_SERVICES = ("approval", "license", "notify")
"""The suite's services: where a development or test service token naming no one is sent."""


def audience_of_service(name: str) -> str:
    """The ``aud`` of service tokens sent to the named service."""
    return f"{SERVICE_AUDIENCE}{name}"


def service_audiences(to: str | None = None) -> list[str]:
    """The ``aud`` of a development or test service token: the service ``to``, else every
    service of the suite."""
    return [audience_of_service(s) for s in ((to,) if to else SUITE_SERVICES)]


def service_of_subject(subject: str | None) -> str | None:
    """The service a token's ``sub`` speaks for, or None when it is not a service's."""
    return (
        subject.removeprefix(SERVICE_SUBJECT)
        if subject and subject.startswith(SERVICE_SUBJECT)
        else None
    )


def service_subject(kid: str | None) -> str | None:
    """The ``sub`` a service key of this ``kid`` may sign (``service:<service>``), or None when the
    kid does not name a service (a development PEM key has no kid at all)."""
    match = SERVICE_KID.fullmatch(kid or "")
    return subject_of_service(match.group(1)) if match else None


def service_trusted_keys(
    text: str, *, roles: frozenset[Role], issuer: str | None
) -> list[TrustedKey]:
    """The services' keys (a JWKS or a PEM), each bound to the one service its kid names.

    A key whose kid is ``<service>-<generation>`` verifies only tokens whose ``sub`` is
    ``service:<service>``; a key without such a kid (the development PEM pair, shared by the three
    services) is bound to no service, which production refuses (``unbound_service_keys``).
    """
    return [
        replace(key, subject=service_subject(key.kid))
        for key in trusted_keys(text, roles=roles, issuer=issuer)
    ]


def unbound_service_keys(keys: list[TrustedKey]) -> list[str]:
    """The service keys bound to no service (their kids, or ``(no kid)``): production refuses them."""
    return [key.kid or "(no kid)" for key in keys if key.subject is None]


class RemoteJwks:
    """The identity provider's JWKS at a URL: fetched with httpx (async, never blocking the event
    loop), kept for ``ttl_seconds``, fetched again early when a token names a key it lacks (key
    rotation), but not more than once per ``min_refetch_seconds`` (a flood of tokens with made-up
    ``kid``s does not become a flood of requests to the identity provider). One fetch at a time;
    a failed fetch keeps the keys it had.
    """

    def __init__(
        self,
        url: str,
        *,
        roles: frozenset[Role],
        issuer: str | None,
        ttl_seconds: float = 300.0,
        min_refetch_seconds: float = 30.0,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.url = url
        self.keys: list[TrustedKey] = []
        self._roles = roles
        self._issuer = issuer
        self._ttl = ttl_seconds
        self._min_refetch = min_refetch_seconds
        self._timeout = timeout_seconds
        self._fetched_at: float | None = None
        self._lock: asyncio.Lock | None = None

    def knows(self, kid: Any, algorithm: Any) -> bool:
        """Whether a fetched key matches the token's ``kid`` (or its algorithm, without one)."""
        return any(
            k.algorithm == algorithm and (kid is None or k.kid is None or k.kid == kid)
            for k in self.keys
        )

    def stale(self) -> bool:
        """True before the first fetch and once the keys are older than ``ttl_seconds``."""
        return self._fetched_at is None or time.monotonic() - self._fetched_at > self._ttl

    async def refresh(self, *, early: bool = False) -> None:
        """Fetch the keys when stale (``early``: also when fresh, at most once per
        ``min_refetch_seconds``)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            fetched = self._fetched_at
            fresh = fetched is not None and not self.stale()
            if fresh and (not early or time.monotonic() - (fetched or 0.0) < self._min_refetch):
                if not self.keys:
                    # The last fetch failed and none ever succeeded: the identity provider is
                    # what is missing (503), not the token's key (which would be a 401).
                    raise ConnectionError("the identity provider's JWKS could not be fetched yet")
                return
            try:
                async with httpx.AsyncClient(timeout=self._timeout) as http:
                    response = await http.get(self.url, headers={"Accept": "application/json"})
                response.raise_for_status()
                self.keys = trusted_keys(response.text, roles=self._roles, issuer=self._issuer)
            except Exception:
                log.warning("could not fetch the identity provider's JWKS at %s", self.url)
                if not self.keys:
                    raise
            finally:
                # Tried now, whatever came of it: the next try waits like a refetch.
                self._fetched_at = time.monotonic()
