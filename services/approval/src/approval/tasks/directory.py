"""The staff directory (工作人员名录): who may receive a transferred task (转办) or a colleague's
tasks (委托), checked when the move is made rather than only when the target acts.

Tokens come from the identity provider and say who the caller is; they say nothing of whom else
the caller may hand work to. A municipal deployment keeps its organisation directory in the
unified identity platform (统一身份认证); its sync (or the ``admin``) writes it here through
``PUT /api/v1/staff/members/{subject}``, and ``make run`` seeds the demo staff below.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from approval.tasks.chain import DEPARTMENT_PATTERN
from approval.tasks.errors import StaffIneligible, StaffUnknown
from approval.tasks.models import StaffMember
from govshared import jurisdictions
from govshared.auth import Role
from govshared.sqlbatch import execute_insert

STAFF: Table = StaffMember.__table__  # type: ignore[assignment]
# Roles a task or a delegation can go to (the directory holds no enterprises, admins or services).
DIRECTORY_ROLES = (
    Role.ACCEPTOR,
    Role.REVIEWER,
    Role.APPROVER,
    Role.HEAD,
    Role.GOVERNMENT_HEAD,
)


class StaffMemberIn(BaseModel):
    """A member of staff as the directory keeps them (one role, one jurisdiction)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, examples=["张三"])
    role: Role = Field(description="acceptor | reviewer | approver | head | government_head")
    jurisdiction: str = Field(pattern=r"^\d{6}$", examples=["310000"])
    department: str | None = Field(
        default=None, pattern=DEPARTMENT_PATTERN, description="部门代码（令牌的 department）"
    )
    active: bool = Field(default=True, description="false：离岗、调离，不再接收转办和委托")

    @field_validator("jurisdiction")
    @classmethod
    def _jurisdiction(cls, value: str) -> str:
        if not jurisdictions.is_valid(value):
            raise ValueError("行政区划代码无效")
        return value

    @field_validator("role")
    @classmethod
    def _role(cls, value: Role) -> Role:
        if value not in DIRECTORY_ROLES:
            raise ValueError("名录只收录受理、审查、审批、负责人和本级人民政府负责人")
        return value


class StaffMemberOut(StaffMemberIn):
    subject: str = Field(description="用户标识（令牌的 sub）")
    updated_at: datetime
    updated_by: str


class StaffMemberList(BaseModel):
    items: list[StaffMemberOut]


# The demo's staff (jurisdiction 310000), for tokens made with ``make token … sub=<subject>``.
DEMO_STAFF: tuple[tuple[str, str, Role, str | None], ...] = (
    ("acceptor-1", "受理窗口一", Role.ACCEPTOR, None),
    ("reviewer-1", "审查员一", Role.REVIEWER, None),
    ("reviewer-2", "审查员二", Role.REVIEWER, None),
    ("approver-1", "审批员一", Role.APPROVER, None),
    ("approver-2", "审批员二", Role.APPROVER, None),
    ("head-1", "许可机关负责人", Role.HEAD, None),
    ("mayor-1", "市人民政府负责人", Role.GOVERNMENT_HEAD, None),
    ("police-1", "市公安局审查员一", Role.REVIEWER, "SHGA"),
    ("police-2", "市公安局审查员二", Role.REVIEWER, "SHGA"),
    ("safety-1", "市应急管理局审查员一", Role.REVIEWER, "SHYJ"),
    ("safety-2", "市应急管理局审查员二", Role.REVIEWER, "SHYJ"),
)


class StaffDirectory:
    """Reads and writes of the staff directory, and the eligibility of a move's target."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, subject: str) -> StaffMember | None:
        query = (
            select(StaffMember)
            .where(StaffMember.subject == subject)
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(query)).first()

    async def put(self, subject: str, member: StaffMemberIn, *, by: str) -> StaffMember:
        """Create or replace one member of staff."""
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            **member.model_dump(mode="json"),
            "updated_at": now,
            "updated_by": by,
        }
        changed = await self.session.execute(
            update(STAFF).where(STAFF.c.subject == subject).values(**values)
        )
        if not getattr(changed, "rowcount", 0):
            await execute_insert(
                self.session, STAFF.insert(), {**values, "subject": subject, "created_at": now}
            )
        found = await self.get(subject)
        assert found is not None
        return found

    async def list(
        self, *, jurisdiction: str | None, role: str | None, department: str | None
    ) -> list[StaffMember]:
        """Members of staff in a jurisdiction's scope (None: all), by role and department."""
        query = select(StaffMember)
        if jurisdiction is not None:
            query = query.where(jurisdictions.in_scope(StaffMember.jurisdiction, jurisdiction))
        if role is not None:
            query = query.where(StaffMember.role == role)
        if department is not None:
            query = query.where(StaffMember.department == department)
        query = query.order_by(StaffMember.jurisdiction, StaffMember.role, StaffMember.subject)
        return list((await self.session.scalars(query.limit(500))).all())

    async def eligible(
        self, subject: str, *, role: str, jurisdiction: str, department: str | None, what: str
    ) -> StaffMember:
        """The active member of staff ``subject`` if they hold ``role`` in a jurisdiction that
        covers ``jurisdiction`` (and belong to ``department``, when one is named): 422 else."""
        member = await self.get(subject)
        if member is None or not member.active:
            raise StaffUnknown(f"{what}对象 {subject} 不在工作人员名录中或已停用", subject=subject)
        if member.role != role:
            raise StaffIneligible(
                f"{what}对象 {member.name}（{subject}）的角色为 {member.role}，须为 {role}",
                subject=subject,
            )
        if not jurisdictions.covers(member.jurisdiction, jurisdiction):
            raise StaffIneligible(
                f"{what}对象 {member.name}（{subject}）不属于区划 {jurisdiction}", subject=subject
            )
        if department is not None and member.department != department:
            raise StaffIneligible(
                f"{what}对象 {member.name}（{subject}）不属于部门 {department}", subject=subject
            )
        return member


async def load_demo_staff(session: AsyncSession) -> int:
    """Insert the demo staff that are missing (idempotent; never overwrites an admin's edits)."""
    directory = StaffDirectory(session)
    added = 0
    for subject, name, role, department in DEMO_STAFF:
        if await directory.get(subject) is None:
            member = StaffMemberIn(
                name=name, role=role, jurisdiction="310000", department=department
            )
            await directory.put(subject, member, by="system:demo")
            added += 1
    return added
