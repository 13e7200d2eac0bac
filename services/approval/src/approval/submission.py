"""Submitting an application: ``prepare`` checks and asks everything (license with no
transaction open), ``write`` writes its rows as one statement; with an ``Idempotency-Key`` the
claim goes in the same statement. The intake route (review, filing, commitment) follows the item's
reform mode; a filing is filed and a commitment decided at once, in the same write.

Services never commit: the route's unit of work does (STYLE.md §1).
"""

from __future__ import annotations

import hashlib
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

from approval.calendar.clock import DEFAULT_WARN_DAYS, ClockKind
from approval.catalogue.repository import ITEM_CACHE, ItemRepository
from approval.clients.license import LicenseClient
from approval.clocks.derivation import ACCEPTANCE_DAYS, DELIVERY_DAYS, Derived
from approval.clocks.service import ClockKeeper
from approval.db import idempotency_keys
from approval.documents.models import DocumentKind
from approval.documents.service import DocumentIssuer, Sealing, document_reference
from approval.documents.signed import register_signed
from approval.errors import ApprovalCancelled, CommitmentNotAllowed, ItemNotFound
from approval.forms import licence_particulars, validate_form
from approval.models import Item
from approval.repository import ApplicationRepository
from approval.schemas import ApplicationCreate, ApplicationOut, Submitted
from approval.signing.application import require_application_signature
from approval.signing.errors import SignatureRequired
from approval.signing.models import SigningPurpose
from approval.signing.service import commitment_target, signature_evidence, signing_for
from approval.transitions import record_transition
from govshared.applications import ApplicationState
from govshared.auth import Principal
from govshared.chinatime import CHINA, china_today
from govshared.contracts import ReformModeAnswer, commitment_digest
from govshared.db import end_read
from govshared.events import EventType, ReformMode
from govshared.hashchain import GENESIS
from govshared.idempotency import (
    KeyClaim,
    StoredResponse,
    claim_in_batch,
    claim_or_replay,
    key_owner,
    replay,
    replay_after_conflict,
    request_fingerprint,
)
from govshared.outbox import OutboxWriter
from govshared.problems import DomainError
from govshared.sqlbatch import goes_alone, inserts_together

# The signed commitment letter's session, carried from the check to the write (not a detail).
SIGNED_LETTER = "_signed_letter"
ROUTE = "/api/v1/applications"


class IntakeRoute(StrEnum):
    """How an application is handled at intake, following the item's reform mode."""

    REVIEW = "review"  # 审查（含优化审批服务）
    FILING = "filing"  # 审批改为备案：当场备案
    COMMITMENT = "commitment"  # 实行告知承诺：当场决定


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


@dataclass(frozen=True, slots=True)
class GatheredSubmission:
    """A submission's checked facts, gathered with no transaction left open; no signature used
    yet (``SubmissionService.complete`` uses them and makes the row)."""

    body: ApplicationCreate
    principal: Principal
    item: Item
    reform: ReformModeAnswer | None
    route: IntakeRoute
    final_state: ApplicationState
    digest: str | None
    clock: Derived | None
    now: datetime


def signature_user(owner: str | None, idempotency_key: str | None) -> str:
    """The request that uses a signed session (its ``consumed_by``), named exactly as its
    idempotency record names it: the key's owner (caller, enterprise and route: ``key_owner``) and
    the key. Only a retry of that very request finds the session used by itself; any other, the
    same key on another route included (a single submission and a bundle), finds it used. Without
    a key, the request alone. A digest, so that a long ``sub`` or key fits the column."""
    if owner is None or idempotency_key is None:
        return f"submission:{uuid.uuid4()}"
    return "submission:" + hashlib.sha256(f"{owner}\n{idempotency_key}".encode()).hexdigest()


def new_application_no(jurisdiction: str, at: datetime) -> str:
    """A 办件编号 such as ``310115-20261128-7F3K9Q2M``: region, China date, random suffix."""
    return f"{jurisdiction}-{at.astimezone(CHINA):%Y%m%d}-{secrets.token_hex(4).upper()}"


class SubmissionService:
    """Submission of applications."""

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
        when there is one (``_write_keyed``: a retry, or a concurrent duplicate, gets the first
        response from it). A retry that ``prepare`` refuses (the guide, license's reform mode or
        a signature changed since the first request) gets the stored response all the same: the
        first request's application stands. The lookup is made only then, so that a first
        request still costs one statement."""
        owner = request_hash = None
        if idempotency_key is not None:
            owner = key_owner(principal, f"POST {ROUTE}")
            request_hash = request_fingerprint("POST", ROUTE, body.model_dump(mode="json"))
        try:
            prepared = await self.prepare(
                principal=principal, body=body, used_by=signature_user(owner, idempotency_key)
            )
        except DomainError as refusal:
            if owner is None or request_hash is None or idempotency_key is None:
                raise
            if refusal.status >= 500:
                raise
            await self.session.rollback()  # nothing of the refused attempt stays
            stored = await replay(
                self.session,
                idempotency_keys,
                owner=owner,
                key=idempotency_key,
                request_hash=request_hash,
            )
            if stored is None:
                raise
            return Submitted(status_code=stored.status_code, body=stored.body, replayed=True)
        out = ApplicationOut.model_validate(prepared.row)
        # Serialised before the write: without an idempotency claim the write below autocommits,
        # and a response that failed after it would report an error for a stored application.
        payload = out.model_dump_json().encode()
        if idempotency_key is not None:
            assert owner is not None and request_hash is not None
            key = KeyClaim(
                owner=owner,
                key=idempotency_key,
                request_hash=request_hash,
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
        self, *, principal: Principal, body: ApplicationCreate, used_by: str
    ) -> PreparedSubmission:
        """Everything a submission checks and asks before it writes: the item and its form,
        license's reform mode and the applicant's eligibility (no transaction is open while
        asking), the opening clock, the commitment and the signature; the row to insert. Every
        fact gathered, the read ends, so the write starts from a session that has begun nothing
        (whatever the caches made this request read). Nothing is written but a consumed signing
        session."""
        gathered = await self.gather(principal=principal, body=body)
        return await self.complete(gathered, used_by=used_by)

    async def gather(self, *, principal: Principal, body: ApplicationCreate) -> GatheredSubmission:
        """The checks and remote facts of ``prepare``, ending with no transaction open and nothing
        used: a bundle gathers every item's before any item's signature is used (the next item's
        end of read would otherwise roll that use back)."""
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
        return GatheredSubmission(
            body=body,
            principal=principal,
            item=item,
            reform=reform,
            route=route,
            final_state=final_state,
            digest=digest,
            clock=clock,
            now=now,
        )

    async def complete(self, gathered: GatheredSubmission, *, used_by: str) -> PreparedSubmission:
        """Use the signed commitment letter and the signed application, if any (once, in the
        request's transaction, marked used by ``used_by``: ``signature_user``), and make the row
        to insert."""
        body, principal, item, reform = (
            gathered.body,
            gathered.principal,
            gathered.item,
            gathered.reform,
        )
        route, final_state, digest, clock, now = (
            gathered.route,
            gathered.final_state,
            gathered.digest,
            gathered.clock,
            gathered.now,
        )
        assert principal.uscc is not None
        mode = reform.mode if reform else None
        commitment = None
        if digest is not None:
            assert reform is not None
            commitment = await self._use_commitment_letter(
                body=body,
                principal=principal,
                item_code=item.code,
                reform=reform,
                digest=digest,
                used_by=used_by,
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
            used_by=used_by,
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
        prev = await record_transition(
            self.session,
            outbox=self.outbox,
            row=row,
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
            await record_transition(
                self.session,
                outbox=self.outbox,
                row=row,
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
            # The 许可事项 the licence is issued with (approval.forms.licence_particulars).
            written = licence_particulars(item.guide, row["form"] or {})
            particulars = {"particulars": written} if written else {}
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
                    kind=DocumentKind.APPROVAL,  # the commitment decision: 准予许可决定书
                    party=row,
                    reason=None,
                    details={},
                    at=now,
                )
                if self.documents is not None
                else None
            )
            await record_transition(
                self.session,
                outbox=self.outbox,
                row=row,
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
                    **particulars,
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
        used_by: str,
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
            by=used_by,
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
