"""Certificates API: holders, staff and services download sealed PDFs; anyone verifies one."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import HTMLResponse, Response

from govshared.auth import STAFF_ROLES, Role, require_roles
from govshared.db import AutoCommitRoute
from govshared.problems import (
    DependencyUnavailable,
    Forbidden,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
    problem_responses,
)
from govshared.seal import SealUnavailable
from govshared.storage import read_pdf_upload
from govshared.uploads import file_response
from licensing.certificates.page import licence_page
from licensing.dependencies import Certificates, Context, ReadableLicence, Verifier
from licensing.errors import CertificateNotFound, CertificateNotSealed, LicenceNotFound
from licensing.licences.schemas import LicenceVerification
from licensing.models import LicenceCertificate

router = APIRouter(prefix="/api/v1/licences", route_class=AutoCommitRoute)
public_router = APIRouter(tags=["verification"], route_class=AutoCommitRoute)
Readers = Depends(require_roles(Role.ENTERPRISE, Role.SERVICE, *STAFF_ROLES))
DOWNLOAD_ERRORS = (
    Unauthenticated,
    Forbidden,
    LicenceNotFound,
    CertificateNotFound,
    CertificateNotSealed,
    DependencyUnavailable,
)
PDF_RESPONSES = {200: {"content": {"application/pdf": {}}}, **problem_responses(*DOWNLOAD_ERRORS)}
SHA256 = r"^[0-9a-fA-F]{64}$"


def _pdf(certificate: LicenceCertificate, data: bytes) -> Response:
    assert certificate.pdf_sha256 is not None
    name = f"{certificate.licence_no}-v{certificate.version}.pdf"
    return file_response(
        data,
        filename=name,
        fallback=f"certificate-{certificate.id}.pdf",
        content_type="application/pdf",
        headers={"X-Content-SHA256": certificate.pdf_sha256},
    )


@router.get(
    "/{licence_no}/pdf",
    tags=["licences"],
    summary="下载电子证照 PDF（当前版本，已加盖电子印章）(holder, staff of the jurisdiction, service)",
    response_class=Response,
    responses=PDF_RESPONSES,
    dependencies=[Readers],
)
async def current_certificate_pdf(licence: ReadableLicence, certificates: Certificates) -> Response:
    """The sealed certificate of the licence's current version, as stored when it was sealed."""
    certificate = await certificates.current_of(licence)
    return _pdf(certificate, await certificates.pdf(certificate))


@router.get(
    "/{licence_no}/certificates/{certificate_id}/pdf",
    tags=["licences"],
    summary="下载某一版本的电子证照 PDF (holder, staff of the jurisdiction, service)",
    response_class=Response,
    responses=PDF_RESPONSES,
    dependencies=[Readers],
)
async def certificate_pdf(
    licence: ReadableLicence, certificate_id: uuid.UUID, certificates: Certificates
) -> Response:
    """A sealed certificate of the licence, of any version (the one a notice named)."""
    certificate = await certificates.of_number(licence.licence_no, certificate_id)
    return _pdf(certificate, await certificates.pdf(certificate))


@router.get(
    "/verify",
    tags=["verification"],
    summary="证照核验 (public): by number, with the hashes of the copy in hand",
    response_model=LicenceVerification,
    responses=problem_responses(ValidationFailed, SealUnavailable),
)
async def verify_licence(
    verifier: Verifier,
    licence_no: Annotated[str, Query(min_length=1, max_length=40, description="证照编号")],
    version: Annotated[
        int | None, Query(ge=1, le=100_000, description="The version printed (default: current)")
    ] = None,
    digest: Annotated[
        str | None, Query(pattern=SHA256, description="SM3 content digest, from the QR code")
    ] = None,
    sha256: Annotated[
        str | None, Query(pattern=SHA256, description="SHA-256 of the PDF file in hand")
    ] = None,
    hash: Annotated[
        str | None, Query(pattern=SHA256, description="SHA-256 content hash of the register")
    ] = None,
) -> LicenceVerification:
    """Genuine, and valid today? Reveals only what the certificate shows."""
    return await verifier.by_number(
        licence_no=licence_no, version=version, content_hash=hash, digest=digest, sha256=sha256
    )


@router.post(
    "/verify",
    tags=["verification"],
    summary="证照核验 (public): upload the certificate PDF",
    response_model=LicenceVerification,
    responses=problem_responses(
        PayloadTooLarge, UnsupportedMediaType, ValidationFailed, SealUnavailable
    ),
)
async def verify_licence_file(
    context: Context,
    verifier: Verifier,
    file: Annotated[UploadFile, File(description="The certificate PDF to check")],
    licence_no: Annotated[
        str | None, Form(min_length=1, max_length=40, description="证照编号 printed on it")
    ] = None,
) -> LicenceVerification:
    """Genuine (a trusted seal's signature holds), unaltered (the very file issued), issued by
    whom, and whether the licence version is still valid today."""
    data = await read_pdf_upload(file, limit=context.settings.max_upload_bytes)
    return await verifier.by_file(data, licence_no=licence_no)


@public_router.get(
    "/licences/verify",
    summary="电子证照核验页面（扫码打开，无需登录）",
    response_class=HTMLResponse,
    responses=problem_responses(ValidationFailed, SealUnavailable),
)
async def verify_licence_page(
    verifier: Verifier,
    licence_no: Annotated[str | None, Query(max_length=40)] = None,
    version: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    digest: Annotated[str | None, Query(max_length=64)] = None,
    sha256: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    """The public page the certificate's QR code opens; with a number it shows the result."""
    result = None
    if licence_no:
        hexes = {k: v.strip().lower() for k, v in (("digest", digest), ("sha256", sha256)) if v}
        if any(not re.fullmatch(SHA256, v) for v in hexes.values()):
            return HTMLResponse(
                licence_page(None, number=licence_no, error="摘要应为 64 位十六进制数"),
                status_code=422,
            )
        result = await verifier.by_number(
            licence_no=licence_no.strip(),
            version=version,
            content_hash=None,
            digest=hexes.get("digest"),
            sha256=hexes.get("sha256"),
        )
    return HTMLResponse(licence_page(result, number=licence_no or ""))


@public_router.post(
    "/licences/verify",
    summary="电子证照核验页面（上传 PDF）",
    response_class=HTMLResponse,
    responses=problem_responses(PayloadTooLarge, UnsupportedMediaType, ValidationFailed),
)
async def verify_licence_page_upload(
    context: Context, verifier: Verifier, file: Annotated[UploadFile, File()]
) -> HTMLResponse:
    """The page after an upload (a wrong file is explained on the page, not as JSON)."""
    try:
        data = await read_pdf_upload(file, limit=context.settings.max_upload_bytes)
    except (PayloadTooLarge, UnsupportedMediaType) as exc:
        return HTMLResponse(
            licence_page(None, error=exc.detail or exc.title), status_code=exc.status
        )
    return HTMLResponse(licence_page(await verifier.by_file(data)))
