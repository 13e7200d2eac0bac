"""A licence's life after issuance: the authority's own change (Art. 8), renewal (Art. 50),
suspension and reinstatement; the acts that end a licence are in ``acts``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from govshared.applications import ApplicationState
from govshared.auth import Principal
from govshared.chinatime import CHINA
from govshared.event_details import ApplicationDetails, ApprovedDetails
from govshared.events import ApplicationEventData, EventType
from govshared.freeform import json_bounds_error
from govshared.problems import ValidationFailed
from licensing import clock
from licensing.errors import (
    ChangeNeedsHolderApplication,
    HolderNameChangeNeedsApplication,
    LicenceNotActive,
    RenewalDecidedInApproval,
    RenewalNotNeeded,
    RenewalNotPending,
    RenewalTooLate,
)
from licensing.licences.acts import LicenceActs
from licensing.licences.policy import validity_end
from licensing.licences.records import (
    LIVE,
    RENEWAL_CLEARED,
    LicenceRecords,
    carried_renewal,
)
from licensing.licences.schemas import LicenceChange, PenaltyBody
from licensing.models import Licence, LicenceAction, LicenceStatus

# How approval's events end a renewal application pending on a licence.
RENEWAL_CLOSING: dict[str, tuple[LicenceAction, str]] = {
    EventType.APPLICATION_DENIED: (LicenceAction.RENEWAL_REFUSED, "不予延续"),
    EventType.APPLICATION_REJECTED: (LicenceAction.RENEWAL_CLOSED, "延续申请不予受理"),
    EventType.APPLICATION_WITHDRAWN: (LicenceAction.RENEWAL_CLOSED, "延续申请已撤回"),
}


class LicenceLifecycle:
    """Change, renewal, suspension and reinstatement of a licence, and the law's acts on it."""

    def __init__(self, records: LicenceRecords) -> None:
        self.records = records
        self.policy = records.policy
        self.acts = LicenceActs(records)

    async def change(self, licence: Licence, *, body: LicenceChange, actor: Principal) -> Licence:
        """The authority's own 变更 (Art. 8): only with its legal basis and the compensation the
        holder is told of; any other change is the holder's application (Art. 49)."""
        if body.holder_name is not None:
            raise HolderNameChangeNeedsApplication(
                "被许可人名称变更须由被许可人提出变更申请（《行政许可法》第四十九条）"
            )
        if not body.legal_basis or not body.compensation_note:
            raise ChangeNeedsHolderApplication(
                "行政机关不得自行变更许可事项：变更须依被许可人的申请作出（第四十九条），"
                "或依第八条变更并载明法律依据和补偿告知"
            )
        if not body.particulars:
            raise ValidationFailed("请说明变更的许可事项（particulars）")
        details = {
            "article": "《中华人民共和国行政许可法》第八条",
            "legal_basis": body.legal_basis,
            "compensation_note": body.compensation_note,
            # What a holder's change decided earlier but delivered later must leave as it is.
            "decided_at": clock.now().astimezone(UTC).isoformat(),
            "particulars_changed": sorted(body.particulars),
        }
        merged = {**licence.particulars, **body.particulars}
        # Each change is bounded on its own; the particulars it leaves must be too.
        error = json_bounds_error(merged)
        if error is not None:
            raise ValidationFailed(
                f"变更后的证照事项{error}",
                invalid_params=[{"name": "particulars", "reason": error}],
            )
        row = await self.records.new_version(
            licence,
            changes={"particulars": merged, **carried_renewal(licence)},
            action=LicenceAction.CHANGED,
            reason=body.reason,
            actor=actor.subject,
            details=details,
        )
        await self.records.hand_over(
            row,
            EventType.LICENCE_CHANGED,
            reason=body.reason,
            act={
                "act_on": clock.today(),
                "legal_basis": body.legal_basis,
                "compensation_note": body.compensation_note,
            },
        )
        return await self.records.current(row["licence_no"])

    async def change_on_application(
        self, licence: Licence, data: ApplicationEventData[ApplicationDetails], *, actor: str
    ) -> dict[str, Any]:
        """变更 on the holder's approved application (Art. 49): its name and particulars.

        Decisions may arrive out of order (approval's relay sends an event that keeps failing
        alone, after its backoff, while newer ones go on): a change decided before one already
        applied changes only what no later decision changed, and never the holder's name, which
        every later change application carried as it then was."""
        details = data.details
        particulars = (details.particulars if isinstance(details, ApprovedDetails) else None) or {}
        # Compared in UTC: a time without an offset (never approval's) is read, not refused.
        decided_at = data.occurred_at.astimezone(UTC)
        # Each change applied before, when it was decided (a change recorded without the time of
        # its decision: when it was applied) and what it changed (unknown: every particular).
        later = [
            entry.details or {}
            for entry in await self.records.repository.history(licence.licence_no)
            if entry.action == LicenceAction.CHANGED.value
            and (
                datetime.fromisoformat(entry.details["decided_at"])
                if entry.details and entry.details.get("decided_at")
                else entry.occurred_at
            ).astimezone(UTC)
            > decided_at
        ]
        since = {
            key
            for entry in later
            for key in entry.get("particulars_changed", licence.particulars.keys())
        }
        merged = {
            **licence.particulars,
            **{key: value for key, value in particulars.items() if key not in since},
        }
        # What a licence carries is bounded however it changes (events are bounded more loosely).
        error = json_bounds_error(merged)
        if error is not None:
            raise ValidationFailed(
                f"变更后的证照事项{error}",
                invalid_params=[{"name": "particulars", "reason": error}],
            )
        row = await self.records.new_version(
            licence,
            changes={
                "holder_name": licence.holder_name if later else data.applicant_name,
                "particulars": merged,
                "source_application_id": data.application_id,
                "source_application_no": data.application_no,
                **carried_renewal(licence),
            },
            action=LicenceAction.CHANGED,
            reason=f"依申请（{data.application_no}）准予变更",
            actor=actor,
            # A licence suspended (暂扣) meanwhile is changed too, and stays suspended: the
            # holder's approved change (Art. 49) is not lost to a penalty for a term.
            suspension_runs_on=True,
            details={
                "decided_at": decided_at.isoformat(),
                "particulars_changed": sorted(particulars),
                "applied_under_later_decisions": bool(later),
            },
        )
        await self.records.hand_over(row, EventType.LICENCE_CHANGED)
        return row

    async def request_renewal(self, licence: Licence, *, actor: Principal) -> Licence:
        """延续申请 (Art. 50): on time up to 30 days before expiry, however early; later, it is
        decided without deemed renewal (or refused, as configured)."""
        today = clock.today()
        # A suspended licence is renewed too: 暂扣 is a penalty for a term, and the holder keeps
        # its right to apply in time (Art. 50); the suspension runs on in the new version.
        if licence.status not in LIVE:
            raise LicenceNotActive(f"证照 {licence.licence_no} 当前不是有效状态，不能申请延续")
        if licence.valid_until is None:
            raise RenewalNotNeeded(f"证照 {licence.licence_no} 长期有效，无需延续")
        if today > licence.valid_until:
            raise LicenceNotActive(f"证照 {licence.licence_no} 有效期已届满，请重新申请许可")
        if licence.renewal_requested_on is not None:
            return licence
        timely = self.policy.renewal_is_timely(licence, today)
        apply_by = self.policy.renewal_apply_by(licence)
        if not timely and self.policy.late_renewal == "refuse":
            raise RenewalTooLate(f"延续申请应当在 {apply_by} 前提出")
        await self._start_renewal(
            licence, applied_on=today, timely=timely, actor=actor.subject, application=None
        )
        return licence

    async def on_renewal_application(
        self, event_type: str, data: ApplicationEventData[ApplicationDetails]
    ) -> None:
        """A renewal filed as an approval application protects the licence exactly as one filed
        here (Art. 50): pending from the day it arrived, until approval decides or it ends."""
        if event_type == EventType.APPLICATION_APPROVED:
            return  # the register's on_approved renews
        licence = await self.records.licence_for_application(data)
        if licence is None:
            return
        closing = RENEWAL_CLOSING.get(event_type)
        if closing is not None:
            if licence.renewal_application_id == data.application_id:
                action, reason = closing
                await self.records.transition(
                    licence,
                    allowed=[LicenceStatus.VALID, LicenceStatus.SUSPENDED],
                    to=LicenceStatus(licence.status),
                    action=action,
                    reason=f"{reason}（申请编号 {data.application_no}）",
                    actor=f"application:{data.application_no}",
                    extra=dict(RENEWAL_CLEARED),
                )
            return
        if event_type != EventType.APPLICATION_SUBMITTED:
            return
        if licence.status not in LIVE or licence.renewal_requested_on is not None:
            return
        # Events may arrive out of order (a relay's retry): a submission that arrives after its
        # application was decided, or after it renewed this licence, opens nothing; a pending
        # renewal left open would be deemed granted at expiry.
        if licence.source_application_id == data.application_id:
            return
        state = await self.records.repository.application_state(data.application_id)
        if state is not None and state != ApplicationState.SUBMITTED:
            return
        applied_on = data.occurred_at.astimezone(CHINA).date()
        if licence.valid_until is None or applied_on > licence.valid_until:
            return
        await self._start_renewal(
            licence,
            applied_on=applied_on,
            timely=self.policy.renewal_is_timely(licence, applied_on),
            actor=f"application:{data.application_no}",
            application=data,
        )

    async def _start_renewal(
        self,
        licence: Licence,
        *,
        applied_on: date,
        timely: bool,
        actor: str,
        application: ApplicationEventData[ApplicationDetails] | None,
    ) -> None:
        """Record a pending renewal; only a timely one is deemed granted at expiry (Art. 50)."""
        via = f"（申请编号 {application.application_no}）" if application else ""
        reason = (
            f"持证主体申请延续{via}，于有效期届满三十日前提出；届满前未作决定的，视为准予延续"
            if timely
            else f"持证主体申请延续{via}，未在有效期届满三十日前提出（第五十条）："
            "可以在届满前作出决定，但不适用视为准予延续"
        )
        await self.records.transition(
            licence,
            allowed=LIVE,
            to=LicenceStatus(licence.status),
            action=LicenceAction.RENEWAL_REQUESTED,
            reason=reason,
            actor=actor,
            extra={
                "renewal_requested_on": applied_on,
                "renewal_timely": timely,
                "renewal_application_id": application.application_id if application else None,
                "renewal_application_no": application.application_no if application else None,
            },
            details={
                "applied_on": applied_on.isoformat(),
                "apply_by": str(self.policy.renewal_apply_by(licence)),
                "timely": timely,
            },
        )

    async def decide_renewal(
        self, licence: Licence, *, grant: bool, reason: str, actor: Principal
    ) -> Licence:
        """The authority decides a pending renewal before expiry.

        One application, one decision (Art. 50): a renewal filed as an approval application is
        decided there, and its approved or denied event applies that decision here. Deciding it
        here as well would renew twice (approval's approval renewing after this grant) or let the
        two services contradict each other (a refusal here, approval's approval after it)."""
        if licence.renewal_requested_on is None:
            raise RenewalNotPending(f"证照 {licence.licence_no} 没有待决定的延续申请")
        if licence.renewal_application_id is not None:
            raise RenewalDecidedInApproval(
                f"证照 {licence.licence_no} 的延续申请经审批办理（申请编号 "
                f"{licence.renewal_application_no}），请在该申请中作出决定"
            )
        if grant:
            row = await self.renew(licence, deemed=False, actor=actor.subject, reason=reason)
            return await self.records.current(row["licence_no"])
        await self.records.transition(
            licence,
            allowed=LIVE,
            to=LicenceStatus(licence.status),
            action=LicenceAction.RENEWAL_REFUSED,
            reason=reason,
            actor=actor.subject,
            extra=dict(RENEWAL_CLEARED),
        )
        return licence

    async def renew(
        self,
        licence: Licence,
        *,
        deemed: bool,
        actor: str,
        reason: str | None = None,
        source: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A new version whose validity continues from the old one's end."""
        licence_type = await self.records.licence_type(licence.licence_type)
        start = (licence.valid_until or clock.today()) + timedelta(days=1)
        reason = reason or (
            "延续申请在有效期届满三十日前提出，届满前未作决定，依《行政许可法》第五十条视为准予延续"
            if deemed
            else "准予延续"
        )
        row = await self.records.new_version(
            licence,
            changes={
                "valid_from": start,
                "valid_until": validity_end(start, licence_type.validity_months),
                **(source or {}),
            },
            action=LicenceAction.DEEMED_RENEWED if deemed else LicenceAction.RENEWED,
            reason=reason,
            actor=actor,
            suspension_runs_on=True,
        )
        await self.records.hand_over(row, EventType.LICENCE_RENEWED, reason=reason)
        return row

    async def suspend(self, licence: Licence, *, body: PenaltyBody, actor: Principal) -> Licence:
        """暂扣许可证件: a penalty (行政处罚法), after the notice of the holder's rights."""
        return await self.acts.suspend(licence, body=body, actor=actor.subject)

    async def reinstate(self, licence: Licence, *, reason: str, actor: Principal) -> Licence:
        """恢复: a suspended licence is valid again (the 暂扣 stays in the history)."""
        await self.records.transition(
            licence,
            allowed=[LicenceStatus.SUSPENDED],
            to=LicenceStatus.VALID,
            action=LicenceAction.REINSTATED,
            reason=reason,
            actor=actor.subject,
            extra={"act_on": None, "act_basis": None, "act_details": None},
        )
        # Valid again: the holder's certificate of this version is the one to use.
        await self.records.emit(
            licence,
            EventType.LICENCE_CHANGED,
            status=licence.status,
            reason=reason,
            document=await self.records.certificates.sealed_ref(licence),
        )
        return licence
