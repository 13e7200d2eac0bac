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
from govshared.outbox import OutboxWriter
from licensing import clock
from licensing.catalogue.repository import CatalogueRepository
from licensing.certificates.service import CertificateService, Sealing, certificate_out
from licensing.errors import (
    LicenceNotActive,
    RenewalNotPending,
    RenewalWindowClosed,
    VerificationAlreadyDecided,
)
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
    ReformStatus,
    ReformStatusEntry,
    VerificationDecision,
    VerificationOutcome,
)
from licensing.models import (
    LICENCE_STATUS_LABELS,
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

    renewal_window_days: int = 30
    reminder_days: tuple[int, ...] = (30, 7)
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
        """Verification tasks by due date."""
        return await self.repository.tasks(
            jurisdiction_prefix=jurisdiction_prefix,
            status=status.value if status else None,
            after=after,
            limit=limit,
        )

    async def _type(self, code: str) -> LicenceType:
        licence_type = await self.repository.licence_type(code)
        assert licence_type is not None, "licences reference their type by foreign key"
        return licence_type

    def window_opens_on(self, licence: Licence) -> date | None:
        """The first day a renewal may be applied for."""
        if licence.valid_until is None:
            return None
        return licence.valid_until - timedelta(days=self.policy.renewal_window_days)

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
            renewal_window_opens_on=self.window_opens_on(licence),
            renewal_requested_on=licence.renewal_requested_on,
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
        status: str,
        reason: str | None,
        document: SealedDocumentRef | None = None,
    ) -> LicenceEventData:
        get = licence.get if isinstance(licence, dict) else licence.__getattribute__
        return LicenceEventData(
            licence_id=get("id"),
            licence_no=get("licence_no"),
            licence_type=get("licence_type"),
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
    ) -> None:
        data = self._event_data(licence, status=status, reason=reason, document=document)
        event = make_event(type=event_type, source=SOURCE, subject=data.licence_no, data=data)
        await self.outbox.add(self.session, event)

    async def _hand_over(
        self, row: dict[str, Any], event_type: EventType, *, reason: str | None = None
    ) -> None:
        """A new licence version for its holder: register its certificate for sealing, with the
        event that announces it; the sealer emits that event once the certificate exists."""
        licence_type = await self._type(row["licence_type"])
        await self.certificates.register(
            row,
            title=licence_type.name,
            event_type=event_type,
            event_data=self._event_data(row, status=row["status"], reason=reason),
            at=clock.now(),
        )

    # --- issuance ----------------------------------------------------------------------------

    async def on_approved(self, data: ApplicationEventData, *, event_id: str) -> str | None:
        """Apply approval's decision: issue, change or renew; the licence number, or None."""
        business_type = str(data.details.get("business_type") or "new")
        if business_type in ("change", "renew"):
            licence = await self._licence_for_application(data)
            if licence is None:
                logger.warning(
                    "approved %s without a live licence to apply it to",
                    business_type,
                    extra={"application_no": data.application_no, "event_id": event_id},
                )
                return None
            actor = f"application:{data.application_no}"
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
            "renewal_requested_on": None,
            "renewal_reminders_sent": 0,
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
                "renewal_requested_on": None,
                "renewal_reminders_sent": 0,
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
            )
        )
        loaded(licence, {"status": LicenceStatus.SUPERSEDED.value, "is_current": False})
        return row

    async def change(self, licence: Licence, *, body: LicenceChange, actor: Principal) -> Licence:
        """变更: a new version with the changed particulars; the current one is superseded."""
        changes: dict[str, Any] = {}
        if body.holder_name is not None:
            changes["holder_name"] = body.holder_name
        if body.particulars is not None:
            changes["particulars"] = {**licence.particulars, **body.particulars}
        row = await self._new_version(
            licence,
            changes=changes,
            action=LicenceAction.CHANGED,
            reason=body.reason,
            actor=actor.subject,
        )
        await self._hand_over(row, EventType.LICENCE_CHANGED, reason=body.reason)
        return await self._reload(row["licence_no"])

    async def _reload(self, licence_no: str) -> Licence:
        licence = await self.repository.current(licence_no)
        assert licence is not None
        return licence

    async def request_renewal(self, licence: Licence, *, actor: Principal) -> Licence:
        """延续申请: accepted from 30 days before expiry up to the last valid day (Art. 50)."""
        today = clock.today()
        opens = self.window_opens_on(licence)
        if licence.status != LicenceStatus.VALID:
            raise LicenceNotActive(f"证照 {licence.licence_no} 当前不是有效状态，不能申请延续")
        if (
            opens is None
            or licence.valid_until is None
            or not opens <= today <= licence.valid_until
        ):
            detail = (
                "该证照长期有效，无需延续"
                if opens is None
                else f"延续申请期为 {opens.isoformat()} 至 {licence.valid_until}"
            )
            raise RenewalWindowClosed(detail)
        if licence.renewal_requested_on is not None:
            return licence
        await self._transition(
            licence,
            allowed=[LicenceStatus.VALID],
            to=LicenceStatus.VALID,
            action=LicenceAction.RENEWAL_REQUESTED,
            reason="持证主体申请延续",
            actor=actor.subject,
            extra={"renewal_requested_on": today},
        )
        return licence

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
            extra={"renewal_requested_on": None},
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
            "延续申请在有效期届满前未作决定，依《行政许可法》第五十条视为准予延续"
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

    async def suspend(self, licence: Licence, *, reason: str, actor: Principal) -> Licence:
        """暂停: the licence stays on the register but is not valid."""
        await self._transition(
            licence,
            allowed=[LicenceStatus.VALID],
            to=LicenceStatus.SUSPENDED,
            action=LicenceAction.SUSPENDED,
            reason=reason,
            actor=actor.subject,
        )
        await self._emit(licence, EventType.LICENCE_SUSPENDED, status=licence.status, reason=reason)
        return licence

    async def reinstate(self, licence: Licence, *, reason: str, actor: Principal) -> Licence:
        """恢复: a suspended licence is valid again."""
        await self._transition(
            licence,
            allowed=[LicenceStatus.SUSPENDED],
            to=LicenceStatus.VALID,
            action=LicenceAction.REINSTATED,
            reason=reason,
            actor=actor.subject,
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

    async def revoke(self, licence: Licence, *, reason: str, actor: str) -> Licence:
        """撤销: final."""
        await self._transition(
            licence,
            allowed=[LicenceStatus.VALID, LicenceStatus.SUSPENDED],
            to=LicenceStatus.REVOKED,
            action=LicenceAction.REVOKED,
            reason=reason,
            actor=actor,
        )
        await self._emit(licence, EventType.LICENCE_REVOKED, status=licence.status, reason=reason)
        return licence

    # --- timers ------------------------------------------------------------------------------

    async def expire_due(self, *, today: date, limit: int, run: TimerRun) -> int:
        """Expire (or, with a renewal pending, deem renewed) live licences past their last day."""
        claimed = await self.repository.claim_expired(today=today, limit=limit)
        for licence in claimed:
            if licence.status == LicenceStatus.VALID and licence.renewal_requested_on is not None:
                await self._renew(licence, deemed=True, actor=TIMER_ACTOR)
                run.deemed_renewed += 1
            else:
                reason = f"有效期已于{licence.valid_until}届满"
                await self._transition(
                    licence,
                    allowed=[LicenceStatus.VALID, LicenceStatus.SUSPENDED],
                    to=LicenceStatus.EXPIRED,
                    action=LicenceAction.EXPIRED,
                    reason=reason,
                    actor=TIMER_ACTOR,
                )
                await self._emit(
                    licence, EventType.LICENCE_EXPIRED, status=licence.status, reason=reason
                )
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
            reason = (
                f"证照将于{licence.valid_until}到期（剩余{days_left}天），请在有效期届满前申请延续"
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

    # --- 告知承诺 follow-up --------------------------------------------------------------------

    async def decide_verification(
        self, task: VerificationTask, *, body: VerificationDecision, actor: Principal
    ) -> VerificationTask:
        """Record a verification; a false commitment revokes, records bad credit and bars."""
        if task.status != VerificationStatus.OPEN:
            raise VerificationAlreadyDecided(f"核查任务已有结论：{task.status}")
        failed = body.outcome is VerificationOutcome.FAILED
        status = VerificationStatus.FAILED if failed else VerificationStatus.PASSED
        now = clock.now()
        values = {
            "status": status.value,
            "findings": body.findings,
            "decided_by": actor.subject,
            "decided_at": now,
        }
        if not await self.repository.decide_task(task_id=task.id, values=values):
            raise VerificationAlreadyDecided("核查任务已被他人作出结论")
        loaded(task, values)
        if failed:
            reason = f"告知承诺核查发现承诺不实：{body.findings}"
            licence = await self.repository.current(task.licence_no)
            if licence is not None and licence.status in (
                LicenceStatus.VALID,
                LicenceStatus.SUSPENDED,
            ):
                await self.revoke(licence, reason=reason, actor=actor.subject)
            await self.repository.insert_credit(
                {
                    "id": uuid.uuid4(),
                    "holder_uscc": task.holder_uscc,
                    "kind": CreditKind.FALSE_COMMITMENT.value,
                    "serious": True,
                    "bars_commitment": True,
                    "reason": reason,
                    "licence_no": task.licence_no,
                    "item_code": task.item_code,
                    "verification_task_id": task.id,
                    "recorded_by": actor.subject,
                    "recorded_at": now,
                }
            )
        return task

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
    renewal_window_days: int,
    reminder_days: Sequence[int],
    verification_days: int,
    on_site_share: float,
    inspectors: Sequence[str],
) -> LicencePolicy:
    """The register's rules from configured values."""
    return LicencePolicy(
        renewal_window_days=renewal_window_days,
        reminder_days=tuple(reminder_days),
        verification_days=verification_days,
        on_site_share=on_site_share,
        inspectors=tuple(inspectors),
    )
