"""Bearer tokens: asymmetric only, claims checked, roles enforced as problem+json."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, FastAPI, Request

from govshared.auth import (
    CLOCK_SKEW_SECONDS,
    DEFAULT_SERVICE_ISSUER,
    SERVICE_ROLES,
    Principal,
    Role,
    TokenVerifier,
    ensure_dev_keypair,
    get_principal,
    mint_token,
    require_roles,
    trusted_keys,
)
from govshared.jwks import audience_of_service
from govshared.problems import DependencyUnavailable, Unauthenticated, install_problem_handlers
from govshared.testing import problem


@pytest.fixture
def keys(tmp_path: Path) -> tuple[str, str]:
    private, public = ensure_dev_keypair(tmp_path)
    return private.read_text(), public.read_text()


def test_valid_token_gives_principal(keys: tuple[str, str]) -> None:
    private, public = keys
    token = mint_token(private, role=Role.ENTERPRISE, uscc="91350100M000100Y43", subject="ent:x")
    principal = TokenVerifier(public_key_pem=public).verify(token)
    assert principal == Principal(subject="ent:x", role=Role.ENTERPRISE, uscc="91350100M000100Y43")


def test_rejects_expired_wrong_key_hmac_and_bad_claims(
    keys: tuple[str, str], tmp_path: Path
) -> None:
    private, public = keys
    verifier = TokenVerifier(public_key_pem=public)
    expired = mint_token(private, role=Role.ADMIN, ttl_seconds=-(CLOCK_SKEW_SECONDS + 10))
    other_private, _ = ensure_dev_keypair(tmp_path / "other")
    foreign = mint_token(other_private.read_text(), role=Role.ADMIN)
    hmac = jwt.encode(
        {"sub": "x", "role": "admin", "exp": int(time.time()) + 60},
        "a-shared-secret-that-is-long-enough-for-hs256",
        algorithm="HS256",
    )
    bad_uscc = mint_token(private, role=Role.ENTERPRISE, uscc="91350100M000100Y4Z")
    staff_without_region = mint_token(private, role=Role.ACCEPTOR)
    for token in (expired, foreign, hmac, bad_uscc, staff_without_region, "garbage"):
        with pytest.raises(Unauthenticated):
            verifier.verify(token)


def test_a_minute_of_clock_skew_either_way_is_allowed() -> None:
    """The identity provider's clock a little ahead (a token issued "in the future") or behind (a
    token expired seconds ago by our clock) is not an invalid token; beyond a minute it is."""
    key, jwk = _idp_key("idp-1")
    verifier = TokenVerifier(jwks={"keys": [jwk]})
    now = int(time.time())

    def token(**times: int) -> str:
        claims = {"sub": "u1", "role": "reviewer", "jurisdiction": "310115", **times}
        return jwt.encode(claims, key, algorithm="ES256", headers={"kid": "idp-1"})

    for ok in (
        token(iat=now + 5, nbf=now + 5, exp=now + 600),
        token(iat=now - 600, exp=now - 10),
    ):
        assert verifier.verify(ok).subject == "u1"
    skew = CLOCK_SKEW_SECONDS
    for late in (token(iat=now + skew + 30, exp=now + 600), token(exp=now - skew - 30)):
        with pytest.raises(Unauthenticated):
            verifier.verify(late)


def test_a_jwks_with_a_key_of_another_kind_keeps_the_keys_it_can_use() -> None:
    """An identity provider publishing a P-384 key for other clients beside ours: ours verify."""
    key, jwk = _idp_key("idp-1")
    other = json.loads(
        jwt.algorithms.ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1()).public_key())
    )
    other["kid"] = "other-p384"
    verifier = TokenVerifier(jwks={"keys": [other, jwk]})
    assert verifier.verify(_staff_token(key, "idp-1")).role is Role.REVIEWER
    with pytest.raises(ValueError, match="no RSA or EC P-256 key"):
        TokenVerifier(jwks={"keys": [other]})


def test_jwks_with_es256(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk["kid"] = "idp-1"
    token = jwt.encode(
        {"sub": "u1", "role": "reviewer", "jurisdiction": "310115", "exp": int(time.time()) + 60},
        key,
        algorithm="ES256",
        headers={"kid": "idp-1"},
    )
    principal = TokenVerifier(jwks={"keys": [jwk]}).verify(token)
    assert principal.role is Role.REVIEWER and principal.jurisdiction == "310115"


async def test_roles_enforced_as_problems(keys: tuple[str, str]) -> None:
    private, public = keys
    app = FastAPI()
    install_problem_handlers(app)
    app.state.token_verifier = TokenVerifier(public_key_pem=public)

    @app.get("/staff-only")
    async def staff_only(p: Principal = Depends(require_roles(Role.ACCEPTOR))) -> dict[str, str]:
        return {"sub": p.subject}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert problem(await c.get("/staff-only"))["status"] == 401
        ent = mint_token(private, role=Role.ENTERPRISE, uscc="91350100M000100Y43")
        denied = await c.get("/staff-only", headers={"Authorization": f"Bearer {ent}"})
        assert problem(denied)["code"] == "forbidden"
        ok = mint_token(private, role=Role.ACCEPTOR, jurisdiction="310000", subject="s1")
        allowed = await c.get("/staff-only", headers={"Authorization": f"Bearer {ok}"})
        assert allowed.json() == {"sub": "s1"}


async def test_bearer_dependencies_verify_and_declare_the_scheme(keys: tuple[str, str]) -> None:
    """Any role or given roles: each route declares the HTTPBearer scheme in OpenAPI, a missing or
    bad token is a 401 problem, and the verified principal is left on the request's state."""
    private, public = keys
    app = FastAPI()
    install_problem_handlers(app)
    app.state.token_verifier = TokenVerifier(public_key_pem=public)

    @app.get("/anyone")
    async def anyone(request: Request, p: Principal = Depends(get_principal)) -> dict[str, str]:
        return {"sub": p.subject, "state": request.state.principal.subject}

    @app.get("/enterprises")
    async def enterprises(p: Principal = Depends(require_roles(Role.ENTERPRISE))) -> dict[str, str]:
        return {"uscc": p.uscc or ""}

    spec = app.openapi()
    assert spec["components"]["securitySchemes"] == {
        "HTTPBearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "JWT issued by the portal's identity provider",
        }
    }
    for path in ("/anyone", "/enterprises"):
        assert spec["paths"][path]["get"]["security"] == [{"HTTPBearer": []}]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert problem(await c.get("/anyone"))["status"] == 401
        bad = await c.get("/anyone", headers={"Authorization": "Bearer not-a-token"})
        assert problem(bad)["status"] == 401
        basic = await c.get("/anyone", headers={"Authorization": "Basic dTpw"})
        assert problem(basic)["status"] == 401
        ent = mint_token(private, role=Role.ENTERPRISE, uscc="91350100M000100Y43", subject="e1")
        auth = {"Authorization": f"Bearer {ent}"}
        assert (await c.get("/anyone", headers=auth)).json() == {"sub": "e1", "state": "e1"}
        assert (await c.get("/enterprises", headers=auth)).json() == {"uscc": "91350100M000100Y43"}


def test_service_tokens_carry_kid_issuer_and_audience(
    keys: tuple[str, str], tmp_path: Path
) -> None:
    from types import SimpleNamespace

    from govshared.auth import service_tokens

    private, public = keys
    key_file = tmp_path / "service.pem"
    key_file.write_text(private)
    settings = SimpleNamespace(
        service_private_key_file=str(key_file),
        jwt_issuer="https://idp.example",
        jwt_audience="onestop",
        service_key_id="approval-1",
    )
    source = service_tokens(settings, service_name="approval")
    token = source.token_for("license")
    assert jwt.get_unverified_header(token)["kid"] == "approval-1"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == DEFAULT_SERVICE_ISSUER
    # The service called, and the portal's audience for verifiers of earlier releases.
    assert claims["aud"] == ["urn:onestop:services:license", "onestop"]
    assert source.token_for("license") == token  # kept until it nears expiry

    def verifier_of(service: str) -> TokenVerifier:
        return TokenVerifier(
            issuer="https://idp.example",
            audience="onestop",
            service_keys=trusted_keys(public, roles=SERVICE_ROLES, issuer=DEFAULT_SERVICE_ISSUER),
            service_audience=audience_of_service(service),
        )

    principal = verifier_of("license").verify(token)
    assert principal.role is Role.SERVICE and principal.subject == "service:approval"
    # The token approval's relay sends notify cannot be replayed to license (nor license's to
    # notify): each service accepts only the tokens sent to it.
    with pytest.raises(Unauthenticated, match=r"(?i)audience"):
        verifier_of("license").verify(source.token_for("notify"))
    with pytest.raises(Unauthenticated, match=r"(?i)audience"):
        verifier_of("notify").verify(token)
    assert verifier_of("notify").verify(source.token_for("notify")).subject == "service:approval"
    # A service token with the portal's audience only (a release before the per-service one).
    shared_only = mint_token(
        private,
        role=Role.SERVICE,
        subject="service:approval",
        issuer=DEFAULT_SERVICE_ISSUER,
        audience="onestop",
    )
    with pytest.raises(Unauthenticated, match=r"(?i)audience"):
        verifier_of("license").verify(shared_only)


class _JwksServer:
    """A JWKS on a real HTTP server on 127.0.0.1 (a thread), counting the requests it answers and
    taking ``delay`` seconds to answer each."""

    def __init__(self, keys: list[dict[str, Any]], *, delay: float = 0.0) -> None:
        import http.server
        import threading

        self.keys = keys
        self.requests = 0
        self.delay = delay
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                time.sleep(owner.delay)
                body = json.dumps({"keys": owner.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _idp_key(kid: str) -> tuple[Any, dict[str, Any]]:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk["kid"] = kid
    return key, jwk


def _staff_token(key: Any, kid: str, subject: str = "u1") -> str:
    claims = {
        "sub": subject,
        "role": "reviewer",
        "jurisdiction": "310115",
        "exp": int(time.time()) + 60,
    }
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})


async def test_a_jwks_url_is_fetched_without_blocking_the_event_loop_and_cached() -> None:
    key, jwk = _idp_key("idp-1")
    server = _JwksServer([jwk], delay=0.3)
    try:
        verifier = TokenVerifier(jwks_url=server.url)
        ticks = 0
        verifying = asyncio.create_task(verifier.verify_async(_staff_token(key, "idp-1")))
        while not verifying.done():
            await asyncio.sleep(0.01)
            ticks += 1
        principal = await verifying
        assert principal.role is Role.REVIEWER
        # The loop kept running while the identity provider took 0.3 s to answer.
        assert ticks >= 10
        # Another token signed with the same key: the keys are cached, no second fetch.
        other = await verifier.verify_async(_staff_token(key, "idp-1", subject="u2"))
        assert other.subject == "u2" and server.requests == 1
    finally:
        server.close()


async def test_a_rotated_key_is_fetched_early_and_a_made_up_kid_is_not_a_flood() -> None:
    old, old_jwk = _idp_key("idp-1")
    new, new_jwk = _idp_key("idp-2")
    server = _JwksServer([old_jwk])
    try:
        verifier = TokenVerifier(jwks_url=server.url)
        await verifier.verify_async(_staff_token(old, "idp-1"))
        server.keys = [old_jwk, new_jwk]
        assert verifier.remote is not None
        verifier.remote._min_refetch = 0.0  # the identity provider rotated a while ago
        principal = await verifier.verify_async(_staff_token(new, "idp-2"))
        assert principal.subject == "u1" and server.requests == 2
        verifier.remote._min_refetch = 30.0
        for n in range(5):
            with pytest.raises(Unauthenticated):
                await verifier.verify_async(_staff_token(new, f"forged-{n}"))
        assert server.requests == 2  # fetched moments ago: none within the 30 s
    finally:
        server.close()


async def test_an_unreachable_jwks_url_is_a_503_problem_not_a_hang() -> None:
    key, _jwk = _idp_key("idp-1")
    verifier = TokenVerifier(jwks_url="http://127.0.0.1:9/.well-known/jwks.json")
    # A replica started while the identity provider is away: every request says so (503), not
    # that the token is invalid (401, which clients take as "log in again" and discard it).
    for _ in range(3):
        with pytest.raises(DependencyUnavailable):
            await verifier.verify_async(_staff_token(key, "idp-1"))
