"""An enterprise's 证照分离 reform status: for each reform item whether it holds the permit, no
longer needs it, has one pending in approval, or how it may obtain it."""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from govshared.applications import SETTLED_STATES, ApplicationState
from govshared.event_details import ApplicationDetails
from govshared.events import REFORM_MODE_LABELS, ApplicationEventData, ReformMode
from licensing.catalogue.repository import CatalogueRepository
from licensing.licences.follow_up import commitment_eligibility
from licensing.licences.repository import LicenceRepository
from licensing.licences.schemas import (
    REFORM_STATUS_LABELS,
    EnterpriseReformStatus,
    ReformStatus,
    ReformStatusEntry,
)
from licensing.models import LicenceStatus


class ReformStatuses:
    """approval's applications as license knows them, and each enterprise's reform status."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repository = LicenceRepository(session)

    async def track_application(self, data: ApplicationEventData[ApplicationDetails]) -> None:
        """Remember the application's latest state (an enterprise's pending permits)."""
        await self.repository.track_application(
            {
                "application_id": data.application_id,
                "application_no": data.application_no,
                "holder_uscc": data.applicant_uscc,
                "item_code": data.item_code,
                "jurisdiction": data.jurisdiction,
                "state": data.state,
                "business_type": data.details.business_type,
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
        eligibility = await commitment_eligibility(self.repository, uscc)
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
            filed = any(a.state == ApplicationState.FILED for a in mine)
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
