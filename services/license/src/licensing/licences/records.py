"""What every use case of the register does to a licence: a status change with its history, a new
version, the event that announces it and the certificate handed to its holder.

The use-case modules (``register``, ``lifecycle``, ``acts``, ``follow_up``, ``reform_status``,
``timers``) share one ``LicenceRecords`` per transaction; none of them commits (the route or the
worker does).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from govshared.event_details import ApplicationDetails
from govshared.events import (
    ApplicationEventData,
    EventType,
    LicenceEventData,
    SealedDocumentRef,
    make_event,
)
from govshared.outbox import OutboxWriter
from licensing import clock
from licensing.certificates.service import CertificateService, Sealing
from licensing.errors import LicenceChangedMeanwhile, LicenceNotActive
from licensing.licences.digest import certificate_fields, content_digest
from licensing.licences.policy import LicencePolicy
from licensing.licences.repository import LicenceRepository, history_row, loaded
from licensing.models import (
    LICENCE_STATUS_LABELS,
    Licence,
    LicenceAction,
    LicenceStatus,
    LicenceType,
)

SOURCE = "/services/license"
# A licence without a pending renewal.
RENEWAL_CLEARED: dict[str, Any] = {
    "renewal_requested_on": None,
    "renewal_timely": None,
    "renewal_application_id": None,
    "renewal_application_no": None,
}
# The statuses of a licence in force (a suspended one is, for a term).
LIVE = (LicenceStatus.VALID, LicenceStatus.SUSPENDED)
# A new version starts without the acts and reminders of the one it supersedes.
FRESH_VERSION: dict[str, Any] = {
    **RENEWAL_CLEARED,
    "renewal_reminders_sent": 0,
    "act_on": None,
    "act_basis": None,
    "act_details": None,
    "cancelled_on": None,
    "cancellation_ground": None,
}


def carried_renewal(licence: Licence) -> dict[str, Any]:
    """What a 变更 carries into the new version: a change decides the particulars, not a renewal
    applied for (Art. 50: still pending, and deemed granted if undecided at expiry), and its
    validity is the same, so the reminders already sent are not sent again."""
    return {key: getattr(licence, key) for key in (*RENEWAL_CLEARED, "renewal_reminders_sent")}


def status_label(licence: Licence) -> str:
    """The licence's status in words (for the problems that name it)."""
    return LICENCE_STATUS_LABELS[LicenceStatus(licence.status)]


def event_data(
    licence: Licence | dict[str, Any],
    *,
    licence_type: LicenceType,
    status: str,
    reason: str | None,
    document: SealedDocumentRef | None = None,
    act: dict[str, Any] | None = None,
) -> LicenceEventData:
    """The data of a licence event, from a stored version or a row about to be inserted."""
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


class LicenceRecords:
    """The register's writes shared by its use cases, bound to one transaction's session."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        outbox: OutboxWriter,
        sealing: Sealing,
        policy: LicencePolicy,
    ) -> None:
        self.session = session
        self.repository = LicenceRepository(session)
        self.certificates = CertificateService(session, sealing=sealing)
        self.outbox = outbox
        self.sealing = sealing
        self.policy = policy

    async def licence_type(self, code: str) -> LicenceType:
        """The type of a stored licence (it exists: licences reference it by foreign key)."""
        licence_type = await self.repository.licence_type(code)
        assert licence_type is not None, "licences reference their type by foreign key"
        return licence_type

    async def current(self, licence_no: str) -> Licence:
        """The current version of a licence known to exist (e.g. just written)."""
        licence = await self.repository.current(licence_no)
        assert licence is not None
        return licence

    async def emit(
        self,
        licence: Licence | dict[str, Any],
        event_type: EventType,
        *,
        status: str,
        reason: str | None = None,
        document: SealedDocumentRef | None = None,
        act: dict[str, Any] | None = None,
    ) -> str:
        """Write the licence event to the outbox, in this transaction; its id (notify's proof of
        service of its notice names it)."""
        get = licence.get if isinstance(licence, dict) else licence.__getattribute__
        data = event_data(
            licence,
            licence_type=await self.licence_type(str(get("licence_type"))),
            status=status,
            reason=reason,
            document=document,
            act=act,
        )
        event = make_event(type=event_type, source=SOURCE, subject=data.licence_no, data=data)
        await self.outbox.add(self.session, event)
        return event.id

    async def hand_over(
        self,
        row: dict[str, Any],
        event_type: EventType,
        *,
        reason: str | None = None,
        act: dict[str, Any] | None = None,
    ) -> None:
        """A new licence version for its holder: register its certificate for sealing, with the
        event that announces it; the sealer emits that event once the certificate exists."""
        licence_type = await self.licence_type(row["licence_type"])
        await self.certificates.register(
            row,
            title=licence_type.name,
            event_type=event_type,
            event_data=event_data(
                row, licence_type=licence_type, status=row["status"], reason=reason, act=act
            ),
            at=clock.now(),
        )

    async def transition(
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
        """Move the licence to ``to`` from one of ``allowed``, with its history entry."""
        if licence.status not in allowed:
            raise LicenceNotActive(f"证照 {licence.licence_no} 当前状态为“{status_label(licence)}”")
        now = clock.now()
        values = {"status": to.value, "status_reason": reason, "updated_at": now, **(extra or {})}
        if not await self.repository.set_status(
            licence_id=licence.id, expected=licence.status, values=values
        ):
            raise LicenceChangedMeanwhile(
                f"证照 {licence.licence_no} 的状态已被并发修改，请刷新后重试"
            )
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
        loaded(
            licence,
            {"status": to.value, "status_reason": reason, "updated_at": now, **(extra or {})},
        )

    async def new_version(
        self,
        licence: Licence,
        *,
        changes: dict[str, Any],
        action: LicenceAction,
        reason: str,
        actor: str,
        details: dict[str, Any] | None = None,
        suspension_runs_on: bool = False,
    ) -> dict[str, Any]:
        """Supersede the current version with a new one carrying ``changes``.

        ``suspension_runs_on`` (a renewal): a suspended licence gets a new version too, suspended
        on the same decision (暂扣 is for a term; the renewal does not end it)."""
        suspended = suspension_runs_on and licence.status == LicenceStatus.SUSPENDED
        if licence.status != LicenceStatus.VALID and not suspended:
            raise LicenceNotActive(f"证照 {licence.licence_no} 当前状态为“{status_label(licence)}”")
        status = LicenceStatus.SUSPENDED if suspended else LicenceStatus.VALID
        suspension = (
            {
                "status_reason": licence.status_reason,
                "act_on": licence.act_on,
                "act_basis": licence.act_basis,
                "act_details": licence.act_details,
            }
            if suspended
            else {}
        )
        now = clock.now()
        # The new version is written from this read of the licence, every column: a write
        # committed since (a renewal applied for, a reminder's count) would be lost, so the
        # version is superseded only if nothing updated it since it was read.
        if not await self.repository.set_status(
            licence_id=licence.id,
            expected=licence.status,
            unchanged_since=licence.updated_at,
            values={
                "is_current": False,
                "status": LicenceStatus.SUPERSEDED.value,
                "status_reason": reason,
                "updated_at": now,
            },
        ):
            raise LicenceChangedMeanwhile(
                f"证照 {licence.licence_no} 的状态已被并发修改，请刷新后重试"
            )
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
                "status": status.value,
                "status_reason": None,
                "issued_on": clock.today(),
                **FRESH_VERSION,
                **suspension,
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
                to_status=status,
                reason=reason,
                actor=actor,
                at=now,
                details=details,
            )
        )
        loaded(licence, {"status": LicenceStatus.SUPERSEDED.value, "is_current": False})
        return row

    async def licence_for_application(
        self, data: ApplicationEventData[ApplicationDetails]
    ) -> Licence | None:
        """The holder's live licence an application (change, renewal, 注销) is about."""
        licence_no = data.details.licence_no
        if licence_no is not None:
            licence = await self.repository.current(licence_no)
            if licence is not None and licence.holder_uscc == data.applicant_uscc:
                return licence
            return None
        return await self.repository.current_for_holder_item(
            holder_uscc=data.applicant_uscc, item_code=data.item_code
        )
