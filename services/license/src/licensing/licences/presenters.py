"""The REST views of the register's licences (the schemas they fill are in ``schemas``)."""

from __future__ import annotations

from collections.abc import Sequence

from govshared.contracts import LicenceSummary
from licensing.certificates.service import certificate_out
from licensing.licences.records import LicenceRecords, status_label
from licensing.licences.schemas import (
    LicenceDetail,
    LicenceHistoryOut,
    LicenceOut,
    LicenceVersionOut,
)
from licensing.models import (
    CANCELLATION_GROUND_LABELS,
    CancellationGround,
    Licence,
    LicenceCertificate,
)


def licence_summary(licence: Licence) -> LicenceSummary:
    """What another service may know of a licence."""
    return LicenceSummary(
        licence_no=licence.licence_no,
        licence_type=licence.licence_type,
        item_code=licence.item_code,
        holder_uscc=licence.holder_uscc,
        status=licence.status,
        valid_from=licence.valid_from,
        valid_until=licence.valid_until,
    )


class LicencePresenter:
    """Licence versions as the API shows them, with their sealed certificates."""

    def __init__(self, records: LicenceRecords) -> None:
        self.records = records

    async def out(
        self, licence: Licence, *, certificate: LicenceCertificate | None = None
    ) -> LicenceOut:
        """The REST view of a licence version, with its sealed certificate."""
        records = self.records
        licence_type = await records.licence_type(licence.licence_type)
        certificate = certificate or await records.certificates.of_licence(licence)
        return LicenceOut(
            id=licence.id,
            licence_no=licence.licence_no,
            version=licence.version,
            licence_type=licence.licence_type,
            licence_type_name=licence_type.name,
            item_code=licence.item_code,
            holder_name=licence.holder_name,
            holder_uscc=licence.holder_uscc,
            issuing_authority=licence.issuing_authority,
            jurisdiction=licence.jurisdiction,
            issued_on=licence.issued_on,
            valid_from=licence.valid_from,
            valid_until=licence.valid_until,
            status=licence.status,
            status_label=status_label(licence),
            status_reason=licence.status_reason,
            granted_on_commitment=licence.granted_on_commitment,
            source_application_id=licence.source_application_id,
            source_application_no=licence.source_application_no,
            particulars=licence.particulars,
            renewal_apply_by=records.policy.renewal_apply_by(licence),
            renewal_requested_on=licence.renewal_requested_on,
            renewal_timely=licence.renewal_timely,
            renewal_application_no=licence.renewal_application_no,
            act_on=licence.act_on,
            act_basis=licence.act_basis,
            act_details=licence.act_details,
            cancelled_on=licence.cancelled_on,
            cancellation_ground=licence.cancellation_ground,
            cancellation_ground_label=(
                CANCELLATION_GROUND_LABELS[CancellationGround(licence.cancellation_ground)]
                if licence.cancellation_ground
                else None
            ),
            content_hash=licence.content_hash,
            qr_url=records.sealing.qr_url(
                licence_no=licence.licence_no,
                version=licence.version,
                digest=certificate.content_digest if certificate else None,
            ),
            certificate=(
                certificate_out(certificate, sealing=records.sealing) if certificate else None
            ),
        )

    async def outs(self, licences: Sequence[Licence]) -> list[LicenceOut]:
        """The REST views of several licence versions (their certificates read at once)."""
        certificates = await self.records.certificates.of_licences(licences)
        return [
            await self.out(licence, certificate=certificates.get(licence.id))
            for licence in licences
        ]

    async def detail(self, licence: Licence) -> LicenceDetail:
        """A licence with its versions and history."""
        out = await self.out(licence)
        versions = await self.records.repository.versions(licence.licence_no)
        history = await self.records.repository.history(licence.licence_no)
        return LicenceDetail(
            **out.model_dump(),
            versions=[LicenceVersionOut.model_validate(v) for v in versions],
            history=[LicenceHistoryOut.model_validate(h) for h in history],
        )
