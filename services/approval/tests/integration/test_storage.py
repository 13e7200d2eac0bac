"""The S3 backend (boto3) against a local S3-compatible server (moto), and the filesystem backend."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from govshared.problems import DependencyUnavailable
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


async def test_s3_put_get_delete_through_the_sdk(s3_endpoint: str) -> None:
    storage = S3Storage(
        endpoint=s3_endpoint,
        bucket="materials",
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
    )
    storage.client.create_bucket(Bucket="materials")
    await storage.put("applications/a/b", b"%PDF-1.7 content", content_type="application/pdf")
    assert await storage.get("applications/a/b") == b"%PDF-1.7 content"
    head = storage.client.head_object(Bucket="materials", Key="applications/a/b")
    assert head["ContentType"] == "application/pdf"
    await storage.delete("applications/a/b")
    with pytest.raises(FileNotFoundError):
        await storage.get("applications/a/b")
    await storage.delete("applications/a/b")  # absent: no error


async def test_an_unreachable_store_is_a_503_problem_not_a_hang() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    down = S3Storage(
        endpoint=f"http://127.0.0.1:{closed_port}",
        bucket="materials",
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
        timeout_seconds=1.0,
    )
    with pytest.raises(DependencyUnavailable):
        await down.put("k", b"data", content_type="application/pdf")


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
