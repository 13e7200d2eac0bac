"""Approval's use cases. Services never commit: the route's unit of work does (STYLE.md §1)."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from approval.calendar.clock import (
    DEFAULT_WARN_DAYS,
    JOINT_MAX_EXTENSION_DAYS,
    MAX_EXTENSION_DAYS,
    ClockKind,
)
from approval.calendar.errors import ExtensionTooLong
from approval.catalogue.repository import ITEM_CACHE, ItemRepository
from approval.clients.license import LicenseClient
from approval.clocks.models import StopReason
from approval.clocks.service import (
    ACCEPTANCE_DAYS,
    DELIVERY_DAYS,
    ClockKeeper,
    DecisionTerms,
    Derived,
    decision_terms,
    joint_label,
)
from approval.db import idempotency_keys
from approval.documents.models import DocumentKind
from approval.documents.service import (
    DOCUMENT_FOR_ACTION,
    DocumentIssuer,
    Sealing,
    document_reference,
    party_of,
)
from approval.documents.signed import register_signed
from approval.errors import (
    ActionInputInvalid,
    AlreadyExtended,
    ApplicationNotFound,
    ApprovalCancelled,
    CommitmentNotAllowed,
    ConcurrentModification,
    DeemedAccepted,
    FormInvalid,
    IllegalTransition,
    ItemNotFound,
    MaterialsIncomplete,
    NotInstantItem,
    ReviewRequired,
    SupplementNotInFirstRequest,
)
from approval.forms import validate_form
from approval.lifecycle import RULES, STATE_LABELS, Action
from approval.models import Application, ApplicationEvent, Item, Tolerance
from approval.repository import ApplicationRepository
from approval.schemas import ActionRequest, ApplicationCreate, ApplicationOut, ChainVerification
from approval.signing.application import require_application_signature
from approval.signing.errors import SignatureRequired
from approval.signing.models import SigningPurpose
from approval.signing.service import commitment_target, signature_evidence, signing_for
from approval.tasks.service import CHAIN_ACTIONS, ChainKeeper, chain_for
from approval.transitions import (
    EVENT_ROW_FIELDS,
    record_deemed_acceptance,
    record_transition,
)
from govshared import jurisdictions
from govshared.applications import ApplicationState
from govshared.auth import Principal, Role
from govshared.chinatime import CHINA, china_today
from govshared.contracts import ReformModeAnswer, commitment_digest
from govshared.db import end_read
from govshared.events import (
    EventType,
    ReformMode,
)
from govshared.freeform import json_bounds_error
from govshared.hashchain import GENESIS, entry_hash
from govshared.idempotency import (
    KeyClaim,
    StoredResponse,
    claim,
    claim_in_batch,
    claim_or_replay,
    key_owner,
    replay,
    replay_after_conflict,
    request_fingerprint,
)
from govshared.outbox import OutboxWriter
from govshared.problems import Forbidden
from govshared.sql import goes_alone, inserts_together

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
# The signed commitment letter's session, carried from the check to the write (not a detail).
SIGNED_LETTER = "_signed_letter"
# Acting on these would contradict a deemed acceptance (Art. 32): the case is accepted by law.
ACCEPTANCE_ACTIONS = frozenset(
    {Action.ACCEPT, Action.REJECT, Action.REQUEST_SUPPLEMENT, Action.INSTANT_DECISION}
)


@dataclass(frozen=True, slots=True)
class Submitted:
    """The result of a submission or an action: the application serialised to JSON before
    anything was written (so that nothing can fail once it is committed), or, for a retried key,
    the response stored the first time."""

    status_code: int
    body: bytes | dict[str, Any]
    replayed: bool


@dataclass(frozen=True, slots=True)
class PreparedSubmission:
    """A checked submission, ready to write: its row and what its first entries need."""

    row: dict[str, Any]
    item: Item
    clock: Derived | None
    principal: Principal
    route: IntakeRoute
    commitment: dict[str, Any] | None
    signature: dict[str, Any] | None


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
        """Record a new application, its first audit entry and its ``submitted`` event.

        ``prepare`` gathers every fact (remote ones with no transaction open) and ends its read;
        the write is then one statement on PostgreSQL, with the ``Idempotency-Key`` claim in it
        when there is one (``_write_keyed``)."""
        prepared = await self.prepare(
            principal=principal, body=body, idempotency_key=idempotency_key
        )
        out = ApplicationOut.model_validate(prepared.row)
        # Serialised before the write: without an idempotency claim the write below autocommits,
        # and a response that failed after it would report an error for a stored application.
        payload = out.model_dump_json().encode()
        if idempotency_key is not None:
            key = KeyClaim(
                owner=key_owner(principal, "POST /api/v1/applications"),
                key=idempotency_key,
                request_hash=request_fingerprint(
                    "POST", "/api/v1/applications", body.model_dump(mode="json")
                ),
                status_code=201,
                body_json=payload.decode(),
            )
            stored = await self._write_keyed(prepared, key=key)
            if stored is not None:
                return Submitted(status_code=stored.status_code, body=stored.body, replayed=True)
            return Submitted(status_code=201, body=payload, replayed=False)
        # One statement on PostgreSQL: application, clock, audit entry, outbox row(s) (and, on the
        # commitment route, the decision's register row). Nothing is written after it; unless a
        # signing session was used before it, that statement is the whole transaction.
        async with inserts_together(self.session, last=True):
            await self.write(prepared)
        return Submitted(status_code=201, body=payload, replayed=False)

    async def write(self, prepared: PreparedSubmission) -> None:
        """Write a prepared application (the caller holds the unit of work; see ``prepare``):
        its rows only, nothing read back, so that ``inserts_together`` can send them as one
        statement."""
        await self._write_submission(prepared)

    async def prepare(
        self, *, principal: Principal, body: ApplicationCreate, idempotency_key: str | None
    ) -> PreparedSubmission:
        """Everything a submission checks and asks before it writes: the item and its form,
        license's reform mode and the applicant's eligibility (no transaction is open while
        asking), the opening clock, the commitment and the signature; the row to insert. Every
        fact gathered, the read ends, so the write starts from a session that has begun nothing
        (whatever the caches made this request read). Nothing is written but a consumed signing
        session."""
        assert principal.uscc is not None
        item = await ITEM_CACHE.get(self.items, body.item_code)
        if item is None:
            raise ItemNotFound(
                f"事项编码 {body.item_code} 不在事项目录中", item_code=body.item_code
            )
        validate_form(item.guide, body.form)
        # A cold item cache read the item in a transaction; nothing is written yet: end it before
        # waiting on license (the cache-warm path has no transaction and pays nothing here).
        await end_read(self.session)
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
        route, final_state, digest = IntakeRoute.REVIEW, ApplicationState.SUBMITTED, None
        if mode is ReformMode.FILING:
            route, final_state = IntakeRoute.FILING, ApplicationState.FILED
        elif body.sign_commitment or body.commitment_signing_session is not None:
            digest = await self._check_commitment(
                mode=mode, body=body, principal=principal, reform=reform
            )
            route, final_state = IntakeRoute.COMMITMENT, ApplicationState.APPROVED
        clock = await self._intake_clock(route)
        # Every fact is gathered (remote ones with no transaction open). Whatever the caches made
        # this request read, the writes below start from a session that has begun nothing, so
        # how they commit (alone, or in one transaction with a signing session's use) depends on
        # the request, never on a cache being warm.
        await end_read(self.session)
        commitment = None
        if digest is not None:
            assert reform is not None
            commitment = await self._use_commitment_letter(
                body=body,
                principal=principal,
                item_code=item.code,
                reform=reform,
                digest=digest,
                idempotency_key=idempotency_key,
            )
        # An item whose guide requires the legal representative's signature (approval.signing.
        # application): the submission carries the signed application, used once.
        signature = await require_application_signature(
            self.session,
            principal=principal,
            item_code=item.code,
            item_version=item.version,
            guide=item.guide,
            applicant_name=body.applicant_name,
            business_type=body.business_type.value,
            form=body.form,
            session_id=body.application_signing_session,
            idempotency_key=idempotency_key,
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
        return PreparedSubmission(
            row=row,
            item=item,
            clock=clock,
            principal=principal,
            route=route,
            commitment=commitment,
            signature=signature,
        )

    async def _write_keyed(
        self, prepared: PreparedSubmission, *, key: KeyClaim
    ) -> StoredResponse | None:
        """Write the submission with its ``Idempotency-Key`` claim (None), or return the response
        an earlier request with the key stored (a retry: nothing is written).

        When the session has begun nothing (PostgreSQL), the claim is one more INSERT of the one
        statement, sent alone and committed as it completes: one round trip, as without a key. A
        key already claimed fails that statement as a whole (one statement is atomic), and the
        stored response is read and replayed. Otherwise (SQLite, a signing session used first)
        the claim comes first, in the request's transaction.
        """
        if goes_alone(self.session):
            try:
                async with inserts_together(self.session, last=True):
                    await claim_in_batch(self.session, idempotency_keys, key)
                    await self.write(prepared)
            except IntegrityError:
                stored = await replay_after_conflict(self.session, idempotency_keys, key)
                if stored is None:
                    raise  # not the key: the application's own rows failed
                return stored
            return None
        stored = await claim_or_replay(
            self.session,
            idempotency_keys,
            owner=key.owner,
            key=key.key,
            request_hash=key.request_hash,
            status_code=key.status_code,
            body=json.loads(key.body_json),
        )
        if stored is not None:
            return stored
        async with inserts_together(self.session, last=True):
            await self.write(prepared)
        return None

    async def _write_submission(self, prepared: PreparedSubmission) -> None:
        """The rows of a new application (nothing here reads them back)."""
        row, item, clock = prepared.row, prepared.item, prepared.clock
        route, commitment, signature = prepared.route, prepared.commitment, prepared.signature
        principal = prepared.principal
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
        base_details: dict[str, Any] = {
            "item_version": item.version,
            "business_type": row["business_type"],
        }
        submit_details = (
            {**base_details, "application_signature": signature} if signature else base_details
        )
        prev = await self._record(
            row,
            seq=1,
            prev_hash=GENESIS,
            action="submit",
            to_state=ApplicationState.SUBMITTED,
            from_state=None,
            actor=actor,
            at=now,
            details=submit_details,
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
            commitment = dict(commitment or {})
            letter = commitment.pop(SIGNED_LETTER, None)
            # The signed 告知承诺书 becomes a PDF of the case anyone can verify (documents.signed).
            signed_letter = (
                await register_signed(
                    self.session,
                    kind=DocumentKind.COMMITMENT,
                    party=row,
                    signed=letter,
                    at=now,
                )
                if letter is not None and self.documents is not None
                else None
            )
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
                    **commitment,
                    **({"document": document_reference(decision)} if decision else {}),
                    **(
                        {"commitment_letter": document_reference(signed_letter)}
                        if signed_letter
                        else {}
                    ),
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
        due_on: date | None = None,
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
            due_on=due_on,
        )

    async def _check_commitment(
        self,
        *,
        mode: ReformMode | None,
        body: ApplicationCreate,
        principal: Principal,
        reform: ReformModeAnswer | None,
    ) -> str:
        """The applicant may sign the published commitment text unless barred (docs/architecture.md,
        "Reform modes"): license's answers, asked with no transaction open; the text's digest."""
        assert principal.uscc is not None
        uscc = principal.uscc
        if mode is not ReformMode.COMMITMENT or reform is None:
            raise CommitmentNotAllowed("该事项在本地未实行告知承诺，不能以承诺方式办理")
        # License's text alone: one text per reform-item version, the one both services publish
        # (a stored guide's own copy, from before, is never what the applicant read).
        text = reform.commitment_text
        if not text:
            raise CommitmentNotAllowed("该事项尚未公布告知承诺书")
        digest = commitment_digest(text)
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
        return digest

    async def _use_commitment_letter(
        self,
        *,
        body: ApplicationCreate,
        principal: Principal,
        item_code: str,
        reform: ReformModeAnswer,
        digest: str,
        idempotency_key: str | None,
    ) -> dict[str, Any]:
        """Use the applicant's signed commitment letter (once), in the submission's transaction."""
        # The commitment is a written one (国办发〔2020〕42号: 书面承诺); online, a data message is
        # written form only with a reliable electronic signature (电子签名法 第四条、第十三条、第十四条):
        # a bare "I agree" or the hash of the text read is refused, the signed letter is used once.
        signed = await signing_for(self.session).consume(
            principal=principal,
            session_id=body.commitment_signing_session,
            purpose=SigningPurpose.COMMITMENT,
            target=commitment_target(item_code, reform.version),
            by=f"submission:{principal.subject}:{idempotency_key or uuid.uuid4()}",
        )
        letter = json.loads(signed.content)
        if (
            letter.get("text_sha256") != digest
            or letter.get("applicant_name") != body.applicant_name
        ):
            raise SignatureRequired(
                "签署的承诺书与本次申请（申请人名称或现行公布的承诺书文本）不一致，请重新签署",
                commitment_text_sha256=digest,
            )
        return {
            "commitment_text_sha256": digest,
            "commitment_signature": signature_evidence(signed),
            SIGNED_LETTER: signed,  # taken out again by _write_submission
        }

    async def get_visible(self, *, principal: Principal, application_id: uuid.UUID) -> Application:
        """An application the caller may see; 404 otherwise (never another enterprise's data)."""
        application = await self.applications.get(application_id)
        if application is None or not can_see(principal, application):
            raise ApplicationNotFound(f"申请 {application_id} 不存在")
        return application

    async def effective(self, application: Application) -> Application:
        """The application as the law has it today: accepted once its acceptance period has run
        out (Art. 32), whether or not the timer has recorded it yet (a copy; nothing is written)."""
        deemed = await self.clocks.deemed_acceptance(application, today=self.today())
        if deemed is None:
            return application
        terms = await decision_terms(self.session, application.item_code)
        _, decision = await self.clocks.decision_from(
            jurisdiction=application.jurisdiction,
            terms=terms,
            started_on=deemed.received_on,
            as_of=self.today(),
        )
        fields = {c.key: getattr(application, c.key) for c in Application.__table__.columns}
        return Application(
            **{**fields, "state": ApplicationState.ACCEPTED.value, "due_on": decision.view.due_on}
        )

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
            prefix = jurisdictions.scope_prefix(principal.jurisdiction or "")
        return await self.applications.staff_queue(
            jurisdiction_prefix=prefix,
            states=[s.value for s in states],
            item_code=item_code,
            keyword=keyword,
            after=after,
            limit=limit,
            today=self.today(),
        )

    async def follow_ups(
        self, *, principal: Principal, overdue: bool, limit: int
    ) -> list[Tolerance]:
        """容缺受理 materials still awaited in the caller's jurisdiction (overdue ones only)."""
        prefix = None
        if principal.role is not Role.ADMIN:
            prefix = jurisdictions.scope_prefix(principal.jurisdiction or "")
        return await self.applications.follow_ups(
            jurisdiction_prefix=prefix, overdue_on=self.today() if overdue else None, limit=limit
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
        route = f"/api/v1/applications/{application_id}/{action.value}"
        owner = key_owner(principal, f"POST {route}")
        request_hash = request_fingerprint(
            "POST",
            route,
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
        # Art. 42(2): who extends depends on whether the item is handled jointly.
        terms = (
            await decision_terms(self.session, application.item_code)
            if action in (Action.ACCEPT, Action.EXTEND)
            else None
        )
        roles = rule.roles_for(joint=terms is not None and terms.joint is not None)
        if principal.role not in roles:
            raise Forbidden(
                f"「{action.value}」仅限以下角色办理：{'、'.join(sorted(r.value for r in roles))}"
            )
        now = datetime.now(UTC)
        today = self.today()
        # Art. 32: past its acceptance period a submitted case IS accepted; record it first.
        deemed = await self.clocks.deemed_acceptance(application, today=today)
        if deemed is not None:
            if action in ACCEPTANCE_ACTIONS:
                raise self._deemed_error(deemed.received_on)
            if not await record_deemed_acceptance(
                self.session,
                outbox=self.outbox,
                keeper=self.clocks,
                application=application,
                deemed=deemed,
                today=today,
                now=now,
            ):
                raise ConcurrentModification("申请已被他人同时处理，本次操作未生效")
            application = await self.get_visible(principal=principal, application_id=application_id)
        current = ApplicationState(application.state)
        if current not in rule.from_states:
            await self._refuse(action, rule.from_states, application, current)
        # The 补正 rule (一次性告知), the one-extension rule and the return from a pause read the
        # history.
        trail = (
            await self.applications.events(application.id)
            if action in (Action.REQUEST_SUPPLEMENT, Action.EXTEND, Action.RESUME)
            else []
        )
        details = await self._validate(
            action=action,
            body=body,
            application=application,
            trail=trail,
            terms=terms,
            today=today,
        )
        # An item whose guide declares a review chain: the action must be the current step's,
        # taken by whose task it is (approval/tasks).
        chain = await chain_for(self.session, application) if action in CHAIN_ACTIONS else None
        keeper = ChainKeeper(self.session, self.outbox) if chain is not None else None
        if chain is not None and keeper is not None:
            details |= await keeper.guard(
                chain, action=action, application=application, principal=principal, today=today
            )
        if action is Action.WITHDRAW:
            # The applicant ends its case by its own declaration: signed with its seal like the
            # application (电子签名法 第十四条), the signed session used once.
            signed = await signing_for(self.session).consume(
                principal=principal,
                session_id=body.signing_session,
                purpose=SigningPurpose.WITHDRAWAL,
                target=str(application.id),
                by=f"withdraw:{principal.subject}:{idempotency_key or uuid.uuid4()}",
            )
            details = {**details, "withdrawal_signature": signature_evidence(signed)}
        to_state = rule.to_state or current
        if rule.returns:
            to_state = paused_from(trail)
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
                terms=terms,
            )
            if action is Action.ACCEPT and "tolerated_materials" in details:
                for name in details["tolerated_materials"]:
                    await self.applications.insert_tolerance(
                        {
                            "application_id": application.id,
                            "name": name,
                            "jurisdiction": application.jurisdiction,
                            "deliver_by": date.fromisoformat(details["deliver_by"]),
                            "accepted_by": principal.subject,
                            "accepted_at": now,
                            "delivered_at": None,
                            "material_id": None,
                            "overdue_at": None,
                        }
                    )
            if action is Action.SUPPLEMENT and body.form:
                values["form"] = {**application.form, **body.form}
            out = ApplicationOut.model_validate(
                {
                    **{c: getattr(application, c) for c in ApplicationOut.model_fields},
                    **values,
                }
            )
            payload = out.model_dump_json().encode()
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
            entry = await self._record(
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
                # Art. 45: the pause's event carries the day its procedure is expected to end.
                due_on=date.fromisoformat(details["expected_end_on"])
                if "expected_end_on" in details
                else None,
            )
            if chain is not None and keeper is not None:
                await keeper.after(
                    chain,
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

    @staticmethod
    def _deemed_error(received_on: date) -> DeemedAccepted:
        return DeemedAccepted(
            f"受理期限已届满，该申请依法自{received_on.year}年{received_on.month}月"
            f"{received_on.day}日（收到申请材料之日）起视为受理（行政许可法第三十二条）",
            accepted_on=received_on.isoformat(),
            current_state=ApplicationState.ACCEPTED.value,
        )

    async def _refuse(
        self,
        action: Action,
        allowed: frozenset[ApplicationState],
        application: Application,
        current: ApplicationState,
    ) -> None:
        """The 409 for an action the current state does not allow, saying why in the law's terms."""
        if action in ACCEPTANCE_ACTIONS:
            acceptance = next(
                (
                    c
                    for c in await self.clocks.repository.for_application(application.id)
                    if c.kind == "acceptance"
                ),
                None,
            )
            if acceptance is not None and acceptance.stop_reason == StopReason.DEEMED_ACCEPTED:
                raise self._deemed_error(acceptance.started_on)  # the day the materials arrived
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

    async def _acceptance_materials(
        self, *, body: ActionRequest, application: Application, today: date
    ) -> dict[str, Any]:
        """No acceptance while required materials are missing, unless staff decide 容缺受理 naming
        exactly what is missing and the date to deliver it (Art. 32(1)(5))."""
        item = await ITEM_CACHE.get(self.items, application.item_code)
        guide = item.guide if item is not None else {}
        if item is None or item.version != application.item_version:
            version = await self.items.version(application.item_code, application.item_version)
            guide = version.guide if version is not None else guide
        required = [m["name"] for m in guide.get("materials", []) if m.get("required", True)]
        held = await self.applications.material_names(application.id) if required else set()
        missing = [name for name in required if name not in held]
        tolerated = body.tolerated_materials or []
        if not missing:
            if tolerated:
                raise ActionInputInvalid(
                    "申请材料已齐全，无需容缺受理", tolerated_materials=tolerated
                )
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
        if body.deliver_by is None or body.deliver_by <= today:
            raise ActionInputInvalid("容缺受理须注明申请人补交材料的期限 deliver_by（今天以后）")
        return {
            "materials": "tolerated",
            "tolerated_materials": missing,
            "deliver_by": body.deliver_by.isoformat(),
        }

    async def _check_supplemented_form(
        self, application: Application, supplement: dict[str, Any]
    ) -> None:
        """The form as the 补正 leaves it must satisfy the guide the application was submitted
        under, as a submission must, and stay within the free-form bounds (repeated 补正 merge)."""
        version = await self.items.version(application.item_code, application.item_version)
        guide = version.guide if version is not None else {}
        merged = {**application.form, **supplement}
        validate_form(guide, merged)
        error = json_bounds_error(merged)
        if error is not None:
            raise FormInvalid(
                f"补正后的表单{error}", invalid_params=[{"name": "form", "reason": error}]
            )

    async def _validate(
        self,
        *,
        action: Action,
        body: ActionRequest,
        application: Application,
        trail: list[ApplicationEvent],
        terms: DecisionTerms | None,
        today: date,
    ) -> dict[str, Any]:
        """Check the action's own rules; the details recorded in the audit entry and event."""
        if action is Action.ACCEPT:
            return await self._acceptance_materials(body=body, application=application, today=today)
        if action is Action.REVIEW and not body.opinion:
            raise ActionInputInvalid("审查须记录审查意见 opinion")
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
            if body.form:
                await self._check_supplemented_form(application, body.form)
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
            joint = terms.joint if terms is not None else None
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
        if action is Action.DENY and not body.reason:
            raise ActionInputInvalid("不予许可须说明理由 reason")
        if action is Action.INSTANT_DECISION:
            item = await self.items.get(application.item_code)
            if item is None or not item.is_instant:
                raise NotInstantItem(f"「{application.item_name}」不是即办件")
            if body.tolerated_materials:
                raise ActionInputInvalid("当场作出决定须申请材料齐全，不能容缺（第三十四条第二款）")
            # Art. 34(2): decided on the spot only when the materials are complete.
            return {
                **await self._acceptance_materials(body=body, application=application, today=today),
                **({"opinion": body.opinion} if body.opinion else {}),
            }
        return {"opinion": body.opinion} if body.opinion else {}


def paused_from(trail: list[ApplicationEvent]) -> ApplicationState:
    """The state the case was in when its open pause began (resuming returns it there)."""
    for entry in reversed(trail):
        if entry.action == Action.PAUSE.value and entry.from_state:
            return ApplicationState(entry.from_state)
    return ApplicationState.IN_REVIEW  # a pause always has its entry; kept total for mypy


class IntakeRoute(StrEnum):
    """How an application is handled at intake, following the item's reform mode."""

    REVIEW = "review"  # 审查（含优化审批服务）
    FILING = "filing"  # 审批改为备案：当场备案
    COMMITMENT = "commitment"  # 实行告知承诺：当场决定


def can_see(principal: Principal, application: Application) -> bool:
    """Enterprises see their own; staff their jurisdiction (a city-wide 310000 sees all of 31xxxx)."""
    if principal.role is Role.ENTERPRISE:
        return application.applicant_uscc == principal.uscc
    if principal.role in (Role.ADMIN, Role.SERVICE):
        return True
    return jurisdictions.covers(principal.jurisdiction, application.jurisdiction)
