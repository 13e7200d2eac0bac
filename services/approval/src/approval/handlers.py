"""The application's actions, one handler per action of the lifecycle table
(``approval.lifecycle.RULES``; the review chain's moves have theirs in ``approval.tasks.handlers``).

The table says who may take an action, from which states, to which state and with which event;
the action's handler here says everything else it does: what it checks and records in its audit
entry and event (``validate``), what history the check reads, its effect on the statutory clocks
(``clock``: done by ``ClockKeeper.apply``, which adds what the clocks derive to the details), the
sealed notice or decision it issues (``document``), whether a review chain guards it
(``chain``: ``approval.tasks.service.ChainKeeper``), and the rows it writes beside the state change
(``write``). ``ActionService.act`` (approval.actions) runs every action the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from approval.calendar.clock import JOINT_MAX_EXTENSION_DAYS, MAX_EXTENSION_DAYS
from approval.calendar.errors import ExtensionTooLong
from approval.catalogue.repository import ITEM_VERSIONS, ItemRepository
from approval.clocks.derivation import DecisionTerms, joint_label
from approval.documents.models import DocumentKind
from approval.errors import (
    ActionInputInvalid,
    AlreadyExtended,
    FormInvalid,
    MaterialsIncomplete,
    NotInstantItem,
    SupplementNotInFirstRequest,
)
from approval.forms import licence_particulars, validate_form
from approval.lifecycle import RULES, TASK_MOVES, Action
from approval.models import Application, ApplicationEvent
from approval.repository import ApplicationRepository
from approval.schemas import ActionRequest
from approval.signing.models import SigningPurpose
from approval.signing.service import signature_evidence, signing_for
from govshared.auth import Principal
from govshared.freeform import json_bounds_error


@dataclass(frozen=True, slots=True)
class Acting:
    """One action in the making: what its handler checks and writes with."""

    session: AsyncSession
    items: ItemRepository
    applications: ApplicationRepository
    principal: Principal
    application: Application
    body: ActionRequest
    idempotency_key: str | None
    trail: list[ApplicationEvent]  # read only for a handler with ``reads_trail``
    terms: DecisionTerms | None  # read only for a handler with ``reads_terms``
    today: date
    now: datetime
    # The names of the materials the application holds, read with it (``reads_materials``, on
    # PostgreSQL); None: not read yet.
    material_names: set[str] | None = None


@dataclass(frozen=True, slots=True)
class ActionHandler:
    """Everything an action does beyond its rule in the lifecycle table."""

    # The action's own rules (may raise); the details recorded in its audit entry and event.
    validate: Callable[[Acting], Awaitable[dict[str, Any]]]
    clock: str  # its effect on the statutory clocks (ClockKeeper.apply does it)
    document: DocumentKind | None = None  # the sealed notice or decision it issues
    reads_terms: bool = False  # the item's decision terms (Art. 42: joint handling)
    reads_trail: bool = False  # the audit trail (earlier 补正 requests, extensions, pauses)
    reads_materials: bool = False  # the names of the materials held (read with the application)
    chain: bool = False  # an item's review chain guards it, and is moved on by it
    # It decides on acceptance: refused once the case is deemed accepted (Art. 32).
    decides_acceptance: bool = False
    # Its rows beside the state change (after the clocks'), and what it changes on the row.
    write: Callable[[Acting, dict[str, Any], dict[str, Any]], Awaitable[None]] | None = None


def _opinion(acting: Acting) -> dict[str, Any]:
    body = acting.body
    return {"opinion": body.opinion} if body.opinion else {}


async def _just_opinion(acting: Acting) -> dict[str, Any]:
    return _opinion(acting)


# -- 受理 ----------------------------------------------------------------------------------------


async def _acceptance_materials(acting: Acting) -> dict[str, Any]:
    """No acceptance while required materials are missing, unless staff decide 容缺受理 naming
    exactly what is missing and the date to deliver it (Art. 32(1)(5))."""
    body, application = acting.body, acting.application
    version = await ITEM_VERSIONS.get(acting.items, application.item_code, application.item_version)
    guide = version.guide if version is not None else {}
    required = [m["name"] for m in guide.get("materials", []) if m.get("required", True)]
    held = acting.material_names
    if held is None:
        held = await acting.applications.material_names(application.id) if required else set()
    missing = [name for name in required if name not in held]
    tolerated = body.tolerated_materials or []
    if not missing:
        if tolerated:
            raise ActionInputInvalid("申请材料已齐全，无需容缺受理", tolerated_materials=tolerated)
        return {"materials": "complete"}
    if not tolerated:
        raise MaterialsIncomplete(
            f"尚缺办事指南要求的材料：{'、'.join(missing)}", missing_materials=missing
        )
    if sorted(set(tolerated)) != sorted(missing):
        raise ActionInputInvalid(
            "容缺受理须逐项列明且仅列明尚缺的必需材料",
            missing_materials=missing,
            tolerated_materials=tolerated,
        )
    if body.deliver_by is None or body.deliver_by <= acting.today:
        raise ActionInputInvalid("容缺受理须注明申请人补交材料的期限 deliver_by（今天以后）")
    return {
        "materials": "tolerated",
        "tolerated_materials": missing,
        "deliver_by": body.deliver_by.isoformat(),
    }


async def _write_tolerances(
    acting: Acting, details: dict[str, Any], values: dict[str, Any]
) -> None:
    """容缺受理: each material accepted as missing, followed up until it is delivered."""
    if "tolerated_materials" not in details:
        return
    application = acting.application
    for name in details["tolerated_materials"]:
        await acting.applications.insert_tolerance(
            {
                "application_id": application.id,
                "name": name,
                "jurisdiction": application.jurisdiction,
                "deliver_by": date.fromisoformat(details["deliver_by"]),
                "accepted_by": acting.principal.subject,
                "accepted_at": acting.now,
                "delivered_at": None,
                "material_id": None,
                "overdue_at": None,
            }
        )


# -- 不予受理, 补正 ------------------------------------------------------------------------------


async def _validate_reject(acting: Acting) -> dict[str, Any]:
    body = acting.body
    if body.reject_reason is None or not body.reason:
        raise ActionInputInvalid("不予受理须注明法定情形 reject_reason 和理由 reason")
    return {"reject_reason": body.reject_reason.value}


async def _validate_supplement_request(acting: Acting) -> dict[str, Any]:
    """一次性告知: a later request names only what the first named or the applicant changed."""
    missing = sorted(set(acting.body.missing_items or []))
    if not missing:
        raise ActionInputInvalid("补正告知须一次性列明全部需补正的材料 missing_items")
    earlier = [e for e in acting.trail if e.action == Action.REQUEST_SUPPLEMENT.value]
    if earlier:
        allowed = set(earlier[0].details.get("missing_items", []))
        for entry in acting.trail:
            if entry.action == Action.SUPPLEMENT.value:
                allowed |= set(entry.details.get("changed_materials", []))
        added = [m for m in missing if m not in allowed]
        if added:
            raise SupplementNotInFirstRequest(
                f"以下材料首次补正告知未列明，且申请人未改动：{'、'.join(added)}",
                added_items=added,
            )
    return {"missing_items": missing}


async def _validate_supplement(acting: Acting) -> dict[str, Any]:
    """The form as the 补正 leaves it must satisfy the guide the application was submitted
    under, as a submission must, and stay within the free-form bounds (repeated 补正 merge)."""
    body, application = acting.body, acting.application
    if body.form:
        version = await acting.items.version(application.item_code, application.item_version)
        guide = version.guide if version is not None else {}
        merged = {**application.form, **body.form}
        validate_form(guide, merged)
        error = json_bounds_error(merged)
        if error is not None:
            raise FormInvalid(
                f"补正后的表单{error}", invalid_params=[{"name": "form", "reason": error}]
            )
    return {"changed_materials": sorted(set(body.changed_materials or []))}


async def _write_supplemented_form(
    acting: Acting, details: dict[str, Any], values: dict[str, Any]
) -> None:
    if acting.body.form:
        values["form"] = {**acting.application.form, **acting.body.form}


# -- 审查, 特别程序, 延期 ------------------------------------------------------------------------


async def _validate_review(acting: Acting) -> dict[str, Any]:
    if not acting.body.opinion:
        raise ActionInputInvalid("审查须记录审查意见 opinion")
    return _opinion(acting)


async def _validate_pause(acting: Acting) -> dict[str, Any]:
    body = acting.body
    if body.pause_reason is None or body.expected_days is None:
        raise ActionInputInvalid(
            "特别程序须注明第四十五条情形 pause_reason 及预计天数 expected_days"
        )
    return {"pause_reason": body.pause_reason.value, "expected_days": body.expected_days}


async def _validate_extend(acting: Acting) -> dict[str, Any]:
    """Once, by at most 10 working days, or 15 for an item handled jointly (Art. 42)."""
    body = acting.body
    if body.extension_days is None or not body.reason:
        raise ActionInputInvalid("延长期限须注明天数 extension_days（至多10个工作日）和理由 reason")
    if any(e.action == Action.EXTEND.value for e in acting.trail):
        raise AlreadyExtended("该申请已延长过一次审批期限")
    joint = acting.terms.joint if acting.terms is not None else None
    limit = JOINT_MAX_EXTENSION_DAYS if joint else MAX_EXTENSION_DAYS
    if body.extension_days > limit:
        raise ExtensionTooLong(
            f"申请延长 {body.extension_days} 个工作日；"
            + (
                f"{joint_label(joint)}的事项经本级人民政府负责人批准至多延长{limit}个工作日"
                "（第四十二条第二款）"
                if joint
                else f"经本机关负责人批准至多延长{limit}个工作日（第四十二条第一款）"
            ),
            max_extension_days=limit,
        )
    return {
        "extension_days": body.extension_days,
        **({"joint_handling": joint.value} if joint else {}),
    }


# -- 决定, 撤回 ----------------------------------------------------------------------------------


async def _validate_deny(acting: Acting) -> dict[str, Any]:
    if not acting.body.reason:
        raise ActionInputInvalid("不予许可须说明理由 reason")
    return _opinion(acting)


async def _particulars(acting: Acting) -> dict[str, Any]:
    """The licence's 许可事项 from the form, by the guide the case was filed under."""
    application = acting.application
    version = await ITEM_VERSIONS.get(acting.items, application.item_code, application.item_version)
    particulars = licence_particulars(version.guide if version else {}, application.form or {})
    return {"particulars": particulars} if particulars else {}


async def _validate_approve(acting: Acting) -> dict[str, Any]:
    return {**_opinion(acting), **await _particulars(acting)}


async def _validate_instant_decision(acting: Acting) -> dict[str, Any]:
    application = acting.application
    # The guide the case was filed under: a later revision making the item 即办件 must not let a
    # case filed with a review chain skip it.
    version = await ITEM_VERSIONS.get(acting.items, application.item_code, application.item_version)
    if version is None or not version.is_instant:
        raise NotInstantItem(f"「{application.item_name}」不是即办件")
    if acting.body.tolerated_materials:
        raise ActionInputInvalid("当场作出决定须申请材料齐全，不能容缺（第三十四条第二款）")
    # Art. 34(2): decided on the spot only when the materials are complete.
    return {
        **await _acceptance_materials(acting),
        **_opinion(acting),
        **await _particulars(acting),
    }


async def _validate_withdraw(acting: Acting) -> dict[str, Any]:
    """The applicant ends its case by its own declaration: signed with its seal like the
    application (电子签名法 第十四条), the signed session used once."""
    principal = acting.principal
    details = _opinion(acting)
    signed = await signing_for(acting.session).consume(
        principal=principal,
        session_id=acting.body.signing_session,
        purpose=SigningPurpose.WITHDRAWAL,
        target=str(acting.application.id),
        by=f"withdraw:{principal.subject}:{acting.idempotency_key or uuid.uuid4()}",
    )
    return {**details, "withdrawal_signature": signature_evidence(signed)}


_DECISION_RUNS = "none: the decision limit runs on"
HANDLERS: dict[Action, ActionHandler] = {
    Action.ACCEPT: ActionHandler(
        _acceptance_materials,
        "stops acceptance; opens the decision limit from the day accepted (after a 补正, the day "
        "it arrived), its terms in the details",
        document=DocumentKind.ACCEPTANCE,
        reads_terms=True,
        reads_materials=True,
        chain=True,
        decides_acceptance=True,
        write=_write_tolerances,
    ),
    Action.REJECT: ActionHandler(
        _validate_reject,
        "stops acceptance",
        document=DocumentKind.REJECTION,
        decides_acceptance=True,
    ),
    Action.REQUEST_SUPPLEMENT: ActionHandler(
        _validate_supplement_request,
        "stops acceptance until the 补正 arrives",
        document=DocumentKind.SUPPLEMENT,
        reads_trail=True,
        decides_acceptance=True,
    ),
    Action.SUPPLEMENT: ActionHandler(
        _validate_supplement,
        "restarts acceptance from the day the 补正 arrived",
        write=_write_supplemented_form,
    ),
    Action.REVIEW: ActionHandler(_validate_review, _DECISION_RUNS, chain=True),
    Action.PAUSE: ActionHandler(
        _validate_pause,
        "suspends the decision limit (Art. 45), the expected end in the details",
        document=DocumentKind.PAUSE,
    ),
    Action.RESUME: ActionHandler(
        _just_opinion, "resumes the decision limit (Art. 45)", reads_trail=True
    ),
    Action.EXTEND: ActionHandler(
        _validate_extend,
        "extends the decision limit (Art. 42)",
        reads_terms=True,
        reads_trail=True,
    ),
    Action.APPROVE: ActionHandler(
        _validate_approve,
        "stops the decision limit; opens licence delivery (Art. 44)",
        document=DocumentKind.APPROVAL,
        chain=True,
    ),
    Action.DENY: ActionHandler(
        _validate_deny,
        "stops the decision limit",
        document=DocumentKind.DENIAL,
        chain=True,
    ),
    Action.WITHDRAW: ActionHandler(_validate_withdraw, "stops every running clock", chain=True),
    Action.INSTANT_DECISION: ActionHandler(
        _validate_instant_decision,
        "stops acceptance; opens licence delivery (Art. 34(2), Art. 44)",
        document=DocumentKind.APPROVAL,
        reads_materials=True,
        decides_acceptance=True,
    ),
}
# Every action of the table has exactly one handler, here or among the review chain's moves.
assert HANDLERS.keys() == RULES.keys() - TASK_MOVES.keys()
