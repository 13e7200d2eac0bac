"""Bearer JWT verification, principals and role checks.

Tokens come from the portal's identity provider (or, for calls between services, from a service's own
key) and are always asymmetric: RS256 or ES256, verified with a configured PEM public key or a JWKS.
A shared HMAC secret is refused, so that a leaked verifier can never mint tokens.
"""

from __future__ import annotations

import fcntl
import functools
import json
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Request
from fastapi.security import HTTPBearer

from govshared import jurisdictions
from govshared.files import private_dir, touch_private, write_private
from govshared.jwks import (
    RemoteJwks,
    TrustedKey,
    audience_of_service,
    service_subject,
    service_trusted_keys,
    subject_of_service,
    trusted_keys,
    unbound_service_keys,
)
from govshared.problems import DependencyUnavailable, Forbidden, Unauthenticated
from govshared.uscc import is_valid_uscc

ALGORITHMS = ["RS256", "ES256"]


class Role(StrEnum):
    """Who the caller is (docs/architecture.md, "Who uses it")."""

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
    # The staff member's department (部门代码), for 并联审批: a department's opinion is given only
    # with a token of that department.
    department: str | None = None

    @property
    def is_staff(self) -> bool:
        """True for every staff role."""
        return self.role in STAFF_ROLES


HUMAN_ROLES = frozenset(Role) - {Role.SERVICE}
"""What the portal's identity provider may assert: enterprises and staff, never a service."""
SERVICE_ROLES = frozenset({Role.SERVICE})
"""What the services' own keys may assert: only that the caller is a service."""
DEFAULT_SERVICE_ISSUER = "urn:onestop:services"
MAX_TOKEN_CHARS = 8192
CLOCK_SKEW_SECONDS = 60
MAX_CLAIM_CHARS = 200


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    # RFC 7519 §2 NumericDate: a JSON number. A string, a boolean or an infinity is not one.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"claim {name} must be a NumericDate (a number of seconds)")
    return float(value)


class TokenVerifier:
    """Verifies bearer tokens against trusted keys, each bound to the roles and the issuer it may
    assert, caching good tokens until expiry.

    The identity provider's keys (a PEM public key, a JWKS or a JWKS URL) sign enterprise and staff
    tokens; the services' keys (``service_keys``) sign service tokens only, each key the tokens of
    the one service its kid names (``TrustedKey.subject``). A token is accepted when
    one trusted key verifies its signature, its ``iss`` is that key's issuer, its role is one the key
    may assert, its lifetime is at most ``max_lifetime_seconds`` and its claims are well formed.
    """

    def __init__(
        self,
        *,
        public_key_pem: str | None = None,
        jwks: dict[str, Any] | None = None,
        jwks_url: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        roles: frozenset[Role] = HUMAN_ROLES,
        service_keys: Sequence[TrustedKey] = (),
        service_audience: str | None = None,
        max_lifetime_seconds: int = 12 * 3600,
        cache_size: int = 10_000,
    ) -> None:
        if not (public_key_pem or jwks or jwks_url or service_keys):
            raise ValueError("a public key, a JWKS or a JWKS URL is required to verify tokens")
        keys: list[TrustedKey] = []
        if public_key_pem:
            keys += trusted_keys(public_key_pem, roles=roles, issuer=issuer)
        if jwks:
            keys += trusted_keys(json.dumps(jwks), roles=roles, issuer=issuer)
        self._keys = keys + list(service_keys)
        self.remote = RemoteJwks(jwks_url, roles=roles, issuer=issuer) if jwks_url else None
        self._issuer = issuer
        self._audience = audience
        self._service_audience = service_audience
        self._max_lifetime = max_lifetime_seconds
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._cache_size = cache_size

    def _candidates(self, header: dict[str, Any], token: str) -> list[TrustedKey]:
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ALGORITHMS:
            raise jwt.InvalidAlgorithmError("only RS256 and ES256 tokens are accepted")
        if kid is not None and (not isinstance(kid, str) or len(kid) > MAX_CLAIM_CHARS):
            raise jwt.InvalidTokenError("malformed kid")
        keys = self._keys if self.remote is None else self._keys + self.remote.keys
        usable = [k for k in keys if k.algorithm == algorithm]
        named = [k for k in usable if kid is not None and k.kid == kid]
        candidates = named or [k for k in usable if k.kid is None or kid is None]
        if not candidates:
            raise jwt.InvalidTokenError("no trusted key matches the token")
        return candidates

    def _decode(self, token: str) -> tuple[dict[str, Any], TrustedKey]:
        candidates = self._candidates(jwt.get_unverified_header(token), token)
        for number, trusted in enumerate(candidates, 1):
            # A service's token names the service it was sent to (``audience_of_service``), not
            # the audience of the portal's tokens: one another service received cannot be replayed
            # here.
            audience = self._service_audience if trusted.roles == SERVICE_ROLES else self._audience
            try:
                claims = jwt.decode(
                    token,
                    trusted.key,
                    algorithms=[trusted.algorithm],
                    issuer=trusted.issuer,
                    audience=audience,
                    # The identity provider's clock may run ahead of ours (iat, nbf) or behind
                    # (exp): a minute either way, as the lifetime check below allows.
                    leeway=CLOCK_SKEW_SECONDS,
                    options={
                        "require": ["exp", "sub", "role"],
                        "verify_aud": audience is not None,
                    },
                )
            except jwt.InvalidSignatureError:
                if number == len(candidates):
                    raise
                continue
            return claims, trusted
        raise jwt.InvalidTokenError("no trusted key matches the token")

    def _check_times(self, claims: dict[str, Any]) -> float:
        exp = _number(claims, "exp")
        iat = _number(claims, "iat")
        _number(claims, "nbf")
        assert exp is not None  # required above
        now = time.time()
        longest = self._max_lifetime + CLOCK_SKEW_SECONDS
        if exp - now > longest or (iat is not None and exp - iat > longest):
            raise ValueError(f"token lifetime exceeds {self._max_lifetime} s")
        return exp

    async def verify_async(self, token: str) -> Principal:
        """``verify``, with the JWKS URL's keys fetched first when stale or when the token names
        a key not fetched yet (without a JWKS URL: ``verify`` itself)."""
        remote = self.remote
        if remote is not None and token not in self._cache:
            try:
                header = jwt.get_unverified_header(token)
            except Exception:
                header = {}  # malformed: ``verify`` says so
            unknown = bool(header) and not remote.knows(header.get("kid"), header.get("alg"))
            if remote.stale() or unknown:
                try:
                    await remote.refresh(early=unknown)
                except Exception as exc:
                    raise DependencyUnavailable(
                        f"身份认证服务的公钥暂时无法获取：{type(exc).__name__}",
                        dependency="identity_provider",
                    ) from None
        return self.verify(token)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; raises ``Unauthenticated`` otherwise (a JWKS URL's
        keys as last fetched: ``verify_async`` fetches them)."""
        cached = self._cache.get(token)
        now = time.time()
        if cached is not None and cached[0] > now:
            return cached[1]
        if len(token) > MAX_TOKEN_CHARS:
            raise Unauthenticated("身份令牌无效：令牌过长")
        try:
            claims, trusted = self._decode(token)
            exp = self._check_times(claims)
            principal = principal_from_claims(claims)
            if principal.role not in trusted.roles:
                raise ValueError(f"this key may not sign {principal.role.value} tokens")
            if trusted.subject is not None and principal.subject != trusted.subject:
                # A service's key speaks for that service only (its kid names it).
                raise ValueError(f"this key signs {trusted.subject} tokens only")
        except Exception as exc:
            # Whatever a forged or malformed token makes the decoder raise is the caller's fault:
            # a 401, never a 500 (a traceback in the log for each crafted header).
            raise Unauthenticated(f"身份令牌无效：{str(exc)[:200]}") from None
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[token] = (exp, principal)
        return principal


def _short_string(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_CLAIM_CHARS:
        raise ValueError(f"claim {name} must be a string of 1 to {MAX_CLAIM_CHARS} characters")
    if "\x00" in value:
        raise ValueError(f"claim {name} holds a NUL character")
    return value


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """Build a principal, refusing claims that are malformed or contradict the role."""
    role_claim = claims.get("role")
    if not isinstance(role_claim, str) or role_claim not in Role.__members__.values():
        raise ValueError("unknown role")
    role = Role(role_claim)
    subject = _short_string(claims, "sub")
    if subject is None:
        raise ValueError("sub is required")
    uscc = _short_string(claims, "uscc")
    jurisdiction = claims.get("jurisdiction")
    name = _short_string(claims, "name")
    department = _short_string(claims, "department")
    if role is Role.ENTERPRISE and (uscc is None or not is_valid_uscc(uscc)):
        raise ValueError("enterprise tokens need a valid uscc claim")
    if jurisdiction is not None and not jurisdictions.is_valid(jurisdiction):
        raise ValueError("jurisdiction must be a 6, 9 or 12 digit 行政区划 code")
    if role in STAFF_ROLES and role is not Role.ADMIN and jurisdiction is None:
        raise ValueError("staff tokens need a jurisdiction claim")
    return Principal(
        subject=subject,
        role=role,
        uscc=uscc if role is Role.ENTERPRISE else None,
        jurisdiction=jurisdiction if role is not Role.ENTERPRISE else None,
        name=name,
        department=department if role in STAFF_ROLES else None,
    )


def load_verifier(
    *,
    public_key_file: str | None,
    jwks_file: str | None,
    jwks_url: str | None,
    issuer: str | None,
    audience: str | None,
    service_keys_file: str | None = None,
    service_issuer: str | None = DEFAULT_SERVICE_ISSUER,
    max_lifetime_seconds: int = 12 * 3600,
    bound_service_keys: bool = False,
    service: str | None = None,
) -> TokenVerifier:
    """A verifier from settings: the identity provider's PEM file, JWKS file or JWKS URL (human
    roles), and the services' keys (role ``service`` only, each bound to the service its kid names).

    ``service``, the verifying service's name: a service token is accepted only when its ``aud``
    names this service (``audience_of_service``); without it (a test's verifier) any service
    token's audience is accepted.

    ``bound_service_keys`` (production) refuses a service key bound to no service: the development
    PEM pair, which all three services share, would let any of them speak for the others.
    """
    service_keys = (
        service_trusted_keys(
            Path(service_keys_file).read_text(), roles=SERVICE_ROLES, issuer=service_issuer
        )
        if service_keys_file
        else []
    )
    if bound_service_keys and (unbound := unbound_service_keys(service_keys)):
        raise ValueError(
            "production needs every key of SERVICE_JWT_KEYS_FILE in a JWKS whose kid names its "
            f"service (<service>-<generation>, as make keys writes it); unbound: {', '.join(unbound)}"
        )
    return TokenVerifier(
        public_key_pem=Path(public_key_file).read_text() if public_key_file else None,
        jwks=json.loads(Path(jwks_file).read_text()) if jwks_file else None,
        jwks_url=jwks_url,
        issuer=issuer,
        audience=audience,
        service_keys=service_keys,
        service_audience=audience_of_service(service) if service else None,
        max_lifetime_seconds=max_lifetime_seconds,
    )


async def verified_principal(request: Request) -> Principal:
    """The caller of the request's ``Authorization: Bearer`` token, verified (401 problem
    otherwise), kept on ``request.state``.

    The header is read as ``HTTPBearer`` reads it (scheme, a space, the token; the scheme in any
    case), without building its credentials model for one string.
    """
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    token = token.strip()
    if not token or scheme.lower() != "bearer":
        raise Unauthenticated("请求缺少 Authorization: Bearer 令牌")
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = await verifier.verify_async(token)
    request.state.principal = principal
    return principal


async def optional_principal(request: Request) -> Principal | None:
    """For a public route that shows staff more: the verified caller when the request carries an
    ``Authorization`` header (401 problem for a bad token), None without one."""
    if not request.headers.get("authorization"):
        return None
    return await verified_principal(request)


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
        principal = await verified_principal(request)
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


DEV_IDP_KEY = "dev-jwt"
"""The development identity provider's key pair: it signs enterprise and staff tokens."""
DEV_SERVICE_KEY = "dev-service-jwt"
"""The development services' key pair: it signs service tokens only."""


def ensure_dev_keypair(directory: Path, name: str = DEV_IDP_KEY) -> tuple[Path, Path]:
    """Create (once) and return a development RSA key pair kept in the data folder.

    ``name`` is the identity provider's pair (``DEV_IDP_KEY``) or the services' (``DEV_SERVICE_KEY``):
    two pairs, so that development trusts each key for the roles it mints, as production does.
    Production refuses any key file named ``dev-*`` (``is_dev_key_file``).
    """
    private_dir(directory)
    private_path = directory / f"{name}-private.pem"
    public_path = directory / f"{name}-public.pem"
    if private_path.exists() and public_path.exists():
        return private_path, public_path
    # Three services starting at once share the folder: one makes the pair, the others wait.
    with touch_private(directory / f".{name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not private_path.exists() or not public_path.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            write_private(public_path, public)
            write_private(
                private_path,
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
            )
    return private_path, public_path


def is_dev_key_file(path: str | None) -> bool:
    """True for a key file the development helpers made (``dev-*`` in its name)."""
    return bool(path) and Path(str(path)).name.startswith("dev-")


def dev_role_key(directory: Path, role: Role | str) -> tuple[str, str | None]:
    """The development private key that may sign ``role`` and the issuer its tokens carry."""
    if Role(role) is Role.SERVICE:
        return ensure_dev_keypair(directory, DEV_SERVICE_KEY)[0].read_text(), DEFAULT_SERVICE_ISSUER
    return ensure_dev_keypair(directory, DEV_IDP_KEY)[0].read_text(), None


def mint_token(
    private_key: str | rsa.RSAPrivateKey,
    *,
    role: Role | str,
    subject: str | None = None,
    uscc: str | None = None,
    jurisdiction: str | None = None,
    name: str | None = None,
    department: str | None = None,
    issuer: str | None = None,
    audience: str | Sequence[str] | None = None,
    ttl_seconds: int = 8 * 3600,
    kid: str | None = None,
) -> str:
    """Sign a token with RS256 (development and service-to-service use).

    ``private_key`` is PEM text or a key loaded once (``load_private_key``): loading a PEM checks
    the RSA key, which costs more than signing.
    """
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
        ("department", department),
        ("iss", issuer),
        ("aud", audience),
    ):
        if value is not None:
            claims[claim] = value
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, private_key, algorithm="RS256", headers=headers)


def load_private_key(pem: str | bytes) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM, to mint many tokens with."""
    key = serialization.load_pem_private_key(pem.encode() if isinstance(pem, str) else pem, None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("an RSA private key is required (tokens are RS256)")
    return key


class ServiceTokenSource:
    """Mints short-lived service tokens for calls to other services, one per service called,
    renewing each before expiry.

    A token's ``aud`` names the service it is sent to (``audience_of_service``), so the service
    that receives it cannot replay it to another. The ``kid`` names the key in the verifiers' JWKS,
    so that keys can be rotated with two in the set. ``audience`` (the ``JWT_AUDIENCE`` of the
    portal's tokens) is added beside it for verifiers of releases before the per-service audience,
    which checked that one only; the verifiers of this release ignore it for service tokens.
    """

    def __init__(
        self,
        private_key_pem: str,
        *,
        service_name: str,
        issuer: str | None = DEFAULT_SERVICE_ISSUER,
        audience: str | None = None,
        kid: str | None = None,
    ) -> None:
        self._key = load_private_key(private_key_pem)
        self._service = service_name
        self._issuer = issuer
        self._audience = audience
        self._kid = kid
        self._tokens: dict[str, tuple[str, float]] = {}

    def token_for(self, service: str) -> str:
        """A valid bearer token of this service for a call to ``service``."""
        token, expires = self._tokens.get(service, ("", 0.0))
        if time.time() > expires - 60:
            audience = [audience_of_service(service)]
            if self._audience:
                audience.append(self._audience)
            token = mint_token(
                self._key,
                role=Role.SERVICE,
                subject=subject_of_service(self._service),
                name=self._service,
                issuer=self._issuer,
                audience=audience,
                kid=self._kid,
                ttl_seconds=900,
            )
            self._tokens[service] = (token, time.time() + 900)
        return token

    def for_service(self, service: str) -> Callable[[], str]:
        """``token_for(service)`` as a callable of no argument, for a relay's ``Destination`` or a
        client of that service."""
        return functools.partial(self.token_for, service)


def service_tokens(settings: object, *, service_name: str) -> ServiceTokenSource:
    """The service token source a service's settings describe (CommonSettings fields)."""
    key_file = getattr(settings, "service_private_key_file", None)
    if not key_file:
        raise ValueError("SERVICE_PRIVATE_KEY_FILE is required to call other services")
    kid = getattr(settings, "service_key_id", None) or None
    bound = service_subject(kid)
    if bound is None and getattr(settings, "environment", None) == "production":
        raise ValueError(
            f"production needs SERVICE_KEY_ID = {service_name}-<generation>, the kid of this "
            "service's key in the verifiers' JWKS"
        )
    if bound is not None and bound != subject_of_service(service_name):
        # The verifiers would refuse every token: say so at start-up, not at the first call.
        raise ValueError(f"SERVICE_KEY_ID {kid} names another service than {service_name}")
    return ServiceTokenSource(
        Path(key_file).read_text(),
        service_name=service_name,
        issuer=getattr(settings, "service_token_issuer", None) or DEFAULT_SERVICE_ISSUER,
        audience=getattr(settings, "jwt_audience", None),
        kid=kid,
    )
