"""The licence register: reading and listing licences, and issuing them on approval's decisions
(Art. 44), with the changes, renewals and 注销 the holder applied for through approval."""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Sequence
from typing import Any

from govshared.applications import BusinessType
from govshared.event_details import ApplicationDetails, ApprovedDetails
from govshared.events import ApplicationEventData, EventType, ReformMode
from licensing import clock
from licensing.licences.digest import certificate_fields, content_digest
from licensing.licences.follow_up import CommitmentFollowUp
from licensing.licences.lifecycle import LicenceLifecycle
from licensing.licences.policy import validity_end
from licensing.licences.records import FRESH_VERSION, LicenceRecords
from licensing.licences.repository import history_row
from licensing.models import (
    CancellationGround,
    Licence,
    LicenceAction,
    LicenceStatus,
    LicenceType,
)

logger = logging.getLogger("licensing.licences")


class LicenceRegister:
    """Reads of the register: the licence types and the current licences."""

    def __init__(self, records: LicenceRecords) -> None:
        self.repository = records.repository

    async def licence_types(self) -> Sequence[LicenceType]:
        """The licence type catalogue."""
        return await self.repository.licence_types()

    async def current(self, licence_no: str) -> Licence | None:
        """The current version of a licence."""
        return await self.repository.current(licence_no)

    async def list(
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


class LicenceIssuance:
    """approval's approved applications applied to the register: issue, change, renew, 注销."""

    def __init__(self, records: LicenceRecords, *, rng: random.Random) -> None:
        self.records = records
        self.repository = records.repository
        self.lifecycle = LicenceLifecycle(records)
        self.follow_up = CommitmentFollowUp(records, rng=rng)

    async def on_approved(
        self, data: ApplicationEventData[ApplicationDetails], *, event_id: str
    ) -> str | None:
        """Apply approval's decision: issue, change, renew or cancel; the licence number, or None."""
        business_type = data.details.business_type or BusinessType.NEW
        if business_type in (BusinessType.CHANGE, BusinessType.RENEW, BusinessType.CANCEL):
            licence = await self.records.licence_for_application(data)
            if licence is None:
                logger.warning(
                    "approved %s without a live licence to apply it to",
                    business_type,
                    extra={"application_no": data.application_no, "event_id": event_id},
                )
                return None
            actor = f"application:{data.application_no}"
            if business_type == BusinessType.CANCEL:
                # 注销 on the holder's application ends the licence; it never issues one.
                await self.lifecycle.acts.cancel(
                    licence,
                    ground=CancellationGround.HOLDER_APPLICATION,
                    reason=f"依申请（{data.application_no}）准予注销",
                    legal_basis=None,
                    actor=actor,
                    extra={"source_application_no": data.application_no},
                )
                return licence.licence_no
            if business_type == BusinessType.CHANGE:
                row = await self.lifecycle.change_on_application(licence, data, actor=actor)
                return str(row["licence_no"])
            if licence.source_application_id == data.application_id:
                return licence.licence_no  # already deemed renewed on this application (Art. 50)
            row = await self.lifecycle.renew(
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

    async def issue(
        self,
        data: ApplicationEventData[ApplicationDetails],
        *,
        licence_type: LicenceType,
        event_id: str,
    ) -> dict[str, Any]:
        """Issue a licence on an approved application (Art. 44)."""
        today = clock.today()
        now = clock.now()
        sequence = await self.repository.next_number(
            prefix=licence_type.number_prefix, year=today.year
        )
        on_commitment = data.reform_mode is ReformMode.COMMITMENT
        details = data.details
        particulars = details.particulars if isinstance(details, ApprovedDetails) else None
        authority = details.authority if isinstance(details, ApprovedDetails) else None
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
            **FRESH_VERSION,
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
            await self.follow_up.schedule_verification(row, today=today)
        await self.records.hand_over(row, EventType.LICENCE_ISSUED)
        return row
