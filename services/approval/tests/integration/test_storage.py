"""The S3 backend against a local S3-compatible server (moto), and the filesystem backend."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from moto.server import ThreadedMotoServer

from govshared.storage import FileSystemStorage, S3Storage, sniff_content_type


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


async def test_s3_put_get_delete_with_signed_requests(s3_endpoint: str) -> None:
    async with httpx.AsyncClient() as http:
        storage = S3Storage(
            endpoint=s3_endpoint,
            bucket="materials",
            access_key="testing",
            secret_key="testing",
            region="us-east-1",
            http=http,
        )
        created = await http.put(
            f"{s3_endpoint}/materials",
            headers=storage.sign("PUT", f"{s3_endpoint}/materials", b"", {}),
        )
        assert created.status_code == 200, created.text
        await storage.put("applications/a/b", b"%PDF-1.7 content", content_type="application/pdf")
        assert await storage.get("applications/a/b") == b"%PDF-1.7 content"
        await storage.delete("applications/a/b")
        with pytest.raises(httpx.HTTPStatusError):
            await storage.get("applications/a/b")


async def test_filesystem_storage_refuses_escaping_keys(tmp_path: Path) -> None:
    storage = FileSystemStorage(tmp_path)
    await storage.put("a/b", b"data", content_type="application/pdf")
    assert await storage.get("a/b") == b"data"
    with pytest.raises(ValueError):
        await storage.put("../../etc/passwd", b"x", content_type="text/plain")


def test_sniffing() -> None:
    assert sniff_content_type(b"%PDF-1.4") == "application/pdf"
    assert sniff_content_type(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert sniff_content_type(b"PK\x03\x04....OFD.xml") == "application/ofd"
    assert sniff_content_type(b"PK\x03\x04 a plain zip") is None
    assert sniff_content_type(b"MZ\x90") is None
