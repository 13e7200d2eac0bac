"""Bearer JWT verification, principals and role checks.

Tokens come from the portal's identity provider (or, for calls between services, from a service's own
key) and are always asymmetric: RS256 or ES256, verified with a configured PEM public key or a JWKS.
A shared HMAC secret is refused, so that a leaked verifier can never mint tokens.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from govshared.problems import Forbidden, Unauthenticated
from govshared.uscc import is_valid_uscc

ALGORITHMS = ["RS256", "ES256"]


class Role(StrEnum):
    """Who the caller is (DESIGN.md §2 Auth)."""

    ENTERPRISE = "enterprise"
    ACCEPTOR = "acceptor"
    REVIEWER = "reviewer"
    APPROVER = "approver"
    HEAD = "head"  # the head of the licensing authority (Art. 42(1) extension)
    # The head of the people's government at the level (行政许可法第四十二条第二款: extends a jointly
    # handled item's limit); not a member of the authority, so a role of its own.
    GOVERNMENT_HEAD = "government_head"
    ADMIN = "admin"
    SERVICE = "service"


STAFF_ROLES = frozenset(
    {Role.ACCEPTOR, Role.REVIEWER, Role.APPROVER, Role.HEAD, Role.GOVERNMENT_HEAD, Role.ADMIN}
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller of a request."""

    subject: str
    role: Role
    uscc: str | None = None
    jurisdiction: str | None = None
    name: str | None = None

    @property
    def is_staff(self) -> bool:
        """True for every staff role."""
        return self.role in STAFF_ROLES


class TokenVerifier:
    """Verifies bearer tokens against a PEM public key or a JWKS, caching good tokens until expiry."""

    def __init__(
        self,
        *,
        public_key_pem: str | None = None,
        jwks: dict[str, Any] | None = None,
        jwks_url: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        cache_size: int = 10_000,
    ) -> None:
        if not (public_key_pem or jwks or jwks_url):
            raise ValueError("a public key, a JWKS or a JWKS URL is required to verify tokens")
        self._static_key: Any = (
            serialization.load_pem_public_key(public_key_pem.encode()) if public_key_pem else None
        )
        self._jwks = jwt.PyJWKSet.from_dict(jwks) if jwks else None
        self._jwks_client = jwt.PyJWKClient(jwks_url, cache_keys=True) if jwks_url else None
        self._issuer = issuer
        self._audience = audience
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._cache_size = cache_size

    def _key_for(self, token: str) -> Any:
        if self._static_key is not None:
            return self._static_key
        kid = jwt.get_unverified_header(token).get("kid")
        if self._jwks is not None:
            for key in self._jwks.keys:
                if kid is None or key.key_id == kid:
                    return key.key
            raise jwt.InvalidTokenError("no key in the JWKS matches the token's kid")
        assert self._jwks_client is not None
        return self._jwks_client.get_signing_key_from_jwt(token).key

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; raises ``Unauthenticated`` otherwise."""
        cached = self._cache.get(token)
        now = time.time()
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            claims = jwt.decode(
                token,
                self._key_for(token),
                algorithms=ALGORITHMS,
                issuer=self._issuer,
                audience=self._audience,
                options={
                    "require": ["exp", "sub", "role"],
                    "verify_aud": self._audience is not None,
                },
            )
            principal = principal_from_claims(claims)
        except (jwt.PyJWTError, ValueError) as exc:
            raise Unauthenticated(f"身份令牌无效：{exc}") from exc
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[token] = (float(claims["exp"]), principal)
        return principal


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """Build a principal, refusing claims that contradict the role."""
    role = Role(claims["role"])
    uscc = claims.get("uscc")
    jurisdiction = claims.get("jurisdiction")
    if role is Role.ENTERPRISE and (not isinstance(uscc, str) or not is_valid_uscc(uscc)):
        raise ValueError("enterprise tokens need a valid uscc claim")
    if role in STAFF_ROLES and role is not Role.ADMIN and not jurisdiction:
        raise ValueError("staff tokens need a jurisdiction claim")
    return Principal(
        subject=str(claims["sub"]),
        role=role,
        uscc=uscc if role is Role.ENTERPRISE else None,
        jurisdiction=jurisdiction,
        name=claims.get("name"),
    )


def load_verifier(
    *,
    public_key_file: str | None,
    jwks_file: str | None,
    jwks_url: str | None,
    issuer: str | None,
    audience: str | None,
) -> TokenVerifier:
    """A verifier from settings: a PEM file, a JWKS file or a JWKS URL."""
    return TokenVerifier(
        public_key_pem=Path(public_key_file).read_text() if public_key_file else None,
        jwks=json.loads(Path(jwks_file).read_text()) if jwks_file else None,
        jwks_url=jwks_url,
        issuer=issuer,
        audience=audience,
    )


def verified_principal(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """The caller of a bearer token, verified (401 problem otherwise), kept on ``request.state``."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("请求缺少 Authorization: Bearer 令牌")
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = verifier.verify(credentials.credentials)
    request.state.principal = principal
    return principal


class BearerPrincipal(HTTPBearer):
    """A dependency: the verified caller of the request's bearer token (401 problem without a
    valid one), limited to ``roles`` when given (403 problem otherwise).

    It is FastAPI's ``HTTPBearer`` security scheme itself, so that OpenAPI declares the scheme on
    every route that uses it, and it verifies in the same step: one dependency to solve per request
    rather than a chain of three.
    """

    def __init__(self, roles: frozenset[Role] | None = None) -> None:
        super().__init__(
            auto_error=False,
            scheme_name="HTTPBearer",
            description="JWT issued by the portal's identity provider",
        )
        self.roles = roles

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        principal = verified_principal(request, await super().__call__(request))
        if self.roles is not None and principal.role not in self.roles:
            names = "、".join(sorted(r.value for r in self.roles))
            raise Forbidden(f"此操作仅限以下角色：{names}", required_roles=sorted(self.roles))
        return principal


get_principal = BearerPrincipal()
"""The verified caller, whatever the role: ``Depends(get_principal)``."""


def require_roles(*roles: Role) -> BearerPrincipal:
    """A dependency that lets only the given roles through (403 problem otherwise)."""
    return BearerPrincipal(frozenset(roles))


# --- development keys and tokens -------------------------------------------------------------


def ensure_dev_keypair(directory: Path) -> tuple[Path, Path]:
    """Create (once) and return the development RSA key pair kept in the data folder."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path = directory / "dev-jwt-private.pem"
    public_path = directory / "dev-jwt-public.pem"
    if not private_path.exists() or not public_path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        tmp = private_path.with_suffix(".tmp")
        tmp.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        tmp.chmod(0o600)
        public_path.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        tmp.replace(private_path)
    return private_path, public_path


def mint_token(
    private_key_pem: str,
    *,
    role: Role | str,
    subject: str | None = None,
    uscc: str | None = None,
    jurisdiction: str | None = None,
    name: str | None = None,
    issuer: str | None = None,
    audience: str | None = None,
    ttl_seconds: int = 8 * 3600,
    kid: str | None = None,
) -> str:
    """Sign a token with RS256 (development and service-to-service use)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject or f"{role}-{uuid.uuid4().hex[:8]}",
        "role": str(role),
        "iat": now,
        "exp": now + ttl_seconds,
    }
    for claim, value in (
        ("uscc", uscc),
        ("jurisdiction", jurisdiction),
        ("name", name),
        ("iss", issuer),
        ("aud", audience),
    ):
        if value is not None:
            claims[claim] = value
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, private_key_pem, algorithm="RS256", headers=headers)


class ServiceTokenSource:
    """Mints short-lived service tokens for calls to other services, renewing before expiry.

    The ``kid`` names the key in the verifiers' JWKS, so that keys can be rotated with two in the
    set; issuer and audience match what the verifiers check.
    """

    def __init__(
        self,
        private_key_pem: str,
        *,
        service_name: str,
        issuer: str | None = None,
        audience: str | None = None,
        kid: str | None = None,
    ) -> None:
        self._key = private_key_pem
        self._service = service_name
        self._issuer = issuer
        self._audience = audience
        self._kid = kid
        self._token = ""
        self._expires = 0.0

    def token(self) -> str:
        """A valid bearer token for this service."""
        if time.time() > self._expires - 60:
            self._token = mint_token(
                self._key,
                role=Role.SERVICE,
                subject=f"service:{self._service}",
                name=self._service,
                issuer=self._issuer,
                audience=self._audience,
                kid=self._kid,
                ttl_seconds=900,
            )
            self._expires = time.time() + 900
        return self._token


def service_tokens(settings: object, *, service_name: str) -> ServiceTokenSource:
    """The service token source a service's settings describe (CommonSettings fields)."""
    key_file = getattr(settings, "service_private_key_file", None)
    if not key_file:
        raise ValueError("SERVICE_PRIVATE_KEY_FILE is required to call other services")
    return ServiceTokenSource(
        Path(key_file).read_text(),
        service_name=service_name,
        issuer=getattr(settings, "jwt_issuer", None),
        audience=getattr(settings, "jwt_audience", None),
        kid=getattr(settings, "service_key_id", None) or None,
    )
