"""Applicants' SM2 certificates and signatures, checked by independent implementations.

snowland-smx (pysmx) verifies the SM2 signatures (the CA's on certificates and CRLs, the phone's on a
digest) and ``cryptography``'s X.509 parser reads the certificates and CRLs the development CA makes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from pysmx.SM2 import Verify as independent_sm2_verify

from govshared.seal import DEFAULT_SIGNER_ID, generate_sm2_key, sm2_sign
from govshared.signing import (
    CertificateExpired,
    CertificateInvalid,
    CertificateRevoked,
    CertificateSubjectMismatch,
    CertificateUntrusted,
    CrlSource,
    RevocationUnavailable,
    SignatureContentMismatch,
    SignatureInvalid,
    SignatureVerifier,
    canonical_digest,
    mask_name,
    parse_certificate,
)
from govshared.signing.certs import raw_signature, to_der
from govshared.signing.devca import DevCA, IssuedSeal, main

USCC = "91350100M000100Y43"
OTHER_USCC = "91310000MA1FL0001B"
NAME = "上海盐业示范有限公司"


@pytest.fixture
def ca(tmp_path: Path) -> DevCA:
    return DevCA(tmp_path / "ca")


def verifier_for(ca: DevCA, **kwargs: float) -> SignatureVerifier:
    return SignatureVerifier(
        [(ca.certificate, CrlSource(str(ca.crl_path), ca.certificate, **kwargs))]
    )


def now() -> datetime:
    return datetime.now(UTC)


def test_certificates_read_by_an_independent_parser_and_signed_by_the_ca(ca: DevCA) -> None:
    seal = ca.issue_seal(uscc=USCC, name=NAME)
    cert = x509.load_pem_x509_certificate(seal.certificate_pem.encode())
    assert cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == USCC
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == NAME
    assert cert.signature_algorithm_oid.dotted_string == "1.2.156.10197.1.501"
    assert cert.serial_number == seal.serial
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # The CA's SM2 signature over the TBS certificate holds under pysmx.
    assert independent_sm2_verify(
        raw_signature(cert.signature),
        cert.tbs_certificate_bytes,
        ca.public_key,
        64,
        uid=DEFAULT_SIGNER_ID,
    )
    anchor = x509.load_pem_x509_certificate(ca.cert_path.read_bytes())
    assert anchor.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert parse_certificate(seal.certificate_pem).public_key == seal.public_key


def test_the_crl_lists_revoked_serials_and_is_signed_by_the_ca(ca: DevCA) -> None:
    seal = ca.issue_seal(uscc=USCC, name=NAME)
    ca.revoke(seal.serial)
    crl = x509.load_der_x509_crl(ca.crl_path.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(seal.serial) is not None
    assert independent_sm2_verify(
        raw_signature(crl.signature),
        crl.tbs_certlist_bytes,
        ca.public_key,
        64,
        uid=DEFAULT_SIGNER_ID,
    )


async def test_a_phone_signature_verifies_here_and_under_pysmx(ca: DevCA) -> None:
    seal = ca.issue_seal(uscc=USCC, name=NAME)
    _, digest = canonical_digest({"letter": "本企业承诺……", "item": "JXW-XK-002"})
    signature = sm2_sign(seal.private_key, seal.public_key, digest)
    assert independent_sm2_verify(signature, digest, seal.public_key, 64, uid=DEFAULT_SIGNER_ID)
    verified = await verifier_for(ca).verify(
        certificate=seal.certificate_pem,
        signature=signature,
        expected_digest=digest,
        signed_digest=digest.hex(),
        at=now(),
        uscc=USCC,
    )
    assert verified.signer == f"{NAME}（统一社会信用代码 {USCC}）"
    assert verified.digest == digest.hex()


async def test_each_bad_input_gets_its_own_code(ca: DevCA, tmp_path: Path) -> None:
    verifier = verifier_for(ca)
    seal = ca.issue_seal(uscc=USCC, name=NAME)
    _, digest = canonical_digest({"letter": "甲"})
    _, other = canonical_digest({"letter": "乙"})
    good = sm2_sign(seal.private_key, seal.public_key, digest)

    async def verify(cert: str, signature: str, **kwargs: object) -> object:
        args: dict[str, object] = {"expected_digest": digest, "at": now(), "uscc": USCC}
        args.update(kwargs)
        return await verifier.verify(certificate=cert, signature=signature, **args)  # type: ignore[arg-type]

    stranger_private, stranger_public = generate_sm2_key()
    with pytest.raises(SignatureInvalid):  # a key other than the certificate's
        await verify(seal.certificate_pem, sm2_sign(stranger_private, stranger_public, digest))
    with pytest.raises(SignatureContentMismatch):  # the phone signed something else
        await verify(
            seal.certificate_pem,
            sm2_sign(seal.private_key, seal.public_key, other),
            signed_digest=other.hex(),
        )
    with pytest.raises(SignatureInvalid):  # over other content, digest not stated
        await verify(seal.certificate_pem, sm2_sign(seal.private_key, seal.public_key, other))
    another = ca.issue_seal(uscc=OTHER_USCC, name="另一家企业有限公司")
    with pytest.raises(CertificateSubjectMismatch) as mismatch:
        await verify(
            another.certificate_pem, sm2_sign(another.private_key, another.public_key, digest)
        )
    assert mismatch.value.extensions["certificate_uscc"] == OTHER_USCC
    expired = ca.issue_seal(uscc=USCC, name=NAME, days=10, not_before=now() - timedelta(days=20))
    with pytest.raises(CertificateExpired):
        await verify(
            expired.certificate_pem, sm2_sign(expired.private_key, expired.public_key, digest)
        )
    rogue = DevCA(tmp_path / "rogue").issue_seal(uscc=USCC, name=NAME)
    with pytest.raises(CertificateUntrusted):
        await verify(rogue.certificate_pem, sm2_sign(rogue.private_key, rogue.public_key, digest))
    with pytest.raises(CertificateInvalid):
        await verify("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", good)
    # A certificate whose subject was edited after issue no longer carries the CA's signature.
    der = to_der(seal.certificate_pem)
    forged = der.replace(USCC.encode(), OTHER_USCC.encode())
    with pytest.raises(CertificateUntrusted):
        await verify(forged, good, uscc=OTHER_USCC)
    assert await verify(seal.certificate_pem, good)


def _sign_with(seal: IssuedSeal, digest: bytes) -> str:
    return sm2_sign(seal.private_key, seal.public_key, digest)


def test_the_dev_cas_certificates_are_signing_certificates(ca: DevCA, tmp_path: Path) -> None:
    """What ``make seal`` and the tests' phones get: keyUsage digitalSignature and nonRepudiation
    (contentCommitment), critical, read here and by ``cryptography``; the CA's own certificate
    signs certificates and CRLs only."""
    main(["--dir", str(tmp_path / "cli"), "issue", "--uscc", USCC, "--name", NAME])
    main(
        [
            "--dir",
            str(tmp_path / "cli"),
            "person",
            "--name",
            "张小三",
            "--id-number",
            "110101199003070011",
        ]
    )
    issued = [
        ca.issue_seal(uscc=USCC, name=NAME).certificate_pem.encode(),
        ca.issue_person(name="张小三", id_number="310101199001011234").certificate_pem.encode(),
        *(path.read_bytes() for path in (tmp_path / "cli" / "seals").glob("*.pem")),
    ]
    assert len(issued) == 4
    verifier = verifier_for(ca)
    for pem in issued:
        usage = x509.load_pem_x509_certificate(pem).extensions.get_extension_for_class(
            x509.KeyUsage
        )
        assert usage.critical
        assert usage.value.digital_signature and usage.value.content_commitment
        assert not (usage.value.key_encipherment or usage.value.data_encipherment)
        info = parse_certificate(pem)
        assert info.key_usage == {"digital_signature", "non_repudiation"} and info.may_sign
        assert not info.unknown_critical_extensions
    assert verifier.check_chain(issued[0], at=now())
    anchor = x509.load_pem_x509_certificate(ca.cert_path.read_bytes())
    ca_usage = anchor.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ca_usage.key_cert_sign and ca_usage.crl_sign and not ca_usage.digital_signature


async def test_an_encryption_certificate_cannot_sign(ca: DevCA) -> None:
    """In China's dual-certificate practice the encryption certificate's key is made and escrowed
    by the CA's key management centre: a signature under it is not the signer's alone (电子签名法
    第十三条). A certificate whose keyUsage allows neither digitalSignature nor nonRepudiation is
    refused as untrusted, with its own reason, though the CA issued it and the signature holds."""
    verifier = verifier_for(ca)
    _, digest = canonical_digest({"letter": "本企业承诺……"})
    encryption = ca.issue_seal(
        uscc=USCC, name=NAME, key_usage=frozenset({"key_encipherment", "data_encipherment"})
    )
    usage = (
        x509.load_pem_x509_certificate(encryption.certificate_pem.encode())
        .extensions.get_extension_for_class(x509.KeyUsage)
        .value
    )
    assert usage.key_encipherment and usage.data_encipherment and not usage.digital_signature
    with pytest.raises(CertificateUntrusted) as refused:
        await verifier.verify(
            certificate=encryption.certificate_pem,
            signature=_sign_with(encryption, digest),
            expected_digest=digest,
            at=now(),
            uscc=USCC,
        )
    problem = refused.value.to_problem(instance=None, request_id=None).model_dump()
    assert problem["status"] == 422 and problem["code"] == "certificate_untrusted"
    assert problem["reason"] == "not_a_signing_certificate"
    assert problem["key_usage"] == ["data_encipherment", "key_encipherment"]
    assert "加密证书" in problem["detail"] and problem["title_en"]
    # Checked again on every use (the chain check is cached, this one is not), and offline too.
    with pytest.raises(CertificateUntrusted):
        verifier.check_chain(encryption.certificate_pem, at=now())
    # Either signing bit is enough; a certificate without keyUsage limits nothing (RFC 5280).
    for bits in ({"digital_signature"}, {"non_repudiation"}, {"non_repudiation", "key_agreement"}):
        seal = ca.issue_seal(uscc=USCC, name=NAME, key_usage=frozenset(bits))
        assert await verifier.verify(
            certificate=seal.certificate_pem,
            signature=_sign_with(seal, digest),
            expected_digest=digest,
            at=now(),
            uscc=USCC,
        )


async def test_a_certificate_with_an_unknown_critical_extension_is_refused(ca: DevCA) -> None:
    verifier = verifier_for(ca)
    _, digest = canonical_digest({"letter": "甲"})
    unknown = {"extn_id": "1.2.156.112233.1.1", "critical": True, "extn_value": b"\x05\x00"}
    odd = ca.issue_seal(uscc=USCC, name=NAME, extra_extensions=[unknown])
    assert (
        x509.load_pem_x509_certificate(odd.certificate_pem.encode())
        .extensions.get_extension_for_oid(x509.ObjectIdentifier("1.2.156.112233.1.1"))
        .critical
    )
    with pytest.raises(CertificateUntrusted) as refused:
        await verifier.verify(
            certificate=odd.certificate_pem,
            signature=_sign_with(odd, digest),
            expected_digest=digest,
            at=now(),
        )
    assert refused.value.extensions["reason"] == "unknown_critical_extension"
    assert refused.value.extensions["extensions"] == ["1.2.156.112233.1.1"]
    # extendedKeyUsage is read, its purposes not matched: critical, it binds the key to purposes
    # the suite does not check, so it is refused as well.
    eku = {"extn_id": "extended_key_usage", "critical": True, "extn_value": ["server_auth"]}
    server = ca.issue_seal(uscc=USCC, name=NAME, extra_extensions=[eku])
    assert parse_certificate(server.certificate_pem).extended_key_usage == {"1.3.6.1.5.5.7.3.1"}
    with pytest.raises(CertificateUntrusted) as refused:
        verifier.check_chain(server.certificate_pem, at=now())
    assert refused.value.extensions["extensions"] == ["2.5.29.37"]
    # The same extensions, not critical, may be ignored.
    plain = ca.issue_seal(
        uscc=USCC,
        name=NAME,
        extra_extensions=[{**unknown, "critical": False}, {**eku, "critical": False}],
    )
    assert parse_certificate(plain.certificate_pem).extended_key_usage == {"1.3.6.1.5.5.7.3.1"}
    assert await verifier.verify(
        certificate=plain.certificate_pem,
        signature=_sign_with(plain, digest),
        expected_digest=digest,
        at=now(),
    )
    # An extension twice (which one would count?) makes the certificate unreadable.
    twice = ca.issue_seal(
        uscc=USCC,
        name=NAME,
        extra_extensions=[
            {"extn_id": "key_usage", "critical": True, "extn_value": {"key_encipherment"}}
        ],
    )
    with pytest.raises(CertificateInvalid):
        verifier.check_chain(twice.certificate_pem, at=now())


async def test_revocation_is_read_from_the_crl_cache_and_dated(ca: DevCA) -> None:
    source = CrlSource(str(ca.crl_path), ca.certificate, ttl=3600)
    verifier = SignatureVerifier([(ca.certificate, source)])
    seal = ca.issue_seal(uscc=USCC, name=NAME)
    _, digest = canonical_digest({"x": 1})
    signature = sm2_sign(seal.private_key, seal.public_key, digest)
    signed_at = now()
    await verifier.verify(
        certificate=seal.certificate_pem, signature=signature, expected_digest=digest, at=signed_at
    )
    ca.revoke(seal.serial)
    # Within the cache's time the old list holds; the CA's publication is picked up once read again.
    source.invalidate()
    with pytest.raises(CertificateRevoked):
        await verifier.verify(
            certificate=seal.certificate_pem, signature=signature, expected_digest=digest, at=now()
        )
    # A signature made before the revocation was made with a then-valid certificate.
    before = signed_at - timedelta(minutes=1)
    assert await verifier.check_certificate(seal.certificate_pem, at=before)


async def test_a_crl_read_before_stays_in_force_until_its_next_update(
    ca: DevCA, tmp_path: Path
) -> None:
    """The CA's endpoint down for a moment: the list read before is in force until its nextUpdate
    (RFC 5280), so signatures still go through; past it, none does; back, the new list is read."""
    published = tmp_path / "published.crl"
    published.write_bytes(ca.crl_path.read_bytes())
    ticks = [0.0]
    source = CrlSource(str(published), ca.certificate, ttl=300, clock=lambda: ticks[0])
    verifier = SignatureVerifier([(ca.certificate, source)])
    seal = ca.issue_seal(uscc=USCC, name=NAME)
    _, digest = canonical_digest({"x": 1})
    signature = sm2_sign(seal.private_key, seal.public_key, digest)

    async def check(at: datetime) -> object:
        return await verifier.verify(
            certificate=seal.certificate_pem, signature=signature, expected_digest=digest, at=at
        )

    await check(now())
    first = await source.current(now())
    published.unlink()  # the CA's endpoint is down
    ticks[0] = 301.0  # the cache's time is up
    await check(now())  # the list read before still holds
    with pytest.raises(RevocationUnavailable):  # past its nextUpdate it proves nothing
        await source.current(first.next_update + timedelta(seconds=1))
    # Back, with a new list: read once the retry pause has passed.
    ca.revoke(seal.serial)
    published.write_bytes(ca.crl_path.read_bytes())
    ticks[0] = 301.0 + 31.0
    with pytest.raises(CertificateRevoked):
        await check(now())


async def test_requests_waiting_on_a_ca_that_is_down_ask_it_once(ca: DevCA) -> None:
    """Twenty signatures arriving while the CA's endpoint hangs: one read of the list, not one
    after another (each waiting its timeout); all are answered with the list read before."""
    import asyncio

    from fastapi import FastAPI
    from fastapi.responses import Response

    from govshared.testing import serve_on_loopback

    asked = [0]
    down = [False]
    endpoint = FastAPI()

    @endpoint.get("/ca.crl")
    async def crl() -> Response:
        asked[0] += 1
        if down[0]:
            await asyncio.sleep(0.5)
            return Response(status_code=503)
        return Response(ca.crl_path.read_bytes(), media_type="application/pkix-crl")

    ticks = [0.0]
    async with serve_on_loopback(endpoint) as url:
        source = CrlSource(f"{url}/ca.crl", ca.certificate, ttl=300, clock=lambda: ticks[0])
        await source.current(now())
        assert asked == [1]
        down[0] = True
        ticks[0] = 301.0
        started = asyncio.get_running_loop().time()
        found = await asyncio.gather(*(source.current(now()) for _ in range(20)))
        elapsed = asyncio.get_running_loop().time() - started
    assert asked == [2] and len({id(f) for f in found}) == 1
    assert elapsed < 3.0


async def test_a_missing_or_foreign_crl_fails_closed(ca: DevCA, tmp_path: Path) -> None:
    seal = ca.issue_seal(uscc=USCC, name=NAME)
    _, digest = canonical_digest({"x": 1})
    signature = sm2_sign(seal.private_key, seal.public_key, digest)
    missing = SignatureVerifier(
        [(ca.certificate, CrlSource(str(tmp_path / "nowhere.der"), ca.certificate))]
    )
    with pytest.raises(RevocationUnavailable):
        await missing.verify(
            certificate=seal.certificate_pem, signature=signature, expected_digest=digest, at=now()
        )
    rogue = DevCA(tmp_path / "rogue")
    foreign = SignatureVerifier([(ca.certificate, CrlSource(str(rogue.crl_path), ca.certificate))])
    with pytest.raises(RevocationUnavailable):
        await foreign.verify(
            certificate=seal.certificate_pem, signature=signature, expected_digest=digest, at=now()
        )


def test_a_persons_id_number_is_only_a_salted_hash(ca: DevCA) -> None:
    id_number = "310101199001011234"
    person = ca.issue_person(name="张小三", id_number=id_number)
    assert id_number not in person.certificate_pem
    info = parse_certificate(person.certificate_pem)
    assert id_number.encode() not in info.der
    assert info.matches_id_number(id_number) and not info.matches_id_number("310101199001011235")
    assert info.display_name == "张*三" and mask_name("张三") == "张*"


def test_make_seal_issues_a_key_and_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["--dir", str(tmp_path / "ca"), "issue", "--uscc", USCC, "--name", NAME])
    out = capsys.readouterr().out
    assert USCC in out
    key = tmp_path / "ca" / "seals" / f"{USCC}.key"
    assert key.stat().st_mode & 0o077 == 0
    info = parse_certificate((tmp_path / "ca" / "seals" / f"{USCC}.pem").read_text())
    assert info.uscc == USCC
    with pytest.raises(SystemExit):
        main(["--dir", str(tmp_path / "ca"), "issue", "--uscc", "91350100M000100Y4X"])


def test_make_seal_issues_a_persons_key_without_the_id_number_in_clear(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    id_number = "110101199003070011"
    main(["--dir", str(tmp_path / "ca"), "person", "--name", "张小三", "--id-number", id_number])
    out = capsys.readouterr().out
    assert "张*三" in out and id_number not in out
    [cert_path] = (tmp_path / "ca" / "seals").glob("person-*.pem")
    [key_path] = (tmp_path / "ca" / "seals").glob("person-*.key")
    assert id_number not in cert_path.name and key_path.stat().st_mode & 0o077 == 0
    info = parse_certificate(cert_path.read_text())
    assert info.subject_kind.value == "person" and info.seal_kind == "个人签名"
    assert info.matches_id_number(id_number) and id_number not in cert_path.read_text()
