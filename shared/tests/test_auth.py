"""Bearer tokens: asymmetric only, claims checked, roles enforced as problem+json."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, FastAPI, Request

from govshared.auth import (
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
from govshared.problems import Unauthenticated, install_problem_handlers
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
    expired = mint_token(private, role=Role.ADMIN, ttl_seconds=-10)
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
    token = service_tokens(settings, service_name="approval").token()
    assert jwt.get_unverified_header(token)["kid"] == "approval-1"
    assert jwt.decode(token, options={"verify_signature": False})["iss"] == DEFAULT_SERVICE_ISSUER
    verifier = TokenVerifier(
        issuer="https://idp.example",
        audience="onestop",
        service_keys=trusted_keys(public, roles=SERVICE_ROLES, issuer=DEFAULT_SERVICE_ISSUER),
    )
    principal = verifier.verify(token)
    assert principal.role is Role.SERVICE and principal.subject == "service:approval"
