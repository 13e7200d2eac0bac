"""The FastAPI application shell every service shares: errors, middleware, health and metrics."""

from __future__ import annotations

import ast
import asyncio
import gc
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastapi_offline
import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from govshared.auth import ServiceTokenSource, load_verifier, service_tokens
from govshared.db import (
    engine_from_settings,
    is_database_outage,
    is_sqlite,
    make_sessionmaker,
    private_sqlite_file,
)
from govshared.files import private_dir
from govshared.limits import RequestLimitsMiddleware, declare_edge_refusals
from govshared.observability import (
    ObservabilityMiddleware,
    configure_logging,
    make_http_client,
    metrics_endpoint,
)
from govshared.problems import (
    DatabaseUnavailable,
    NotReady,
    Problem,
    install_problem_handlers,
    problem_response,
    problem_responses,
    retry_after,
)
from govshared.settings import CommonSettings
from govshared.sql import use_driver
from govshared.wake import CommitSignal, commit_signal


@dataclass(frozen=True)
class Migrations:
    """What the code knows of its migrations: the head, and every older revision."""

    head: str | None
    older: frozenset[str]

    def behind(self, revision: str | None) -> bool:
        """True when the database still needs a migration this code expects.

        A revision the code does not know is a newer one (a roll-out in progress has migrated
        ahead of this replica): the schema is additive across one release, so that is ready.
        """
        return revision is None or revision in self.older


@lru_cache(maxsize=16)  # read at start by the migration check and the readiness route alike
def known_migrations(alembic_ini: Path) -> Migrations:
    """The head and older revisions of a service's migrations (``migrations/versions`` beside
    ``alembic_ini``, where every service's ``script_location`` points).

    Read from each version file's ``revision`` and ``down_revision`` assignments, parsed but never
    run: Alembic's ``ScriptDirectory`` imports every migration (and Alembic's operations with
    them), which a web process that does not migrate (a replica) would keep for its whole life
    only to know one name (``make bench-rss``). The tests check this against Alembic's own answer.
    """
    parents: dict[str, tuple[str, ...]] = {}
    for path in sorted((alembic_ini.parent / "migrations" / "versions").glob("*.py")):
        names = _module_constants(path, ("revision", "down_revision"))
        revision, down = names.get("revision"), names.get("down_revision")
        if not isinstance(revision, str):
            continue  # not a revision (a helper module beside them)
        if down is None:
            parents[revision] = ()
        elif isinstance(down, str):
            parents[revision] = (down,)
        else:
            parents[revision] = tuple(down)
    referenced = {parent for downs in parents.values() for parent in downs}
    heads = sorted(set(parents) - referenced)
    if len(heads) > 1:
        raise ValueError(f"{alembic_ini.parent.name}: more than one migration head: {heads}")
    head = heads[0] if heads else None
    return Migrations(head=head, older=frozenset(set(parents) - {head}))


def _module_constants(path: Path, names: tuple[str, ...]) -> dict[str, Any]:
    """The literal values a module assigns to ``names`` at its top level, without running it."""
    found: dict[str, Any] = {}
    for node in ast.parse(path.read_bytes(), filename=str(path)).body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id in names:
                found[target.id] = ast.literal_eval(value)
    return found


async def upgrade_apart(alembic_ini: Path, database_url: str) -> None:
    """Migrate to head in a child process (``python -m govshared.migrate``), for a service that
    migrates as it starts (``migrate_on_start``: ``make run``, embedded).

    In the service's own process, what Alembic imports to migrate (itself, its operations, every
    migration file) and what a migration leaves on the heap stayed in its memory for its whole
    life, to be used once: 8 to 11 MB of license's and notify's idle RSS (``make bench-rss``).
    The child's output goes where the service's does; a failed migration fails the start.
    """
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "govshared.migrate",
        str(alembic_ini),
        env={**os.environ, "GOVSHARED_MIGRATE_URL": database_url},
    )
    if await child.wait() != 0:
        raise RuntimeError(f"migrating {alembic_ini.parent.name} failed (exit {child.returncode})")


async def _at_head(engine: AsyncEngine, alembic_ini: Path, database_url: str) -> bool:
    """True when the database is already at this code's head revision (a restart): no child
    process to start then. Anything else (a fresh database, an older or unknown revision, a
    database that cannot be reached) is left to the migration to do or to refuse."""
    if database_url.startswith("sqlite"):
        private_sqlite_file(database_url)  # created 0600 here when new, not by SQLite's umask
    try:
        async with engine.connect() as conn:
            revision = (
                await conn.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar_one_or_none()
    except DBAPIError:
        return False
    return revision is not None and revision == known_migrations(alembic_ini).head


@dataclass(frozen=True)
class Runtime:
    """What every service's lifespan opens first: database, HTTP client, service tokens."""

    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    tokens: ServiceTokenSource
    # Tells workers in other processes about commits that gave them work (PostgreSQL, when the
    # workers do not run in this process; ``govshared.wake``). None otherwise.
    signal: CommitSignal | None = None

    async def close(self) -> None:
        """Close the commit signal, the HTTP client and the connection pool."""
        if self.signal is not None:
            await self.signal.close()
        await self.http.aclose()
        await self.engine.dispose()


async def start_runtime(
    app: FastAPI,
    settings: CommonSettings,
    *,
    service: str,
    alembic_ini: Path,
    http_mounts: dict[str, httpx.AsyncBaseTransport] | None = None,
) -> Runtime:
    """Logging, data folder, migrations (embedded mode), engine, HTTP client, token verifier.

    Sets ``app.state`` settings, engine, sessionmaker and token_verifier, which the shared
    dependencies (sessions, auth, readiness) read.
    """
    configure_logging(service=service, level=settings.log_level, json_logs=settings.log_json)
    private_dir(settings.data_dir)
    use_driver(settings.sql_on_driver)
    engine = engine_from_settings(settings)
    if settings.migrate_on_start and not await _at_head(engine, alembic_ini, settings.database_url):
        await upgrade_apart(alembic_ini, settings.database_url)
    runtime = Runtime(
        engine=engine,
        sessionmaker=make_sessionmaker(engine),
        http=make_http_client(timeout=settings.http_timeout_seconds, mounts=http_mounts),
        tokens=service_tokens(settings, service_name=service),
        signal=None
        if settings.run_workers
        else commit_signal(settings.database_url, min_interval=settings.wake_min_interval_seconds),
    )
    app.state.settings = settings
    app.state.engine = runtime.engine
    app.state.sessionmaker = runtime.sessionmaker
    app.state.token_verifier = load_verifier(
        public_key_file=settings.jwt_public_key_file,
        jwks_file=settings.jwt_jwks_file,
        jwks_url=settings.jwt_jwks_url,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        service_keys_file=settings.service_jwt_keys_file,
        service_issuer=settings.service_token_issuer,
        max_lifetime_seconds=settings.jwt_max_lifetime_seconds,
        bound_service_keys=settings.environment == "production",
        service=service,
    )
    return runtime


@contextmanager
def settled_heap() -> Iterator[None]:
    """Keep what start-up built out of the garbage collector's way while the process serves.

    Modules, the ORM's metadata, fonts, the catalogue: hundreds of thousands of objects that live
    as long as the process. Python's full collections walk all of them, each about 150 ms in
    approval's web process, which under load ran every second or two, stalled every request in
    flight (the p99 latency) and took a fifth of its CPU. Frozen, they are never walked again;
    collections see only what requests create. Leaving thaws them (tests start many apps in one
    process).
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def health_router(*, migrations: Migrations) -> APIRouter:
    """``/healthz`` (alive) and ``/readyz`` (database reachable and migrated to head)."""
    router = APIRouter(tags=["ops"])

    @router.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: database reachable and migrations at head",
        responses=problem_responses(NotReady),
    )
    async def readyz(request: Request) -> JSONResponse:
        try:
            async with request.app.state.engine.connect() as conn:
                revision = (
                    await conn.execute(text("SELECT version_num FROM alembic_version"))
                ).scalar_one_or_none()
        except Exception as exc:
            cause = "unreachable" if is_database_outage(exc) else "error"
            return _not_ready(
                request,
                f"数据库无法访问（{type(exc).__name__}）",
                check="database",
                cause=cause,
            )
        if migrations.behind(revision):
            return _not_ready(
                request,
                "数据库结构尚未迁移到本版本所需的版本",
                check="migrations",
                revision=revision,
                expected=migrations.head,
            )
        return JSONResponse({"status": "ready", "revision": revision})

    router.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    return router


def _declare_database_unavailable(schema: dict[str, Any]) -> None:
    """Every operation that may reach the database may answer 503 ``database_unavailable``."""
    declared = problem_responses(DatabaseUnavailable)[503]
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses")
            if responses is None or "ops" in operation.get("tags", ()):
                continue  # health and readiness speak for themselves
            existing = responses.get("503")
            if existing is None:
                responses["503"] = {
                    "description": declared["description"],
                    "content": declared["content"],
                }
            elif "database_unavailable" not in existing.get("description", ""):
                existing["description"] += "; " + declared["description"]


def _not_ready(request: Request, detail: str, **extensions: Any) -> JSONResponse:
    """503 ``not_ready``, naming the check that failed (``database`` or ``migrations``)."""
    problem = NotReady(detail, **extensions).to_problem(
        instance=request.url.path, request_id=getattr(request.state, "request_id", None)
    )
    return problem_response(problem, retry_after(request))


# Swagger UI's files as the maintained fastapi-offline package ships them: /docs works on an intranet
# or offline, where the CDN that FastAPI's own page loads them from cannot be reached.
SWAGGER_UI_FILES = Path(fastapi_offline.__file__).parent / "static"
DOCS_ASSETS = "/docs/assets"


def install_offline_docs(app: FastAPI) -> None:
    """Swagger UI at ``/docs``, its script and style served by the service itself.

    Added after every other route: FastAPI tries routes in turn, and the docs are seldom asked for.
    """
    app.mount(DOCS_ASSETS, StaticFiles(directory=SWAGGER_UI_FILES), name="docs-assets")

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)


def create_service_app(
    *,
    service: str,
    title: str,
    description: str,
    version: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[Any]],
    routers: list[APIRouter],
    alembic_ini: Path,
    cors_origins: list[str],
    limits: CommonSettings | None = None,
) -> FastAPI:
    """Assemble a service: problem handlers, observability, CORS, health, metrics, its routers."""
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,  # served from the service's own files below, never a CDN
        redoc_url=None,
        # FastAPI's own OpenTelemetry layer asks the global providers on every request whether it
        # has anything to do (about 26,000 instructions a request). The suite exports nothing by
        # OpenTelemetry: request ids, traceparent, logs and Prometheus metrics are
        # ObservabilityMiddleware's.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    install_problem_handlers(app, postgresql=limits is None or not is_sqlite(limits.database_url))
    if limits is not None:
        # Innermost of the three: sizes and NUL are checked before routing, authentication and
        # body parsing, and the refusal still gets CORS headers, a request id and a metric.
        app.add_middleware(
            RequestLimitsMiddleware,
            max_header_bytes=limits.max_header_bytes,
            max_json_bytes=limits.max_json_bytes,
            max_upload_bytes=getattr(limits, "max_upload_bytes", None),
        )
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(ObservabilityMiddleware, service=service)
    # FastAPI tries a request against each route in turn: the service's routers come first, in
    # the order given (hottest first); health and metrics, asked every few seconds, come last.
    for router in routers:
        app.include_router(router)
    app.include_router(health_router(migrations=known_migrations(alembic_ini)))
    install_offline_docs(app)
    # The problem schema is referenced by every declared error response.
    original_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original_openapi()
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            )
            defs = schema["components"]["schemas"]["Problem"].pop("$defs", {})
            schema["components"]["schemas"].update(defs)
            _declare_database_unavailable(schema)
            if limits is not None:
                declare_edge_refusals(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
