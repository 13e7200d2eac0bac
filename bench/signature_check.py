"""CPU per applicant signature check: certificate chain, validity, CRL (cached), SM2 over SM3.

What ``POST /api/v1/signing-sessions/{id}/signature`` does for each phone's signature, without HTTP
or the database: a development CA issues seals, each is checked the way the service checks it. Prints
the CPU time (``time.process_time``) per check, warm (the phone's certificate seen before: parsed
once, cached) and cold (a certificate never seen), and the check of the signature a signed PDF
carries (the public verification of a 告知承诺书 or 送达回证). The target is under 2 ms. Asserts
nothing.

    python3 -m uv run --locked python bench/signature_check.py [checks]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from govshared.seal import canonical_json, sm2_sign, sm3_hex
from govshared.signing import CrlSource, SignatureVerifier, canonical_digest
from govshared.signing.devca import DevCA
from govshared.signing.phone import sign_digest

TARGET_MS = 2.0


async def main(checks: int) -> None:
    """Issue seals, sign digests, and time the checks."""
    with tempfile.TemporaryDirectory() as tmp:
        ca = DevCA(Path(tmp) / "ca")
        for _ in range(20):  # a CRL with some entries, as a real one has
            ca.revoke(ca.issue_seal(uscc="91350100M000100Y43", name="吊销示范有限公司").serial)
        source = CrlSource(str(ca.crl_path), ca.certificate, ttl=3600)
        verifier = SignatureVerifier([(ca.certificate, source)])
        seals = [
            ca.issue_seal(uscc="91350100M000100Y43", name="上海盐业示范有限公司") for _ in range(50)
        ]
        work = []
        for index in range(checks):
            seal = seals[index % len(seals)]
            _, digest = canonical_digest({"letter": "本企业承诺……", "n": index})
            work.append((seal, digest, sm2_sign(seal.private_key, seal.public_key, digest)))
        now = datetime.now(UTC)
        await source.current(now)  # the CRL is fetched once per cache period, not per check

        async def run(batch: list, *, cold: bool) -> float:
            start = time.process_time()
            for seal, digest, signature in batch:
                if cold:
                    verifier._parsed.clear()
                await verifier.verify(
                    certificate=seal.certificate_pem,
                    signature=signature,
                    expected_digest=digest,
                    signed_digest=digest.hex(),
                    at=now,
                    uscc="91350100M000100Y43",
                )
            return (time.process_time() - start) * 1000 / len(batch)

        warm = await run(work, cold=False)
        cold = await run(work[: max(1, checks // 4)], cold=True)
        document = signed_document_check(verifier, seals[0], checks)
    print(f"signature checks: {checks} (50 seals, CRL of 20 entries, cached)")
    print(f"  CPU per check, certificate seen before: {warm:.3f} ms   (target < {TARGET_MS} ms)")
    print(f"  CPU per check, certificate never seen:  {cold:.3f} ms")
    print(
        f"  CPU per check of a signed 告知承诺书 (public verification, PDF already read): "
        f"{document:.3f} ms"
    )


def signed_document_check(verifier: SignatureVerifier, seal: Any, checks: int) -> float:
    """What ``/api/v1/documents/verify`` does with the signature a signed PDF carries: SM3 of the
    content (a 2 KB letter), chain and validity at signing time, SM2, subject, recorded CRL."""
    from approval.documents.signed import check_signed

    content = {
        "purpose": "commitment",
        "applicant_uscc": "91350100M000100Y43",
        "applicant_name": "上海盐业示范有限公司",
        "text": "本企业承诺符合许可条件，提交的材料真实有效。" * 30,
    }
    text = canonical_json(content).decode()
    digest = sm3_hex(text.encode())
    record = {
        "digest": digest,
        "signature": sign_digest(seal.private_key, digest),
        "certificate": seal.certificate_pem,
        "signed_at": datetime.now(UTC).isoformat(),
        "revocation_at_signing": {"status": "good", "crl_issuer": "CA"},
    }
    assert check_signed(verifier, number="N", content_text=text, record=record).genuine
    start = time.process_time()
    for _ in range(checks):
        check_signed(verifier, number="N", content_text=text, record=record)
    return (time.process_time() - start) * 1000 / checks


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
