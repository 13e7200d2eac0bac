"""What every change of an application's state writes: its audit entry and its event.

Submissions (``approval.submission``), the lifecycle's actions (``approval.actions``), the
timers' deemed acceptance, the sealer, the consumers of proof of service and the applicant's signed
receipts all append to the same hash-chained trail and emit approval's events the same way; they
import it from here, below the use cases, so that no sub-package imports those modules back.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from approval.clocks.derivation import DeemedAcceptance, decision_terms
from approval.clocks.service import ClockKeeper
from approval.lifecycle import Action
from approval.models import Application
from approval.repository import ApplicationRepository
from approval.tasks.service import ChainKeeper, chain_for
from govshared.applications import ApplicationState
from govshared.auth import Principal, Role
from govshared.events import (
    ApplicationEventData,
    ApplicationParty,
    EventType,
    ReformMode,
    make_event,
)
from govshared.hashchain import entry_hash
from govshared.outbox import OutboxWriter

SOURCE = "/services/approval"
EVENT_ROW_FIELDS = (
    "id",
    "application_no",
    "item_code",
    "item_name",
    "applicant_uscc",
    "applicant_name",
    "jurisdiction",
    "reform_mode",
)


def event_party(application: Application | Mapping[str, Any]) -> dict[str, Any]:
    """The application as every approval event names it (``ApplicationParty``), from its row or
    its columns."""

    def column(name: str) -> Any:
        if isinstance(application, Mapping):
            return application[name]
        return getattr(application, name)

    return {
        name: column("id" if name == "application_id" else name)
        for name in ApplicationParty.model_fields
    }


SYSTEM_ACTOR = ("system", "service")
DEEMED_REASON = (
    "受理期限届满未作出受理、不予受理或补正告知，依法自收到申请材料之日起视为受理（第三十二条）"
)


async def append_audit(
    session: AsyncSession,
    *,
    application_id: uuid.UUID,
    seq: int,
    prev_hash: str,
    action: str,
    from_state: ApplicationState | None,
    to_state: ApplicationState,
    actor: tuple[str, str],
    at: datetime,
    details: dict[str, Any],
    reason: str | None = None,
) -> str:
    """Append one hash-chained entry to an application's audit trail; the entry's hash."""
    audit: dict[str, Any] = {
        "application_id": application_id,
        "seq": seq,
        "action": action,
        "from_state": from_state.value if from_state else None,
        "to_state": to_state.value,
        "actor": actor[0],
        "actor_role": actor[1],
        "reason": reason,
        "details": details,
        "occurred_at": at,
        "prev_hash": prev_hash,
    }
    audit["hash"] = entry_hash(prev_hash, audit)
    await ApplicationRepository(session).append_event(audit)
    return str(audit["hash"])


async def record_transition(
    session: AsyncSession,
    *,
    outbox: OutboxWriter,
    row: dict[str, Any],
    seq: int,
    prev_hash: str,
    action: str,
    from_state: ApplicationState | None,
    to_state: ApplicationState,
    actor: tuple[str, str],
    at: datetime,
    details: dict[str, Any],
    event_type: EventType,
    reason: str | None = None,
    due_on: date | None = None,
) -> str:
    """Append an audit entry and emit its event (Core statements); the entry's hash."""
    entry = await append_audit(
        session,
        application_id=row["id"],
        seq=seq,
        prev_hash=prev_hash,
        action=action,
        from_state=from_state,
        to_state=to_state,
        actor=actor,
        at=at,
        details=details,
        reason=reason,
    )
    await outbox.add(
        session,
        make_event(
            type=event_type,
            source=SOURCE,
            subject=str(row["id"]),
            data=ApplicationEventData(
                **event_party(row),
                state=to_state.value,
                reform_mode=ReformMode(row["reform_mode"]) if row["reform_mode"] else None,
                occurred_at=at,
                actor_role=actor[1],
                reason=reason,
                details=details,
                due_on=due_on,
            ),
        ),
    )
    return entry


async def record_deemed_acceptance(
    session: AsyncSession,
    *,
    outbox: OutboxWriter,
    keeper: ClockKeeper,
    application: Application,
    deemed: DeemedAcceptance,
    today: date,
    now: datetime,
) -> bool:
    """Record Art. 32's deemed acceptance (the timer's, or the first action that meets it):
    accepted as of the day the materials arrived; False if the row changed meanwhile."""
    terms = await decision_terms(session, application.item_code, application.item_version)
    decision = await keeper.record_deemed(application, deemed, terms=terms, today=today, now=now)
    repository = ApplicationRepository(session)
    if not await repository.update_state(
        application.id,
        expected_version=application.row_version,
        values={
            "state": ApplicationState.ACCEPTED.value,
            "updated_at": now,
            "due_on": decision.view.due_on,
        },
    ):
        return False
    # Read the chain's end only now that the update holds the row: an entry appended meanwhile
    # (a proof of service) is then seen, never overwritten.
    last_seq, last_hash = await repository.chain_end(application.id)
    entry = await record_transition(
        session,
        outbox=outbox,
        row={c: getattr(application, c) for c in EVENT_ROW_FIELDS},
        seq=last_seq + 1,
        prev_hash=last_hash,
        action="deemed_accept",
        from_state=ApplicationState.SUBMITTED,
        to_state=ApplicationState.ACCEPTED,
        actor=SYSTEM_ACTOR,
        at=now,
        details={
            "accepted_on": deemed.received_on.isoformat(),
            "acceptance_due_on": deemed.acceptance_due_on.isoformat(),
            "decision_due_on": decision.view.due_on.isoformat(),
            "business_type": application.business_type,
            "route": application.intake_route,
            **terms.notice(),
        },
        event_type=EventType.APPLICATION_DEEMED_ACCEPTED,
        reason=DEEMED_REASON,
    )
    chain = await chain_for(session, application)
    if chain is not None:  # the case enters its review chain as if accepted by staff
        await ChainKeeper(session, outbox).after(
            chain,
            action=Action.ACCEPT,
            application=application,
            principal=Principal(subject=SYSTEM_ACTOR[0], role=Role.SERVICE),
            details={},
            state=ApplicationState.ACCEPTED,
            seq=last_seq + 2,
            prev_hash=entry,
            today=today,
            now=now,
            decision_due=decision.view.due_on,
        )
    return True
