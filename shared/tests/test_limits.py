"""Issue 15: the request limits middleware refuses before anything reads the request."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, File, Form, UploadFile
from starlette.types import Message, Receive, Scope, Send

from govshared.limits import MULTIPART_OVERHEAD, RequestLimitsMiddleware
from govshared.problems import install_problem_handlers


class Probe:
    """An app that records whether it ran and reads the whole body."""

    def __init__(self) -> None:
        self.called = False
        self.body = b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called = True
        while True:
            message = await receive()
            self.body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def scope(headers: list[tuple[bytes, bytes]], path: str = "/x", query: bytes = b"") -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": headers,
    }


async def run(
    middleware: RequestLimitsMiddleware, sc: Scope, chunks: list[bytes]
) -> tuple[int, dict[str, Any], int]:
    reads = 0
    queue = list(chunks)

    async def receive() -> Message:
        nonlocal reads
        reads += 1
        chunk = queue.pop(0) if queue else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(queue)}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware(sc, receive, send)
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, (json.loads(body) if body else {}), reads


def limits(app: Probe, upload: int | None = 1000) -> RequestLimitsMiddleware:
    return RequestLimitsMiddleware(
        app, max_header_bytes=2048, max_json_bytes=100, max_upload_bytes=upload
    )


async def test_declared_length_over_the_limit_is_refused_unread() -> None:
    app = Probe()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"101")]
    status, problem, reads = await run(limits(app), scope(headers), [b"x" * 101])
    assert (status, problem["code"], reads, app.called) == (413, "payload_too_large", 0, False)


async def test_uploads_have_their_own_limit() -> None:
    app = Probe()
    multipart = [(b"content-type", b"multipart/form-data; boundary=x")]
    size = 1000 + MULTIPART_OVERHEAD
    ok = [*multipart, (b"content-length", str(size).encode())]
    status, _, _ = await run(limits(app), scope(ok), [b"x" * size])
    assert status == 204 and app.called
    over = [*multipart, (b"content-length", str(size + 1).encode())]
    assert (await run(limits(Probe()), scope(over), []))[0] == 413
    # A service without uploads holds multipart bodies to the JSON limit.
    assert (await run(limits(Probe(), upload=None), scope(ok), []))[0] == 413


async def test_a_streamed_body_is_cut_off_at_the_limit() -> None:
    app = Probe()
    headers = [(b"content-type", b"application/octet-stream")]
    chunks = [b"x" * 60, b"x" * 60, b"x" * 60, b"x" * 60]
    with pytest.raises(Exception) as caught:
        await run(limits(app), scope(headers), chunks)
    assert getattr(caught.value, "status_code", None) == 413
    assert len(app.body) <= 100
    json_app = Probe()
    status, problem, reads = await run(
        limits(json_app), scope([(b"content-type", b"application/json")]), chunks
    )
    assert (status, problem["code"], json_app.called) == (413, "payload_too_large", False)
    assert reads == 2


async def test_headers_over_the_limit_are_431_before_the_app() -> None:
    app = Probe()
    headers = [(b"authorization", b"Bearer " + b"A" * 3000)]
    status, problem, reads = await run(limits(app), scope(headers), [])
    assert (status, problem["code"], reads, app.called) == (
        431,
        "request_header_fields_too_large",
        0,
        False,
    )


@pytest.mark.parametrize(
    ("path", "query"),
    [("/x%00", b""), ("/x", b"q=a%00b"), ("/x", b"q=a\x00"), ("/x", b"a%00=1")],
)
async def test_nul_in_path_or_query_is_400(path: str, query: bytes) -> None:
    app = Probe()
    status, problem, _ = await run(limits(app), scope([], path, query), [])
    assert (status, problem["code"], app.called) == (400, "nul_character", False)


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        (b'{"a": "x\\u0000"}', True),
        (b'{"a\\u0000": 1}', True),
        (b'{"a": "\\\\\\u0000"}', True),
        (b'{"a": "\\\\u0000"}', False),
        (b'{"a": "\\\\\\\\u0000"}', False),
        (b'{"a": "x\\u00001"}', True),
        (b'{"a": "\\u0001"}', False),
    ],
)
async def test_nul_in_a_json_string(body: bytes, refused: bool) -> None:
    app = Probe()
    headers = [(b"content-type", b"application/json; charset=utf-8")]
    status, problem, _ = await run(limits(app), scope(headers), [body[:7], body[7:]])
    if refused:
        assert (status, problem["code"], app.called) == (400, "nul_character", False)
    else:
        assert status == 204 and app.body == body


async def test_a_json_body_that_is_not_utf8_is_refused() -> None:
    """UTF-16 JSON (which the standard library's parser would still read) carries its NUL escape
    past the check above: a zero byte, which no UTF-8 JSON text has, refuses it."""
    headers = [(b"content-type", b"application/json")]
    for encoding in ("utf-16-le", "utf-16", "utf-32"):
        app = Probe()
        body = '{"name":"a\u0000b"}'.encode(encoding)
        status, problem, _ = await run(limits(app), scope(headers), [body])
        assert (status, problem["code"], app.called) == (400, "nul_character", False), encoding


@pytest.mark.parametrize(
    "second", [b"text/plain", b"multipart/form-data; boundary=z", b"application/json"]
)
async def test_two_content_types_are_refused(second: bytes) -> None:
    """With two, this check read the body as the last type and the app as the first: a NUL or a
    JSON body of upload size went through."""
    app = Probe()
    headers = [(b"content-type", b"application/json"), (b"content-type", second)]
    status, problem, reads = await run(limits(app), scope(headers), [b'{"a": "x\\u0000"}'])
    assert (status, problem["code"], reads, app.called) == (422, "validation_failed", 0, False)


def form_app() -> tuple[FastAPI, list[tuple[str, bytes]]]:
    """An app behind the limits with a form endpoint; the list records what reached it."""
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(
        RequestLimitsMiddleware, max_header_bytes=4096, max_json_bytes=1000, max_upload_bytes=10_000
    )
    reached: list[tuple[str, bytes]] = []

    @app.post("/upload")
    async def upload(
        name: Annotated[str, Form()], file: Annotated[UploadFile, File()]
    ) -> dict[str, str]:
        reached.append((name, await file.read()))
        return {"name": name}

    @app.post("/form")
    async def form(name: Annotated[str, Form()]) -> dict[str, str]:
        reached.append((name, b""))
        return {"name": name}

    return app, reached


def multipart(parts: list[tuple[bytes, bytes]], boundary: bytes = b"b0und4ry") -> bytes:
    """A multipart body from (Content-Disposition parameters, content), in this order."""
    body = b""
    for disposition, content in parts:
        body += b"--" + boundary + b"\r\nContent-Disposition: form-data; " + disposition
        body += b"\r\n\r\n" + content + b"\r\n"
    return body + b"--" + boundary + b"--\r\n"


FIELD = b'name="name"'
FILE = b'name="file"; filename="a.png"'
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"  # a file holds NUL bytes


async def post_form(
    app: FastAPI, body: bytes, content_type: str, *, chunk: int = 0
) -> httpx.Response:
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), chunk):
            yield body[start : start + chunk]

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        path = "/form" if content_type.startswith("application/x-www") else "/upload"
        return await client.post(
            path, content=chunks() if chunk else body, headers={"Content-Type": content_type}
        )


MULTIPART = "multipart/form-data; boundary=b0und4ry"


@pytest.mark.parametrize(
    ("parts", "chunk", "param"),
    [
        ([(FIELD, "营业\x00执照".encode()), (FILE, PNG_BYTES)], 0, "body.name"),
        # After the file, and cut across small chunks: found as the body streams.
        ([(FILE, PNG_BYTES * 50), (FIELD, "营业执照\x00".encode())], 7, "body.name"),
        ([(b'name="na\x00me"', b"x"), (FILE, PNG_BYTES)], 0, "body"),
        ([(FIELD, b"x"), (b'name="file"; filename="a\x00.png"', PNG_BYTES)], 5, "body"),
    ],
)
async def test_a_nul_in_a_multipart_forms_text_is_refused_before_the_endpoint(
    parts: list[tuple[bytes, bytes]], chunk: int, param: str
) -> None:
    app, reached = form_app()
    response = await post_form(app, multipart(parts), MULTIPART, chunk=chunk)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "nul_character"
    assert response.json()["invalid_params"] == [{"name": param, "reason": "NUL 字符"}]
    assert reached == []


async def test_zero_bytes_in_a_files_content_are_not_a_nul_in_the_form() -> None:
    app, reached = form_app()
    body = multipart([(FIELD, "营业执照".encode()), (FILE, PNG_BYTES)])
    accepted = await post_form(app, body, MULTIPART, chunk=3)
    assert accepted.status_code == 200, accepted.text
    assert reached == [("营业执照", PNG_BYTES)]
    # A GB 18030 form (the charset Starlette decodes it in) has no zero byte but a NUL's.
    gb = f"{MULTIPART}; charset=gb18030"
    body = multipart([(FIELD, "营业执照".encode("gb18030")), (FILE, PNG_BYTES)])
    assert (await post_form(app, body, gb)).json() == {"name": "营业执照"}
    body = multipart([(FIELD, "营业\x00".encode("gb18030")), (FILE, PNG_BYTES)])
    assert (await post_form(app, body, gb)).json()["code"] == "nul_character"


@pytest.mark.parametrize(
    ("body", "refused"),
    [(b"name=a%00b", True), (b"na%00me=x", True), (b"name=a\x00", True), (b"name=100%2500", False)],
)
async def test_a_nul_in_a_url_encoded_form(body: bytes, refused: bool) -> None:
    app, reached = form_app()
    response = await post_form(app, body, "application/x-www-form-urlencoded")
    if refused:
        assert (response.status_code, response.json()["code"]) == (400, "nul_character")
        assert reached == []
    else:
        assert response.json() == {"name": "100%00"}


async def test_a_multipart_body_the_scanner_cannot_read_is_left_to_starlette() -> None:
    app, reached = form_app()
    for content_type in (
        MULTIPART,
        "multipart/form-data",
        f"multipart/form-data; boundary={'x' * 300}",
    ):
        response = await post_form(app, b"--b0und4ry\r\nnot a header\r\n\r\n\x00", content_type)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "bad_request"
    assert reached == []
