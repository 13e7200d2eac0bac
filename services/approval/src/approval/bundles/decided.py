"""The one combined notice of a bundle application, once every item is decided.

A sweep rather than a hook in each transition: whichever path ends an item's case (a decision, a
refusal at intake, a withdrawal, a filing at submission, a review chain's last step), the bundle
is decided when all of its items are. Each bundle application is claimed by a conditional update
(``decided_at IS NULL``) in the transaction that writes the notice's outbox row: exactly once,
with any number of timer replicas.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from approval.bundles.applications import columns, refusal_reason
from approval.bundles.models import BundleApplication
from approval.bundles.repository import BundleApplicationRepository
from approval.bundles.view import DECIDED_STATES, combined_view, outcome_of
from approval.repository import ApplicationRepository
from approval.transitions import SOURCE
from govshared.events import BundleEventData, BundleItemResult, EventType, make_event
from govshared.outbox import OutboxWriter


async def decide_bundles(session: AsyncSession, *, outbox: OutboxWriter, limit: int) -> int:
    """Record the combined result of every bundle application whose items are all decided and
    emit its notice; how many were decided (the caller commits)."""
    repository = BundleApplicationRepository(session)
    applications = ApplicationRepository(session)
    decided = 0
    for bundle_application_id in await repository.ready_to_decide(
        decided_states=DECIDED_STATES, limit=limit
    ):
        members = await repository.member_applications(bundle_application_id)
        if outcome_of([m.state for m in members]) is None:
            continue
        found = await session.get(BundleApplication, bundle_application_id)
        assert found is not None
        now = datetime.now(UTC)
        outcome = outcome_of([m.state for m in members])
        assert outcome is not None
        if not await repository.mark_decided(found.id, outcome=outcome.value, at=now):
            continue
        rows = [(m.item_code, columns(m), await refusal_reason(applications, m)) for m in members]
        view = combined_view(found, rows)
        data = BundleEventData(
            bundle_application_id=found.id,
            bundle_code=found.bundle_code,
            bundle_name=found.bundle_name,
            applicant_uscc=found.applicant_uscc,
            applicant_name=found.applicant_name,
            outcome=outcome.value,
            summary=view.summary,
            items=[
                BundleItemResult(
                    application_id=m.application_id,
                    application_no=m.application_no,
                    item_code=m.item_code,
                    item_name=m.item_name,
                    state=m.state,
                    state_label=m.state_label,
                    reason=m.reason,
                )
                for m in view.items
            ],
            occurred_at=now,
        )
        await outbox.add(
            session,
            make_event(
                type=EventType.BUNDLE_DECIDED,
                source=SOURCE,
                subject=f"bundle-applications/{found.id}",
                data=data,
            ),
        )
        decided += 1
    return decided
