"""RFC 9457 problem details: the one error format every service speaks.

Every expected failure is a ``DomainError`` subclass with an HTTP status, a stable machine code and a
Chinese and English title. ``install_problem_handlers`` renders them (and FastAPI's own validation and
routing errors) as ``application/problem+json`` so that no client ever sees a bare 500 or a framework
specific shape.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DataError, DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from govshared.db import DatabaseUnreachable, is_database_outage

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger("govshared.problems")


class InvalidParam(BaseModel):
    """One bad field of a request."""

    name: str = Field(description="Dotted location of the field, e.g. body.item_code")
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details with the suite's extensions."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", description="URI naming the problem type")
    title: str = Field(description="Short Chinese summary, stable for a given code")
    status: int
    detail: str | None = Field(default=None, description="Chinese explanation of this occurrence")
    instance: str | None = None
    code: str = Field(description="Stable machine-readable error code")
    title_en: str = Field(description="English summary, stable for a given code")
    request_id: str | None = None
    invalid_params: list[InvalidParam] | None = None


class DomainError(Exception):
    """An expected failure: rendered once as problem+json with its status and stable code."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "请求无效"
    title_en: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.extensions = extensions

    def to_problem(self, *, instance: str | None, request_id: str | None) -> Problem:
        """Build the problem document for this error."""
        return Problem(
            type=f"https://errors.onestop.gov.cn/{self.code}",
            title=self.title,
            title_en=self.title_en,
            status=self.status,
            detail=self.detail,
            code=self.code,
            instance=instance,
            request_id=request_id,
            **self.extensions,
        )


class Unauthenticated(DomainError):
    status = 401
    code = "unauthenticated"
    title = "未提供有效的身份令牌"
    title_en = "A valid bearer token is required"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = "无权执行此操作"
    title_en = "You are not allowed to do this"


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "资源不存在"
    title_en = "Resource not found"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "请求与当前状态冲突"
    title_en = "Request conflicts with the current state"


class IdempotencyKeyReused(DomainError):
    status = 422
    code = "idempotency_key_reused"
    title = "幂等键已用于另一个不同的请求"
    title_en = "The Idempotency-Key was already used for a different request"


class ValidationFailed(DomainError):
    status = 422
    code = "validation_failed"
    title = "请求参数校验失败"
    title_en = "Request validation failed"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"
    title = "上传内容超过大小限制"
    title_en = "Payload too large"


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported_media_type"
    title = "不支持的文件类型"
    title_en = "Unsupported media type"


class DependencyUnavailable(DomainError):
    status = 503
    code = "dependency_unavailable"
    title = "依赖的服务暂时不可用"
    title_en = "A service this request depends on is unavailable"


class DatabaseUnavailable(DomainError):
    status = 503
    code = "database_unavailable"
    title = "数据库暂时无法访问，请稍后重试"
    title_en = "The database is unavailable for a moment; retry later"


class NotReady(DomainError):
    status = 503
    code = "not_ready"
    title = "服务尚未就绪"
    title_en = "The service is not ready"


# Seconds a client is asked to wait (Retry-After) when the settings do not say (no app settings).
DEFAULT_RETRY_AFTER_SECONDS = 2


def retry_after(request: Request) -> dict[str, str]:
    """The ``Retry-After`` header of a 503 caused by an outage (``<P>DB_RETRY_AFTER_SECONDS``)."""
    settings = getattr(request.app.state, "settings", None)
    seconds = getattr(settings, "db_retry_after_seconds", DEFAULT_RETRY_AFTER_SECONDS)
    return {"Retry-After": str(int(seconds))}


class ServiceUnavailable(DomainError):
    status = 503
    code = "service_unavailable"
    title = "服务暂时不可用"
    title_en = "Service unavailable"


class RefusedWhileReading(StarletteHTTPException):
    """A ``DomainError`` found by a middleware while the app reads the request's body.

    Raised from ``receive``, where FastAPI lets only an HTTPException through (anything else
    becomes its own 400): rendered as the error it carries.
    """

    def __init__(self, error: DomainError) -> None:
        super().__init__(error.status, error.detail)
        self.error = error


_HTTP_CODES: dict[int, tuple[str, str, str]] = {
    400: ("bad_request", "请求无效", "Bad request"),
    401: ("unauthenticated", Unauthenticated.title, Unauthenticated.title_en),
    403: ("forbidden", Forbidden.title, Forbidden.title_en),
    404: ("not_found", NotFound.title, NotFound.title_en),
    405: ("method_not_allowed", "不支持该请求方法", "Method not allowed"),
    406: ("not_acceptable", "无法提供所请求的表示形式", "Not acceptable"),
    413: ("payload_too_large", PayloadTooLarge.title, PayloadTooLarge.title_en),
    415: ("unsupported_media_type", UnsupportedMediaType.title, UnsupportedMediaType.title_en),
}


def _outage_classes(postgresql: bool) -> tuple[type[Exception], ...]:
    """What a lost or refused database connection raises, by class (refined by
    ``is_database_outage``): SQLAlchemy's wrappers, and, on PostgreSQL, asyncpg's own where code
    bypasses them (on SQLite asyncpg is not loaded: ~2 MB of a service's memory)."""
    classes: tuple[type[Exception], ...] = (
        DBAPIError,
        PoolTimeout,
        DisconnectionError,
        DatabaseUnreachable,
        TimeoutError,  # a statement unanswered within the statement timeout (make_engine)
    )
    if not postgresql:
        return classes
    try:
        from asyncpg import exceptions as pg
    except ImportError:  # pragma: no cover - SQLite-only installs
        return classes
    return (*classes, pg.InterfaceError, pg.PostgresError)


def problem_responses(*errors: type[DomainError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries declaring the given errors as problem+json."""
    by_status: dict[int, list[type[DomainError]]] = {}
    for error in errors:
        by_status.setdefault(error.status, []).append(error)
    return {
        status: {
            "model": Problem,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            "description": "; ".join(f"{e.code}: {e.title}" for e in errs),
        }
        for status, errs in sorted(by_status.items())
    }


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    """Render a problem document."""
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def install_problem_handlers(app: FastAPI, *, postgresql: bool = True) -> None:
    """Render every error the app can raise as problem+json (``postgresql=False``: the app's
    database is SQLite, whose driver errors come wrapped by SQLAlchemy)."""

    async def domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        problem = exc.to_problem(instance=request.url.path, request_id=_request_id(request))
        return problem_response(problem, headers)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        params = [
            InvalidParam(
                name=".".join(str(p) for p in err.get("loc", ())),
                reason=str(err.get("msg", "invalid")),
            )
            for err in exc.errors()
        ]
        problem = Problem(
            type="https://errors.onestop.gov.cn/validation_failed",
            title=ValidationFailed.title,
            title_en=ValidationFailed.title_en,
            status=422,
            detail="；".join(f"{p.name}: {p.reason}" for p in params)[:1000],
            code=ValidationFailed.code,
            instance=request.url.path,
            request_id=_request_id(request),
            invalid_params=params,
        )
        return problem_response(problem)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc, RefusedWhileReading):
            return await domain_error(request, exc.error)
        code, title, title_en = _HTTP_CODES.get(
            exc.status_code, (f"http_{exc.status_code}", "请求失败", "Request failed")
        )
        problem = Problem(
            type=f"https://errors.onestop.gov.cn/{code}",
            title=title,
            title_en=title_en,
            status=exc.status_code,
            detail=str(exc.detail) if exc.detail else None,
            code=code,
            instance=request.url.path,
            request_id=_request_id(request),
        )
        return problem_response(problem, dict(exc.headers) if exc.headers else None)

    async def bad_value(request: Request, exc: Exception) -> JSONResponse:
        # A value the database cannot hold (an integer out of range, say) that slipped past
        # validation is still the caller's error, not ours: 422, never 500.
        logger.warning("database rejected a value", extra={"error": str(exc)[:500]})
        problem = Problem(
            type="https://errors.onestop.gov.cn/validation_failed",
            title=ValidationFailed.title,
            title_en=ValidationFailed.title_en,
            status=422,
            detail="请求中的值超出允许范围",
            code=ValidationFailed.code,
            instance=request.url.path,
            request_id=_request_id(request),
        )
        return problem_response(problem)

    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        if not is_database_outage(exc):
            raise exc  # a bug (an IntegrityError nobody expected, …): the 500 below
        # Answered here, by the app's exception middleware: an error left to the server-error
        # middleware is re-raised to the server, which logs it and drops the connection.
        logger.warning(
            "database unavailable",
            extra={"error": f"{type(exc).__name__}: {str(exc)[:300]}", "path": request.url.path},
        )
        problem = DatabaseUnavailable("数据库连接中断或无法建立，请稍后重试").to_problem(
            instance=request.url.path, request_id=_request_id(request)
        )
        return problem_response(problem, retry_after(request))

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        problem = Problem(
            type="https://errors.onestop.gov.cn/internal_error",
            title="服务内部错误",
            title_en="Internal server error",
            status=500,
            code="internal_error",
            instance=request.url.path,
            request_id=_request_id(request),
        )
        return problem_response(problem)

    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(DataError, bad_value)
    for outage in _outage_classes(postgresql):
        app.add_exception_handler(outage, database_error)
    app.add_exception_handler(Exception, unexpected)
