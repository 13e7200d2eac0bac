"""REST API of the staff directory (工作人员名录): ``admin`` keeps it (or the identity platform's
sync, with an admin token); staff read it to pick whom to transfer a task or delegate to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from approval.dependencies import Session
from approval.tasks.directory import (
    StaffDirectory,
    StaffMemberIn,
    StaffMemberList,
    StaffMemberOut,
)
from approval.tasks.models import StaffMember
from govshared.auth import Principal, Role, require_roles
from govshared.db import AutoCommitRoute
from govshared.problems import Forbidden, Unauthenticated, ValidationFailed, problem_responses

router = APIRouter(prefix="/api/v1/staff/members", route_class=AutoCommitRoute, tags=["staff"])
AUTH = (Unauthenticated, Forbidden, ValidationFailed)
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Reader = Annotated[
    Principal,
    Depends(
        require_roles(
            Role.ACCEPTOR,
            Role.REVIEWER,
            Role.APPROVER,
            Role.HEAD,
            Role.GOVERNMENT_HEAD,
            Role.ADMIN,
        )
    ),
]
SubjectPath = Annotated[str, Path(min_length=1, max_length=200, description="令牌的 sub")]


def _out(member: StaffMember) -> StaffMemberOut:
    return StaffMemberOut(
        subject=member.subject,
        name=member.name,
        role=Role(member.role),
        jurisdiction=member.jurisdiction,
        department=member.department,
        active=member.active,
        updated_at=member.updated_at,
        updated_by=member.updated_by,
    )


@router.put(
    "/{subject}",
    summary="登记或修改工作人员（admin；统一身份认证平台同步）",
    response_model=StaffMemberOut,
    responses=problem_responses(*AUTH),
)
async def put_member(
    subject: SubjectPath, body: StaffMemberIn, session: Session, principal: Admin
) -> StaffMemberOut:
    """Create or replace a member of staff; ``active: false`` takes them out of transfers and
    delegations (tasks already theirs stay theirs until moved)."""
    member = await StaffDirectory(session).put(subject, body, by=principal.subject)
    return _out(member)


@router.get(
    "",
    summary="工作人员名录（本区划；转办、委托的对象从中选择）",
    response_model=StaffMemberList,
    responses=problem_responses(*AUTH),
)
async def list_members(
    session: Session,
    principal: Reader,
    role: Annotated[Role | None, Query()] = None,
    department: Annotated[str | None, Query(max_length=32)] = None,
) -> StaffMemberList:
    """Members of staff in the caller's jurisdiction and below (admin: all), by role and
    department."""
    scope = None if principal.role is Role.ADMIN else (principal.jurisdiction or "")
    found = await StaffDirectory(session).list(
        jurisdiction=scope, role=role.value if role else None, department=department
    )
    return StaffMemberList(items=[_out(m) for m in found])
