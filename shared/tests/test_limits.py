"""Issue 15: the request limits middleware refuses before anything reads the request."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from govshared.limits import MULTIPART_OVERHEAD, RequestLimitsMiddleware


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
