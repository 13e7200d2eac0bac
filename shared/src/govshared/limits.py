"""Limits before work: request size and characters checked at the edge of every service.

One pure ASGI middleware, run before routing, authentication and body parsing:

- the request line and headers together over ``max_header_bytes`` → 431 (uvicorn's h11 parser has
  the same limit, ``h11_max_incomplete_event_size``; httptools has none, hence this check);
- a declared ``Content-Length`` over the route class's limit → 413 before a byte of the body is read
  (multipart uploads: ``max_upload_bytes`` plus the multipart framing; anything else:
  ``max_json_bytes``);
- a body without ``Content-Length`` (chunked) is counted as it streams and cut off at the limit, so
  that nothing is spooled to memory or disk beyond it;
- a NUL character (PostgreSQL cannot store one in text or jsonb) in the path, a query parameter, a
  JSON string, a URL-encoded form or a multipart form's text (a field's value, a part's headers;
  not a file's content) → 400, before the request reaches the database. A multipart body is not
  held: it is scanned as it streams to the app, and a NUL found ends the read (the form is parsed
  before the endpoint runs, so nothing has been written).

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
    RefusedWhileReading,
    ValidationFailed,
)

MULTIPART_OVERHEAD = 64 * 1024
"""What multipart framing (boundaries, part headers, the other form fields) may add to a file."""

# A JSON ``\u0000`` escape: preceded by an even number of backslashes (an odd number escapes the
# backslash of ``\u`` itself, which is the six characters ``\u0000``, not a NUL).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


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


def _media(content_type: str) -> str:
    """The media type of a Content-Type, without its parameters, in lower case."""
    return content_type.split(";", 1)[0].strip().lower()


def _json_media(media: str) -> bool:
    """``application/json`` and its ``+json`` kin (CloudEvents, problem)."""
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
        content_types = 0
        for name, value in scope["headers"]:
            size += len(name) + len(value) + 4
            if name == b"content-type":
                content_type = value.decode("latin-1")
                content_types += 1
            elif name == b"content-length":
                content_length = value.decode("latin-1")
        if size > self.max_header_bytes:
            detail = f"请求行与请求头共 {size} 字节，超过 {self.max_header_bytes} 字节的限制"
            await _refuse(scope, receive, send, HeadersTooLarge(detail))
            return
        if content_types > 1:
            # One field (RFC 9110 §8.3): with two, this check would read the body as one type and
            # the app (Starlette takes the first) as another, past the NUL and size checks.
            await _refuse(scope, receive, send, ValidationFailed("请求头 Content-Type 只能有一个"))
            return
        if _has_nul_in_query(raw_path) or (query and _has_nul_in_query(query)):
            await _refuse(scope, receive, send, NulCharacter("路径或查询参数中含有 NUL 字符"))
            return
        media = _media(content_type)
        upload = media == "multipart/form-data"
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
        if _json_media(media):
            await self._buffered(scope, receive, send, limit, _nul_in_json)
            return
        if media == "application/x-www-form-urlencoded":
            await self._buffered(scope, receive, send, limit, _nul_in_urlencoded)
            return
        counted = _counting(receive, limit)
        if upload:
            counted = _scanning(counted, content_type)
        await self.app(scope, counted, send)

    async def _buffered(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        limit: int,
        nul_in: Any,
    ) -> None:
        # A JSON or URL-encoded body is bounded (max_json_bytes): read it whole here, refuse a
        # NUL in it, and hand the app the same bytes.
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
        refusal = nul_in(body)
        if refusal is not None:
            await _refuse(scope, receive, send, refusal)
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
    return b"\x00" in query or b"%00" in query


def _nul_in_json(body: bytes) -> NulCharacter | None:
    if b"\x00" in body:
        # JSON between systems is UTF-8 (RFC 8259 §8.1), where no JSON text has a zero byte; a
        # UTF-16 or UTF-32 body has one in every ASCII character, and its escapes would not be
        # found below (the standard library's parser, the fallback, would still decode it).
        return NulCharacter(
            "JSON 请求体须为 UTF-8 编码，且不得含有 NUL 字符",
            invalid_params=[{"name": "body", "reason": "非 UTF-8 编码或含 NUL 字节"}],
        )
    if b"\\u0000" in body and _JSON_NUL.search(body):
        return NulCharacter(
            "JSON 字符串中含有 NUL 字符（\\u0000），无法保存",
            invalid_params=[{"name": "body", "reason": "NUL 字符"}],
        )
    return None


def _nul_in_urlencoded(body: bytes) -> NulCharacter | None:
    if _has_nul_in_query(body):
        return NulCharacter(
            "表单字段中含有 NUL 字符，无法保存",
            invalid_params=[{"name": "body", "reason": "NUL 字符"}],
        )
    return None


class _FormScanner:
    """Finds a NUL in a multipart form's text as the body streams past: a zero byte in a part's
    headers (a field's name, a file's name) or in a field's value; a file's content is not looked
    at. A NUL is a zero byte in every charset Starlette can read a form in (it decodes the field
    names in the request's charset too: a UTF-16 form names no field it knows). Nothing is held
    but the part's Content-Disposition. A body the parser cannot read is left to Starlette's
    parser, which refuses it."""

    def __init__(self, content_type: str) -> None:
        from python_multipart.multipart import MultipartParser, parse_options_header

        self._options = parse_options_header
        _, params = parse_options_header(content_type)
        self.found: NulCharacter | None = None
        self._disposition = b""
        self._header = b""
        self._field: str | None = None
        self._parser: Any = None
        boundary = params.get(b"boundary")
        if boundary:
            try:
                self._parser = MultipartParser(
                    boundary,
                    {
                        "on_part_begin": self._part_begin,
                        "on_header_field": self._header_field,
                        "on_header_value": self._header_value,
                        "on_header_end": self._header_end,
                        "on_headers_finished": self._headers_finished,
                        "on_part_data": self._part_data,
                    },
                )
            except ValueError:  # a bad boundary (FormParserError): Starlette's parser answers it
                self._parser = None

    def feed(self, chunk: bytes) -> NulCharacter | None:
        if self._parser is not None and self.found is None and chunk:
            try:
                self._parser.write(chunk)
            except ValueError:  # malformed (FormParserError): Starlette's parser answers it
                self._parser = None
        return self.found

    def _part_begin(self) -> None:
        self._disposition = b""
        self._header = b""
        self._field = None

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]
        self._nul_in_header(data[start:end])

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        if self._header.lower() == b"content-disposition":
            self._disposition += data[start:end]
        self._nul_in_header(data[start:end])

    def _header_end(self) -> None:
        self._header = b""

    def _nul_in_header(self, data: bytes) -> None:
        if b"\x00" in data and self.found is None:
            self.found = NulCharacter(
                "表单中的字段名或文件名含有 NUL 字符，无法保存",
                invalid_params=[{"name": "body", "reason": "NUL 字符"}],
            )

    def _headers_finished(self) -> None:
        _, options = self._options(self._disposition)
        if b"filename" not in options:  # Starlette's test for a file
            self._field = options.get(b"name", b"").decode("utf-8", "replace")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._field is not None and self.found is None and data.find(b"\x00", start, end) >= 0:
            self.found = NulCharacter(
                f"表单字段 {self._field} 中含有 NUL 字符，无法保存",
                invalid_params=[{"name": f"body.{self._field}", "reason": "NUL 字符"}],
            )


def _scanning(receive: Receive, content_type: str) -> Receive:
    """``receive`` that refuses a multipart body once a NUL shows in its text (``_FormScanner``).

    Raised from ``receive``, inside the app's read of the form: FastAPI lets an HTTPException
    through from there (anything else becomes its own 400), and the problem handler renders the
    refusal as ``nul_character``.
    """
    scanner = _FormScanner(content_type)

    async def scanned() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            found = scanner.feed(message.get("body", b""))
            if found is not None:
                raise RefusedWhileReading(found)
        return message

    return scanned


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
