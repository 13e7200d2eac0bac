"""Issue 15 in the shared package: the jurisdiction vocabulary, keys bound to roles, the
development flow, private files and the production refusals."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from sqlalchemy import Column, MetaData, String, Table
from sqlalchemy.dialects import postgresql, sqlite

from govshared import jurisdictions
from govshared.auth import (
    DEFAULT_SERVICE_ISSUER,
    DEV_SERVICE_KEY,
    SERVICE_ROLES,
    Role,
    TokenVerifier,
    ensure_dev_keypair,
    load_verifier,
    mint_token,
    trusted_keys,
)
from govshared.files import write_private
from govshared.problems import Unauthenticated
from govshared.settings import CommonSettings


@pytest.mark.parametrize(
    "code", ["310000", "310100", "310115", "110105", "310115001", "310115001002", "820000"]
)
def test_valid_codes(code: str) -> None:
    assert jurisdictions.is_valid(code)


@pytest.mark.parametrize(
    "code",
    [
        310000,
        None,
        "0",
        "000000",
        "990000",
        "31000",
        "3100000",
        "31%",
        "31____",
        "310000%",
        "３１００００",
        "310115000",
        "310115001000",
        "310015",
        " 310000",
        "310000\n",
    ],
)
def test_invalid_codes(code: Any) -> None:
    assert not jurisdictions.is_valid(code)


def test_containment_and_prefix() -> None:
    assert jurisdictions.covers("310000", "310115")
    assert jurisdictions.covers("310000", "310115001")
    assert jurisdictions.covers("310115", "310115001002")
    assert jurisdictions.covers("310115001", "310115001")
    assert not jurisdictions.covers("310115001", "310115")
    assert not jurisdictions.covers("310115", "310118")
    assert not jurisdictions.covers("000000", "310115")
    assert not jurisdictions.covers("31", "310115")
    assert jurisdictions.ancestors("310115001") == ["310115001", "310115", "310100", "310000"]
    assert [jurisdictions.scope_prefix(c) for c in ("310000", "310100", "310115", "310115001")] == [
        "31",
        "3101",
        "310115",
        "310115001",
    ]
    with pytest.raises(ValueError):
        jurisdictions.scope_prefix("3%")


def test_the_scoping_predicate_has_no_wildcard_from_a_claim() -> None:
    table = Table("t", MetaData(), Column("jurisdiction", String(12)))
    clause = jurisdictions.in_scope(table.c.jurisdiction, "310000")
    for dialect in (postgresql.dialect(), sqlite.dialect()):
        compiled = clause.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
        assert "'31'" in str(compiled) or "'31%'" in str(compiled)
    with pytest.raises(ValueError):
        jurisdictions.in_scope(table.c.jurisdiction, "%")


@pytest.fixture
def pairs(tmp_path: Path) -> tuple[str, str, str, str]:
    idp_private, idp_public = ensure_dev_keypair(tmp_path)
    svc_private, svc_public = ensure_dev_keypair(tmp_path, DEV_SERVICE_KEY)
    return (
        idp_private.read_text(),
        idp_public.read_text(),
        svc_private.read_text(),
        svc_public.read_text(),
    )


def verifier(pairs: tuple[str, str, str, str], **kwargs: Any) -> TokenVerifier:
    _, idp_public, _, svc_public = pairs
    return TokenVerifier(
        public_key_pem=idp_public,
        service_keys=trusted_keys(svc_public, roles=SERVICE_ROLES, issuer=DEFAULT_SERVICE_ISSUER),
        **kwargs,
    )


def test_each_key_asserts_only_its_roles_and_issuer(pairs: tuple[str, str, str, str]) -> None:
    idp, _, services, _ = pairs
    check = verifier(pairs, issuer="https://idp.example")
    staff = mint_token(idp, role=Role.ADMIN, issuer="https://idp.example")
    assert check.verify(staff).role is Role.ADMIN
    service = mint_token(services, role=Role.SERVICE, issuer=DEFAULT_SERVICE_ISSUER)
    assert check.verify(service).role is Role.SERVICE
    for forged in (
        mint_token(idp, role=Role.SERVICE, issuer="https://idp.example"),
        mint_token(services, role=Role.ADMIN, issuer=DEFAULT_SERVICE_ISSUER),
        mint_token(services, role=Role.ENTERPRISE, uscc="91350100M000100Y43"),
        mint_token(idp, role=Role.ADMIN, issuer=DEFAULT_SERVICE_ISSUER),
        mint_token(services, role=Role.SERVICE, issuer="https://idp.example"),
    ):
        with pytest.raises(Unauthenticated):
            check.verify(forged)


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": 1e300},
        {"exp": "9999999999"},
        {"exp": float("inf")},
        {"nbf": "0"},
        {"iat": "now"},
        {"exp_in": 13 * 3600},  # past the maximum lifetime (12 h), relative to the test's own clock
        {"sub": 5},
        {"sub": ""},
        {"role": ["admin"]},
        {"role": "root"},
        {"name": {"x": 1}},
        {"jurisdiction": 310000},
        {"jurisdiction": "000000"},
    ],
    ids=repr,
)
def test_claims_are_type_checked(pairs: tuple[str, str, str, str], claims: dict[str, Any]) -> None:
    idp = pairs[0]
    payload: dict[str, Any] = {"sub": "admin-1", "role": "admin", "exp": int(time.time()) + 60}
    claims = dict(claims)
    if "exp_in" in claims:
        payload["exp"] = int(time.time()) + claims.pop("exp_in")
    payload.update(claims)
    with pytest.raises(Unauthenticated):
        verifier(pairs).verify(jwt.encode(payload, idp, algorithm="RS256"))


@pytest.mark.parametrize(
    "token",
    [
        "eyJhbGciOiJFUzI1NiJ9.e30.AAAA",
        "eyJhbGciOiJSUzI1NiIsImtpZCI6e319.e30.AAAA",
        "eyJhbGciOiJIUzI1NiJ9.e30.AAAA",
        "a.b.c",
        "",
        "A" * 20000,
    ],
)
def test_malformed_tokens_raise_only_unauthenticated(
    pairs: tuple[str, str, str, str], token: str
) -> None:
    with pytest.raises(Unauthenticated):
        verifier(pairs).verify(token)


def test_the_development_flow_mints_tokens_the_services_accept(tmp_path: Path) -> None:
    """``make token`` (govshared.devtoken) and a service's own token source, against the verifier
    a development service builds from its default settings."""
    settings = CommonSettings(data_dir=tmp_path)
    check = load_verifier(
        public_key_file=settings.jwt_public_key_file,
        jwks_file=None,
        jwks_url=None,
        issuer=None,
        audience=None,
        service_keys_file=settings.service_jwt_keys_file,
        service_issuer=settings.service_token_issuer,
        service="approval",
    )
    env = {**os.environ, "SUITE_DATA_DIR": str(tmp_path)}
    for args, role in (
        (["--role", "enterprise", "--uscc", "91350100M000100Y43"], Role.ENTERPRISE),
        (["--role", "acceptor", "--jurisdiction", "310000"], Role.ACCEPTOR),
        (["--role", "service"], Role.SERVICE),
        (["--role", "admin"], Role.ADMIN),
    ):
        token = subprocess.run(
            [sys.executable, "-m", "govshared.devtoken", *args],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        assert check.verify(token).role is role
    from govshared.auth import service_tokens

    assert (
        check.verify(service_tokens(settings, service_name="notify").token_for("approval")).role
        is Role.SERVICE
    )


def test_data_files_and_keys_are_private(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        private, public = ensure_dev_keypair(tmp_path / "keys")
        write_private(tmp_path / "materials" / "a" / "b" / "c.pdf", b"%PDF")
        from govshared.db import private_sqlite_file

        private_sqlite_file(f"sqlite+aiosqlite:///{tmp_path / 'db' / 'x.db'}")
    finally:
        os.umask(old)
    for path in (
        private,
        public,
        tmp_path / "materials" / "a" / "b" / "c.pdf",
        tmp_path / "db" / "x.db",
    ):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for folder in (
        tmp_path / "keys",
        tmp_path / "materials",
        tmp_path / "materials" / "a",
        tmp_path / "materials" / "a" / "b",
        tmp_path / "db",
    ):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def production(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    keys = tmp_path / "prod"
    keys.mkdir(exist_ok=True)
    for name in ("idp.pem", "svc.pem", "services.pem"):
        (keys / name).write_text("x")
    values: dict[str, Any] = {
        "environment": "production",
        "data_dir": tmp_path,
        "database_url": "postgresql+asyncpg://u@db/x",
        "jwt_public_key_file": str(keys / "idp.pem"),
        "service_private_key_file": str(keys / "svc.pem"),
        "service_jwt_keys_file": str(keys / "services.pem"),
        "jwt_issuer": "https://idp.example.gov.cn",
        "jwt_audience": "onestop",
        "cors_origins": ["https://portal.example.gov.cn"],
    }
    values.update(overrides)
    return values


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"jwt_public_key_file": "/keys/dev-jwt-public.pem"}, "development key"),
        ({"service_private_key_file": "/data/keys/dev-service-jwt-private.pem"}, "development key"),
        ({"service_jwt_keys_file": "/keys/dev-service-jwt-public.pem"}, "development key"),
        ({"jwt_public_key_file": None, "jwt_jwks_url": "http://idp/jwks"}, "https"),
        ({"cors_origins": ["*"]}, "CORS"),
        ({"jwt_issuer": None}, "JWT_ISSUER"),
        ({"jwt_audience": ""}, "JWT_AUDIENCE"),
        ({"service_jwt_keys_file": None}, "SERVICE_JWT_KEYS_FILE"),
    ],
)
def test_production_refuses_development_settings(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        CommonSettings(**production(tmp_path, **overrides))


def test_production_accepts_real_settings(tmp_path: Path) -> None:
    settings = CommonSettings(**production(tmp_path))
    assert settings.environment == "production"
    https = CommonSettings(
        **production(tmp_path, jwt_public_key_file=None, jwt_jwks_url="https://idp/jwks")
    )
    assert https.jwt_jwks_url == "https://idp/jwks"


def test_a_service_token_source_names_its_own_service(tmp_path: Path) -> None:
    """SERVICE_KEY_ID is the kid the verifiers bind to one service: a kid naming another service
    is refused at start-up (every token would be refused later), and production needs one."""
    from govshared.auth import service_tokens

    settings = CommonSettings(data_dir=tmp_path, service_key_id="license-2026-12")
    with pytest.raises(ValueError, match="names another service"):
        service_tokens(settings, service_name="approval")
    assert service_tokens(settings, service_name="license").token_for("approval")
    real = CommonSettings(**production(tmp_path))
    real.service_private_key_file = settings.service_private_key_file
    with pytest.raises(ValueError, match="SERVICE_KEY_ID"):
        service_tokens(real, service_name="approval")
    real.service_key_id = "approval-2026-12"
    token = service_tokens(real, service_name="approval").token_for("license")
    assert jwt.get_unverified_header(token)["kid"] == "approval-2026-12"
