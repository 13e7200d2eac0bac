"""Limits before work: request size and characters checked at the edge of every service.

One pure ASGI middleware, run before routing, authentication and body parsing:

- the request line and headers together over ``max_header_bytes`` → 431 (uvicorn's h11 parser has
  the same limit, ``h11_max_incomplete_event_size``; httptools has none, hence this check);
- a declared ``Content-Length`` over the route class's limit → 413 before a byte of the body is read
  (multipart uploads: ``max_upload_bytes`` plus the multipart framing; anything else:
  ``max_json_bytes``);
- a body without ``Content-Length`` (chunked) is counted as it streams and cut off at the limit, so
  that nothing is spooled to memory or disk beyond it;
- a NUL character (PostgreSQL cannot store one in text or jsonb) in the path, a query parameter or
  a JSON string → 400 (path, query) or 422 (body), before the request reaches the database.

Each refusal is an RFC 9457 problem with a stable code.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from govshared.problems import (
    PROBLEM_JSON,
    DomainError,
    PayloadTooLarge,
    Problem,
    ValidationFailed,
)

MULTIPART_OVERHEAD = 64 * 1024
"""What multipart framing (boundaries, part headers, the other form fields) may add to a file."""

# A JSON ``\u0000`` escape: preceded by an even number of backslashes (an odd number escapes the
# backslash of ``\u`` itself, which is the six characters ``\u0000``, not a NUL).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_PERCENT_NUL = re.compile(rb"%00")


class HeadersTooLarge(DomainError):
    status = 431
    code = "request_header_fields_too_large"
    title = "请求头过大"
    title_en = "Request header fields too large"


class RequestTooLarge(PayloadTooLarge):
    status = 413
    code = "payload_too_large"
    title = "请求内容超过大小限制"
    title_en = "Payload too large"


class NulCharacter(DomainError):
    status = 400
    code = "nul_character"
    title = "请求中含有 NUL 字符"
    title_en = "The request contains a NUL character"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit (rendered as 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"请求内容超过 {limit} 字节的限制")
        self.limit = limit


def is_json(content_type: str) -> bool:
    """True for ``application/json`` and its ``+json`` kin (CloudEvents, problem)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class RequestLimitsMiddleware:
    """Header, body and NUL limits, before anything else reads the request (see the module)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_header_bytes: int,
        max_json_bytes: int,
        max_upload_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes
        self.max_json_bytes = max_json_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        query: bytes = scope.get("query_string", b"")
        size = len(raw_path) + len(query)
        content_type = content_length = ""
        for name, value in scope["headers"]:
            size += len(name) + len(value) + 4
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"content-length":
                content_length = value.decode("latin-1")
        if size > self.max_header_bytes:
            detail = f"请求行与请求头共 {size} 字节，超过 {self.max_header_bytes} 字节的限制"
            await _refuse(scope, receive, send, HeadersTooLarge(detail))
            return
        if b"\x00" in raw_path or _PERCENT_NUL.search(raw_path) or _has_nul_in_query(query):
            await _refuse(scope, receive, send, NulCharacter("路径或查询参数中含有 NUL 字符"))
            return
        upload = content_type.lower().startswith("multipart/form-data")
        if upload and self.max_upload_bytes is not None:
            limit = self.max_upload_bytes + MULTIPART_OVERHEAD
        else:
            limit = self.max_json_bytes
        if content_length:
            if not content_length.isdigit():
                await _refuse(scope, receive, send, ValidationFailed("Content-Length 无效"))
                return
            if int(content_length) > limit:
                await _refuse(
                    scope,
                    receive,
                    send,
                    RequestTooLarge(f"请求内容 {content_length} 字节，超过 {limit} 字节的限制"),
                )
                return
        if is_json(content_type):
            await self._json(scope, receive, send, limit)
            return
        await self.app(scope, _counting(receive, limit), send)

    async def _json(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        # A JSON body is bounded (max_json_bytes): read it whole here, refuse a NUL in it, and
        # hand the app the same bytes.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _refuse(
                    scope, receive, send, RequestTooLarge(f"请求内容超过 {limit} 字节的限制")
                )
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if b"\\u0000" in body and _JSON_NUL.search(body):
            await _refuse(
                scope,
                receive,
                send,
                NulCharacter(
                    "JSON 字符串中含有 NUL 字符（\\u0000），无法保存",
                    invalid_params=[{"name": "body", "reason": "NUL 字符"}],
                ),
            )
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _has_nul_in_query(query: bytes) -> bool:
    return b"\x00" in query or _PERCENT_NUL.search(query) is not None


def _counting(receive: Receive, limit: int) -> Receive:
    """``receive`` that stops a streamed body at ``limit`` bytes."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return counted


async def _refuse(scope: Scope, receive: Receive, send: Send, error: Any) -> None:
    """Answer a refusal as problem+json (the app's handlers are not reached)."""
    request_id = (scope.get("state") or {}).get("request_id")
    problem: Problem = error.to_problem(instance=scope.get("path"), request_id=request_id)
    response = JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        # The rest of the body is not read: the connection is not reused for another request.
        headers={"Connection": "close"},
    )
    await response(scope, receive, send)


def declare_edge_refusals(schema: dict[str, Any]) -> None:
    """Declare on every operation of an OpenAPI document what this middleware may answer, so that
    clients (and the contract tests) know any request can meet them."""
    problem = {
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    refusals = {
        "400": f"{NulCharacter.code}: {NulCharacter.title}",
        "413": f"{RequestTooLarge.code}: {RequestTooLarge.title}",
        "431": f"{HeadersTooLarge.code}: {HeadersTooLarge.title}",
    }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status, description in refusals.items():
                if status in responses:
                    declared = responses[status].get("description", "")
                    if description not in declared:
                        responses[status]["description"] = f"{declared}; {description}".lstrip("; ")
                else:
                    responses[status] = {"description": description, **problem}
