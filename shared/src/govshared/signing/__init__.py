"""Applicants' electronic signatures: SM2 certificates from a trusted CA, checked and verified.

An enterprise's electronic seal (公章, 法定代表人章) or a person's signing key is an X.509 certificate
with an SM2 key, issued by a CA the suite trusts (trust anchors are settings; development makes its own
CA, ``govshared.signing.devca``). ``SignatureVerifier`` checks a certificate's chain to an anchor, its
validity period and its revocation status (the CA's CRL, cached), then the SM2 signature over the SM3
digest of the canonical content. Each failure is a ``DomainError`` with a stable code, so that a
phone gets a clear reason (电子签名法 第十三条: a reliable signature is one whose key is the
signer's alone and whose alteration can be detected).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from tongsuopy.crypto import hashes as sm_hashes
from tongsuopy.crypto.asymciphers import ec
from tongsuopy.crypto.exceptions import InvalidSignature as _SmInvalidSignature

from govshared.problems import DependencyUnavailable, DomainError
from govshared.seal import canonical_json, sm2_verify, sm3_digest, sm3_hex
from govshared.signing.certs import (
    OID_SM2_WITH_SM3,
    CertInfo,
    CrlInfo,
    SealKind,
    SubjectKind,
    hash_id_number,
    mask_name,
    parse_certificate,
    parse_crl,
    subject_der,
)

__all__ = [
    "CertInfo",
    "CertificateExpired",
    "CertificateInvalid",
    "CertificateRevoked",
    "CertificateSubjectMismatch",
    "CertificateUntrusted",
    "CrlSource",
    "RevocationRecord",
    "RevocationUnavailable",
    "SealKind",
    "SignatureContentMismatch",
    "SignatureInvalid",
    "SignatureVerifier",
    "SubjectKind",
    "VerifiedSignature",
    "canonical_digest",
    "fingerprint",
    "hash_id_number",
    "mask_name",
    "parse_certificate",
]

logger = logging.getLogger("govshared.signing")


class CertificateInvalid(DomainError):
    """The certificate cannot be read as an SM2 X.509 certificate."""

    status = 422
    code = "certificate_invalid"
    title = "签名证书格式无效"
    title_en = "The signing certificate is not a well-formed SM2 X.509 certificate"


class CertificateUntrusted(DomainError):
    """The certificate does not chain to a trusted CA, or is not one a signature may be made with
    (``reason``: ``not_issued_by_a_trust_anchor``, ``trust_anchor_expired``,
    ``not_a_signing_certificate``, ``unknown_critical_extension``)."""

    status = 422
    code = "certificate_untrusted"
    title = "签名证书不是本系统信任的电子认证服务机构签发的"
    title_en = "The signing certificate was not issued by a trusted certification authority"


class CertificateExpired(DomainError):
    """The certificate is outside its validity period."""

    status = 422
    code = "certificate_expired"
    title = "签名证书不在有效期内"
    title_en = "The signing certificate is outside its validity period"


class CertificateRevoked(DomainError):
    """The CA has revoked the certificate."""

    status = 422
    code = "certificate_revoked"
    title = "签名证书已被吊销"
    title_en = "The signing certificate has been revoked"


class CertificateSubjectMismatch(DomainError):
    """The certificate names someone other than the signer expected."""

    status = 403
    code = "certificate_subject_mismatch"
    title = "签名证书不属于本申请人"
    title_en = "The signing certificate belongs to someone other than the applicant"


class SignatureContentMismatch(DomainError):
    """The signature was made over content other than what is to be signed."""

    status = 422
    code = "signature_content_mismatch"
    title = "签名所针对的内容与待签内容不一致"
    title_en = "The signature is over content other than the content to be signed"


class SignatureInvalid(DomainError):
    """The signature was not made with the certificate's key."""

    status = 422
    code = "signature_invalid"
    title = "签名值与签名证书的公钥不符"
    title_en = "The signature was not made with the key of the certificate"


class RevocationUnavailable(DependencyUnavailable):
    """The CA's revocation list could not be had (or is stale): fail closed."""

    code = "revocation_status_unavailable"
    title = "暂时无法确认签名证书的吊销状态"
    title_en = "The revocation status of the signing certificate is unavailable"


# SM2 curve order n (GB/T 32918.5).
SM2_ORDER = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)


def canonical_digest(content: object) -> tuple[bytes, bytes]:
    """(canonical JSON bytes, SM3 digest) of ``content``: what a phone is asked to sign."""
    data = canonical_json(content)
    return data, sm3_digest(data)


class CrlSource:
    """The CA's CRL from a file or an http(s) URL, kept ``ttl`` seconds (and re-read when stale).

    The CRL is checked against the anchor that issued it; one that cannot be had, or whose next update
    has passed, makes every check fail closed (``RevocationUnavailable``): a revoked seal must never
    pass because the list was out of reach. A list already read stays in force until its
    ``nextUpdate`` (RFC 5280 §5.1.2.5: the CA publishes the next one by then) when reading it again
    fails: a CA's endpoint down for a minute does not refuse every signature, and it is tried again
    after ``retry_seconds``.
    """

    def __init__(
        self,
        location: str,
        issuer: CertInfo,
        *,
        ttl: float = 300.0,
        retry_seconds: float = 30.0,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.location = location
        self.issuer = issuer
        self.ttl = ttl
        self.retry_seconds = min(retry_seconds, ttl)
        self.http = http
        self.clock = clock
        self._cached: CrlInfo | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def _read(self) -> bytes:
        if self.location.startswith(("http://", "https://")):
            client = self.http or httpx.AsyncClient(timeout=5.0)
            try:
                response = await client.get(self.location)
                response.raise_for_status()
                return response.content
            finally:
                if self.http is None:
                    await client.aclose()
        return await asyncio.to_thread(Path(self.location).read_bytes)

    def invalidate(self) -> None:
        """Forget the cached list (the CA just published a new one)."""
        self._cached = None

    async def current(self, now: datetime) -> CrlInfo:
        """The CRL in force; fetched when the cache is empty, older than ``ttl`` or past due."""
        cached = self._cached
        if (
            cached is not None
            and self.clock() - self._fetched_at < self.ttl
            and now <= cached.next_update
        ):
            return cached
        async with self._lock:
            # Another request may have read it (or found the CA down) while this one waited.
            cached = self._cached
            if (
                cached is not None
                and self.clock() - self._fetched_at < self.ttl
                and now <= cached.next_update
            ):
                return cached
            try:
                info = parse_crl(await self._read(), self.issuer)
            except (OSError, httpx.HTTPError, ValueError) as exc:
                cached = self._cached
                if cached is not None and now <= cached.next_update:
                    logger.warning(
                        "CA's CRL could not be read again: the list read before stays in force "
                        "until its next update",
                        extra={
                            "crl": self.location,
                            "next_update": cached.next_update.isoformat(),
                            "error": f"{type(exc).__name__}: {exc}"[:300],
                        },
                    )
                    self._fetched_at = self.clock() - self.ttl + self.retry_seconds
                    return cached
                raise RevocationUnavailable(
                    f"无法取得电子认证服务机构的证书吊销列表：{type(exc).__name__}",
                    dependency="ca_crl",
                ) from exc
            if now > info.next_update:
                raise RevocationUnavailable(
                    "电子认证服务机构的证书吊销列表已过期，暂时无法确认证书状态",
                    dependency="ca_crl",
                )
            self._cached, self._fetched_at = info, self.clock()
            return info


@dataclass(frozen=True)
class RevocationRecord:
    """What the revocation check found when a signature arrived: kept as evidence, so that a later
    verifier can say the certificate was not revoked at signing time (电子签名法 第十三条)."""

    status: str  # "good": not on the CA's list at signing time
    method: str  # "CRL"
    crl_issuer: str
    crl_location: str
    crl_this_update: datetime
    crl_next_update: datetime
    checked_at: datetime

    def as_json(self) -> dict[str, str]:
        """The record as JSON values (times in UTC, ISO 8601)."""
        return {
            "status": self.status,
            "method": self.method,
            "crl_issuer": self.crl_issuer,
            "crl_location": self.crl_location,
            "crl_this_update": self.crl_this_update.astimezone(UTC).isoformat(),
            "crl_next_update": self.crl_next_update.astimezone(UTC).isoformat(),
            "checked_at": self.checked_at.astimezone(UTC).isoformat(),
        }


@dataclass(frozen=True)
class VerifiedSignature:
    """A signature that holds, with its certificate and what the check found."""

    certificate: CertInfo
    digest: str
    signature: str
    checked_at: datetime
    revocation: RevocationRecord | None = None

    @property
    def signer(self) -> str:
        """The signer as shown to a verifier."""
        return self.certificate.display_name


class SignatureVerifier:
    """Checks certificates against trust anchors and their CRLs, and SM2 signatures under them."""

    def __init__(self, anchors: Iterable[tuple[CertInfo, CrlSource | None]]) -> None:
        self._anchors: dict[bytes, tuple[CertInfo, CrlSource | None]] = {
            subject_der(anchor): (anchor, source) for anchor, source in anchors
        }
        # Parsing a certificate and checking the CA's signature on it are most of a check's cost; a
        # phone sends the same certificate each time, so both are done once per certificate.
        self._parsed: dict[bytes, CertInfo] = {}
        self._chained: set[bytes] = set()
        self._keys: dict[str, Any] = {}

    def read(self, certificate: bytes | str) -> CertInfo:
        """Parse a certificate (cached by its bytes); ``CertificateInvalid`` when it cannot be read."""
        key = certificate.encode() if isinstance(certificate, str) else certificate
        info = self._parsed.get(key)
        if info is None:
            try:
                info = parse_certificate(certificate)
            except ValueError as exc:
                raise CertificateInvalid(f"签名证书无法解析：{exc}") from exc
            if len(self._parsed) > 10_000:
                self._parsed.clear()
            self._parsed[key] = info
        return info

    def check_chain(self, certificate: bytes | str, *, at: datetime) -> CertInfo:
        """The certificate if a trust anchor issued it and both were valid at ``at`` (no CRL: what
        a verifier of an old signature checks offline); else the matching ``DomainError``."""
        info = self.read(certificate)
        anchor = self._anchors.get(info.issuer_der)
        if anchor is None or (
            info.der not in self._chained
            and (
                info.is_ca
                or info.signature_oid != OID_SM2_WITH_SM3
                or not sm2_verify(anchor[0].public_key, info.tbs, info.signature)
            )
        ):
            raise CertificateUntrusted(
                "签名证书不是由本系统信任的电子认证服务机构签发，或证书内容已被改动",
                reason="not_issued_by_a_trust_anchor",
                serial=f"{info.serial:x}",
            )
        if not info.may_sign:
            raise CertificateUntrusted(
                "签名证书不是签名用证书：其密钥用法既不含数字签名（digitalSignature）也不含"
                "不可否认（nonRepudiation），如双证书体系中密钥由电子认证服务机构托管的加密证书，"
                "不能用于电子签名",
                reason="not_a_signing_certificate",
                serial=f"{info.serial:x}",
                key_usage=sorted(info.key_usage or ()),
            )
        if info.unknown_critical_extensions:
            raise CertificateUntrusted(
                "签名证书含有本系统无法识别的关键扩展，不能确认该证书可用于电子签名",
                reason="unknown_critical_extension",
                serial=f"{info.serial:x}",
                extensions=sorted(info.unknown_critical_extensions),
            )
        if len(self._chained) > 10_000:
            self._chained.clear()
        self._chained.add(info.der)
        if not info.valid_at(at):
            raise CertificateExpired(
                f"签名证书有效期为 {info.not_before:%Y-%m-%d} 至 {info.not_after:%Y-%m-%d}",
                not_before=info.not_before.isoformat(),
                not_after=info.not_after.isoformat(),
            )
        if not anchor[0].valid_at(at):
            raise CertificateUntrusted(
                "签发签名证书的电子认证服务机构证书已不在有效期内", reason="trust_anchor_expired"
            )
        return info

    def issuer_of(self, info: CertInfo) -> CertInfo | None:
        """The trust anchor that issued ``info``, if it is one of ours."""
        anchor = self._anchors.get(info.issuer_der)
        return anchor[0] if anchor else None

    async def check_certificate(
        self, certificate: bytes | str, *, at: datetime, revocation_at: datetime | None = None
    ) -> CertInfo:
        """The certificate if it chains to an anchor, is valid at ``at`` and was not revoked by
        ``revocation_at`` (default ``at``); else the matching ``DomainError``."""
        info, _ = await self._checked(certificate, at=at, revocation_at=revocation_at)
        return info

    async def _checked(
        self, certificate: bytes | str, *, at: datetime, revocation_at: datetime | None = None
    ) -> tuple[CertInfo, RevocationRecord | None]:
        info = self.check_chain(certificate, at=at)
        ca, source = self._anchors[info.issuer_der]
        if source is None:
            return info, None
        crl = await source.current(datetime.now(UTC))
        revoked_at = crl.revoked.get(info.serial)
        if revoked_at is not None and revoked_at <= (revocation_at or at):
            raise CertificateRevoked(
                f"签名证书已于 {revoked_at:%Y-%m-%d %H:%M} 被吊销",
                serial=f"{info.serial:x}",
                revoked_at=revoked_at.isoformat(),
            )
        return info, RevocationRecord(
            status="good",
            method="CRL",
            crl_issuer=ca.name,
            crl_location=source.location,
            crl_this_update=crl.this_update,
            crl_next_update=crl.next_update,
            checked_at=at,
        )

    async def verify(
        self,
        *,
        certificate: bytes | str,
        signature: str,
        expected_digest: bytes,
        signed_digest: str | None = None,
        at: datetime,
        uscc: str | None = None,
        id_number: str | None = None,
    ) -> VerifiedSignature:
        """Check the certificate, the signer it names and the SM2 signature over ``expected_digest``.

        ``signed_digest`` is what the phone says it signed: a different one is
        ``SignatureContentMismatch``; the right one with a signature the key did not make is
        ``SignatureInvalid`` (wrong key for the certificate).
        """
        info, revocation = await self._checked(certificate, at=at)
        if uscc is not None and (
            info.subject_kind is not SubjectKind.ENTERPRISE or info.uscc != uscc
        ):
            raise CertificateSubjectMismatch(
                f"签名证书属于 {info.display_name}，不是统一社会信用代码为 {uscc} 的申请人",
                certificate_uscc=info.uscc,
            )
        if id_number is not None and not info.matches_id_number(id_number):
            raise CertificateSubjectMismatch("签名证书不属于本申请人（身份证件号码不符）")
        if signed_digest is not None and signed_digest.lower() != expected_digest.hex():
            raise SignatureContentMismatch(
                "手机签名的摘要与本次待签内容的 SM3 摘要不一致",
                expected_digest=expected_digest.hex(),
            )
        signature = signature.strip().lower()
        if not self._verify(info.public_key, expected_digest, signature):
            raise SignatureInvalid(
                "签名值无法用签名证书的公钥验证：签名不是由该证书对应的私钥作出，或所签内容不同"
            )
        return VerifiedSignature(
            certificate=info,
            digest=expected_digest.hex(),
            signature=signature,
            checked_at=at,
            revocation=revocation,
        )

    def _verify(self, public_key: str, message: bytes, signature: str) -> bool:
        """``sm2_verify`` with the public key object kept (building it costs a point check)."""
        key = self._keys.get(public_key)
        if key is None:
            x, y = int(public_key[:64], 16), int(public_key[64:], 16)
            try:
                key = ec.EllipticCurvePublicNumbers(x, y, ec.SM2()).public_key()
            except ValueError:
                return False
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[public_key] = key
        if len(signature) != 128:
            return False
        try:
            r, s = int(signature[:64], 16), int(signature[64:], 16)
            if not (0 < r < SM2_ORDER and 0 < s < SM2_ORDER):
                return False
            key.verify(encode_dss_signature(r, s), message, ec.ECDSA(sm_hashes.SM3()))
        except (ValueError, _SmInvalidSignature):
            return False
        return True


def fingerprint(der: bytes) -> str:
    """SM3 fingerprint of a DER certificate, hex."""
    return sm3_hex(der)
