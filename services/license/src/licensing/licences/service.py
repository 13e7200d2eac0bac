"""Rules of the licence register: issuance, lifecycle and commitment follow-up; each new licence
version is handed to its holder as a sealed certificate (``licensing.certificates``)."""

from __future__ import annotations

import logging
import random
import uuid
from calendar import monthrange
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from govshared.auth import Principal
from govshared.contracts import LicenceSummary
from govshared.events import (
    REFORM_MODE_LABELS,
    ApplicationEventData,
    EventType,
    LicenceEventData,
    ReformMode,
    SealedDocumentRef,
    make_event,
)
from govshared.freeform import json_bounds_error
from govshared.outbox import OutboxWriter
from govshared.problems import ValidationFailed
from licensing import clock
from licensing.catalogue.repository import CatalogueRepository
from licensing.certificates.service import CertificateService, Sealing, certificate_out
from licensing.errors import (
    ChangeNeedsHolderApplication,
    HolderNameChangeNeedsApplication,
    LicenceNotActive,
    RectificationDeadlineInvalid,
    RectificationPeriodRunning,
    RenewalNotNeeded,
    RenewalNotPending,
    RenewalTooLate,
    VerificationAlreadyDecided,
)
from licensing.licences.acts import RENEWAL_CLEARED, LicenceActs
from licensing.licences.digest import certificate_fields, content_digest
from licensing.licences.repository import LicenceRepository, history_row, loaded
from licensing.licences.schemas import (
    REFORM_STATUS_LABELS,
    CommitmentEligibility,
    CreditRecordCreate,
    CreditRecordOut,
    EnterpriseReformStatus,
    LicenceChange,
    LicenceDetail,
    LicenceHistoryOut,
    LicenceOut,
    LicenceVersionOut,
    PenaltyBody,
    ReformStatus,
    ReformStatusEntry,
    VerificationDecision,
    VerificationOutcome,
)
from licensing.models import (
    CANCELLATION_GROUND_LABELS,
    LICENCE_STATUS_LABELS,
    CancellationGround,
    CreditKind,
    Licence,
    LicenceAction,
    LicenceCertificate,
    LicenceStatus,
    LicenceType,
    VerificationMethod,
    VerificationStatus,
    VerificationTask,
)

logger = logging.getLogger("licensing.licences")

SOURCE = "/services/license"
TIMER_ACTOR = "system:licence-timer"
# Application states after which nothing is pending any more.
SETTLED_STATES = frozenset({"approved", "denied", "rejected", "withdrawn", "filed"})
# Tasks that still need a verification: first checks and checks after 责令限期整改.
TO_VERIFY = (VerificationStatus.OPEN.value, VerificationStatus.RECTIFYING.value)
# How approval's events end a renewal application pending on a licence.
RENEWAL_CLOSING: dict[str, tuple[LicenceAction, str]] = {
    EventType.APPLICATION_DENIED: (LicenceAction.RENEWAL_REFUSED, "不予延续"),
    EventType.APPLICATION_REJECTED: (LicenceAction.RENEWAL_CLOSED, "延续申请不予受理"),
    EventType.APPLICATION_WITHDRAWN: (LicenceAction.RENEWAL_CLOSED, "延续申请已撤回"),
}


def add_months(start: date, months: int) -> date:
    """The same day ``months`` later, clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    years, month_index = divmod(start.month - 1 + months, 12)
    year, month = start.year + years, month_index + 1
    return date(year, month, min(start.day, monthrange(year, month)[1]))


def validity_end(start: date, months: int | None) -> date | None:
    """The last valid day of a validity of ``months`` starting on ``start`` (None: no limit)."""
    return None if months is None else add_months(start, months) - timedelta(days=1)


@dataclass(frozen=True, slots=True)
class LicencePolicy:
    """The register's configurable rules (from settings)."""

    renewal_lead_days: int = 30  # Art. 50: 届满三十日前 is the last day to apply
    late_renewal: str = "decide_without_deemed_renewal"  # or "refuse" (config.LateRenewal)
    reminder_days: tuple[int, ...] = (90, 45)
    verification_days: int = 60
    on_site_share: float = 0.2
    inspectors: tuple[str, ...] = ("执法人员甲", "执法人员乙")


@dataclass(slots=True)
class TimerRun:
    """What one pass of the licence timers did."""

    reminded: int = 0
    deemed_renewed: int = 0
    expired: int = 0
    licence_nos: list[str] = field(default_factory=list)


class LicenceService:
    """The licence register's use cases; it never commits (the route or the worker does)."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        outbox: OutboxWriter,
        sealing: Sealing,
        policy: LicencePolicy,
        rng: random.Random | None = None,
    ) -> None:
        self.session = session
        self.repository = LicenceRepository(session)
        self.certificates = CertificateService(session, sealing=sealing)
        self.outbox = outbox
        self.sealing = sealing
        self.policy = policy
        # 双随机 draws must not be predictable by the enterprises drawn.
        self.rng = rng or random.SystemRandom()
        self.acts = LicenceActs(self)

    # --- views -------------------------------------------------------------------------------

    async def licence_types(self) -> Sequence[LicenceType]:
        """The licence type catalogue."""
        return await self.repository.licence_types()

    async def current(self, licence_no: str) -> Licence | None:
        """The current version of a licence."""
        return await self.repository.current(licence_no)

    async def task(self, task_id: uuid.UUID) -> VerificationTask | None:
        """A verification task."""
        return await self.repository.task(task_id)

    async def register(
        self,
        *,
        holder_uscc: str | None = None,
        jurisdiction_prefix: str | None = None,
        status: LicenceStatus | None = None,
        after_no: str | None,
        limit: int,
    ) -> Sequence[Licence]:
        """Current licences by number, for a holder or within a jurisdiction."""
        return await self.repository.list_current(
            holder_uscc=holder_uscc,
            jurisdiction_prefix=jurisdiction_prefix,
            status=status.value if status else None,
            after_no=after_no,
            limit=limit,
        )

    async def tasks(
        self,
        *,
        jurisdiction_prefix: str | None,
        status: VerificationStatus | None,
        after: tuple[date, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[VerificationTask]:
        """Verification tasks by due date; without a status, the work to do: open tasks and those
        to verify again once their rectification deadline has come."""
        return await self.repository.tasks(
            jurisdiction_prefix=jurisdiction_prefix,
            statuses=(status.value,) if status else TO_VERIFY,
            after=after,
            limit=limit,
        )

    async def _type(self, code: str) -> LicenceType:
        licence_type = await self.repository.licence_type(code)
        assert licence_type is not None, "licences reference their type by foreign key"
        return licence_type

    def renewal_apply_by(self, licence: Licence) -> date | None:
        """The last day a renewal is applied for in time (Art. 50: 届满三十日前); no first day."""
        if licence.valid_until is None:
            return None
        return licence.valid_until - timedelta(days=self.policy.renewal_lead_days)

    async def to_out(
        self, licence: Licence, *, certificate: LicenceCertificate | None = None
    ) -> LicenceOut:
        """The REST view of a licence version, with its sealed certificate."""
        licence_type = await self._type(licence.licence_type)
        certificate = certificate or await self.certificates.of_licence(licence)
        return LicenceOut(
            id=licence.id,
            licence_no=licence.licence_no,
            version=licence.version,
            licence_type=licence.licence_type,
            licence_type_name=licence_type.name,
            item_code=licence.item_code,
            holder_name=licence.holder_name,
            holder_uscc=licence.holder_uscc,
            issuing_authority=licence.issuing_authority,
            jurisdiction=licence.jurisdiction,
            issued_on=licence.issued_on,
            valid_from=licence.valid_from,
            valid_until=licence.valid_until,
            status=licence.status,
            status_label=LICENCE_STATUS_LABELS[LicenceStatus(licence.status)],
            status_reason=licence.status_reason,
            granted_on_commitment=licence.granted_on_commitment,
            source_application_id=licence.source_application_id,
            source_application_no=licence.source_application_no,
            particulars=licence.particulars,
            renewal_apply_by=self.renewal_apply_by(licence),
            renewal_requested_on=licence.renewal_requested_on,
            renewal_timely=licence.renewal_timely,
            renewal_application_no=licence.renewal_application_no,
            act_on=licence.act_on,
            act_basis=licence.act_basis,
            act_details=licence.act_details,
            cancelled_on=licence.cancelled_on,
            cancellation_ground=licence.cancellation_ground,
            cancellation_ground_label=(
                CANCELLATION_GROUND_LABELS[CancellationGround(licence.cancellation_ground)]
                if licence.cancellation_ground
                else None
            ),
            content_hash=licence.content_hash,
            qr_url=self.sealing.qr_url(
                licence_no=licence.licence_no,
                version=licence.version,
                digest=certificate.content_digest if certificate else None,
            ),
            certificate=certificate_out(certificate, sealing=self.sealing) if certificate else None,
        )

    async def to_outs(self, licences: Sequence[Licence]) -> list[LicenceOut]:
        """The REST views of several licence versions (their certificates read at once)."""
        certificates = await self.certificates.of_licences(licences)
        return [
            await self.to_out(licence, certificate=certificates.get(licence.id))
            for licence in licences
        ]

    async def detail(self, licence: Licence) -> LicenceDetail:
        """A licence with its versions and history."""
        out = await self.to_out(licence)
        versions = await self.repository.versions(licence.licence_no)
        history = await self.repository.history(licence.licence_no)
        return LicenceDetail(
            **out.model_dump(),
            versions=[LicenceVersionOut.model_validate(v) for v in versions],
            history=[LicenceHistoryOut.model_validate(h) for h in history],
        )

    @staticmethod
    def summary(licence: Licence) -> LicenceSummary:
        """What another service may know of a licence."""
        return LicenceSummary(
            licence_no=licence.licence_no,
            licence_type=licence.licence_type,
            item_code=licence.item_code,
            holder_uscc=licence.holder_uscc,
            status=licence.status,
            valid_from=licence.valid_from,
            valid_until=licence.valid_until,
        )

    # --- events ------------------------------------------------------------------------------

    @staticmethod
    def _event_data(
        licence: Licence | dict[str, Any],
        *,
        licence_type: LicenceType,
        status: str,
        reason: str | None,
        document: SealedDocumentRef | None = None,
        act: dict[str, Any] | None = None,
    ) -> LicenceEventData:
        get = licence.get if isinstance(licence, dict) else licence.__getattribute__
        return LicenceEventData(
            **(act or {}),
            licence_id=get("id"),
            licence_no=get("licence_no"),
            licence_type=get("licence_type"),
            licence_type_name=licence_type.name,
            holder_name=get("holder_name"),
            holder_uscc=get("holder_uscc"),
            status=status,
            valid_until=get("valid_until"),
            application_id=get("source_application_id"),
            reason=reason,
            occurred_at=clock.now(),
            document=document,
        )

    async def _emit(
        self,
        licence: Licence | dict[str, Any],
        event_type: EventType,
        *,
        status: str,
        reason: str | None = None,
        document: SealedDocumentRef | None = None,
        act: dict[str, Any] | None = None,
    ) -> None:
        get = licence.get if isinstance(licence, dict) else licence.__getattribute__
        data = self._event_data(
            licence,
            licence_type=await self._type(str(get("licence_type"))),
            status=status,
            reason=reason,
            document=document,
            act=act,
        )
        event = make_event(type=event_type, source=SOURCE, subject=data.licence_no, data=data)
        await self.outbox.add(self.session, event)

    async def _hand_over(
        self,
        row: dict[str, Any],
        event_type: EventType,
        *,
        reason: str | None = None,
        act: dict[str, Any] | None = None,
    ) -> None:
        """A new licence version for its holder: register its certificate for sealing, with the
        event that announces it; the sealer emits that event once the certificate exists."""
        licence_type = await self._type(row["licence_type"])
        await self.certificates.register(
            row,
            title=licence_type.name,
            event_type=event_type,
            event_data=self._event_data(
                row, licence_type=licence_type, status=row["status"], reason=reason, act=act
            ),
            at=clock.now(),
        )

    # --- issuance ----------------------------------------------------------------------------

    async def on_approved(self, data: ApplicationEventData, *, event_id: str) -> str | None:
        """Apply approval's decision: issue, change, renew or cancel; the licence number, or None."""
        business_type = str(data.details.get("business_type") or "new")
        if business_type in ("change", "renew", "cancel"):
            licence = await self._licence_for_application(data)
            if licence is None:
                logger.warning(
                    "approved %s without a live licence to apply it to",
                    business_type,
                    extra={"application_no": data.application_no, "event_id": event_id},
                )
                return None
            actor = f"application:{data.application_no}"
            if business_type == "cancel":
                # 注销 on the holder's application ends the licence; it never issues one.
                await self.acts.cancel(
                    licence,
                    ground=CancellationGround.HOLDER_APPLICATION,
                    reason=f"依申请（{data.application_no}）准予注销",
                    legal_basis=None,
                    actor=actor,
                    extra={"source_application_no": data.application_no},
                )
                return licence.licence_no
            if business_type == "change":
                particulars = data.details.get("particulars")
                row = await self._new_version(
                    licence,
                    changes={
                        "holder_name": data.applicant_name,
                        "particulars": {**licence.particulars, **(particulars or {})},
                        "source_application_id": data.application_id,
                        "source_application_no": data.application_no,
                    },
                    action=LicenceAction.CHANGED,
                    reason=f"依申请（{data.application_no}）准予变更",
                    actor=actor,
                )
                await self._hand_over(row, EventType.LICENCE_CHANGED)
                return str(row["licence_no"])
            if licence.source_application_id == data.application_id:
                return licence.licence_no  # already deemed renewed on this application (Art. 50)
            row = await self._renew(
                licence,
                deemed=False,
                actor=actor,
                reason=f"依申请（{data.application_no}）准予延续",
                source={
                    "source_application_id": data.application_id,
                    "source_application_no": data.application_no,
                },
            )
            return str(row["licence_no"])
        if await self.repository.issued_for_application(data.application_id):
            return None
        licence_type = await self.repository.licence_type_for_item(data.item_code)
        if licence_type is None:
            # Items without a licence (e.g. filings) end with approval's own receipt.
            return None
        row = await self.issue(data, licence_type=licence_type, event_id=event_id)
        return str(row["licence_no"])

    async def _licence_for_application(self, data: ApplicationEventData) -> Licence | None:
        licence_no = data.details.get("licence_no")
        if isinstance(licence_no, str):
            licence = await self.repository.current(licence_no)
            if licence is not None and licence.holder_uscc == data.applicant_uscc:
                return licence
            return None
        return await self.repository.current_for_holder_item(
            holder_uscc=data.applicant_uscc, item_code=data.item_code
        )

    async def issue(
        self, data: ApplicationEventData, *, licence_type: LicenceType, event_id: str
    ) -> dict[str, Any]:
        """Issue a licence on an approved application (Art. 44)."""
        today = clock.today()
        now = clock.now()
        sequence = await self.repository.next_number(
            prefix=licence_type.number_prefix, year=today.year
        )
        on_commitment = data.reform_mode is ReformMode.COMMITMENT
        particulars = data.details.get("particulars")
        authority = data.details.get("authority")
        row: dict[str, Any] = {
            "id": uuid.uuid4(),
            "licence_no": f"{licence_type.number_prefix}-{today.year}-{sequence:06d}",
            "version": 1,
            "is_current": True,
            "licence_type": licence_type.code,
            "item_code": data.item_code,
            "holder_name": data.applicant_name,
            "holder_uscc": data.applicant_uscc,
            "issuing_authority": authority
            if isinstance(authority, str) and authority
            else licence_type.issuing_authority,
            "jurisdiction": data.jurisdiction,
            "issued_on": today,
            "valid_from": today,
            "valid_until": validity_end(today, licence_type.validity_months),
            "status": LicenceStatus.VALID.value,
            "status_reason": None,
            "particulars": particulars if isinstance(particulars, dict) else {},
            "granted_on_commitment": on_commitment,
            "source_application_id": data.application_id,
            "source_application_no": data.application_no,
            "source_event_id": event_id,
            **RENEWAL_CLEARED,
            "renewal_reminders_sent": 0,
            "act_on": None,
            "act_basis": None,
            "act_details": None,
            "cancelled_on": None,
            "cancellation_ground": None,
            "created_at": now,
            "updated_at": now,
        }
        row["content_hash"] = content_digest(certificate_fields(row))
        await self.repository.insert_licence(row)
        await self.repository.add_history(
            history_row(
                row,
                action=LicenceAction.ISSUED,
                from_status=None,
                to_status=LicenceStatus.VALID,
                reason=f"依申请（{data.application_no}）准予许可",
                actor=f"application:{data.application_no}",
                at=now,
            )
        )
        if on_commitment:
            await self._schedule_verification(row, today=today)
        await self._hand_over(row, EventType.LICENCE_ISSUED)
        return row

    async def _schedule_verification(self, licence: dict[str, Any], *, today: date) -> None:
        """Every commitment grant is verified; a random share is drawn for an on-site check."""
        drawn = self.rng.random() < self.policy.on_site_share
        pool = list(self.policy.inspectors)
        inspectors = self.rng.sample(pool, k=min(2, len(pool))) if drawn else []
        await self.repository.insert_task(
            {
                "id": uuid.uuid4(),
                "licence_no": licence["licence_no"],
                "holder_uscc": licence["holder_uscc"],
                "holder_name": licence["holder_name"],
                "item_code": licence["item_code"],
                "jurisdiction": licence["jurisdiction"],
                "due_on": today + timedelta(days=self.policy.verification_days),
                "method": (
                    VerificationMethod.ON_SITE if drawn else VerificationMethod.DOCUMENT
                ).value,
                "drawn": drawn,
                "inspectors": inspectors,
                "status": VerificationStatus.OPEN.value,
                "findings": None,
                "decided_by": None,
                "decided_at": None,
                "created_at": clock.now(),
            }
        )

    # --- lifecycle ---------------------------------------------------------------------------

    async def _transition(
        self,
        licence: Licence,
        *,
        allowed: Sequence[LicenceStatus],
        to: LicenceStatus,
        action: LicenceAction,
        reason: str | None,
        actor: str,
        extra: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        if licence.status not in allowed:
            raise LicenceNotActive(
                f"证照 {licence.licence_no} 当前状态为“{LICENCE_STATUS_LABELS[LicenceStatus(licence.status)]}”"
            )
        now = clock.now()
        values = {"status": to.value, "status_reason": reason, "updated_at": now, **(extra or {})}
        if not await self.repository.set_status(
            licence_id=licence.id, expected=licence.status, values=values
        ):
            raise LicenceNotActive(f"证照 {licence.licence_no} 的状态已被并发修改，请刷新后重试")
        await self.repository.add_history(
            history_row(
                licence,
                action=action,
                from_status=licence.status,
                to_status=to,
                reason=reason,
                actor=actor,
                at=now,
                details=details,
            )
        )
        loaded(licence, {"status": to.value, "status_reason": reason, **(extra or {})})

    async def _new_version(
        self,
        licence: Licence,
        *,
        changes: dict[str, Any],
        action: LicenceAction,
        reason: str,
        actor: str,
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Supersede the current version with a new one carrying ``changes``."""
        if licence.status != LicenceStatus.VALID:
            raise LicenceNotActive(
                f"证照 {licence.licence_no} 当前状态为“{LICENCE_STATUS_LABELS[LicenceStatus(licence.status)]}”"
            )
        now = clock.now()
        if not await self.repository.set_status(
            licence_id=licence.id,
            expected=licence.status,
            values={
                "is_current": False,
                "status": LicenceStatus.SUPERSEDED.value,
                "status_reason": reason,
                "updated_at": now,
            },
        ):
            raise LicenceNotActive(f"证照 {licence.licence_no} 的状态已被并发修改，请刷新后重试")
        await self.repository.add_history(
            history_row(
                licence,
                action=LicenceAction.SUPERSEDED,
                from_status=licence.status,
                to_status=LicenceStatus.SUPERSEDED,
                reason=reason,
                actor=actor,
                at=now,
            )
        )
        row: dict[str, Any] = {
            column: getattr(licence, column)
            for column in Licence.__table__.columns.keys()  # noqa: SIM118 - a ColumnCollection
        }
        row.update(
            {
                "id": uuid.uuid4(),
                "version": licence.version + 1,
                "is_current": True,
                "status": LicenceStatus.VALID.value,
                "status_reason": None,
                "issued_on": clock.today(),
                **RENEWAL_CLEARED,
                "renewal_reminders_sent": 0,
                "act_on": None,
                "act_basis": None,
                "act_details": None,
                "cancelled_on": None,
                "cancellation_ground": None,
                "created_at": now,
                "updated_at": now,
                **changes,
            }
        )
        row["content_hash"] = content_digest(certificate_fields(row))
        await self.repository.insert_licence(row)
        await self.repository.add_history(
            history_row(
                row,
                action=action,
                from_status=None,
                to_status=LicenceStatus.VALID,
                reason=reason,
                actor=actor,
                at=now,
                details=details,
            )
        )
        loaded(licence, {"status": LicenceStatus.SUPERSEDED.value, "is_current": False})
        return row

    async def change(self, licence: Licence, *, body: LicenceChange, actor: Principal) -> Licence:
        """The authority's own 变更 (Art. 8): only with its legal basis and the compensation the
        holder is told of; any other change is the holder's application (Art. 49)."""
        if body.holder_name is not None:
            raise HolderNameChangeNeedsApplication(
                "被许可人名称变更须由被许可人提出变更申请（《行政许可法》第四十九条）"
            )
        if not body.legal_basis or not body.compensation_note:
            raise ChangeNeedsHolderApplication(
                "行政机关不得自行变更许可事项：变更须依被许可人的申请作出（第四十九条），"
                "或依第八条变更并载明法律依据和补偿告知"
            )
        if not body.particulars:
            raise ValidationFailed("请说明变更的许可事项（particulars）")
        details = {
            "article": "《中华人民共和国行政许可法》第八条",
            "legal_basis": body.legal_basis,
            "compensation_note": body.compensation_note,
        }
        merged = {**licence.particulars, **body.particulars}
        # Each change is bounded on its own; the particulars it leaves must be too.
        error = json_bounds_error(merged)
        if error is not None:
            raise ValidationFailed(
                f"变更后的证照事项{error}",
                invalid_params=[{"name": "particulars", "reason": error}],
            )
        row = await self._new_version(
            licence,
            changes={"particulars": merged},
            action=LicenceAction.CHANGED,
            reason=body.reason,
            actor=actor.subject,
            details=details,
        )
        await self._hand_over(
            row,
            EventType.LICENCE_CHANGED,
            reason=body.reason,
            act={
                "act_on": clock.today(),
                "legal_basis": body.legal_basis,
                "compensation_note": body.compensation_note,
            },
        )
        return await self._reload(row["licence_no"])

    async def _reload(self, licence_no: str) -> Licence:
        licence = await self.repository.current(licence_no)
        assert licence is not None
        return licence

    def renewal_is_timely(self, licence: Licence, applied_on: date) -> bool:
        """Art. 50: applied for no later than 30 days before expiry (however early)."""
        apply_by = self.renewal_apply_by(licence)
        return apply_by is not None and applied_on <= apply_by

    async def request_renewal(self, licence: Licence, *, actor: Principal) -> Licence:
        """延续申请 (Art. 50): on time up to 30 days before expiry, however early; later, it is
        decided without deemed renewal (or refused, as configured)."""
        today = clock.today()
        if licence.status != LicenceStatus.VALID:
            raise LicenceNotActive(f"证照 {licence.licence_no} 当前不是有效状态，不能申请延续")
        if licence.valid_until is None:
            raise RenewalNotNeeded(f"证照 {licence.licence_no} 长期有效，无需延续")
        if today > licence.valid_until:
            raise LicenceNotActive(f"证照 {licence.licence_no} 有效期已届满，请重新申请许可")
        if licence.renewal_requested_on is not None:
            return licence
        timely = self.renewal_is_timely(licence, today)
        apply_by = self.renewal_apply_by(licence)
        if not timely and self.policy.late_renewal == "refuse":
            raise RenewalTooLate(f"延续申请应当在 {apply_by} 前提出")
        await self._start_renewal(
            licence, applied_on=today, timely=timely, actor=actor.subject, application=None
        )
        return licence

    async def _start_renewal(
        self,
        licence: Licence,
        *,
        applied_on: date,
        timely: bool,
        actor: str,
        application: ApplicationEventData | None,
    ) -> None:
        """Record a pending renewal; only a timely one is deemed granted at expiry (Art. 50)."""
        via = f"（申请编号 {application.application_no}）" if application else ""
        reason = (
            f"持证主体申请延续{via}，于有效期届满三十日前提出；届满前未作决定的，视为准予延续"
            if timely
            else f"持证主体申请延续{via}，未在有效期届满三十日前提出（第五十条）："
            "可以在届满前作出决定，但不适用视为准予延续"
        )
        await self._transition(
            licence,
            allowed=[LicenceStatus.VALID],
            to=LicenceStatus.VALID,
            action=LicenceAction.RENEWAL_REQUESTED,
            reason=reason,
            actor=actor,
            extra={
                "renewal_requested_on": applied_on,
                "renewal_timely": timely,
                "renewal_application_id": application.application_id if application else None,
                "renewal_application_no": application.application_no if application else None,
            },
            details={
                "applied_on": applied_on.isoformat(),
                "apply_by": str(self.renewal_apply_by(licence)),
                "timely": timely,
            },
        )

    async def decide_renewal(
        self, licence: Licence, *, grant: bool, reason: str, actor: Principal
    ) -> Licence:
        """The authority decides a pending renewal before expiry."""
        if licence.renewal_requested_on is None:
            raise RenewalNotPending(f"证照 {licence.licence_no} 没有待决定的延续申请")
        if grant:
            row = await self._renew(licence, deemed=False, actor=actor.subject, reason=reason)
            return await self._reload(row["licence_no"])
        await self._transition(
            licence,
            allowed=[LicenceStatus.VALID],
            to=LicenceStatus.VALID,
            action=LicenceAction.RENEWAL_REFUSED,
            reason=reason,
            actor=actor.subject,
            extra=dict(RENEWAL_CLEARED),
        )
        return licence

    async def _renew(
        self,
        licence: Licence,
        *,
        deemed: bool,
        actor: str,
        reason: str | None = None,
        source: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A new version whose validity continues from the old one's end."""
        licence_type = await self._type(licence.licence_type)
        start = (licence.valid_until or clock.today()) + timedelta(days=1)
        reason = reason or (
            "延续申请在有效期届满三十日前提出，届满前未作决定，依《行政许可法》第五十条视为准予延续"
            if deemed
            else "准予延续"
        )
        row = await self._new_version(
            licence,
            changes={
                "valid_from": start,
                "valid_until": validity_end(start, licence_type.validity_months),
                **(source or {}),
            },
            action=LicenceAction.DEEMED_RENEWED if deemed else LicenceAction.RENEWED,
            reason=reason,
            actor=actor,
        )
        await self._hand_over(row, EventType.LICENCE_RENEWED, reason=reason)
        return row

    async def suspend(self, licence: Licence, *, body: PenaltyBody, actor: Principal) -> Licence:
        """暂扣许可证件: a penalty (行政处罚法), after the notice of the holder's rights."""
        return await self.acts.suspend(licence, body=body, actor=actor.subject)

    async def reinstate(self, licence: Licence, *, reason: str, actor: Principal) -> Licence:
        """恢复: a suspended licence is valid again (the 暂扣 stays in the history)."""
        await self._transition(
            licence,
            allowed=[LicenceStatus.SUSPENDED],
            to=LicenceStatus.VALID,
            action=LicenceAction.REINSTATED,
            reason=reason,
            actor=actor.subject,
            extra={"act_on": None, "act_basis": None, "act_details": None},
        )
        # Valid again: the holder's certificate of this version is the one to use.
        await self._emit(
            licence,
            EventType.LICENCE_CHANGED,
            status=licence.status,
            reason=reason,
            document=await self.certificates.sealed_ref(licence),
        )
        return licence

    # --- timers ------------------------------------------------------------------------------

    async def expire_due(self, *, today: date, limit: int, run: TimerRun) -> int:
        """Past their last day: a timely renewal pending is deemed granted (Art. 50); any other
        licence expires and is 注销 (Art. 70(1))."""
        claimed = await self.repository.claim_expired(today=today, limit=limit)
        for licence in claimed:
            if (
                licence.status == LicenceStatus.VALID
                and licence.renewal_requested_on is not None
                and licence.renewal_timely
            ):
                source = (
                    {
                        "source_application_id": licence.renewal_application_id,
                        "source_application_no": licence.renewal_application_no,
                    }
                    if licence.renewal_application_id
                    else None
                )
                await self._renew(licence, deemed=True, actor=TIMER_ACTOR, source=source)
                run.deemed_renewed += 1
            else:
                await self.acts.expire(licence, today=today, actor=TIMER_ACTOR)
                run.expired += 1
            run.licence_nos.append(licence.licence_no)
        return len(claimed)

    async def send_reminders(self, *, today: date, limit: int, run: TimerRun) -> int:
        """Renewal reminders at each configured number of days before expiry."""
        thresholds = sorted(self.policy.reminder_days, reverse=True)
        if not thresholds:
            return 0
        claimed = await self.repository.claim_reminders(
            today=today,
            horizon=today + timedelta(days=thresholds[0]),
            max_sent=len(thresholds),
            limit=limit,
        )
        for licence in claimed:
            assert licence.valid_until is not None
            days_left = (licence.valid_until - today).days
            stage = sum(1 for days in thresholds if days_left <= days)
            if stage <= licence.renewal_reminders_sent:
                continue
            apply_by = self.renewal_apply_by(licence)
            assert apply_by is not None
            reason = f"证照将于{licence.valid_until}到期（剩余{days_left}天），" + (
                f"请于{apply_by}前申请延续（《行政许可法》第五十条）"
                if today <= apply_by
                else f"延续申请应当在{apply_by}前提出，现已逾期，届满前未作决定的不视为准予延续"
            )
            if not await self.repository.set_status(
                licence_id=licence.id,
                expected=licence.status,
                values={"renewal_reminders_sent": stage},
            ):
                continue
            await self._emit(
                licence, EventType.LICENCE_RENEWAL_DUE, status=licence.status, reason=reason
            )
            run.reminded += 1
            run.licence_nos.append(licence.licence_no)
        return len(claimed)

    # --- 告知承诺 follow-up (国办发〔2020〕42号) -------------------------------------------------

    async def decide_verification(
        self, task: VerificationTask, *, body: VerificationDecision, actor: Principal
    ) -> VerificationTask:
        """Record a verification: conditions unmet are first ordered put right by a deadline
        (责令限期整改) and verified again; only a false commitment, or conditions still unmet
        after the deadline, revoke the licence (撤销) and record bad credit."""
        if task.status not in (VerificationStatus.OPEN, VerificationStatus.RECTIFYING):
            raise VerificationAlreadyDecided(f"核查任务已有结论：{task.status}")
        today = clock.today()
        now = clock.now()
        outcome = body.outcome
        rectifying = task.status == VerificationStatus.RECTIFYING
        values: dict[str, Any] = {"findings": body.findings, "decided_by": actor.subject}
        if outcome is VerificationOutcome.PASSED:
            values.update(status=VerificationStatus.PASSED.value, decided_at=now)
        elif outcome is VerificationOutcome.CONDITIONS_UNMET and not rectifying:
            if body.rectify_by is None or body.rectify_by <= today:
                raise RectificationDeadlineInvalid("请载明整改期限（rectify_by），且应晚于今天")
            values.update(
                status=VerificationStatus.RECTIFYING.value,
                rectify_by=body.rectify_by,
                rectification_findings=body.findings,
                due_on=body.rectify_by,
            )
        elif outcome is VerificationOutcome.CONDITIONS_UNMET:
            assert task.rectify_by is not None
            if today <= task.rectify_by:
                raise RectificationPeriodRunning(
                    f"整改期限至{task.rectify_by}，期满后方可认定整改后仍不符合条件"
                )
            values.update(status=VerificationStatus.FAILED.value, decided_at=now)
        else:
            values.update(status=VerificationStatus.FAILED.value, decided_at=now)
        if not await self.repository.decide_task(
            task_id=task.id, expected=task.status, values=values
        ):
            raise VerificationAlreadyDecided("核查任务已被他人作出结论")
        loaded(task, values)
        licence = await self.repository.current(task.licence_no)
        live = licence is not None and licence.status in (
            LicenceStatus.VALID,
            LicenceStatus.SUSPENDED,
        )
        if task.status == VerificationStatus.RECTIFYING:
            if licence is not None and live:
                await self._order_rectification(licence, task=task, actor=actor.subject)
            return task
        if task.status != VerificationStatus.FAILED:
            return task
        false_commitment = outcome is VerificationOutcome.FALSE_COMMITMENT
        if false_commitment:
            reason = f"告知承诺核查发现虚假承诺：{body.findings}"
            basis = "《中华人民共和国行政许可法》第六十九条第二款；国办发〔2020〕42号"
        else:
            reason = (
                f"告知承诺核查发现不符合承诺的条件，责令于{task.rectify_by}前整改，"
                f"期满复查仍不符合：{body.findings}"
            )
            basis = "《中华人民共和国行政许可法》第六十九条；国办发〔2020〕42号"
        if licence is not None and live:
            await self.acts.revoke(licence, legal_basis=basis, reason=reason, actor=actor.subject)
        await self.repository.insert_credit(
            {
                "id": uuid.uuid4(),
                "holder_uscc": task.holder_uscc,
                "kind": (
                    CreditKind.FALSE_COMMITMENT
                    if false_commitment
                    else CreditKind.COMMITMENT_UNFULFILLED
                ).value,
                # A false commitment bars the route (42号文); unmet conditions are recorded only.
                "serious": false_commitment,
                "bars_commitment": false_commitment,
                "reason": reason,
                "licence_no": task.licence_no,
                "item_code": task.item_code,
                "verification_task_id": task.id,
                "recorded_by": actor.subject,
                "recorded_at": now,
            }
        )
        return task

    async def _order_rectification(
        self, licence: Licence, *, task: VerificationTask, actor: str
    ) -> None:
        """责令限期整改: the history records it and the holder is told the deadline."""
        reason = (
            f"告知承诺核查发现不符合承诺的条件：{task.rectification_findings}。"
            f"责令于{task.rectify_by}前整改，期满后复查"
        )
        await self.repository.add_history(
            history_row(
                licence,
                action=LicenceAction.RECTIFICATION_ORDERED,
                from_status=licence.status,
                to_status=licence.status,
                reason=reason,
                actor=actor,
                at=clock.now(),
                details={
                    "rectify_by": str(task.rectify_by),
                    "verification_task_id": str(task.id),
                    "basis": "国办发〔2020〕42号",
                },
            )
        )
        await self._emit(
            licence,
            EventType.LICENCE_RECTIFICATION_ORDERED,
            status=licence.status,
            reason=reason,
            act={"rectify_by": task.rectify_by, "legal_basis": "国办发〔2020〕42号"},
        )

    async def add_credit_record(
        self, *, uscc: str, body: CreditRecordCreate, actor: Principal
    ) -> CreditRecordOut:
        """Record bad credit from another source; a serious record bars the commitment route."""
        row = {
            "id": uuid.uuid4(),
            "holder_uscc": uscc,
            "kind": body.kind.value,
            "serious": body.serious,
            "bars_commitment": body.serious or body.kind is CreditKind.FALSE_COMMITMENT,
            "reason": body.reason,
            "licence_no": None,
            "item_code": None,
            "verification_task_id": None,
            "recorded_by": actor.subject,
            "recorded_at": clock.now(),
        }
        await self.repository.insert_credit(row)
        return CreditRecordOut.model_validate(row)

    async def commitment_eligibility(self, uscc: str) -> CommitmentEligibility:
        """Whether the enterprise may choose 告知承诺 (no false commitment, no serious bad credit)."""
        records = await self.repository.credit_records(uscc)
        reasons = []
        for record in records:
            if not record.bars_commitment:
                continue
            if record.kind == CreditKind.FALSE_COMMITMENT:
                reasons.append(
                    f"曾作出虚假承诺（证照 {record.licence_no or '—'}），不得适用告知承诺"
                )
            else:
                reasons.append(f"存在严重失信记录：{record.reason}")
        return CommitmentEligibility(
            uscc=uscc,
            eligible=not reasons,
            reasons=reasons,
            records=[CreditRecordOut.model_validate(r) for r in records],
        )

    # --- renewals filed in approval (business_type renew) --------------------------------------

    async def on_renewal_application(self, event_type: str, data: ApplicationEventData) -> None:
        """A renewal filed as an approval application protects the licence exactly as one filed
        here (Art. 50): pending from the day it arrived, until approval decides or it ends."""
        if event_type == EventType.APPLICATION_APPROVED:
            return  # on_approved renews
        licence = await self._licence_for_application(data)
        if licence is None:
            return
        closing = RENEWAL_CLOSING.get(event_type)
        if closing is not None:
            if licence.renewal_application_id == data.application_id:
                action, reason = closing
                await self._transition(
                    licence,
                    allowed=[LicenceStatus.VALID, LicenceStatus.SUSPENDED],
                    to=LicenceStatus(licence.status),
                    action=action,
                    reason=f"{reason}（申请编号 {data.application_no}）",
                    actor=f"application:{data.application_no}",
                    extra=dict(RENEWAL_CLEARED),
                )
            return
        if licence.status != LicenceStatus.VALID or licence.renewal_requested_on is not None:
            return
        applied_on = data.occurred_at.astimezone(clock.CHINA).date()
        if licence.valid_until is None or applied_on > licence.valid_until:
            return
        await self._start_renewal(
            licence,
            applied_on=applied_on,
            timely=self.renewal_is_timely(licence, applied_on),
            actor=f"application:{data.application_no}",
            application=data,
        )

    # --- approval's applications and an enterprise's reform status -----------------------------

    async def track_application(self, data: ApplicationEventData) -> None:
        """Remember the application's latest state (an enterprise's pending permits)."""
        business_type = data.details.get("business_type")
        await self.repository.track_application(
            {
                "application_id": data.application_id,
                "application_no": data.application_no,
                "holder_uscc": data.applicant_uscc,
                "item_code": data.item_code,
                "jurisdiction": data.jurisdiction,
                "state": data.state,
                "business_type": business_type if isinstance(business_type, str) else None,
                "reform_mode": data.reform_mode.value if data.reform_mode else None,
                "occurred_at": data.occurred_at,
            }
        )

    async def reform_status(
        self, *, uscc: str, jurisdiction: str, on: date
    ) -> EnterpriseReformStatus:
        """For each reform item: held, not needed, pending, or how it may be obtained."""
        catalogue = await CatalogueRepository(self.session).list_in_force(
            jurisdiction=jurisdiction, on=on, limit=10_000
        )
        licences = await self.repository.holder_licences(uscc)
        applications = await self.repository.applications_of(uscc)
        eligibility = await self.commitment_eligibility(uscc)
        entries = []
        for item, version in catalogue:
            mode = ReformMode(version.mode)
            held = [
                lic.licence_no
                for lic in licences
                if lic.item_code == item.code and lic.status == LicenceStatus.VALID
            ]
            mine = [a for a in applications if a.item_code == item.code]
            pending = next((a for a in reversed(mine) if a.state not in SETTLED_STATES), None)
            filed = any(a.state == "filed" for a in mine)
            if held:
                status = ReformStatus.HELD
            elif mode is ReformMode.CANCELLED:
                status = ReformStatus.NOT_NEEDED
            elif pending is not None:
                status = ReformStatus.PENDING
            elif filed:
                status = ReformStatus.FILED
            elif mode is ReformMode.FILING:
                status = ReformStatus.OBTAINABLE_BY_FILING
            elif mode is ReformMode.COMMITMENT and eligibility.eligible:
                status = ReformStatus.OBTAINABLE_BY_COMMITMENT
            else:
                status = ReformStatus.REQUIRES_APPLICATION
            entries.append(
                ReformStatusEntry(
                    item_code=item.code,
                    item_name=item.name,
                    mode=mode,
                    mode_label=REFORM_MODE_LABELS[mode],
                    status=status,
                    status_label=REFORM_STATUS_LABELS[status],
                    licence_nos=held,
                    pending_application_no=pending.application_no if pending else None,
                )
            )
        return EnterpriseReformStatus(
            uscc=uscc,
            jurisdiction=jurisdiction,
            on=on,
            commitment_eligible=eligibility.eligible,
            items=entries,
        )


def policy_from_settings(
    *,
    renewal_lead_days: int,
    late_renewal: str,
    reminder_days: Sequence[int],
    verification_days: int,
    on_site_share: float,
    inspectors: Sequence[str],
) -> LicencePolicy:
    """The register's rules from configured values."""
    return LicencePolicy(
        renewal_lead_days=renewal_lead_days,
        late_renewal=late_renewal,
        reminder_days=tuple(reminder_days),
        verification_days=verification_days,
        on_site_share=on_site_share,
        inspectors=tuple(inspectors),
    )
