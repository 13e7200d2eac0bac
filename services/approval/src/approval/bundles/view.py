"""The combined progress and result of a bundle application, from its items' applications."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from approval.bundles.models import BundleApplication, BundleOutcome
from approval.bundles.schemas import BundleApplicationOut, BundleProgress, MemberOut
from approval.lifecycle import STATE_LABELS
from govshared.applications import ApplicationState

# An item is decided once its case has ended: granted or filed, or refused, or withdrawn.
GRANTED_STATES = frozenset({ApplicationState.APPROVED.value, ApplicationState.FILED.value})
REFUSED_STATES = frozenset(
    {
        ApplicationState.DENIED.value,
        ApplicationState.REJECTED.value,
        ApplicationState.WITHDRAWN.value,
    }
)
DECIDED_STATES = GRANTED_STATES | REFUSED_STATES

OUTCOME_LABELS = {
    BundleOutcome.APPROVED: "全部事项已办结，均准予许可或完成备案",
    BundleOutcome.PARTIALLY_APPROVED: "全部事项已办结，部分事项未获许可",
    BundleOutcome.REFUSED: "全部事项已办结，均未获许可",
}


def outcome_of(states: Sequence[str]) -> BundleOutcome | None:
    """The combined result once every item is decided; None while any is in progress."""
    if not states or any(s not in DECIDED_STATES for s in states):
        return None
    granted = sum(s in GRANTED_STATES for s in states)
    if granted == len(states):
        return BundleOutcome.APPROVED
    return BundleOutcome.PARTIALLY_APPROVED if granted else BundleOutcome.REFUSED


def combined_view(
    bundle: BundleApplication,
    members: Sequence[tuple[str, Mapping[str, Any], str | None]],
) -> BundleApplicationOut:
    """One progress and one result: ``members`` are (item code, application columns, reason)."""
    items = [
        MemberOut(
            item_code=code,
            item_name=row["item_name"],
            application_id=row["id"],
            application_no=row["application_no"],
            jurisdiction=row["jurisdiction"],
            state=row["state"],
            state_label=STATE_LABELS[ApplicationState(row["state"])],
            decided=row["state"] in DECIDED_STATES,
            due_on=row.get("due_on"),
            reason=reason,
        )
        for code, row, reason in members
    ]
    outcome = outcome_of([m.state for m in items])
    decided = sum(m.decided for m in items)
    if outcome is None:
        summary = f"办理中：{len(items)} 个事项中已办结 {decided} 个"
    else:
        refusals = [
            f"「{m.item_name}」{m.state_label}" + (f"（理由：{m.reason}）" if m.reason else "")
            for m in items
            if m.state in REFUSED_STATES
        ]
        summary = OUTCOME_LABELS[outcome] + ("：" + "；".join(refusals) if refusals else "")
    return BundleApplicationOut(
        id=bundle.id,
        bundle_code=bundle.bundle_code,
        bundle_version=bundle.bundle_version,
        bundle_name=bundle.bundle_name,
        applicant_uscc=bundle.applicant_uscc,
        applicant_name=bundle.applicant_name,
        submitted_at=bundle.submitted_at,
        status="decided" if outcome is not None else "in_progress",
        outcome=outcome.value if outcome is not None else None,
        summary=summary,
        progress=BundleProgress(decided=decided, total=len(items)),
        items=items,
    )
