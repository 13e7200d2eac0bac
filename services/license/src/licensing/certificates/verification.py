"""Public verification of licences: by number (with the hashes of the copy in hand) or by the PDF.

A certificate is genuine when its seal's signature holds under a seal we trust and its content is
the one registered; unaltered when the file is byte for byte the one issued; and the answer always
says whether the licence version is still valid today (or suspended, revoked, expired, replaced by
a newer version). It reveals no more than the certificate itself shows.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from govshared.chinatime import china_date_text
from govshared.seal import FAILURE_LABELS, Failure, SealCheck, SealSignature, SealVerifier
from licensing import clock
from licensing.certificates.repository import CertificateRepository
from licensing.certificates.service import Sealing, content_sm3
from licensing.licences.digest import certificate_fields, content_digest
from licensing.licences.repository import LicenceRepository
from licensing.licences.schemas import LicenceVerification, VerificationResult
from licensing.models import (
    LICENCE_STATUS_LABELS,
    CertificateStatus,
    Licence,
    LicenceStatus,
    LicenceType,
)
from licensing.publicity import public_name

logger = logging.getLogger("licensing.verification")

VERDICTS: dict[str, str] = {
    "not_sealed": "不是本系统签发的电子证照（文件中未找到电子印章签名）",
    "number_mismatch": "文件中的证照编号与所填证照编号不一致",
    "not_registered": "证照库中查无此证照文件",
    "not_sealed_yet": "证照已签发，电子证照文件正在加盖电子印章，请稍后再核验",
    "file_altered": "文件与签发存档不一致，可能已被篡改",
    "content_hash_mismatch": "证照内容摘要与证照库记录不符，证照系伪造或被篡改",
    "register_corrupted": "证照库记录校验失败",
}
# Failures that mean "we have no such thing", as opposed to "this is not what we issued".
NOT_FOUND_FAILURES = frozenset({"not_registered", "not_sealed_yet"})


def _reason(failure: str) -> str:
    return VERDICTS.get(failure) or FAILURE_LABELS[Failure(failure)]


def _failed(
    failure: str,
    today: date,
    *,
    licence_no: str | None = None,
    version: int | None = None,
    signature: SealSignature | None = None,
    unaltered: bool | None = None,
) -> LicenceVerification:
    reason = _reason(failure)
    result = (
        VerificationResult.NOT_FOUND if failure in NOT_FOUND_FAILURES else VerificationResult.FORGED
    )
    return LicenceVerification(
        result=result,
        genuine=False,
        valid_now=False,
        message=reason,
        failure=failure,
        reason=reason,
        unaltered=unaltered,
        licence_no=licence_no,
        version=version,
        seal_id=signature.seal.seal_id if signature else None,
        signed_at=signature.signed_at if signature else None,
        checked_on=today,
    )


# Each act's own answer: what happened, under which law (the public may know the act, not its file).
ACT_MESSAGES: dict[LicenceStatus, str] = {
    LicenceStatus.REVOKED: "证照真实，但该行政许可已于{on}依法撤销（《行政许可法》第六十九条）",
    LicenceStatus.WITHDRAWN: "证照真实，但该行政许可已于{on}依法撤回（《行政许可法》第八条）",
    LicenceStatus.PENALTY_REVOKED: "证照真实，但许可证件已于{on}被依法吊销（行政处罚）",
    LicenceStatus.CANCELLED: "证照真实，但该行政许可已于{on}依法注销（《行政许可法》第七十条）",
}


def _day(value: date | None) -> str:
    return china_date_text(value.isoformat()) if value else "—"


def _status_message(licence: Licence, *, valid_now: bool, today: date, latest: int) -> str:
    status = LicenceStatus(licence.status)
    if valid_now:
        return "证照真实有效"
    if status is LicenceStatus.SUPERSEDED:
        return f"证照真实，但已被第{latest}版替代，本版本不再有效，请以最新版本为准"
    cancelled = (
        f"，并已于{_day(licence.cancelled_on)}注销，不再有效"
        if licence.cancelled_on and status is not LicenceStatus.CANCELLED
        else "，不再有效"
    )
    if status in ACT_MESSAGES:
        return ACT_MESSAGES[status].format(on=_day(licence.act_on)) + cancelled
    if status is LicenceStatus.SUSPENDED:
        until = (licence.act_details or {}).get("suspended_until")
        term = f"，暂扣期限至{china_date_text(until)}" if until else ""
        return f"证照真实，但许可证件已于{_day(licence.act_on)}被依法暂扣{term}，暂扣期间不得使用"
    until = _day(licence.valid_until)
    if status is LicenceStatus.EXPIRED:
        return f"证照真实，但有效期已于{until}届满未延续，已过期" + cancelled
    if today < licence.valid_from:
        return f"证照真实，但尚未生效（自{china_date_text(licence.valid_from.isoformat())}起有效）"
    return f"证照真实，但有效期已于{until}届满，不再有效"


class LicenceVerifier:
    """Answers the public verification."""

    def __init__(self, session: AsyncSession, *, sealing: Sealing) -> None:
        self.session = session
        self.sealing = sealing
        self.licences = LicenceRepository(session)
        self.certificates = CertificateRepository(session)

    async def _check(self, content: dict[str, object], signature: SealSignature) -> SealCheck:
        """Does the signature hold under the seal we trust, over this very content?"""
        authority = str(content.get("issuing_authority") or "")
        verifier = SealVerifier(await self.sealing.seals.trusted(authority))
        return verifier.check(signature, digest=content_sm3(content))

    async def by_number(
        self,
        *,
        licence_no: str,
        version: int | None = None,
        content_hash: str | None = None,
        digest: str | None = None,
        sha256: str | None = None,
    ) -> LicenceVerification:
        """A licence (version) looked up by number, checked against the hashes of the copy in hand.

        ``content_hash`` is the register's SHA-256 content hash, ``digest`` the SM3 digest from the
        certificate's QR code, ``sha256`` the SHA-256 of the PDF file in hand.
        """
        today = clock.today()
        licence_no = licence_no.strip()
        licence = await (
            self.licences.version(licence_no, version)
            if version is not None
            else self.licences.current(licence_no)
        )
        if licence is None:
            return LicenceVerification(
                result=VerificationResult.NOT_FOUND,
                genuine=False,
                valid_now=False,
                message="证照库中无此编号的证照",
                checked_on=today,
            )
        if content_hash is not None:
            versions = await self.licences.versions(licence_no)
            match = next((v for v in versions if v.content_hash == content_hash.lower()), None)
            if match is None:
                return _failed("content_hash_mismatch", today, licence_no=licence_no)
            licence = match
        if content_digest(certificate_fields(licence)) != licence.content_hash:
            logger.error("register row does not match its digest", extra={"licence": licence_no})
            return _failed("register_corrupted", today, licence_no=licence_no)
        certificate = await self.certificates.of_licence(licence.id)
        if certificate is None or certificate.status != CertificateStatus.SEALED:
            if digest is None and sha256 is None:
                return await self._describe(licence, today, copy_in_hand=content_hash is not None)
            failure = "not_sealed_yet" if certificate is not None else "not_registered"
            return _failed(failure, today, licence_no=licence_no, version=version)
        assert certificate.content is not None and certificate.signature is not None
        signature = SealSignature.model_validate(certificate.signature)
        # A copy that does not match is "not genuine" and nothing else: no version, seal or
        # signing time of the register's licence goes to someone who only knows its number.
        fail = functools.partial(_failed, today=today, licence_no=licence_no, version=version)
        check = await self._check(certificate.content, signature)
        if check.failure is not None:
            return fail(check.failure.value)
        if digest is not None and digest.strip().lower() != certificate.content_digest:
            return fail(Failure.DIGEST_MISMATCH.value)
        unaltered = None
        if sha256 is not None:
            if sha256.strip().lower() != certificate.pdf_sha256:
                return fail("file_altered", unaltered=False)
            unaltered = True
        # Past the checks above, a digest or hash given matched: the caller holds the copy.
        return await self._describe(
            licence,
            today,
            unaltered=unaltered,
            check=check,
            signature=signature,
            copy_in_hand=digest is not None or sha256 is not None or content_hash is not None,
        )

    async def by_file(self, pdf: bytes, *, licence_no: str | None = None) -> LicenceVerification:
        """An uploaded certificate: its seal, that it is the file we issued, and the standing today
        of the licence version it shows (``licence_no``, when given, must be the one it shows)."""
        today = clock.today()
        # The PDF stack (reportlab, pypdf) is imported by the first check, not at start.
        from licensing.certificates.render import read_sealed

        sealed = read_sealed(pdf)
        if sealed is None:
            return _failed("not_sealed", today)
        content, signature = sealed
        number, version = content.get("licence_no"), content.get("version")
        fail = functools.partial(
            _failed,
            today=today,
            licence_no=number if isinstance(number, str) else None,
            version=version if isinstance(version, int) else None,
            signature=signature,
        )
        check = await self._check(content, signature)
        if check.failure is not None:
            return fail(check.failure.value)
        if licence_no is not None and licence_no.strip() != number:
            return fail("number_mismatch")
        if not isinstance(number, str) or not isinstance(version, int):
            return fail("not_registered")
        certificate = await self.certificates.by_number(number, version)
        if certificate is None or certificate.content_digest != signature.digest:
            return fail("not_registered")
        if hashlib.sha256(pdf).hexdigest() != certificate.pdf_sha256:
            return fail("file_altered", unaltered=False)
        licence = await self.session.get(Licence, certificate.licence_id)
        assert licence is not None, "certificates reference their licence version by foreign key"
        return await self._describe(
            licence, today, unaltered=True, check=check, signature=signature, copy_in_hand=True
        )

    async def _describe(
        self,
        licence: Licence,
        today: date,
        *,
        unaltered: bool | None = None,
        check: SealCheck | None = None,
        signature: SealSignature | None = None,
        copy_in_hand: bool,
    ) -> LicenceVerification:
        """A genuine licence version and where it stands today.

        Without ``copy_in_hand`` (a number looked up alone) the holder's name is shown as the
        register publishes it (``public_name``: a 个体工商户's owner's name masked): numbers are
        sequential, and a lookup by number alone would otherwise list every individual holder's
        name. A caller who presents the certificate (its file, QR digest or hashes) sees the
        name printed on it."""
        current = licence if licence.is_current else await self.licences.current(licence.licence_no)
        latest = current.version if current is not None else licence.version
        valid_now = (
            licence.is_current
            and licence.status == LicenceStatus.VALID
            and licence.valid_from <= today
            and (licence.valid_until is None or today <= licence.valid_until)
        )
        licence_type = await self.session.get(LicenceType, licence.licence_type)
        return LicenceVerification(
            result=VerificationResult.VALID if valid_now else VerificationResult.NOT_VALID,
            genuine=True,
            valid_now=valid_now,
            message=_status_message(licence, valid_now=valid_now, today=today, latest=latest),
            unaltered=unaltered,
            licence_no=licence.licence_no,
            version=licence.version,
            is_latest_version=licence.is_current,
            latest_version=latest,
            licence_type_name=licence_type.name if licence_type else None,
            holder_name=(
                licence.holder_name
                if copy_in_hand
                else public_name(licence.holder_name, licence.holder_uscc)
            ),
            holder_uscc=licence.holder_uscc,
            issuing_authority=licence.issuing_authority,
            issued_on=licence.issued_on,
            valid_from=licence.valid_from,
            valid_until=licence.valid_until,
            status=licence.status,
            status_label=LICENCE_STATUS_LABELS[LicenceStatus(licence.status)],
            act_on=licence.act_on,
            cancelled_on=licence.cancelled_on,
            seal_id=signature.seal.seal_id if signature else None,
            seal_authority=check.seal.authority if check and check.seal else None,
            signed_at=signature.signed_at if signature else None,
            checked_on=today,
        )
