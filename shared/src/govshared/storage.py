"""Where files live (materials, sealed documents): a filesystem folder or S3-compatible storage.

Both sit behind one small interface, so that the same code runs on a laptop and in a city's data
centre; only settings change. The S3 backend is boto3, AWS's SDK, with path-style addressing,
which every S3-compatible store (MinIO, Ceph RGW, OSS/COS S3 endpoints) accepts.

Object storage is a network call: both backends refuse to be called while the request's database
transaction is open (``govshared.db.no_transaction_open``), the folder too, so that the tests,
which store in a folder, catch what would hold a transaction across a call to S3 in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from fastapi import UploadFile

from govshared.db import no_transaction_open
from govshared.files import write_private
from govshared.problems import DependencyUnavailable, PayloadTooLarge, UnsupportedMediaType

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")


class Storage(Protocol):
    """Stores and returns blobs by key."""

    async def put(self, key: str, data: bytes, *, content_type: str) -> None:
        """Store ``data`` under ``key``."""
        ...

    async def get(self, key: str) -> bytes:
        """The blob stored under ``key``."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the blob (no error if absent)."""
        ...


class FileSystemStorage:
    """Blobs as files under a root folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"storage key escapes the root: {key!r}")
        return path

    async def put(self, key: str, data: bytes, *, content_type: str) -> None:
        """Write atomically (temp file, then rename)."""
        no_transaction_open(f"storage: put {key}")
        path = self._path(key)

        # Materials are the applicants' documents: 0600 files in 0700 folders (govshared.files).
        await asyncio.to_thread(write_private, path, data)

    async def get(self, key: str) -> bytes:
        """Read the file."""
        no_transaction_open(f"storage: get {key}")
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def delete(self, key: str) -> None:
        """Remove the file."""
        no_transaction_open(f"storage: delete {key}")
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)


class S3Storage:
    """Blobs in a bucket of an S3-compatible store (path-style addressing), through boto3.

    boto3 is AWS's own, maintained SDK (request signing, retries, error codes), already pinned
    in the lock file as the client moto tests against; its calls are blocking, so each runs in
    a worker thread (a material upload or a sealed PDF at a time: no need for an async SDK and
    the aiohttp stack aiobotocore would bring, with its narrow pin on botocore).
    """

    def __init__(
        self,
        *,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        region: str,
        timeout_seconds: float = 10.0,
    ) -> None:
        # boto3 and botocore (some 10 MB resident) are imported by the process that stores in S3,
        # when it makes its store: a service on the filesystem store never loads them.
        import boto3
        from botocore.config import Config

        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        # One client per store: botocore clients are thread-safe once made.
        self.client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
            config=Config(
                s3={"addressing_style": "path"},
                connect_timeout=min(timeout_seconds, 2.0),
                read_timeout=timeout_seconds,
                retries={"mode": "standard", "max_attempts": 3},
            ),
        )

    async def _call(self, operation: Callable[[], T]) -> T:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await asyncio.to_thread(operation)
        except ClientError as exc:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if status == 404 or code in {"NoSuchKey", "404"}:
                raise FileNotFoundError(code or "NoSuchKey") from exc
            if status >= 500:
                raise DependencyUnavailable(f"对象存储返回 {status}", dependency="storage") from exc
            raise
        except BotoCoreError as exc:  # connection refused, timeouts, endpoint unreachable
            raise DependencyUnavailable(
                f"对象存储不可用：{type(exc).__name__}", dependency="storage"
            ) from exc

    async def put(self, key: str, data: bytes, *, content_type: str) -> None:
        """PutObject."""
        no_transaction_open(f"storage: put {key}")
        await self._call(
            lambda: self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
            )
        )

    async def get(self, key: str) -> bytes:
        """GetObject (``FileNotFoundError`` when absent, as on the filesystem)."""
        no_transaction_open(f"storage: get {key}")

        def read() -> bytes:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

        return await self._call(read)

    async def delete(self, key: str) -> None:
        """DeleteObject (no error if absent)."""
        no_transaction_open(f"storage: delete {key}")
        await self._call(lambda: self.client.delete_object(Bucket=self.bucket, Key=key))


SIGNATURES: tuple[tuple[str, bytes], ...] = (
    ("application/pdf", b"%PDF-"),
    ("image/png", b"\x89PNG\r\n\x1a\n"),
    ("image/jpeg", b"\xff\xd8\xff"),
)


def sniff_content_type(head: bytes) -> str | None:
    """The type a file really is, from its first bytes: PDF, PNG, JPEG or OFD (GB/T 33190)."""
    for content_type, magic in SIGNATURES:
        if head.startswith(magic):
            return content_type
    if head.startswith(b"PK\x03\x04") and b"OFD.xml" in head[:200]:
        return "application/ofd"
    return None


class StorageSettings(Protocol):
    """The settings fields ``storage_from_settings`` reads (every service names them alike)."""

    storage_backend: str
    s3_endpoint: str | None
    s3_bucket: str
    s3_access_key: str | None
    s3_secret_key: str | None
    s3_region: str
    data_dir: Path


def storage_from_settings(settings: StorageSettings, *, folder: str, env_prefix: str) -> Storage:
    """The store the settings choose: S3-compatible, or ``data_dir/folder`` on the filesystem."""
    if settings.storage_backend == "s3":
        if not (settings.s3_endpoint and settings.s3_access_key and settings.s3_secret_key):
            raise RuntimeError(
                f"S3 storage needs {env_prefix}S3_ENDPOINT, _ACCESS_KEY and _SECRET_KEY"
            )
        return S3Storage(
            endpoint=settings.s3_endpoint,
            bucket=settings.s3_bucket,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            region=settings.s3_region,
        )
    return FileSystemStorage(settings.data_dir / folder)


async def read_pdf_upload(file: UploadFile, *, limit: int) -> bytes:
    """An uploaded PDF to verify: 413 over ``limit`` bytes, 415 when its content is not a PDF."""
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"文件超过 {limit // (1024 * 1024)} MB 上限")
    if sniff_content_type(data[:16]) != "application/pdf":
        raise UnsupportedMediaType("请上传 PDF 文件", accepted=["application/pdf"])
    return data
