"""Sealed documents in notices: links for every channel, the PDF itself for email.

Approval's notices and decisions (``document.issued``) and license's certificates (licence events
with a ``document``) carry a ``SealedDocumentRef``. Its ``download_path`` is a path on the service that
issued it, the event's ``source``. Each channel gets the reference (inbox payload, webhook body, the
links in the text); email also gets the file, fetched with notify's service token when the email is
sent and checked against the published SHA-256 and size: an email never goes without the attachment
its text announces, and a file that does not match is a failed attempt, retried and then dead-lettered.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from govshared.auth import ServiceTokenSource
from notify.channels.base import Attachment, ChannelError

# The services whose documents notify may fetch, by the ``source`` of their events.
DOCUMENT_SOURCES: dict[str, str] = {
    "/services/approval": "approval",
    "/services/license": "license",
}
PDF = "application/pdf"
_UNSAFE_IN_FILENAME = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_MAX_STEM = 60
# What the inbox payload and webhook body carry (the portal shows a download button from it).
_REFERENCE_FIELDS = (
    "document_id",
    "kind",
    "title",
    "number",
    "issued_on",
    "pdf_sha256",
    "pdf_size",
    "download_path",
    "verify_url",
)


def attachment_filename(number: str | None, title: str | None) -> str:
    """``{number}.pdf`` (else ``{title}.pdf``), without characters file systems refuse."""
    for candidate in (number, title):
        stem = _UNSAFE_IN_FILENAME.sub("_", candidate or "").strip(" .")[:_MAX_STEM]
        if stem:
            return f"{stem}.pdf"
    return "document.pdf"


@dataclass(frozen=True, slots=True)
class DocumentLinks:
    """Where documents are fetched from and what links messages show, per issuing service."""

    service_urls: Mapping[str, str] = field(default_factory=dict)  # service name → base URL
    public_urls: Mapping[str, str] = field(default_factory=dict)  # service name → users' URL
    max_attachment_bytes: int = 10 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Any) -> DocumentLinks:
        """The links notify's settings describe."""
        return cls(
            service_urls={"approval": settings.approval_url, "license": settings.license_url},
            public_urls={
                "approval": settings.approval_public_url,
                "license": settings.license_public_url,
            },
            max_attachment_bytes=settings.mail_attachment_max_bytes,
        )

    def service_url(self, source: str) -> str | None:
        """The base URL of the service an event came from, if notify may fetch from it."""
        service = DOCUMENT_SOURCES.get(source)
        url = self.service_urls.get(service) if service else None
        return url.rstrip("/") if url else None

    def download_url(self, source: str, path: str) -> str:
        """The link a message shows: where users reach the issuing service, else its own URL."""
        service = DOCUMENT_SOURCES.get(source)
        public = self.public_urls.get(service, "") if service else ""
        return (public.rstrip("/") or self.service_url(source) or "") + path

    def context(self, source: str, document: Any) -> dict[str, Any]:
        """Template variables of an event's document (none when it has no usable reference)."""
        document = _reference_fields(document)
        if document is None:
            return {"document_attached": False}
        size = document["pdf_size"]
        attached = (
            self.service_url(source) is not None
            and isinstance(size, int)
            and 0 < size <= self.max_attachment_bytes
        )
        return {
            "document_title": str(document["title"]),
            "document_number": str(document["number"]),
            "document_filename": attachment_filename(
                str(document["number"]), str(document["title"])
            ),
            "download_url": self.download_url(source, str(document["download_path"])),
            # Decided once, at fan-out: the email's text says whether the PDF is attached, and
            # the worker attaches it exactly when this says so.
            "document_attached": attached,
        }


def _reference_fields(document: Any) -> dict[str, Any] | None:
    """The document's reference fields, or None when it is not a complete reference."""
    if not isinstance(document, dict):
        return None
    fields = {key: document.get(key) for key in _REFERENCE_FIELDS}
    return fields if all(value not in (None, "") for value in fields.values()) else None


def document_reference(context: Mapping[str, Any]) -> dict[str, Any] | None:
    """The document a notice is about, as the inbox payload and webhook body carry it."""
    reference = _reference_fields(context.get("document"))
    if reference is None:
        return None
    reference["download_url"] = context.get("download_url")
    return reference


def inbox_payload(context: Mapping[str, Any]) -> dict[str, Any] | None:
    """What an inbox message carries beside its text: the document it serves, if any."""
    reference = document_reference(context)
    return {"document": reference} if reference is not None else None


@dataclass(frozen=True, slots=True)
class AttachmentSpec:
    """The PDF an email must carry: where it is and what it must hash to."""

    source: str
    download_path: str
    pdf_sha256: str
    pdf_size: int
    filename: str


def attachment_of(source: str, context: Mapping[str, Any]) -> AttachmentSpec | None:
    """The PDF an email of this notice carries (what fan-out decided), or None."""
    document = _reference_fields(context.get("document"))
    if context.get("document_attached") is not True or document is None:
        return None
    return AttachmentSpec(
        source=source,
        download_path=str(document["download_path"]),
        pdf_sha256=str(document["pdf_sha256"]),
        pdf_size=int(document["pdf_size"]),
        filename=str(context.get("document_filename") or "document.pdf"),
    )


class DocumentFetcher:
    """Fetches a sealed PDF from the service that issued it and checks it byte for byte."""

    def __init__(
        self, links: DocumentLinks, *, http: httpx.AsyncClient, tokens: ServiceTokenSource
    ) -> None:
        self._links = links
        self._http = http
        self._tokens = tokens

    async def fetch(self, spec: AttachmentSpec) -> Attachment:
        """The PDF as an attachment; ``ChannelError`` (retried) when unreachable or not as issued."""
        service = DOCUMENT_SOURCES.get(spec.source)
        base = self._links.service_url(spec.source)
        if service is None or base is None:
            raise ChannelError(f"no service to fetch documents of {spec.source} from")
        url = base + spec.download_path
        digest = hashlib.sha256()
        chunks: list[bytes] = []
        received = 0
        try:
            async with self._http.stream(
                "GET",
                url,
                headers={
                    "Authorization": f"Bearer {self._tokens.token_for(service)}",
                    "Accept": PDF,
                },
                follow_redirects=False,
            ) as response:
                if response.status_code != 200:
                    raise ChannelError(f"文书下载失败：{url} 返回 HTTP {response.status_code}")
                async for chunk in response.aiter_bytes():
                    received += len(chunk)
                    if received > spec.pdf_size:
                        raise ChannelError(f"文书与登记不符：{url} 超过登记的 {spec.pdf_size} 字节")
                    digest.update(chunk)
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise ChannelError(f"文书下载失败：{url}：{type(exc).__name__}: {exc}") from exc
        if received != spec.pdf_size or digest.hexdigest() != spec.pdf_sha256:
            raise ChannelError(
                f"文书与登记不符：{url} 收到 {received} 字节、SHA-256 {digest.hexdigest()}，"
                f"登记为 {spec.pdf_size} 字节、SHA-256 {spec.pdf_sha256}"
            )
        return Attachment(filename=spec.filename, content_type=PDF, content=b"".join(chunks))
