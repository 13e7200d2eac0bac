"""Request-scoped dependencies: the session, the service objects, existence and permission checks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, Path
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.auth import Principal, Role, get_principal
from govshared.db import get_session
from govshared.jurisdictions import covers, scope_prefix
from govshared.uscc import uscc_error
from licensing.catalogue.service import CatalogueService
from licensing.certificates.service import CertificateService
from licensing.certificates.verification import LicenceVerifier
from licensing.consumer import EventConsumer
from licensing.context import LicenseContext, get_context
from licensing.errors import (
    InvalidUscc,
    LicenceNotFound,
    NotYourEnterprise,
    OutsideJurisdiction,
    VerificationTaskNotFound,
)
from licensing.licences.follow_up import CommitmentFollowUp
from licensing.licences.lifecycle import LicenceLifecycle
from licensing.licences.presenters import LicencePresenter
from licensing.licences.records import LicenceRecords
from licensing.licences.reform_status import ReformStatuses
from licensing.licences.register import LicenceRegister
from licensing.models import Licence, VerificationTask

Session = Annotated[AsyncSession, Depends(get_session)]
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_catalogue_service(session: Session) -> CatalogueService:
    """The catalogue service bound to this request's session."""
    return CatalogueService(session)


Context = Annotated[LicenseContext, Depends(get_context)]


async def get_records(context: Context, session: Session) -> LicenceRecords:
    """The register's shared writes bound to this request's session."""
    return LicenceRecords(
        session, outbox=context.outbox, sealing=context.sealing, policy=context.policy
    )


Records = Annotated[LicenceRecords, Depends(get_records)]


async def get_register(records: Records) -> LicenceRegister:
    """Reads of the licence register."""
    return LicenceRegister(records)


async def get_presenter(records: Records) -> LicencePresenter:
    """The REST views of licences."""
    return LicencePresenter(records)


async def get_lifecycle(records: Records) -> LicenceLifecycle:
    """A licence's change, renewal, suspension and the law's acts on it."""
    return LicenceLifecycle(records)


async def get_follow_up(context: Context, records: Records) -> CommitmentFollowUp:
    """告知承诺 verification and credit records."""
    return CommitmentFollowUp(records, rng=context.rng)


async def get_reform_statuses(session: Session) -> ReformStatuses:
    """Enterprises' reform status."""
    return ReformStatuses(session)


async def get_certificate_service(context: Context, session: Session) -> CertificateService:
    """The certificate service bound to this request's session."""
    return CertificateService(session, sealing=context.sealing)


async def get_verifier(context: Context, session: Session) -> LicenceVerifier:
    """The public verification bound to this request's session."""
    return LicenceVerifier(session, sealing=context.sealing)


Catalogue = Annotated[CatalogueService, Depends(get_catalogue_service)]
Register = Annotated[LicenceRegister, Depends(get_register)]
Presenter = Annotated[LicencePresenter, Depends(get_presenter)]
Lifecycle = Annotated[LicenceLifecycle, Depends(get_lifecycle)]
FollowUp = Annotated[CommitmentFollowUp, Depends(get_follow_up)]
Statuses = Annotated[ReformStatuses, Depends(get_reform_statuses)]
Certificates = Annotated[CertificateService, Depends(get_certificate_service)]
Verifier = Annotated[LicenceVerifier, Depends(get_verifier)]


async def get_event_consumer(context: Context, records: Records) -> EventConsumer:
    """The event consumer bound to this request's session."""
    return EventConsumer(records, rng=context.rng)


Consumer = Annotated[EventConsumer, Depends(get_event_consumer)]


def staff_scope(principal: Principal) -> str | None:
    """The jurisdiction prefix a caller's lists are limited to (None: everything)."""
    if principal.role in (Role.ADMIN, Role.SERVICE) or not principal.jurisdiction:
        return None
    return scope_prefix(principal.jurisdiction)


def check_jurisdiction(principal: Principal, jurisdiction: str) -> None:
    """Staff act only within their jurisdiction (admins everywhere)."""
    if principal.role is Role.ADMIN:
        return
    if not covers(principal.jurisdiction, jurisdiction):
        raise OutsideJurisdiction(f"该事项属于行政区划 {jurisdiction}，不在您的管辖范围内")


def check_holder_jurisdiction(principal: Principal, uscc: str, held: Sequence[str]) -> None:
    """Staff act on a licence holder only where it holds a licence (``held``: the jurisdictions of
    its current licences) in their jurisdiction (admins everywhere)."""
    if principal.role is Role.ADMIN:
        return
    if not any(covers(principal.jurisdiction, jurisdiction) for jurisdiction in held):
        raise OutsideJurisdiction(f"经营主体 {uscc} 在您的管辖范围内没有许可证照")


async def licence_by_no(
    licence_no: Annotated[str, Path(min_length=1, max_length=40)],
    register: Register,
    principal: CurrentPrincipal,
) -> Licence:
    """The current version of the licence in the path, if the caller may see it (404 otherwise)."""
    licence = await register.current(licence_no)
    # Another enterprise's licence is reported missing: its existence is not ours to reveal.
    if licence is None or (
        principal.role is Role.ENTERPRISE and licence.holder_uscc != principal.uscc
    ):
        raise LicenceNotFound(f"证照 {licence_no} 不存在")
    return licence


LicenceByNo = Annotated[Licence, Depends(licence_by_no)]


def may_read(principal: Principal, licence: Licence) -> bool:
    """Need to know: the holder reads its own licences, staff those of their jurisdiction (a
    district its own, a city its districts too), admins and services all.

    The one place a licence read is scoped; lists are scoped alike by ``staff_scope``.
    """
    if principal.role is Role.ENTERPRISE:
        return licence.holder_uscc == principal.uscc
    if principal.role in (Role.ADMIN, Role.SERVICE):
        return True
    return covers(principal.jurisdiction, licence.jurisdiction)


async def readable_licence(licence: LicenceByNo, principal: CurrentPrincipal) -> Licence:
    """A licence whose details and certificates the caller may read (``may_read``); for anyone
    else it does not exist (404): its holder, particulars and history are not theirs to know."""
    if not may_read(principal, licence):
        raise LicenceNotFound(f"证照 {licence.licence_no} 不存在")
    return licence


ReadableLicence = Annotated[Licence, Depends(readable_licence)]


async def managed_licence(licence: LicenceByNo, principal: CurrentPrincipal) -> Licence:
    """A licence a member of staff acts on: it must be in their jurisdiction."""
    if principal.is_staff:
        check_jurisdiction(principal, licence.jurisdiction)
    return licence


ManagedLicence = Annotated[Licence, Depends(managed_licence)]


async def task_by_id(
    task_id: uuid.UUID, follow_up: FollowUp, principal: CurrentPrincipal
) -> VerificationTask:
    """The verification task in the path, within the caller's jurisdiction."""
    task = await follow_up.task(task_id)
    if task is None:
        raise VerificationTaskNotFound()
    check_jurisdiction(principal, task.jurisdiction)
    return task


TaskById = Annotated[VerificationTask, Depends(task_by_id)]


async def enterprise_uscc(
    uscc: Annotated[
        str,
        Path(min_length=18, max_length=18, description="统一社会信用代码 (GB 32100-2015)"),
    ],
    principal: CurrentPrincipal,
) -> str:
    """The USCC in the path, checked; an enterprise may only name its own."""
    code = uscc.strip().upper()
    error = uscc_error(code)
    if error:
        raise InvalidUscc(error)
    if principal.role is Role.ENTERPRISE and principal.uscc != code:
        raise NotYourEnterprise()
    return code


EnterpriseUscc = Annotated[str, Depends(enterprise_uscc)]
