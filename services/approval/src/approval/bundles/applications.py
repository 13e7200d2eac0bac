"""一件事一次办: one application for a bundle fans out to one ordinary application per item.

Each item's application goes through the ordinary submission (``SubmissionService.gather``,
``complete`` and ``write``): its own statutory clock, license's reform mode for the item here and
today (a filing is filed at once), its guide's form check, its 告知承诺 and legal-representative
signature, its audit trail and events. The fan-out is atomic: every item's facts are gathered
first, asking license with no transaction open, then every item's signatures are used and the
applications and the bundle written, in the request's one transaction; an item that cannot be
submitted leaves nothing behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from approval.bundles.catalogue import BundleCatalogue
from approval.bundles.errors import (
    BundleApplicationNotFound,
    BundleItemNotInBundle,
    BundleItemNotSubmitted,
)
from approval.bundles.models import BundleApplication
from approval.bundles.repository import BundleApplicationRepository
from approval.bundles.schemas import BundleApplicationCreate, BundleApplicationOut, BundleDefinition
from approval.bundles.view import REFUSED_STATES, combined_view
from approval.db import idempotency_keys
from approval.forms import validate_form
from approval.reading import ApplicationReader
from approval.repository import ApplicationRepository
from approval.schemas import ApplicationCreate
from approval.submission import (
    GatheredSubmission,
    PreparedSubmission,
    SubmissionService,
    signature_user,
)
from govshared import jurisdictions
from govshared.auth import Principal, Role
from govshared.idempotency import claim_or_replay, key_owner, replay, request_fingerprint
from govshared.problems import DomainError
from govshared.sqlbatch import inserts_together

ROUTE = "/api/v1/bundle-applications"


def member_forms(definition: BundleDefinition, form: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each item's own form, filled from the combined form through the definition's mappings."""
    forms: dict[str, dict[str, Any]] = {entry.item_code: {} for entry in definition.items}
    for field in definition.form_fields:
        if field.name not in form:
            continue
        for target in field.maps_to:
            forms[target.item_code][target.field] = form[field.name]
    return forms


@contextmanager
def item_problem(item_code: str) -> Iterator[None]:
    """An item's own problem as the bundle's: ``bundle_item_not_submitted`` naming the item, with
    the problem a submission of the item alone would have had (``item_problem``)."""
    try:
        yield
    except DomainError as exc:
        if exc.status >= 500:
            raise
        raise BundleItemNotSubmitted(
            f"事项 {item_code} 不能提交：{exc.detail or exc.title}；一件事的所有事项均未提交",
            item_code=item_code,
            item_problem={"code": exc.code, "title": exc.title, **exc.extensions},
        ) from exc


class BundleApplications:
    """Submission and reading of bundle applications."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        submissions: SubmissionService,
        reader: ApplicationReader,
    ) -> None:
        self.session = session
        self.submissions = submissions
        self.reader = reader
        self.catalogue = BundleCatalogue(session)
        self.repository = BundleApplicationRepository(session)

    async def submit(
        self,
        *,
        principal: Principal,
        body: BundleApplicationCreate,
        idempotency_key: str | None,
    ) -> tuple[int, dict[str, Any], bool]:
        """Fan out to one application per item, all or none; (status, body, replayed)."""
        assert principal.uscc is not None
        owner = key_owner(principal, f"POST {ROUTE}")
        request_hash = request_fingerprint("POST", ROUTE, body.model_dump(mode="json"))
        if idempotency_key is not None:
            stored = await replay(
                self.session,
                idempotency_keys,
                owner=owner,
                key=idempotency_key,
                request_hash=request_hash,
            )
            if stored is not None:
                return stored.status_code, stored.body, True
        bundle = await self.catalogue.get(body.bundle_code)
        # Read now: each item's preparation ends the read transaction, which expires the row.
        code, version, name = bundle.code, bundle.version, bundle.name
        definition = BundleDefinition.model_validate(bundle.definition)
        validate_form(
            {"form_fields": [f.model_dump(mode="json") for f in definition.form_fields]},
            body.form,
        )
        forms = member_forms(definition, body.form)
        options = {o.item_code: o for o in body.items}
        strangers = sorted(set(options) - {entry.item_code for entry in definition.items})
        if strangers:
            raise BundleItemNotInBundle(
                f"事项 {'、'.join(strangers)} 不在一件事 {code} 中", item_codes=strangers
            )
        # Every remote fact first (license's reform mode per item; each gather ends its read
        # transaction before asking), nothing used or written yet: the end of the next item's read
        # would roll back a signature already used.
        gathered: list[GatheredSubmission] = []
        for entry in definition.items:
            extra = options.get(entry.item_code)
            with item_problem(entry.item_code):
                gathered.append(
                    await self.submissions.gather(
                        principal=principal,
                        body=ApplicationCreate(
                            item_code=entry.item_code,
                            business_type=entry.business_type,
                            applicant_name=body.applicant_name,
                            form=forms[entry.item_code],
                            **(extra.model_dump(exclude={"item_code"}) if extra else {}),
                        ),
                    )
                )
        # Then each item's signed commitment letter and signed application, used once, as a
        # submission of the item alone would (the same checks and the same problems), all in the
        # request's one transaction with the writes below: a refusal uses none of them. They are
        # marked used by this request as its key names it (this route's owner), so that a single
        # submission with the same key cannot pass for its retry, nor this for one of it.
        used_by = signature_user(owner, idempotency_key)
        prepared: list[PreparedSubmission] = []
        for entry, submission in zip(definition.items, gathered, strict=True):
            with item_problem(entry.item_code):
                prepared.append(await self.submissions.complete(submission, used_by=used_by))
        now = datetime.now(UTC)
        bundle_application_id = uuid.uuid4()
        row = {
            "id": bundle_application_id,
            "bundle_code": code,
            "bundle_version": version,
            "bundle_name": name,
            "applicant_uscc": principal.uscc,
            "applicant_name": body.applicant_name,
            "form": body.form,
            "submitted_at": now,
            "decided_at": None,
            "outcome": None,
        }
        members = [
            {
                "bundle_application_id": bundle_application_id,
                "item_code": p.row["item_code"],
                "application_id": p.row["id"],
                "jurisdiction": p.row["jurisdiction"],
                "position": position,
            }
            for position, p in enumerate(prepared)
        ]
        out = combined_view(
            BundleApplication(**row),
            [(m["item_code"], p.row, None) for m, p in zip(members, prepared, strict=True)],
        )
        response = out.model_dump(mode="json")
        if idempotency_key is not None:
            stored = await claim_or_replay(
                self.session,
                idempotency_keys,
                owner=owner,
                key=idempotency_key,
                request_hash=request_hash,
                status_code=201,
                body=response,
            )
            if stored is not None:
                return stored.status_code, stored.body, True
        # The applications (with their clocks, trails and events) as one statement on
        # PostgreSQL, then the bundle that names them; all in the request's transaction.
        async with inserts_together(self.session):
            for ready in prepared:
                await self.submissions.write(ready)
        await self.repository.insert(row, members)
        return 201, response, False

    async def get_visible(
        self, *, principal: Principal, bundle_application_id: uuid.UUID
    ) -> BundleApplicationOut:
        """The combined progress and result, for its applicant and the staff of its items'
        jurisdictions; 404 for anyone else."""
        found = await self.repository.get(bundle_application_id)
        if found is None:
            raise BundleApplicationNotFound(f"一件事申请 {bundle_application_id} 不存在")
        members = await self.repository.members(found.id)
        visible = (
            found.applicant_uscc == principal.uscc
            if principal.role is Role.ENTERPRISE
            else principal.role is Role.ADMIN
            or any(jurisdictions.covers(principal.jurisdiction, m.jurisdiction) for m in members)
        )
        if not visible:
            raise BundleApplicationNotFound(f"一件事申请 {bundle_application_id} 不存在")
        return await self.view(found)

    async def view(self, found: BundleApplication) -> BundleApplicationOut:
        """The combined view from the items' applications as they stand."""
        applications = await self.repository.member_applications(found.id)
        rows = []
        for application in applications:
            effective = await self.reader.effective(application)
            reason = await refusal_reason(self.reader.applications, effective)
            rows.append((effective.item_code, columns(effective), reason))
        return combined_view(found, rows)

    async def list_own(
        self, *, principal: Principal, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[BundleApplicationOut]:
        """The enterprise's own bundle applications, newest first."""
        assert principal.uscc is not None
        found = await self.repository.list_for_applicant(principal.uscc, limit=limit, after=after)
        return [await self.view(f) for f in found]

    async def list_for_staff(
        self,
        *,
        principal: Principal,
        bundle_code: str | None,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> list[BundleApplicationOut]:
        """Bundle applications with an item in the staff member's jurisdiction (as the staff
        queue is scoped; admins see all), newest first, each with its combined progress."""
        prefix = None
        if principal.role is not Role.ADMIN:
            prefix = jurisdictions.scope_prefix(principal.jurisdiction or "")
        found = await self.repository.list_for_staff(
            jurisdiction_prefix=prefix, bundle_code=bundle_code, limit=limit, after=after
        )
        return [await self.view(f) for f in found]


def columns(application: Any) -> dict[str, Any]:
    """An application's columns as a mapping (the view reads rows and ORM objects alike)."""
    return {c.key: getattr(application, c.key) for c in application.__table__.columns}


async def refusal_reason(repository: ApplicationRepository, application: Any) -> str | None:
    """Why an item ended without a permit: the reason of the entry that ended it."""
    if application.state not in REFUSED_STATES:
        return None
    trail = await repository.events(application.id)
    ending = next((e for e in reversed(trail) if e.to_state == application.state), None)
    return ending.reason if ending is not None else None
