"""The ``details`` of approval's application events, typed per event type.

What each ``cn.gov.approval.application.*`` event says beyond the application and its state (the
step a task moved to and whom it concerns, the department consulted and its due date, the document
issued, the reasons) is the same object on the wire as before, under the key ``details``; these
models say what it holds. ``govshared.events.EVENT_DATA`` maps each event type to its model.

The rules every model here follows, so that the wire stays byte-for-byte what producers send:

- **Compatible both ways**: keys a consumer does not know are kept (``extra="allow"``), so a
  producer may add a key before its consumers learn it; and an event type's fields are optional
  (a key is typed when it is there), so an older event, or one a key is added to later, still
  parses and is still notified.
- **Dumped as sent**: a model dumps only the keys it was given (a field left out is not dumped as
  ``null``), so that what a consumer hands on (notify's template context) equals what arrived.
- **Wire types**: a date is an ISO date (``date``, which dumps back to the same string); an instant
  stays the string the producer wrote, so that its spelling survives a round trip.

Producers build these objects as plain dicts (the audit trail hashes the same dict, and validating
on the submission's hot path costs instructions, see docs/architecture.md "Event contracts"); the
tests check every event the suites emit against these models (``govshared.testing``).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from govshared.applications import BusinessType


class Details(BaseModel):
    """An open object that keeps unknown keys and dumps only the keys it was given."""

    model_config = ConfigDict(extra="allow", serialize_by_alias=True, validate_by_name=True)

    @model_serializer(mode="wrap")
    def _as_sent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        given = self.model_fields_set
        for name, field in type(self).model_fields.items():
            if name not in given:
                data.pop(field.serialization_alias or field.alias or name, None)
        return data


# -- Pieces that several events share ---------------------------------------------------------


class DocumentReference(Details):
    """A sealed notice or decision issued with the transition (approval's ``document_reference``)."""

    id: str | None = None
    kind: str | None = Field(default=None, examples=["acceptance"])
    number: str | None = None
    title: str | None = Field(default=None, examples=["受理通知书"])
    content_sm3: str | None = None


class SignatureEvidence(Details):
    """An applicant's electronic signature (电子签名法 第十四条), enough to check it again."""

    signing_session: uuid.UUID | None = None
    signed_digest_sm3: str | None = None
    signature: str | None = None
    certificate_serial: str | None = None
    signer: str | None = None
    signed_at: str | None = Field(default=None, description="ISO 8601 instant, as signed")


class OpinionSummary(Details):
    """A consulted department's opinion as a decision records it (会签意见)."""

    department: str | None = None
    name: str | None = None
    outcome: str | None = Field(default=None, examples=["agree", "deemed_agreement"])
    reasons: str | None = None
    conditions: str | None = None
    overridden_by_government_head: str | None = None


class ApplicationDetails(Details):
    """What any application event's details may say: the lifecycle's actions name the business
    type (license applies a 延续 or 变更 by it), the intake route and the document issued."""

    business_type: BusinessType | None = None
    route: str | None = Field(default=None, examples=["review", "filing", "commitment"])
    document: DocumentReference | None = None
    licence_no: str | None = None  # the licence a change, renewal or 注销 is about


class ActingFor(ApplicationDetails):
    """A staff move made for a colleague under a delegation in force."""

    on_behalf_of: str | None = None
    delegation_id: uuid.UUID | None = None


class StepDetails(ActingFor):
    """A lifecycle action taken at a review chain's current step (its task)."""

    task_id: uuid.UUID | None = None
    step: str | None = None
    step_name: str | None = None
    opinion: str | None = None  # the reviewer's or approver's opinion


class TaskNotice(ActingFor):
    """Whom a chain's new work is for (notify's ``task_recipients`` reads these): the assignee and
    their delegates in force, else the consulted department, else the role in the jurisdiction."""

    task_id: uuid.UUID | None = None
    role: str | None = None
    department: str | None = None
    assignee: str | None = None
    delegates: list[str] | None = None


class AcceptanceMaterials(StepDetails):
    """Whether the materials were complete at acceptance, or 容缺受理 (Art. 32(1)(5))."""

    materials: str | None = Field(default=None, examples=["complete", "tolerated"])
    tolerated_materials: list[str] | None = None
    deliver_by: date | None = None


class DecisionDetails(StepDetails):
    """A decision at the chain's decision step: the consulted departments' opinions."""

    opinions: list[OpinionSummary] | None = None
    deemed_agreement: list[str] | None = None  # departments that did not answer in time


# -- One model per event type ------------------------------------------------------------------


class SubmittedDetails(ApplicationDetails):
    """``application.submitted``."""

    item_version: int | None = None
    application_signature: SignatureEvidence | None = None


class AcceptedDetails(AcceptanceMaterials):
    """``application.accepted``: the day accepted as of and the decision limit (受理通知书)."""

    accepted_on: date | None = None
    after_supplement: bool | None = None
    decision_limit_days: int | None = None
    decision_due_on: date | None = None
    joint_handling: str | None = None  # Art. 42(2)
    review_chain: list[str] | None = None  # the steps' names, when the item has a chain


class DeemedAcceptedDetails(ApplicationDetails):
    """``application.deemed_accepted`` (Art. 32): accepted as of the day the materials arrived."""

    accepted_on: date | None = None
    acceptance_due_on: date | None = None
    decision_due_on: date | None = None
    decision_limit_days: int | None = None
    joint_handling: str | None = None


class RejectedDetails(ApplicationDetails):
    """``application.rejected`` (不予受理): the statutory ground; the reasons are the event's
    ``reason``."""

    reject_reason: str | None = Field(
        default=None, examples=["not_licensing_matter", "outside_jurisdiction"]
    )


class SupplementRequestedDetails(ApplicationDetails):
    """``application.supplement_requested`` (一次性告知补正, Art. 32(1)(4))."""

    missing_items: list[str] | None = None


class SupplementedDetails(ApplicationDetails):
    """``application.supplemented``."""

    changed_materials: list[str] | None = None


class ReviewedDetails(StepDetails):
    """``application.reviewed``: the reviewer's opinion (and the chain's step, if any)."""


class PausedDetails(ApplicationDetails):
    """``application.paused`` (Art. 45): the procedure, and the day it is expected to end."""

    pause_reason: str | None = Field(default=None, examples=["hearing", "inspection"])
    expected_days: int | None = None
    expected_end_on: date | None = None
    opinion: str | None = None


class ResumedDetails(ApplicationDetails):
    """``application.resumed``."""

    opinion: str | None = None


class ExtendedDetails(ApplicationDetails):
    """``application.extended`` (Art. 42): the working days added."""

    extension_days: int | None = None
    joint_handling: str | None = None
    opinion: str | None = None


class ApprovedDetails(DecisionDetails, AcceptanceMaterials):
    """``application.approved``: a decision at the end of review, on the spot (即办, Art. 34(2)),
    or at intake on a 告知承诺 (its commitment and signed letter). license issues the licence with
    its ``particulars`` and ``authority`` when given."""

    item_version: int | None = None
    commitment_text_sha256: str | None = None
    commitment_signature: SignatureEvidence | None = None
    commitment_letter: DocumentReference | None = None
    particulars: dict[str, Any] | None = None
    authority: str | None = None


class DeniedDetails(DecisionDetails):
    """``application.denied``: a denial citing the disagreeing departments (Art. 38(2))."""

    cited_opinions: list[OpinionSummary] | None = None


class WithdrawnDetails(ApplicationDetails):
    """``application.withdrawn``: the applicant's signed declaration."""

    withdrawal_signature: SignatureEvidence | None = None
    opinion: str | None = None


class FiledDetails(ApplicationDetails):
    """``application.filed`` (审批改为备案): the filing receipt's number."""

    item_version: int | None = None
    receipt_no: str | None = None


class ClockDetails(ApplicationDetails):
    """``application.clock_warning`` and ``clock_overdue``: a clock's state, or a calendar change
    that moved its due date, or a material accepted as missing and not delivered in time."""

    clock: str | None = Field(
        default=None, examples=["decision", "acceptance", "tolerated_material"]
    )
    state: str | None = Field(
        default=None, examples=["amber", "red"]
    )  # the clock's, not the case's
    due_on: date | None = None
    committed_due_on: date | None = None
    remaining_days: int | None = None
    depends_on_provisional: bool | None = None
    reason: str | None = Field(default=None, examples=["calendar_changed"])
    old_due_on: date | None = None
    new_due_on: date | None = None
    material: str | None = None  # tolerated_material: which one
    deliver_by: date | None = None


class TaskOpenedDetails(TaskNotice):
    """``application.task_opened``: a step's new task."""

    step: str | None = None
    step_name: str | None = None


class TaskClaimedDetails(ActingFor):
    """``application.task_claimed`` (签收)."""

    task_id: uuid.UUID | None = None
    step: str | None = None
    assignee: str | None = None


class TaskReturnedDetails(TaskNotice):
    """``application.task_returned`` (退回): from which step to which, and the new task."""

    from_step: str | None = None
    to_step: str | None = None
    to_step_name: str | None = None
    new_task_id: uuid.UUID | None = None


class TaskTransferredDetails(TaskNotice):
    """``application.task_transferred`` (转办): from whom, to the assignee."""

    step: str | None = None
    step_name: str | None = None
    from_: str | None = Field(default=None, alias="from")


class OpinionRequestedDetails(TaskNotice):
    """``application.opinion_requested`` (征求意见): the department asked and its due date."""

    department: str | None = None
    department_name: str | None = None
    due_on: date | None = None


class OpinionGivenDetails(ActingFor):
    """``application.opinion_given`` (会签意见)."""

    task_id: uuid.UUID | None = None
    department: str | None = None
    department_name: str | None = None
    opinion: str | None = Field(default=None, examples=["agree", "disagree", "conditional"])
    reasons: str | None = None
    conditions: str | None = None
    late: bool | None = None


class OpinionOverriddenDetails(ApplicationDetails):
    """``application.opinion_overridden``: the government head's decision over a dissent or a
    missing opinion."""

    task_id: uuid.UUID | None = None
    department: str | None = None
    department_name: str | None = None
    overridden: str | None = Field(default=None, examples=["disagreement", "missing_opinion"])


class OpinionLateDetails(ApplicationDetails):
    """``application.opinion_escalated`` and ``opinion_deemed``: a consulted department did not
    answer by its due date; under the item's rule the case waits for the government head's
    decision (escalated, told to ``role``) or the silence counts as agreement (deemed)."""

    task_id: uuid.UUID | None = None
    department: str | None = None
    department_name: str | None = None
    opinion_due_on: date | None = None
    rule: str | None = Field(default=None, examples=["escalation", "deemed_agreement"])
    role: str | None = None
