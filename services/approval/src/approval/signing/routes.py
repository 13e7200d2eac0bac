"""Signing sessions API: the phone asks what to sign, then posts the signature and its certificate."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from approval.context import Context
from approval.dependencies import ApplicationById, Session
from approval.errors import ApplicationNotFound, FormInvalid, ItemNotFound
from approval.signing.errors import (
    SealKindNotAccepted,
    SignatureRequired,
    SigningPurposeNotAllowed,
    SigningSessionExpired,
    SigningSessionNotFound,
    SigningSessionReplayed,
    SigningUnavailable,
)
from approval.signing.models import SigningPurpose
from approval.signing.schemas import (
    ApplicationSigningCreate,
    CommitmentSigningCreate,
    ReceiptIn,
    SignatureIn,
    SigningSessionOut,
)
from approval.signing.service import SigningService
from govshared.auth import Principal, Role, require_roles
from govshared.db import AutoCommitRoute
from govshared.problems import (
    DependencyUnavailable,
    Forbidden,
    Unauthenticated,
    ValidationFailed,
    problem_responses,
)
from govshared.signing import (
    CertificateExpired,
    CertificateInvalid,
    CertificateRevoked,
    CertificateSubjectMismatch,
    CertificateUntrusted,
    RevocationUnavailable,
    SignatureContentMismatch,
    SignatureInvalid,
)

router = APIRouter(tags=["signing"], route_class=AutoCommitRoute)
Enterprise = Annotated[Principal, Depends(require_roles(Role.ENTERPRISE))]
AUTH_ERRORS = (Unauthenticated, Forbidden, ValidationFailed)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def signing_now() -> Callable[[], datetime]:
    """The signing sessions' clock (tests override this dependency to move their time)."""
    return _utc_now


async def get_signing(
    context: Context,
    session: Session,
    now: Annotated[Callable[[], datetime], Depends(signing_now)],
) -> SigningService:
    """The signing service of this request."""
    return SigningService(
        session,
        verifier=context.verifier(),
        now=now,
        lifetime=timedelta(minutes=context.settings.signing_session_minutes),
    )


Signing = Annotated[SigningService, Depends(get_signing)]


def _out(row: object, response: Response, created: bool) -> SigningSessionOut:
    response.status_code = 201 if created else 200
    return SigningSessionOut.model_validate(row)


@router.post(
    "/api/v1/signing-sessions",
    summary="发起告知承诺书或申请书签署（手机签署第一步）",
    status_code=201,
    response_model=SigningSessionOut,
    responses=problem_responses(
        *AUTH_ERRORS,
        ItemNotFound,
        SigningPurposeNotAllowed,
        DependencyUnavailable,
        FormInvalid,
    ),
)
async def open_commitment(
    context: Context,
    body: CommitmentSigningCreate,
    principal: Enterprise,
    signing: Signing,
    response: Response,
) -> SigningSessionOut:
    """The 告知承诺书 as license publishes it for the item (``commitment``), or the application
    itself for an item whose guide requires the legal representative's signature
    (``application``), bound to the applicant, with its SM3 digest and an expiry; while it is
    open, asking again returns the same session."""
    if body.purpose is SigningPurpose.APPLICATION:
        row, created = await signing.open_application(
            principal=principal,
            item_code=body.item_code,
            applicant_name=body.applicant_name,
            business_type=body.business_type.value,
            form=body.form,
        )
        return _out(row, response, created)
    row, created = await signing.open_commitment(
        principal=principal,
        item_code=body.item_code,
        applicant_name=body.applicant_name,
        license_client=context.license_client,
    )
    return _out(row, response, created)


@router.post(
    "/api/v1/applications/{application_id}/signing-sessions",
    summary="发起对申请的签署（撤回申请等）",
    status_code=201,
    response_model=SigningSessionOut,
    responses=problem_responses(*AUTH_ERRORS, ApplicationNotFound, SigningPurposeNotAllowed),
)
async def open_for_application(
    application: ApplicationById,
    body: ApplicationSigningCreate,
    principal: Enterprise,
    signing: Signing,
    response: Response,
) -> SigningSessionOut:
    """The canonical content of the act, its SM3 digest and the session's expiry."""
    row, created = await signing.open_for_application(
        principal=principal, application=application, purpose=body.purpose
    )
    return _out(row, response, created)


@router.get(
    "/api/v1/signing-sessions/{session_id}",
    summary="查询签署会话（断线后可重新取回）",
    response_model=SigningSessionOut,
    responses=problem_responses(*AUTH_ERRORS, SigningSessionNotFound),
)
async def get_session(
    session_id: uuid.UUID, principal: Enterprise, signing: Signing
) -> SigningSessionOut:
    """The session as it stands: what to sign, and whether it has been signed."""
    return SigningSessionOut.model_validate(
        await signing.get(principal=principal, session_id=session_id)
    )


@router.post(
    "/api/v1/signing-sessions/{session_id}/signature",
    summary="提交手机签名（手机签署第二步）",
    response_model=SigningSessionOut,
    responses=problem_responses(
        *AUTH_ERRORS,
        SigningSessionNotFound,
        SigningSessionExpired,
        SigningSessionReplayed,
        CertificateInvalid,
        CertificateUntrusted,
        CertificateExpired,
        CertificateRevoked,
        CertificateSubjectMismatch,
        SignatureContentMismatch,
        SignatureInvalid,
        SealKindNotAccepted,
        RevocationUnavailable,
        SigningUnavailable,
    ),
)
async def post_signature(
    session_id: uuid.UUID, body: SignatureIn, principal: Enterprise, signing: Signing
) -> SigningSessionOut:
    """Check the certificate (chain, validity, revocation, USCC) and the SM2 signature over the
    session's digest; the same signature posted again gets the same answer."""
    return SigningSessionOut.model_validate(
        await signing.sign(principal=principal, session_id=session_id, body=body)
    )


@router.post(
    "/api/v1/applications/{application_id}/receipt",
    summary="签署送达回证（申请人确认收到决定文书）",
    response_model=SigningSessionOut,
    responses=problem_responses(
        *AUTH_ERRORS,
        ApplicationNotFound,
        SigningSessionNotFound,
        SigningSessionReplayed,
        SignatureRequired,
    ),
)
async def sign_receipt(
    application: ApplicationById, body: ReceiptIn, principal: Enterprise, signing: Signing
) -> SigningSessionOut:
    """The signed receipt joins the case's audit trail as the proof of service (beside notify's
    delivery record); posting it again changes nothing."""
    return SigningSessionOut.model_validate(
        await signing.sign_receipt(
            principal=principal, application=application, session_id=body.signing_session
        )
    )
