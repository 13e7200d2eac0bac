"""Approval's use cases. Services never commit: the route's unit of work does (STYLE.md §1)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from approval.audit import GENESIS, entry_hash
from approval.calendar.clock import DEFAULT_WARN_DAYS, ClockKind
from approval.calendar.service import china_today
from approval.catalogue.repository import ITEM_CACHE, ItemRepository
from approval.clients.license import LicenseClient
from approval.clocks.service import ACCEPTANCE_DAYS, DELIVERY_DAYS, ClockKeeper, Derived
from approval.db import idempotency_keys
from approval.documents.service import (
    DOCUMENT_FOR_ACTION,
    DocumentIssuer,
    Sealing,
    document_reference,
    party_of,
)
from approval.errors import (
    ActionInputInvalid,
    AlreadyExtended,
    ApplicationNotFound,
    ApprovalCancelled,
    CommitmentNotAllowed,
    ConcurrentModification,
    FormInvalid,
    IllegalTransition,
    ItemNotFound,
    NotInstantItem,
    SupplementNotInFirstRequest,
)
from approval.lifecycle import RULES, STATE_LABELS, Action
from approval.models import Application, ApplicationEvent, ApplicationState, Item
from approval.repository import ApplicationRepository
from approval.schemas import ActionRequest, ApplicationCreate, ApplicationOut, ChainVerification
from govshared.auth import Principal, Role
from govshared.events import (
    ApplicationEventData,
    ApplicationParty,
    EventType,
    ReformMode,
    make_event,
)
from govshared.idempotency import (
    StoredResponse,
    claim,
    claim_or_replay,
    replay,
    request_fingerprint,
)
from govshared.outbox import OutboxWriter
from govshared.problems import Forbidden
from govshared.sql import inserts_together

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


AUDIT_FIELDS = (
    "application_id",
    "seq",
    "action",
    "from_state",
    "to_state",
    "actor",
    "actor_role",
    "reason",
    "details",
    "occurred_at",
)
CHINA = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True, slots=True)
class Submitted:
    """The result of a submission or an action: the application, or, for a retried key, the
    response stored the first time."""

    status_code: int
    body: ApplicationOut | dict[str, Any]
    replayed: bool


def new_application_no(jurisdiction: str, at: datetime) -> str:
    """A 办件编号 such as ``310115-20261128-7F3K9Q2M``: region, China date, random suffix."""
    return f"{jurisdiction}-{at.astimezone(CHINA):%Y%m%d}-{secrets.token_hex(4).upper()}"


class ApplicationService:
    """Submission and reading of applications."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        outbox: OutboxWriter,
        license_client: LicenseClient,
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
        self.license = license_client
        self.today = today

    async def submit(
        self, *, principal: Principal, body: ApplicationCreate, idempotency_key: str | None
    ) -> Submitted:
        """Record a new application, its first audit entry and its ``submitted`` event."""
        assert principal.uscc is not None
        item = await ITEM_CACHE.get(self.items, body.item_code)
        if item is None:
            raise ItemNotFound(
                f"事项编码 {body.item_code} 不在事项目录中", item_code=body.item_code
            )
        validate_form(item.guide, body.form)
        now = datetime.now(UTC)
        reform = await self.license.reform_mode(
            item_code=item.code, jurisdiction=item.jurisdiction, on=now.astimezone(CHINA).date()
        )
        mode = reform.mode if reform else None
        if reform is not None and mode is ReformMode.CANCELLED:
            raise ApprovalCancelled(
                f"「{item.name}」已于 {reform.effective_from} 起直接取消审批，无需申请，凭营业执照即可经营",
                reason="no_permit_needed",
                business_licence_suffices=True,
                item_code=item.code,
            )
        route, final_state, commitment = IntakeRoute.REVIEW, ApplicationState.SUBMITTED, None
        if mode is ReformMode.FILING:
            route, final_state = IntakeRoute.FILING, ApplicationState.FILED
        elif body.sign_commitment:
            commitment = await self._check_commitment(
                item_guide=item.guide,
                mode=mode,
                body=body,
                uscc=principal.uscc,
                reform_text=reform.commitment_text if reform else None,
            )
            route, final_state = IntakeRoute.COMMITMENT, ApplicationState.APPROVED
        clock = await self._intake_clock(route)
        application_id = uuid.uuid4()
        row: dict[str, Any] = {
            "id": application_id,
            "application_no": new_application_no(item.jurisdiction, now),
            "item_code": item.code,
            "item_version": item.version,
            "item_name": item.name,
            "applicant_uscc": principal.uscc,
            "applicant_name": body.applicant_name,
            "jurisdiction": item.jurisdiction,
            "business_type": body.business_type.value,
            "reform_mode": mode.value if mode else None,
            "intake_route": route.value,
            "receipt_no": f"BA{now.astimezone(CHINA):%Y%m%d}{secrets.token_hex(5).upper()}"
            if route is IntakeRoute.FILING
            else None,
            "state": final_state.value,
            "form": body.form,
            "submitted_at": now,
            "updated_at": now,
            "row_version": 1,
            "due_on": clock.view.due_on if clock else None,
        }
        out = ApplicationOut.model_validate(row)
        if idempotency_key is not None:
            stored: StoredResponse | None = await claim_or_replay(
                self.session,
                idempotency_keys,
                owner=f"{principal.role}:{principal.subject}",
                key=idempotency_key,
                request_hash=request_fingerprint(
                    "POST", "/api/v1/applications", body.model_dump(mode="json")
                ),
                status_code=201,
                body=out.model_dump(mode="json"),
            )
            if stored is not None:
                return Submitted(status_code=stored.status_code, body=stored.body, replayed=True)
        # One statement on PostgreSQL: application, clock, audit entry, outbox row(s) (and, on the
        # commitment route, the decision's register row). Nothing is written after it; without an
        # idempotency claim before it, that statement is the whole transaction.
        async with inserts_together(self.session, last=True):
            await self._write_submission(
                row, item=item, clock=clock, principal=principal, route=route, commitment=commitment
            )
        return Submitted(status_code=201, body=out, replayed=False)

    async def _write_submission(
        self,
        row: dict[str, Any],
        *,
        item: Item,
        clock: Derived | None,
        principal: Principal,
        route: IntakeRoute,
        commitment: dict[str, Any] | None,
    ) -> None:
        """The rows of a new application (nothing here reads them back)."""
        now: datetime = row["submitted_at"]
        application_id: uuid.UUID = row["id"]
        await self.applications.insert(row)
        if clock is not None:
            await self.clocks.insert_opening(
                application_id=application_id,
                jurisdiction=item.jurisdiction,
                derived=clock,
                now=now,
            )
        actor = (principal.subject, principal.role.value)
        base_details = {"item_version": item.version, "business_type": row["business_type"]}
        prev = await self._record(
            row,
            seq=1,
            prev_hash=GENESIS,
            action="submit",
            to_state=ApplicationState.SUBMITTED,
            from_state=None,
            actor=actor,
            at=now,
            details=base_details,
            event_type=EventType.APPLICATION_SUBMITTED,
        )
        if route is IntakeRoute.FILING:
            await self._record(
                row,
                seq=2,
                prev_hash=prev,
                action="file",
                to_state=ApplicationState.FILED,
                from_state=ApplicationState.SUBMITTED,
                actor=actor,
                at=now,
                details={**base_details, "route": route.value, "receipt_no": row["receipt_no"]},
                event_type=EventType.APPLICATION_FILED,
            )
        elif route is IntakeRoute.COMMITMENT:
            decision = (
                await self.documents.issue(
                    kind=DOCUMENT_FOR_ACTION["commitment_decision"],
                    party=row,
                    reason=None,
                    details={},
                    at=now,
                )
                if self.documents is not None
                else None
            )
            await self._record(
                row,
                seq=2,
                prev_hash=prev,
                action="commitment_decision",
                to_state=ApplicationState.APPROVED,
                from_state=ApplicationState.SUBMITTED,
                actor=actor,
                at=now,
                details={
                    **base_details,
                    "route": route.value,
                    **(commitment or {}),
                    **({"document": document_reference(decision)} if decision else {}),
                },
                event_type=EventType.APPLICATION_APPROVED,
            )

    async def _intake_clock(self, route: IntakeRoute) -> Derived | None:
        """Acceptance clock on receipt; licence delivery at once when decided at intake (Art. 44)."""
        if route is IntakeRoute.FILING:
            return None
        kind, budget = (
            (ClockKind.DELIVERY, DELIVERY_DAYS)
            if route is IntakeRoute.COMMITMENT
            else (ClockKind.ACCEPTANCE, ACCEPTANCE_DAYS)
        )
        return await self.clocks.opening(kind=kind, budget_days=budget, today=self.today())

    async def _record(
        self,
        row: dict[str, Any],
        *,
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
    ) -> str:
        """Append an audit entry and emit its event (Core statements); the entry's hash."""
        return await record_transition(
            self.session,
            outbox=self.outbox,
            row=row,
            seq=seq,
            prev_hash=prev_hash,
            action=action,
            from_state=from_state,
            to_state=to_state,
            actor=actor,
            at=at,
            details=details,
            event_type=event_type,
            reason=reason,
        )

    async def _check_commitment(
        self,
        *,
        item_guide: dict[str, Any],
        mode: ReformMode | None,
        body: ApplicationCreate,
        uscc: str,
        reform_text: str | None,
    ) -> dict[str, Any]:
        """The applicant may sign the published commitment text unless barred (DESIGN.md §3.2)."""
        if mode is not ReformMode.COMMITMENT:
            raise CommitmentNotAllowed("该事项在本地未实行告知承诺，不能以承诺方式办理")
        text = item_guide.get("commitment_text") or reform_text
        if not text:
            raise CommitmentNotAllowed("该事项尚未公布告知承诺书")
        digest = hashlib.sha256(text.encode()).hexdigest()
        if body.commitment_text_sha256 and body.commitment_text_sha256 != digest:
            raise CommitmentNotAllowed(
                "签署的承诺书与现行公布的文本不一致，请重新阅读后签署",
                commitment_text_sha256=digest,
            )
        eligibility = await self.license.commitment_eligibility(uscc=uscc)
        if not eligibility.eligible:
            raise CommitmentNotAllowed(
                "申请人存在严重失信记录或曾作出虚假承诺，不能适用告知承诺："
                + "；".join(eligibility.reasons),
                reasons=eligibility.reasons,
            )
        return {"commitment_text_sha256": digest}

    async def get_visible(self, *, principal: Principal, application_id: uuid.UUID) -> Application:
        """An application the caller may see; 404 otherwise (never another enterprise's data)."""
        application = await self.applications.get(application_id)
        if application is None or not can_see(principal, application):
            raise ApplicationNotFound(f"申请 {application_id} 不存在")
        return application

    async def list_own(
        self, *, principal: Principal, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[Application]:
        """The enterprise's own applications."""
        assert principal.uscc is not None
        return await self.applications.list_for_applicant(principal.uscc, limit=limit, after=after)

    async def staff_queue(
        self,
        *,
        principal: Principal,
        states: list[ApplicationState],
        item_code: str | None,
        keyword: str | None,
        after: tuple[date, datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Application]:
        """The work queue of the caller's jurisdiction, earliest due first (admins see all)."""
        prefix = None
        if principal.role is not Role.ADMIN:
            prefix = jurisdiction_prefix(principal.jurisdiction or "")
        return await self.applications.staff_queue(
            jurisdiction_prefix=prefix,
            states=[s.value for s in states],
            item_code=item_code,
            keyword=keyword,
            after=after,
            limit=limit,
        )

    async def events(self, *, application: Application) -> list[ApplicationEvent]:
        """The audit trail."""
        return await self.applications.events(application.id)

    async def verify_chain(self, *, application: Application) -> ChainVerification:
        """Re-hash the trail; report the first entry whose content or link no longer matches."""
        prev = GENESIS
        trail = await self.applications.events(application.id)
        for entry in trail:
            fields = {c: getattr(entry, c) for c in AUDIT_FIELDS}
            if entry.prev_hash != prev or entry_hash(prev, fields) != entry.hash:
                return ChainVerification(
                    valid=False, entries=len(trail), first_broken_seq=entry.seq
                )
            prev = entry.hash
        return ChainVerification(valid=True, entries=len(trail))

    async def act(
        self,
        *,
        principal: Principal,
        application_id: uuid.UUID,
        action: Action,
        body: ActionRequest,
        idempotency_key: str | None,
    ) -> Submitted:
        """Take an action on an application, if the law allows it from its current state."""
        rule = RULES[action]
        owner = f"{principal.role}:{principal.subject}"
        request_hash = request_fingerprint(
            "POST",
            f"/api/v1/applications/{application_id}/{action.value}",
            body.model_dump(mode="json"),
        )
        if idempotency_key is not None:
            stored = await replay(
                self.session,
                idempotency_keys,
                owner=owner,
                key=idempotency_key,
                request_hash=request_hash,
            )
            if stored is not None:
                return Submitted(status_code=stored.status_code, body=stored.body, replayed=True)
        application = await self.get_visible(principal=principal, application_id=application_id)
        if principal.role not in rule.roles:
            raise Forbidden(
                f"「{action.value}」仅限以下角色办理：{'、'.join(sorted(r.value for r in rule.roles))}"
            )
        current = ApplicationState(application.state)
        if current not in rule.from_states:
            raise IllegalTransition(
                f"申请当前状态为「{STATE_LABELS[current]}」，不能执行「{action.value}」",
                current_state=current.value,
                allowed_from=sorted(s.value for s in rule.from_states),
            )
        # Only the 补正 rule (一次性告知) and the one-extension rule read the history.
        trail = (
            await self.applications.events(application.id)
            if action in (Action.REQUEST_SUPPLEMENT, Action.EXTEND)
            else []
        )
        details = await self._validate(
            action=action, body=body, application=application, trail=trail
        )
        now = datetime.now(UTC)
        to_state = rule.to_state or current
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
                today=self.today(),
                now=now,
                decision_limits=await self._decision_limits(application, action),
            )
            if action is Action.SUPPLEMENT and body.form:
                values["form"] = {**application.form, **body.form}
            out = ApplicationOut.model_validate(
                {
                    **{c: getattr(application, c) for c in ApplicationOut.model_fields},
                    **values,
                }
            )
            if idempotency_key is not None and not await claim(
                self.session,
                idempotency_keys,
                owner=owner,
                key=idempotency_key,
                request_hash=request_hash,
                status_code=200,
                body=out.model_dump(mode="json"),
            ):
                raise ConcurrentModification("同一幂等键的请求正在处理，请稍后重试")
            if not await self.applications.update_state(
                application.id, expected_version=application.row_version, values=values
            ):
                raise ConcurrentModification("申请已被他人同时处理，本次操作未生效")
            # The sealed notice or decision, issued in this unit of work; its event names it for notify.
            document = None
            kind = DOCUMENT_FOR_ACTION.get(action.value)
            if kind is not None and self.documents is not None:
                document = await self.documents.issue(
                    kind=kind,
                    party=party_of(application),
                    reason=body.reason,
                    details=details,
                    at=now,
                )
            # The chain's end is read only after the update holds the row (see clocks.consumer): an
            # entry appended by another transaction meanwhile is then seen, never overwritten.
            last_seq, last_hash = await self.applications.chain_end(application.id)
            await self._record(
                {c: getattr(application, c) for c in EVENT_ROW_FIELDS},
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
            )
        return Submitted(status_code=200, body=out, replayed=False)

    async def _decision_limits(
        self, application: Application, action: Action
    ) -> tuple[int, int] | None:
        """The item's statutory and committed limits, when the action starts the decision clock."""
        if action is not Action.ACCEPT:
            return None
        item = await ITEM_CACHE.get(self.items, application.item_code)
        return (item.statutory_limit_days, item.committed_limit_days) if item else None

    async def _validate(
        self,
        *,
        action: Action,
        body: ActionRequest,
        application: Application,
        trail: list[ApplicationEvent],
    ) -> dict[str, Any]:
        """Check the action's own rules; the details recorded in the audit entry and event."""
        if action is Action.REJECT:
            if body.reject_reason is None or not body.reason:
                raise ActionInputInvalid("不予受理须注明法定情形 reject_reason 和理由 reason")
            return {"reject_reason": body.reject_reason.value}
        if action is Action.REQUEST_SUPPLEMENT:
            missing = sorted(set(body.missing_items or []))
            if not missing:
                raise ActionInputInvalid("补正告知须一次性列明全部需补正的材料 missing_items")
            earlier = [e for e in trail if e.action == Action.REQUEST_SUPPLEMENT.value]
            if earlier:
                allowed = set(earlier[0].details.get("missing_items", []))
                for entry in trail:
                    if entry.action == Action.SUPPLEMENT.value:
                        allowed |= set(entry.details.get("changed_materials", []))
                added = [m for m in missing if m not in allowed]
                if added:
                    raise SupplementNotInFirstRequest(
                        f"以下材料首次补正告知未列明，且申请人未改动：{'、'.join(added)}",
                        added_items=added,
                    )
            return {"missing_items": missing}
        if action is Action.SUPPLEMENT:
            return {"changed_materials": sorted(set(body.changed_materials or []))}
        if action is Action.PAUSE:
            if body.pause_reason is None or body.expected_days is None:
                raise ActionInputInvalid(
                    "特别程序须注明第四十五条情形 pause_reason 及预计天数 expected_days"
                )
            return {"pause_reason": body.pause_reason.value, "expected_days": body.expected_days}
        if action is Action.EXTEND:
            if body.extension_days is None or not body.reason:
                raise ActionInputInvalid(
                    "延长期限须注明天数 extension_days（至多10个工作日）和理由 reason"
                )
            if any(e.action == Action.EXTEND.value for e in trail):
                raise AlreadyExtended("该申请已延长过一次审批期限")
            return {"extension_days": body.extension_days}
        if action is Action.DENY and not body.reason:
            raise ActionInputInvalid("不予许可须说明理由 reason")
        if action is Action.INSTANT_DECISION:
            item = await self.items.get(application.item_code)
            if item is None or not item.is_instant:
                raise NotInstantItem(f"「{application.item_name}」不是即办件")
        return {"opinion": body.opinion} if body.opinion else {}


class IntakeRoute(StrEnum):
    """How an application is handled at intake, following the item's reform mode."""

    REVIEW = "review"  # 审查（含优化审批服务）
    FILING = "filing"  # 审批改为备案：当场备案
    COMMITMENT = "commitment"  # 实行告知承诺：当场决定


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "boolean": (bool,),
    "date": (str,),
}


def validate_form(guide: dict[str, Any], form: dict[str, Any]) -> None:
    """Check the form against the guide's fields: required ones present, types right, no strangers."""
    fields = {f["name"]: f for f in guide.get("form_fields", [])}
    problems: list[dict[str, str]] = []
    for name, spec in fields.items():
        value = form.get(name)
        if value is None or value == "":
            if spec.get("required", True):
                problems.append({"name": f"form.{name}", "reason": f"必填：{spec['label']}"})
            continue
        kind = spec.get("type", "string")
        if not isinstance(value, _FIELD_TYPES[kind]) or (
            kind == "number" and isinstance(value, bool)
        ):
            problems.append({"name": f"form.{name}", "reason": f"{spec['label']}应为{kind}"})
        elif kind == "date":
            try:
                date.fromisoformat(str(value))
            except ValueError:
                problems.append(
                    {"name": f"form.{name}", "reason": f"{spec['label']}应为日期 YYYY-MM-DD"}
                )
        elif isinstance(value, str) and spec.get("max_length") and len(value) > spec["max_length"]:
            problems.append({"name": f"form.{name}", "reason": f"{spec['label']}过长"})
    if fields:
        problems += [
            {"name": f"form.{name}", "reason": "办事指南中没有该字段"}
            for name in form
            if name not in fields
        ]
    if problems:
        raise FormInvalid("；".join(p["reason"] for p in problems), invalid_params=problems)


def can_see(principal: Principal, application: Application) -> bool:
    """Enterprises see their own; staff their jurisdiction (a city-wide 310000 sees all of 31xxxx)."""
    if principal.role is Role.ENTERPRISE:
        return application.applicant_uscc == principal.uscc
    if principal.role in (Role.ADMIN, Role.SERVICE):
        return True
    return in_jurisdiction(principal.jurisdiction, application.jurisdiction)


def jurisdiction_prefix(staff: str) -> str:
    """The region-code prefix a jurisdiction covers: 310000 → 31, 310115 → 310115 (GB/T 2260)."""
    prefix = staff.rstrip("0")
    if len(prefix) % 2:
        prefix += "0"
    return prefix


def in_jurisdiction(staff: str | None, target: str) -> bool:
    """True when a staff jurisdiction covers the target region code."""
    return bool(staff) and target.startswith(jurisdiction_prefix(staff or ""))


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
            ),
        ),
    )
    return entry
