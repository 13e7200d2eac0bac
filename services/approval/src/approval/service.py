"""Approval's use cases. Services never commit: the route's unit of work does (STYLE.md §1)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from approval.audit import GENESIS, entry_hash
from approval.clients.license import LicenseClient
from approval.db import idempotency_keys
from approval.errors import (
    ActionInputInvalid,
    AlreadyExtended,
    ApplicationNotFound,
    ApprovalCancelled,
    ConcurrentModification,
    IllegalTransition,
    ItemNotFound,
    NotInstantItem,
    SupplementNotInFirstRequest,
)
from approval.lifecycle import RULES, STATE_LABELS, Action
from approval.models import Application, ApplicationEvent, ApplicationState
from approval.repository import ApplicationRepository, ItemRepository
from approval.schemas import ActionRequest, ApplicationCreate, ApplicationOut, ChainVerification
from govshared.auth import Principal, Role
from govshared.events import ApplicationEventData, EventType, ReformMode, make_event
from govshared.idempotency import (
    StoredResponse,
    claim,
    claim_or_replay,
    replay,
    request_fingerprint,
)
from govshared.outbox import OutboxWriter
from govshared.problems import Forbidden

SOURCE = "/services/approval"
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
    """The result of a submission: the application, or the response stored for a retried key."""

    status_code: int
    body: dict[str, Any]
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
    ) -> None:
        self.session = session
        self.items = ItemRepository(session)
        self.applications = ApplicationRepository(session)
        self.outbox = outbox
        self.license = license_client

    async def submit(
        self, *, principal: Principal, body: ApplicationCreate, idempotency_key: str | None
    ) -> Submitted:
        """Record a new application, its first audit entry and its ``submitted`` event."""
        assert principal.uscc is not None
        item = await self.items.get(body.item_code)
        if item is None:
            raise ItemNotFound(
                f"事项编码 {body.item_code} 不在事项目录中", item_code=body.item_code
            )
        now = datetime.now(UTC)
        reform = await self.license.reform_mode(
            item_code=item.code, jurisdiction=item.jurisdiction, on=now.astimezone(CHINA).date()
        )
        if reform is not None and reform.mode is ReformMode.CANCELLED:
            raise ApprovalCancelled(
                f"「{item.name}」已于 {reform.effective_from} 起直接取消审批，无需申请，凭营业执照即可经营",
                reason="no_permit_needed",
                business_licence_suffices=True,
                item_code=item.code,
            )
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
            "reform_mode": reform.mode.value if reform else None,
            "state": ApplicationState.SUBMITTED.value,
            "form": body.form,
            "submitted_at": now,
            "updated_at": now,
            "row_version": 1,
        }
        response = ApplicationOut.model_validate(row).model_dump(mode="json")
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
                body=response,
            )
            if stored is not None:
                return Submitted(status_code=stored.status_code, body=stored.body, replayed=True)
        await self.applications.insert(row)
        audit: dict[str, Any] = {
            "application_id": application_id,
            "seq": 1,
            "action": "submit",
            "from_state": None,
            "to_state": ApplicationState.SUBMITTED.value,
            "actor": principal.subject,
            "actor_role": principal.role.value,
            "reason": None,
            "details": {"item_version": item.version, "business_type": body.business_type.value},
            "occurred_at": now,
            "prev_hash": GENESIS,
        }
        audit["hash"] = entry_hash(GENESIS, audit)
        await self.applications.append_event(audit)
        event = make_event(
            type=EventType.APPLICATION_SUBMITTED,
            source=SOURCE,
            subject=str(application_id),
            data=ApplicationEventData(
                application_id=application_id,
                application_no=row["application_no"],
                item_code=item.code,
                item_name=item.name,
                applicant_uscc=principal.uscc,
                applicant_name=body.applicant_name,
                jurisdiction=item.jurisdiction,
                state=ApplicationState.SUBMITTED.value,
                reform_mode=reform.mode if reform else None,
                occurred_at=now,
                actor_role=principal.role.value,
            ),
        )
        await self.outbox.add(self.session, event)
        return Submitted(status_code=201, body=response, replayed=False)

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
        trail = await self.applications.events(application.id)
        details = await self._validate(
            action=action, body=body, application=application, trail=trail
        )
        now = datetime.now(UTC)
        to_state = rule.to_state or current
        values: dict[str, Any] = {"state": to_state.value, "updated_at": now}
        if action is Action.SUPPLEMENT and body.form:
            values["form"] = {**application.form, **body.form}
        response = ApplicationOut.model_validate(
            {
                **{c: getattr(application, c) for c in ApplicationOut.model_fields},
                **values,
            }
        ).model_dump(mode="json")
        if idempotency_key is not None and not await claim(
            self.session,
            idempotency_keys,
            owner=owner,
            key=idempotency_key,
            request_hash=request_hash,
            status_code=200,
            body=response,
        ):
            raise ConcurrentModification("同一幂等键的请求正在处理，请稍后重试")
        if not await self.applications.update_state(
            application.id, expected_version=application.row_version, values=values
        ):
            raise ConcurrentModification("申请已被他人同时处理，本次操作未生效")
        last = trail[-1] if trail else None
        prev_hash = last.hash if last else GENESIS
        audit: dict[str, Any] = {
            "application_id": application.id,
            "seq": (last.seq if last else 0) + 1,
            "action": action.value,
            "from_state": current.value,
            "to_state": to_state.value,
            "actor": principal.subject,
            "actor_role": principal.role.value,
            "reason": body.reason,
            "details": details,
            "occurred_at": now,
            "prev_hash": prev_hash,
        }
        audit["hash"] = entry_hash(prev_hash, audit)
        await self.applications.append_event(audit)
        await self.outbox.add(
            self.session,
            make_event(
                type=rule.event,
                source=SOURCE,
                subject=str(application.id),
                data=ApplicationEventData(
                    application_id=application.id,
                    application_no=application.application_no,
                    item_code=application.item_code,
                    item_name=application.item_name,
                    applicant_uscc=application.applicant_uscc,
                    applicant_name=application.applicant_name,
                    jurisdiction=application.jurisdiction,
                    state=to_state.value,
                    reform_mode=ReformMode(application.reform_mode)
                    if application.reform_mode
                    else None,
                    occurred_at=now,
                    actor_role=principal.role.value,
                    reason=body.reason,
                    details=details,
                ),
            ),
        )
        return Submitted(status_code=200, body=response, replayed=False)

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


def can_see(principal: Principal, application: Application) -> bool:
    """Enterprises see their own; staff their jurisdiction (a city-wide 310000 sees all of 31xxxx)."""
    if principal.role is Role.ENTERPRISE:
        return application.applicant_uscc == principal.uscc
    if principal.role in (Role.ADMIN, Role.SERVICE):
        return True
    return in_jurisdiction(principal.jurisdiction, application.jurisdiction)


def in_jurisdiction(staff: str | None, target: str) -> bool:
    """True when a staff jurisdiction covers the target region code (行政区划 prefix rule)."""
    if not staff:
        return False
    prefix = staff.rstrip("0")
    if len(prefix) % 2:
        prefix += "0"
    return target.startswith(prefix)
