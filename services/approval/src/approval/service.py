"""Approval's use cases. Services never commit: the route's unit of work does (STYLE.md §1)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from govshared.auth import Principal, Role
from govshared.events import ApplicationEventData, EventType, ReformMode, make_event
from govshared.idempotency import StoredResponse, claim_or_replay, request_fingerprint
from govshared.outbox import OutboxWriter
from sqlalchemy.ext.asyncio import AsyncSession

from approval.audit import GENESIS, entry_hash
from approval.clients.license import LicenseClient
from approval.db import idempotency_keys
from approval.errors import ApplicationNotFound, ApprovalCancelled, ItemNotFound
from approval.models import Application, ApplicationEvent, ApplicationState
from approval.repository import ApplicationRepository, ItemRepository
from approval.schemas import ApplicationCreate, ApplicationOut

SOURCE = "/services/approval"
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
