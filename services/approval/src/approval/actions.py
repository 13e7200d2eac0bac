"""Taking an action on an application: every action runs the same way, its rule from the lifecycle
table (``approval.lifecycle.RULES``) and the rest from its handler (``approval.handlers``).

``act`` replays a retried ``Idempotency-Key``; checks the caller's role, records a deemed
acceptance the law has already made (Art. 32) and refuses an action the state does not allow, in
the law's terms; runs the handler's checks and the review chain's guard; then writes the clocks,
the handler's rows, the state change, the document, the audit entry and its event, and the chain's
next task. Services never commit: the route's unit of work does (STYLE.md §1).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from approval.action_read import ActionRead, read_for_action
from approval.calendar.clock import DEFAULT_WARN_DAYS
from approval.catalogue.repository import ItemRepository
from approval.clocks.derivation import decision_terms
from approval.clocks.models import StopReason
from approval.clocks.service import ClockKeeper, clock_years
from approval.db import idempotency_keys
from approval.documents.service import DocumentIssuer, Sealing, document_reference, party_of
from approval.errors import (
    ConcurrentModification,
    DeemedAccepted,
    IllegalTransition,
    ReviewRequired,
)
from approval.handlers import HANDLERS, Acting, ActionHandler
from approval.lifecycle import RULES, STATE_LABELS, Action
from approval.models import Application, ApplicationEvent
from approval.reading import seen_by
from approval.repository import TRAIL_KEY, ApplicationRepository
from approval.schemas import ActionRequest, ApplicationOut, Submitted
from approval.tasks.chain import ReviewChain
from approval.tasks.service import ChainKeeper, chain_for
from approval.transitions import EVENT_ROW_FIELDS, record_deemed_acceptance, record_transition
from govshared.applications import ApplicationState
from govshared.auth import Principal
from govshared.chinatime import china_today
from govshared.idempotency import claim, key_owner, replay, request_fingerprint
from govshared.outbox import OutboxWriter
from govshared.problems import Forbidden
from govshared.sql import violated_constraint
from govshared.sqlbatch import UpdateMissed, inserts_together

# The 409's detail when another transaction changed the application between read and write.
CHANGED_MEANWHILE = "申请已被他人同时处理，本次操作未生效"
# How many times an action is read and taken again when a note took its trail entry's number.
TRAIL_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class KeyedRequest:
    """A request sent with an ``Idempotency-Key``: the key, its owner and the request's
    fingerprint, which the write claims with the answer."""

    key: str
    owner: str
    request_hash: str


def keyed_request(
    principal: Principal,
    application_id: uuid.UUID,
    action: Action,
    body: ActionRequest,
    idempotency_key: str | None,
    step: uuid.UUID | None = None,
) -> KeyedRequest | None:
    """The key's owner and the request's fingerprint, only for a keyed request (the claim).
    ``step``: the review-chain task the action completes (``tasks/{id}/complete``), so that a key
    used for one task and sent again for another is refused, not answered with the first."""
    if idempotency_key is None:
        return None
    route = f"/api/v1/applications/{application_id}/{action.value}"
    if step is not None:
        route = f"/api/v1/applications/{application_id}/tasks/{step}/complete"
    return KeyedRequest(
        key=idempotency_key,
        owner=key_owner(principal, f"POST {route}"),
        request_hash=request_fingerprint("POST", route, body.model_dump(mode="json")),
    )


class TrailMoved(Exception):
    """An entry was appended to the trail between an action's read and its write."""


def paused_from(trail: list[ApplicationEvent]) -> ApplicationState:
    """The state the case was in when its open pause began (resuming returns it there)."""
    for entry in reversed(trail):
        if entry.action == Action.PAUSE.value and entry.from_state:
            return ApplicationState(entry.from_state)
    return ApplicationState.IN_REVIEW  # a pause always has its entry; kept total for mypy


def deemed_error(received_on: date) -> DeemedAccepted:
    """The 409 for an acceptance decision on a case the law has already accepted (Art. 32)."""
    return DeemedAccepted(
        f"受理期限已届满，该申请依法自{received_on.year}年{received_on.month}月"
        f"{received_on.day}日（收到申请材料之日）起视为受理（行政许可法第三十二条）",
        accepted_on=received_on.isoformat(),
        current_state=ApplicationState.ACCEPTED.value,
    )


class ActionService:
    """The lifecycle's actions on applications."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        outbox: OutboxWriter,
        today: Callable[[], date] = china_today,
        warn_days: int = DEFAULT_WARN_DAYS,
        sealing: Sealing | None = None,
    ) -> None:
        self.session = session
        # Sealed documents are issued in the transition's own unit of work (None: not issued).
        self.documents = DocumentIssuer(session, sealing=sealing) if sealing else None
        self.items = ItemRepository(session)
        self.applications = ApplicationRepository(session)
        self.clocks = ClockKeeper(session, warn_days=warn_days, cached_calendar=True)
        self.outbox = outbox
        self.today = today

    async def act(
        self,
        *,
        principal: Principal,
        application_id: uuid.UUID,
        action: Action,
        body: ActionRequest,
        idempotency_key: str | None,
        step: uuid.UUID | None = None,
    ) -> Submitted:
        """Take an action on an application, if the law allows it from its current state."""
        keyed = keyed_request(principal, application_id, action, body, idempotency_key, step)
        if keyed is not None and (stored := await self._replay(keyed)) is not None:
            return stored
        # The trail's end is read with the application: the write's one statement appends to it.
        # An entry appended meanwhile without changing the row (a note of delivery) takes the
        # sequence number ours would have; the trail's key refuses ours, and the action is taken
        # again from its read, as if it had come a moment later.
        for _ in range(TRAIL_ATTEMPTS):
            try:
                return await self._act_once(
                    principal=principal,
                    application_id=application_id,
                    action=action,
                    body=body,
                    keyed=keyed,
                )
            except TrailMoved:
                await self.session.rollback()
        raise ConcurrentModification(CHANGED_MEANWHILE)

    async def replayed(
        self,
        *,
        principal: Principal,
        application_id: uuid.UUID,
        action: Action,
        body: ActionRequest,
        idempotency_key: str | None,
        step: uuid.UUID | None = None,
    ) -> Submitted | None:
        """The first answer of this keyed action if it was taken already (a retry), as ``act``
        gives it; None otherwise. A route that checks more than ``act`` (a review chain's
        ``complete``: the task must be the current step) asks this first, so that a retry of a
        step completed is answered as taken, not refused because the step moved on."""
        keyed = keyed_request(principal, application_id, action, body, idempotency_key, step)
        return await self._replay(keyed) if keyed is not None else None

    async def _replay(self, keyed: KeyedRequest) -> Submitted | None:
        """The stored answer of a keyed request; None for a new one (a key used with another
        body is a 422 problem, ``IdempotencyKeyReused``)."""
        stored = await replay(
            self.session,
            idempotency_keys,
            owner=keyed.owner,
            key=keyed.key,
            request_hash=keyed.request_hash,
        )
        if stored is None:
            return None
        return Submitted(status_code=stored.status_code, body=stored.body, replayed=True)

    async def _act_once(
        self,
        *,
        principal: Principal,
        application_id: uuid.UUID,
        action: Action,
        body: ActionRequest,
        keyed: KeyedRequest | None,
    ) -> Submitted:
        """``act`` from its read on: one transaction's worth."""
        rule, handler = RULES[action], HANDLERS[action]
        today = self.today()
        years = clock_years(today) if ClockKeeper.reads_clocks(action) else None

        async def read_now() -> tuple[ActionRead, Application]:
            read = await read_for_action(
                self.session,
                application_id,
                with_materials=handler.reads_materials,
                clock_years=years,
            )
            return read, seen_by(principal, read.application, application_id)

        read, application = await read_now()
        # Art. 42(2): who extends depends on whether the item is handled jointly.
        terms = (
            await decision_terms(self.session, application.item_code, application.item_version)
            if handler.reads_terms
            else None
        )
        roles = rule.roles_for(joint=terms is not None and terms.joint is not None)
        if principal.role not in roles:
            raise Forbidden(
                f"「{action.value}」仅限以下角色办理：{'、'.join(sorted(r.value for r in roles))}"
            )
        now = datetime.now(UTC)
        if await self._as_the_law_has_it(application, handler, today=today, now=now):
            read, application = await read_now()  # as the deemed acceptance left it
        current = ApplicationState(application.state)
        if current not in rule.from_states:
            await self._refuse(action, handler, rule.from_states, application, current)
        acting = Acting(
            session=self.session,
            items=self.items,
            applications=self.applications,
            principal=principal,
            application=application,
            body=body,
            idempotency_key=keyed.key if keyed else None,
            trail=await self.applications.events(application.id) if handler.reads_trail else [],
            terms=terms,
            today=today,
            now=now,
            material_names=read.material_names,
        )
        details = await handler.validate(acting)
        # An item whose guide declares a review chain: the action must be the current step's,
        # taken by whose task it is (approval/tasks).
        guarded: tuple[ReviewChain, ChainKeeper] | None = None
        if handler.chain and (chain := await chain_for(self.session, application)) is not None:
            keeper = ChainKeeper(self.session, self.outbox)
            details |= await keeper.guard(
                chain, action=action, application=application, principal=principal, today=today
            )
            guarded = (chain, keeper)
        to_state = paused_from(acting.trail) if rule.returns else rule.to_state or current
        try:
            return await self._write(
                acting,
                action,
                details,
                current=current,
                to_state=to_state,
                chain=guarded,
                keyed=keyed,
                read=read,
            )
        except UpdateMissed:
            raise ConcurrentModification(CHANGED_MEANWHILE) from None
        except IntegrityError as error:
            if violated_constraint(error) == TRAIL_KEY:
                raise TrailMoved from error
            raise

    async def _as_the_law_has_it(
        self,
        application: Application,
        handler: ActionHandler,
        *,
        today: date,
        now: datetime,
    ) -> bool:
        """Art. 32: past its acceptance period a submitted case IS accepted; record it first (an
        action deciding on acceptance is refused). True if it was recorded (read again)."""
        deemed = await self.clocks.deemed_acceptance(application, today=today)
        if deemed is None:
            return False
        if handler.decides_acceptance:
            raise deemed_error(deemed.received_on)
        if not await record_deemed_acceptance(
            self.session,
            outbox=self.outbox,
            keeper=self.clocks,
            application=application,
            deemed=deemed,
            today=today,
            now=now,
        ):
            raise ConcurrentModification(CHANGED_MEANWHILE)
        return True

    async def _refuse(
        self,
        action: Action,
        handler: ActionHandler,
        allowed: frozenset[ApplicationState],
        application: Application,
        current: ApplicationState,
    ) -> None:
        """The 409 for an action the current state does not allow, saying why in the law's terms."""
        if handler.decides_acceptance:
            acceptance = next(
                (
                    c
                    for c in await self.clocks.repository.for_application(application.id)
                    if c.kind == "acceptance"
                ),
                None,
            )
            if acceptance is not None and acceptance.stop_reason == StopReason.DEEMED_ACCEPTED:
                raise deemed_error(acceptance.started_on)  # the day the materials arrived
        if action in (Action.APPROVE, Action.DENY) and current is ApplicationState.ACCEPTED:
            raise ReviewRequired(
                "作出行政许可决定前须由审查人员记录审查意见（review）",
                current_state=current.value,
            )
        raise IllegalTransition(
            f"申请当前状态为「{STATE_LABELS[current]}」，不能执行「{action.value}」",
            current_state=current.value,
            allowed_from=sorted(s.value for s in allowed),
        )

    async def _write(
        self,
        acting: Acting,
        action: Action,
        details: dict[str, Any],
        *,
        current: ApplicationState,
        to_state: ApplicationState,
        chain: tuple[ReviewChain, ChainKeeper] | None,
        keyed: KeyedRequest | None,
        read: ActionRead,
    ) -> Submitted:
        """Write the action: the clocks, the handler's rows, the application, the document, the
        audit entry with its event, and the review chain's next task; on PostgreSQL one
        statement (after the idempotency claim) whose check of the row version read decides
        whether any of it stands (``UpdateMissed``, made a 409 by ``_act_once``)."""
        rule, handler = RULES[action], HANDLERS[action]
        application, principal, body = acting.application, acting.principal, acting.body
        today, now = acting.today, acting.now
        values: dict[str, Any] = {"state": to_state.value, "updated_at": now}
        # The clock, document, audit and outbox rows go to the database as one statement at the
        # end of the block on PostgreSQL (nothing in it reads them back); reads, updates and the
        # idempotency claim run as they come.
        async with inserts_together(self.session):
            # Clocks first: their rows are locked before the application's (the timers' order too).
            values["due_on"] = await self.clocks.apply(
                application=application,
                action=action,
                details=details,
                reason=body.reason,
                actor=principal.subject,
                today=today,
                now=now,
                terms=acting.terms,
                read=read.clocks,
            )
            if handler.write is not None:
                await handler.write(acting, details, values)
            out = ApplicationOut.model_validate(
                {
                    **{c: getattr(application, c) for c in ApplicationOut.model_fields},
                    **values,
                }
            )
            payload = out.model_dump_json().encode()
            if keyed is not None and not await claim(
                self.session,
                idempotency_keys,
                owner=keyed.owner,
                key=keyed.key,
                request_hash=keyed.request_hash,
                status_code=200,
                body=out.model_dump(mode="json"),
            ):
                raise ConcurrentModification("同一幂等键的请求正在处理，请稍后重试")
            await self.applications.write_state(
                application.id, expected_version=application.row_version, values=values
            )
            # The sealed notice or decision, issued in this unit of work; its event names it for notify.
            document = None
            if handler.document is not None and self.documents is not None:
                document = await self.documents.issue(
                    kind=handler.document,
                    party=party_of(application),
                    reason=body.reason,
                    details=details,
                    at=now,
                )
            last_seq, last_hash = read.trail_end
            entry = await record_transition(
                self.session,
                outbox=self.outbox,
                row={c: getattr(application, c) for c in EVENT_ROW_FIELDS},
                seq=last_seq + 1,
                prev_hash=last_hash,
                action=action.value,
                from_state=current,
                to_state=to_state,
                actor=(principal.subject, principal.role.value),
                at=now,
                details={
                    **details,
                    "business_type": application.business_type,
                    "route": application.intake_route,
                    **({"document": document_reference(document)} if document else {}),
                },
                event_type=rule.event,
                reason=body.reason,
                # Art. 45: the pause's event carries the day its procedure is expected to end.
                due_on=date.fromisoformat(details["expected_end_on"])
                if "expected_end_on" in details
                else None,
            )
            if chain is not None:
                review_chain, keeper = chain
                await keeper.after(
                    review_chain,
                    action=action,
                    application=application,
                    principal=principal,
                    details=details,
                    state=to_state,
                    seq=last_seq + 2,
                    prev_hash=entry,
                    today=today,
                    now=now,
                    decision_due=values["due_on"],
                )
        return Submitted(status_code=200, body=payload, replayed=False)
