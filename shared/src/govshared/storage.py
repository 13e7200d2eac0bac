"""Where files live (materials, sealed documents): a filesystem folder or S3-compatible storage.

Both sit behind one small interface, so that the same code runs on a laptop and in a city's data
centre; only settings change. The S3 backend signs requests with AWS Signature Version 4 over httpx
(no SDK), which every S3-compatible store (MinIO, Ceph RGW, OSS/COS S3 endpoints) accepts.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit

import httpx
from fastapi import UploadFile

from govshared.files import write_private
from govshared.problems import DependencyUnavailable, PayloadTooLarge, UnsupportedMediaType


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
        path = self._path(key)

        # Materials are the applicants' documents: 0600 files in 0700 folders (govshared.files).
        await asyncio.to_thread(write_private, path, data)

    async def get(self, key: str) -> bytes:
        """Read the file."""
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def delete(self, key: str) -> None:
        """Remove the file."""
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)


class S3Storage:
    """Blobs in a bucket of an S3-compatible store (path-style addressing)."""

    def __init__(
        self,
        *,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        region: str,
        http: httpx.AsyncClient,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.http = http

    def _url(self, key: str) -> str:
        return f"{self.endpoint}/{self.bucket}/{quote(key, safe='/')}"

    def sign(
        self, method: str, url: str, payload: bytes, headers: dict[str, str]
    ) -> dict[str, str]:
        """AWS Signature Version 4 headers for a request."""
        now = datetime.now(UTC)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        day = now.strftime("%Y%m%d")
        parts = urlsplit(url)
        payload_hash = hashlib.sha256(payload).hexdigest()
        signed = {
            **{k.lower(): v for k, v in headers.items()},
            "host": parts.netloc,
            "x-amz-content-sha256": payload_hash,
            "x-amz-date": amz_date,
        }
        names = sorted(signed)
        canonical = "\n".join(
            [
                method,
                parts.path or "/",
                parts.query,
                "".join(f"{n}:{signed[n].strip()}\n" for n in names),
                ";".join(names),
                payload_hash,
            ]
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = f"AWS4{self.secret_key}".encode()
        for part in (day, self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        signed["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        signed.pop("host")
        return signed

    async def _send(
        self, method: str, key: str, data: bytes = b"", headers: dict[str, str] | None = None
    ) -> httpx.Response:
        url = self._url(key)
        try:
            response = await self.http.request(
                method, url, content=data, headers=self.sign(method, url, data, headers or {})
            )
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(
                f"对象存储不可用：{type(exc).__name__}", dependency="storage"
            ) from exc
        if response.status_code >= 500:
            raise DependencyUnavailable(
                f"对象存储返回 {response.status_code}", dependency="storage"
            )
        return response

    async def put(self, key: str, data: bytes, *, content_type: str) -> None:
        """PUT Object."""
        response = await self._send("PUT", key, data, {"content-type": content_type})
        response.raise_for_status()

    async def get(self, key: str) -> bytes:
        """GET Object."""
        response = await self._send("GET", key)
        response.raise_for_status()
        return response.content

    async def delete(self, key: str) -> None:
        """DELETE Object."""
        await self._send("DELETE", key)


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


def storage_from_settings(
    settings: StorageSettings, http: httpx.AsyncClient, *, folder: str, env_prefix: str
) -> Storage:
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
            http=http,
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
