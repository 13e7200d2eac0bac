"""Routes planned once (govshared.routeplan) answer every request exactly as FastAPI's own handler."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

import govshared.db
from govshared.auth import (
    Principal,
    Role,
    TokenVerifier,
    ensure_dev_keypair,
    get_principal,
    mint_token,
    require_roles,
)
from govshared.db import AutoCommitRoute
from govshared.limits import RequestLimitsMiddleware
from govshared.observability import ObservabilityMiddleware
from govshared.problems import install_problem_handlers
from govshared.testing import problem


class Thing(BaseModel):
    name: str = Field(min_length=1, max_length=10)
    count: int = Field(ge=0)


class ThingOut(BaseModel):
    id: uuid.UUID
    name: str
    by: str


async def twice(principal: Annotated[Principal, Depends(get_principal)]) -> str:
    """A dependency on a dependency: the principal is solved once per request (cached)."""
    return principal.subject * 2


def build_app(keys: tuple[str, str]) -> FastAPI:
    public = keys[1]
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(RequestLimitsMiddleware, max_header_bytes=16384, max_json_bytes=4096)
    app.add_middleware(ObservabilityMiddleware, service="test")
    app.state.token_verifier = TokenVerifier(public_key_pem=public)
    router = APIRouter(prefix="/api/v1", route_class=AutoCommitRoute)

    @router.post("/things/{thing_id}/act", status_code=201)
    async def act(
        request: Request,
        thing_id: uuid.UUID,
        body: Thing,
        principal: Annotated[Principal, Depends(require_roles(Role.ENTERPRISE))],
        doubled: Annotated[str, Depends(twice)],
    ) -> Response:
        return JSONResponse(
            {
                "id": str(thing_id),
                "name": body.name,
                "count": body.count,
                "by": principal.subject,
                "twice": doubled,
            },
            status_code=201,
            headers={"X-Path": request.url.path},
        )

    @router.get("/things/{thing_id}", response_model=ThingOut)
    async def read(
        thing_id: uuid.UUID,
        principal: Annotated[Principal, Depends(get_principal)],
        limit: Annotated[int, Query(ge=1, le=5)] = 2,
    ) -> dict[str, Any]:
        return {"id": thing_id, "name": "x" * limit, "by": principal.subject, "extra": "dropped"}

    app.include_router(router)
    return app


@pytest.fixture
def keys(tmp_path: Path) -> tuple[str, str]:
    private, public = ensure_dev_keypair(tmp_path)
    return private.read_text(), public.read_text()


ID = "7b0f2b44-54a6-4d5c-9d8d-8f3c3c6f4b10"


def requests(private: str) -> list[tuple[str, str, dict[str, str], bytes | None]]:
    """Requests meant to reach every branch: the order of checks, bodies and media types."""
    enterprise = mint_token(private, role=Role.ENTERPRISE, uscc="91350100M000100Y43", subject="e")
    staff = mint_token(private, role=Role.ACCEPTOR, jurisdiction="310000", subject="s")
    ok = b'{"name":"a","count":1}'
    bad = b'{"name":"","count":-1}'
    json_ = {"content-type": "application/json"}

    def auth(token: str) -> dict[str, str]:
        return {"authorization": f"Bearer {token}"}

    act = f"/api/v1/things/{ID}/act"
    return [
        ("POST", act, {**json_, **auth(enterprise)}, ok),
        ("POST", act, {"content-type": "application/problem+json", **auth(enterprise)}, ok),
        ("POST", act, {"content-type": "Application/JSON; charset=utf-8", **auth(enterprise)}, ok),
        ("POST", act, json_, bad),  # no token, bad fields: 401 first
        ("POST", act, {**json_, "authorization": "Basic abc"}, ok),
        ("POST", act, {**json_, "authorization": "Bearer "}, ok),
        ("POST", act, {**json_, "authorization": "bearer   not-a-token"}, ok),
        ("POST", act, {**json_, **auth(staff)}, ok),  # wrong role: 403 before 422
        ("POST", act, {**json_, **auth(staff)}, bad),
        ("POST", act, {**json_, **auth(enterprise)}, bad),
        ("POST", "/api/v1/things/not-a-uuid/act", {**json_, **auth(enterprise)}, bad),
        ("POST", act, {**json_, **auth(enterprise)}, b'{"name": "a", '),  # malformed JSON
        ("POST", act, json_, b'{"name": "a", '),
        ("POST", act, {"content-type": "text/plain", **auth(enterprise)}, ok),
        ("POST", act, auth(enterprise), ok),  # no content type: not read as JSON
        ("POST", act, {**json_, **auth(enterprise)}, b""),
        ("POST", act, {**json_, **auth(enterprise)}, b"[1, 2]"),
        # Bodies orjson reads otherwise or refuses, where the standard library decides.
        ("POST", act, {**json_, **auth(enterprise)}, b'{"name":"a","count":123456789012345678901}'),
        ("POST", act, {**json_, **auth(enterprise)}, b'{"name":"a","count":9223372036854775807}'),
        ("POST", act, {**json_, **auth(enterprise)}, b'{"name":"a","count":NaN}'),
        ("POST", act, {**json_, **auth(enterprise)}, b'{"name":"a","count":1e400}'),
        ("POST", act, {**json_, **auth(enterprise)}, b'{"name":"\\ud800","count":1}'),
        ("POST", act, {**json_, **auth(enterprise)}, b'\xef\xbb\xbf{"name":"a","count":1}'),
        ("POST", act, {**json_, **auth(enterprise)}, '{"name":"a","count":1}'.encode("utf-16")),
        ("POST", act, {**json_, **auth(enterprise)}, b'{"name":"\xff","count":1}'),
        ("POST", act, {**json_, **auth(enterprise)}, b'{"name":"a","name":"b","count":1}'),
        ("GET", f"/api/v1/things/{ID}", auth(enterprise), None),
        ("GET", f"/api/v1/things/{ID}?limit=9", auth(enterprise), None),
        ("GET", f"/api/v1/things/{ID}?limit=9", {}, None),
        ("GET", "/api/v1/things/nope?limit=0", auth(staff), None),
    ]


async def answers(app: FastAPI, private: str) -> list[tuple[int, str, bytes]]:
    found = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        for method, path, headers, content in requests(private):
            response = await client.request(
                method, path, headers={**headers, "x-request-id": "r1"}, content=content
            )
            found.append(
                (response.status_code, response.headers.get("content-type", ""), response.content)
            )
    return found


async def test_planned_routes_answer_as_fastapi_does(
    keys: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    planned = await answers(build_app(keys), keys[0])
    monkeypatch.setattr(govshared.db, "_ROUTE_PLAN", lambda _route, fastapi: fastapi)
    assert planned == await answers(build_app(keys), keys[0])


async def test_a_caller_without_a_valid_token_gets_401_before_any_422_on_the_body(
    keys: tuple[str, str],
) -> None:
    app = build_app(keys)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        refused = await client.post(f"/api/v1/things/{ID}/act", json={"name": "", "count": -1})
        assert problem(refused)["code"] == "unauthenticated"
        token = mint_token(keys[0], role=Role.ENTERPRISE, uscc="91350100M000100Y43", subject="e")
        invalid = await client.post(
            "/api/v1/things/nope/act",
            json={"name": "", "count": -1},
            headers={"Authorization": f"Bearer {token}"},
        )
        body = problem(invalid)
        assert body["code"] == "validation_failed"
        # The path's and the body's errors together, in one answer.
        names = {p["name"] for p in body["invalid_params"]}  # type: ignore[attr-defined]
        assert names == {"path.thing_id", "body.name", "body.count"}
        done = await client.post(
            f"/api/v1/things/{ID}/act",
            json={"name": "a", "count": 1},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert done.status_code == 201
        assert done.json() == {"id": ID, "name": "a", "count": 1, "by": "e", "twice": "ee"}


async def test_dependency_overrides_still_apply(keys: tuple[str, str]) -> None:
    app = build_app(keys)
    app.dependency_overrides[twice] = lambda: "overridden"
    token = mint_token(keys[0], role=Role.ENTERPRISE, uscc="91350100M000100Y43", subject="e")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        done = await client.post(
            f"/api/v1/things/{ID}/act",
            json={"name": "a", "count": 1},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert done.json()["twice"] == "overridden"


def test_hot_routes_are_planned(keys: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The routes above are planned (not left to FastAPI's handler), so the first test compares
    two different handlers."""
    built: list[bool] = []
    original = govshared.db._ROUTE_PLAN
    assert original is not None

    def spy(route: Any, fastapi: Any) -> Any:
        handler = original(route, fastapi)
        built.append(handler is not fastapi)
        return handler

    monkeypatch.setattr(govshared.db, "_ROUTE_PLAN", spy)
    app = build_app(keys)
    for route in app.routes:
        getattr(route, "dependant", None)  # handlers of included routers are built lazily
    assert built and all(built)
