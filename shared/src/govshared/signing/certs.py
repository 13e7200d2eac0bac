"""X.509 certificates and CRLs with SM2 keys, signed SM2-with-SM3 (GM/T 0015), built and read here.

``cryptography`` reads X.509 but cannot sign or verify with SM2, so the structures are made and
parsed with ``asn1crypto`` and the SM2 arithmetic is Tongsuo's (``govshared.seal``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from govshared.seal import sm2_sign, sm2_verify, sm3_hex

if TYPE_CHECKING:
    from asn1crypto import keys, x509

# asn1crypto (about 6 MB of a process's memory) is imported by the first certificate built or read:
# approval imports this module at start, and a signature is checked long after, if ever.

# GM/T 0006: the SM2 curve and the SM2-with-SM3 signature algorithm.
OID_SM2_CURVE = "1.2.156.10197.1.301"
OID_SM2_WITH_SM3 = "1.2.156.10197.1.501"

# keyUsage bits (RFC 5280 §4.2.1.3, asn1crypto's names) that let a key sign what its holder commits
# to: digitalSignature and nonRepudiation (contentCommitment). An encryption certificate of China's
# dual-certificate practice has neither: its key was made, and is kept, by the CA's
# key management centre, so a signature under it is not the signer's alone (电子签名法 第十三条).
SIGNING_KEY_USAGES = frozenset({"digital_signature", "non_repudiation"})
# The usages a CA's own certificate has (the development CA's).
CA_KEY_USAGES = frozenset({"key_cert_sign", "crl_sign"})
# Extensions whose meaning the suite applies to an applicant's certificate; any other marked critical
# is one a verifier must not ignore (RFC 5280 §4.2), so the certificate is refused. extendedKeyUsage
# is read but its purposes are not matched: marked critical, it is refused too.
UNDERSTOOD_EXTENSIONS = frozenset({"basic_constraints", "key_usage"})


class SubjectKind(StrEnum):
    """Who a certificate names."""

    ENTERPRISE = "enterprise"  # an enterprise's electronic seal, bound to its USCC
    PERSON = "person"  # a natural person's signing key, bound to a salted hash of the ID number


class SealKind(StrEnum):
    """Kinds of enterprise seals (电子印章) and the person's signature."""

    OFFICIAL = "公章"
    LEGAL_REPRESENTATIVE = "法定代表人章"
    PERSONAL = "个人签名"


@dataclass(frozen=True)
class CertInfo:
    """What the suite reads from a certificate."""

    der: bytes
    serial: int
    issuer_der: bytes
    subject_kind: SubjectKind
    name: str  # enterprise name, or the person's name
    seal_kind: str
    uscc: str | None
    id_hash: str | None  # "salt:SM3(salt‖ID number)", hex, persons only
    public_key: str  # SM2 x‖y, hex
    not_before: datetime
    not_after: datetime
    is_ca: bool
    tbs: bytes
    signature: str  # issuer's SM2 signature r‖s, hex
    signature_oid: str
    # keyUsage bits (asn1crypto's names, e.g. "digital_signature", "non_repudiation"); None when the
    # certificate has no keyUsage extension (then RFC 5280 puts no limit on the key's use).
    key_usage: frozenset[str] | None = None
    # extendedKeyUsage purposes as dotted OIDs; None without the extension. Recorded, not matched
    # (a critical one is among ``unknown_critical_extensions``).
    extended_key_usage: frozenset[str] | None = None
    # Critical extensions the suite does not apply (dotted OIDs): a verifier must refuse them.
    unknown_critical_extensions: frozenset[str] = frozenset()

    @property
    def may_sign(self) -> bool:
        """False when a keyUsage extension is present and allows neither digitalSignature nor
        nonRepudiation (contentCommitment): e.g. an encryption certificate, whose key the CA holds."""
        return self.key_usage is None or bool(self.key_usage & SIGNING_KEY_USAGES)

    @property
    def fingerprint(self) -> str:
        """SM3 of the DER certificate, hex."""
        return sm3_hex(self.der)

    @property
    def display_name(self) -> str:
        """The signer as a verifier shows it: enterprise name and USCC, or a masked person's name."""
        if self.subject_kind is SubjectKind.ENTERPRISE:
            return f"{self.name}（统一社会信用代码 {self.uscc}）"
        return mask_name(self.name)

    def valid_at(self, at: datetime) -> bool:
        """True when ``at`` lies in the certificate's validity period."""
        return self.not_before <= at <= self.not_after

    def matches_id_number(self, id_number: str) -> bool:
        """True when the certificate's hashed ID number is that of ``id_number``."""
        if self.id_hash is None:
            return False
        salt, _ = self.id_hash.split(":", 1)
        return secrets.compare_digest(hash_id_number(id_number, salt=salt), self.id_hash)


def mask_name(name: str) -> str:
    """张三 → 张*, 张小三 → 张*三 (the 个人信息保护法 minimum a public page may show)."""
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def hash_id_number(id_number: str, *, salt: str | None = None) -> str:
    """``salt:SM3(salt‖ID number)``; the ID number itself is never written anywhere."""
    salt = salt or secrets.token_hex(16)
    return f"{salt}:{sm3_hex(bytes.fromhex(salt) + id_number.strip().upper().encode())}"


def public_key_info(public_key: str) -> keys.PublicKeyInfo:
    """SubjectPublicKeyInfo of an SM2 public key (x‖y hex)."""
    from asn1crypto import keys

    return keys.PublicKeyInfo(
        {
            "algorithm": {
                "algorithm": "ec",
                "parameters": keys.ECDomainParameters(name="named", value=OID_SM2_CURVE),
            },
            "public_key": bytes.fromhex("04" + public_key),
        }
    )


def _sig_algorithm() -> dict[str, Any]:
    return {"algorithm": OID_SM2_WITH_SM3}


def der_signature(signature_hex: str) -> bytes:
    """r‖s hex → the DER SEQUENCE {r, s} X.509 carries."""
    return encode_dss_signature(int(signature_hex[:64], 16), int(signature_hex[64:], 16))


def raw_signature(der: bytes) -> str:
    """The DER SEQUENCE {r, s} → r‖s hex."""
    r, s = decode_dss_signature(der)
    return f"{r:064x}{s:064x}"


def _time(at: datetime) -> x509.Time:
    from asn1crypto import x509

    at = at.astimezone(UTC).replace(microsecond=0)
    if at.year < 2050:
        return x509.Time(name="utc_time", value=at)
    return x509.Time(name="general_time", value=at)


def build_certificate(
    *,
    issuer: x509.Name,
    issuer_private_key: str,
    issuer_public_key: str,
    subject: x509.Name,
    public_key: str,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    is_ca: bool,
    key_usage: frozenset[str] | None = None,
    extra_extensions: list[dict[str, Any]] | None = None,
) -> bytes:
    """A DER X.509 v3 certificate signed SM2-with-SM3 by the issuer.

    keyUsage (critical) is ``key_usage`` when given, else a CA's (keyCertSign, cRLSign) or a signing
    certificate's (digitalSignature, nonRepudiation); ``extra_extensions`` are appended as given
    (asn1crypto ``Extension`` dicts), so tests can make the certificates a verifier must refuse.
    """
    from asn1crypto import x509

    if key_usage is None:
        key_usage = CA_KEY_USAGES if is_ca else SIGNING_KEY_USAGES
    extensions: list[dict[str, Any]] = [
        {"extn_id": "basic_constraints", "critical": True, "extn_value": {"ca": is_ca}},
        {"extn_id": "key_usage", "critical": True, "extn_value": set(key_usage)},
        *(extra_extensions or []),
    ]
    tbs = x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": serial,
            "signature": _sig_algorithm(),
            "issuer": issuer,
            "validity": {"not_before": _time(not_before), "not_after": _time(not_after)},
            "subject": subject,
            "subject_public_key_info": public_key_info(public_key),
            "extensions": extensions,
        }
    )
    signature = sm2_sign(issuer_private_key, issuer_public_key, tbs.dump())
    cert = x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": _sig_algorithm(),
            "signature_value": der_signature(signature),
        }
    )
    return bytes(cert.dump())


def build_crl(
    *,
    issuer: x509.Name,
    issuer_private_key: str,
    issuer_public_key: str,
    revoked: dict[int, datetime],
    this_update: datetime,
    next_update: datetime,
) -> bytes:
    """A DER CRL (v2) listing ``revoked`` serials with their revocation times, signed by the CA."""
    from asn1crypto import crl

    entries = [
        {"user_certificate": serial, "revocation_date": _time(at)}
        for serial, at in sorted(revoked.items())
    ]
    tbs = crl.TbsCertList(
        {
            "version": "v2",
            "signature": _sig_algorithm(),
            "issuer": issuer,
            "this_update": _time(this_update),
            "next_update": _time(next_update),
            "revoked_certificates": entries or None,
        }
    )
    signature = sm2_sign(issuer_private_key, issuer_public_key, tbs.dump())
    return bytes(
        crl.CertificateList(
            {
                "tbs_cert_list": tbs,
                "signature_algorithm": _sig_algorithm(),
                "signature": der_signature(signature),
            }
        ).dump()
    )


def enterprise_name(*, uscc: str, name: str, seal_kind: SealKind) -> x509.Name:
    """Subject of an enterprise seal: O = enterprise, serialNumber = USCC, title = seal kind."""
    from asn1crypto import x509

    return x509.Name.build(
        {
            "country_name": "CN",
            "organization_name": name,
            "common_name": f"{name}{seal_kind.value}",
            "serial_number": uscc,
            "title": seal_kind.value,
        }
    )


def person_name(*, name: str, id_hash: str) -> x509.Name:
    """Subject of a person's key: CN = name, pseudonym = salted SM3 of the ID number."""
    from asn1crypto import x509

    return x509.Name.build(
        {
            "country_name": "CN",
            "common_name": name,
            "pseudonym": id_hash,
            "title": SealKind.PERSONAL.value,
        }
    )


def to_der(data: bytes | str) -> bytes:
    """PEM or DER (bytes or text) → DER."""
    from asn1crypto import pem

    raw = data.encode() if isinstance(data, str) else data
    if pem.detect(raw):
        _, _, der = pem.unarmor(raw)
        return bytes(der)
    return raw


def to_pem(der: bytes, kind: str = "CERTIFICATE") -> str:
    """DER → PEM text."""
    from asn1crypto import pem

    return bytes(pem.armor(kind, der)).decode()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_certificate(data: bytes | str) -> CertInfo:
    """Read a certificate; ``ValueError`` when it is not a well-formed SM2 certificate."""
    from asn1crypto import x509

    der = to_der(data)
    try:
        cert = x509.Certificate.load(der, strict=True)
        tbs = cert["tbs_certificate"]
        spki = tbs["subject_public_key_info"]
        params = spki["algorithm"]["parameters"]
        if spki["algorithm"]["algorithm"].native != "ec" or params.chosen.dotted != OID_SM2_CURVE:
            raise ValueError("not an SM2 public key")
        point = bytes(spki["public_key"].native)
        if len(point) != 65 or point[0] != 4:
            raise ValueError("not an uncompressed SM2 point")
        subject = tbs["subject"].native
        validity = tbs["validity"]
        seen: set[str] = set()
        unknown_critical: set[str] = set()
        for extension in tbs["extensions"]:
            oid = extension["extn_id"].dotted
            if oid in seen:  # RFC 5280 §4.2: at most one instance of an extension
                raise ValueError(f"extension {oid} appears more than once")
            seen.add(oid)
            if (
                extension["critical"].native
                and extension["extn_id"].native not in UNDERSTOOD_EXTENSIONS
            ):
                unknown_critical.add(oid)
        constraints = cert.basic_constraints_value
        usage = cert.key_usage_value
        purposes = cert.extended_key_usage_value
        pseudonym = subject.get("pseudonym")
        info = CertInfo(
            der=der,
            serial=int(tbs["serial_number"].native),
            issuer_der=bytes(tbs["issuer"].dump()),
            subject_kind=SubjectKind.PERSON if pseudonym else SubjectKind.ENTERPRISE,
            name=subject.get("organization_name") or subject.get("common_name") or "",
            seal_kind=subject.get("title") or "",
            uscc=subject.get("serial_number"),
            id_hash=pseudonym,
            public_key=point[1:].hex(),
            not_before=_aware(validity["not_before"].native),
            not_after=_aware(validity["not_after"].native),
            is_ca=bool(constraints and constraints["ca"].native),
            tbs=bytes(tbs.dump()),
            signature=raw_signature(bytes(cert["signature_value"].native)),
            signature_oid=cert["signature_algorithm"]["algorithm"].dotted,
            key_usage=frozenset(usage.native) if usage is not None else None,
            extended_key_usage=(
                frozenset(purpose.dotted for purpose in purposes) if purposes is not None else None
            ),
            unknown_critical_extensions=frozenset(unknown_critical),
        )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"not a well-formed SM2 certificate: {exc}") from exc
    if info.subject_kind is SubjectKind.ENTERPRISE and not info.uscc and not info.is_ca:
        raise ValueError("an enterprise certificate names no USCC")
    return info


@dataclass(frozen=True)
class CrlInfo:
    """A parsed, signature-checked CRL."""

    issuer_der: bytes
    this_update: datetime
    next_update: datetime
    revoked: dict[int, datetime]


def parse_crl(data: bytes, issuer: CertInfo) -> CrlInfo:
    """Read a CRL and check the issuer's signature on it; ``ValueError`` if either fails."""
    from asn1crypto import crl

    try:
        value = crl.CertificateList.load(to_der(data), strict=True)
        tbs = value["tbs_cert_list"]
        if value["signature_algorithm"]["algorithm"].dotted != OID_SM2_WITH_SM3:
            raise ValueError("CRL not signed SM2-with-SM3")
        signature = raw_signature(bytes(value["signature"].native))
        issuer_der = bytes(tbs["issuer"].dump())
        revoked = {
            int(entry["user_certificate"].native): _aware(entry["revocation_date"].native)
            for entry in tbs["revoked_certificates"]
        }
        info = CrlInfo(
            issuer_der=issuer_der,
            this_update=_aware(tbs["this_update"].native),
            next_update=_aware(tbs["next_update"].native),
            revoked=revoked,
        )
        tbs_der = bytes(tbs.dump())
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"not a well-formed CRL: {exc}") from exc
    if issuer_der != _subject_der(issuer) or not sm2_verify(issuer.public_key, tbs_der, signature):
        raise ValueError("the CRL is not signed by the trusted CA")
    return info


def _subject_der(cert: CertInfo) -> bytes:
    from asn1crypto import x509

    return bytes(x509.Certificate.load(cert.der)["tbs_certificate"]["subject"].dump())


def subject_der(cert: CertInfo) -> bytes:
    """The DER subject name of a certificate (what its children name as issuer)."""
    return _subject_der(cert)


def random_serial() -> int:
    """A positive 63-bit certificate serial number (RFC 5280 §4.1.2.2)."""
    return int.from_bytes(hashlib.sha256(secrets.token_bytes(32)).digest()[:8], "big") >> 1 or 1
