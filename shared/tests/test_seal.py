"""Electronic seals: SM2 over SM3, checked by a second implementation; the HTTP seal-service signer."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pysmx.SM2 import Verify as independent_sm2_verify
from pysmx.SM3 import digest as independent_sm3

from govshared.seal import (
    DEFAULT_SIGNER_ID,
    DevelopmentSeals,
    Failure,
    HttpSealSigner,
    OneSeal,
    SealNotValid,
    SealUnavailable,
    SealVerifier,
    Sm2Signer,
    ensure_dev_seal_key,
    generate_sm2_key,
    load_sm2_private_key,
    sm2_sign,
    sm2_verify,
    sm3_digest,
    sm3_hex,
    to_be_signed,
)
from govshared.seal.production import is_sm2_public_key, refuse_dev_seal

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
FROM, UNTIL = NOW - timedelta(days=365), NOW + timedelta(days=365)
AUTHORITY = "上海市浦东新区市场监督管理局"


def make_signer(
    private: str, *, until: datetime = UNTIL, seal_id: str = "3101150000001"
) -> Sm2Signer:
    return Sm2Signer(
        private_key=private,
        seal_id=seal_id,
        authority=AUTHORITY,
        valid_from=FROM,
        valid_until=until,
        now=lambda: NOW,
    )


def test_sm3_matches_the_standard_vector_and_a_second_library() -> None:
    # GB/T 32905 appendix A, example 1.
    assert sm3_hex(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    data = "准予行政许可决定书".encode()
    assert sm3_digest(data) == bytes(independent_sm3(data))


async def test_sm2_signature_holds_under_an_independent_implementation() -> None:
    private, public = generate_sm2_key()
    signer = make_signer(private)
    digest = sm3_digest(b'{"doc":"content"}')
    sealed = await signer.sign(digest)
    assert sealed.seal.public_key == public and sealed.signed_at == NOW
    tbs = to_be_signed(digest_hex=digest.hex(), seal_id=sealed.seal.seal_id, signed_at=NOW)
    # snowland-smx (pysmx) computes e = SM3(Z_A ‖ M) itself from the signer id and the public key.
    assert independent_sm2_verify(sealed.signature, tbs, public, 64, uid=DEFAULT_SIGNER_ID)
    assert not independent_sm2_verify(
        sealed.signature, tbs.replace(b"digest", b"digesT"), public, 64, uid=DEFAULT_SIGNER_ID
    )
    assert SealVerifier([sealed.seal]).check(sealed, digest=digest).valid


async def test_verifier_names_why_a_signature_fails() -> None:
    private, _ = generate_sm2_key()
    signer = make_signer(private)
    digest = sm3_digest(b"original")
    sealed = await signer.sign(digest)
    verifier = SealVerifier([sealed.seal])

    changed = verifier.check(sealed, digest=sm3_digest(b"originaL"))
    assert changed.failure is Failure.DIGEST_MISMATCH and "篡改" in (changed.reason or "")

    forged = sealed.model_copy(update={"digest": sm3_digest(b"other").hex()})
    assert verifier.check(forged, digest=sm3_digest(b"other")).failure is Failure.BAD_SIGNATURE

    stranger, _ = generate_sm2_key()
    unknown = await make_signer(stranger).sign(digest)
    assert verifier.check(unknown, digest=digest).failure is Failure.UNKNOWN_SEAL

    # The key holder claims a longer validity than the one registered: the registered one counts.
    late = make_signer(private, until=NOW + timedelta(days=9999)).sign_at(
        digest, UNTIL + timedelta(days=1)
    )
    assert verifier.check(late, digest=digest).failure is Failure.SEAL_EXPIRED


async def test_a_seal_outside_its_validity_cannot_sign() -> None:
    private, _ = generate_sm2_key()
    expired = make_signer(private, until=NOW - timedelta(days=1))
    with pytest.raises(SealNotValid) as caught:
        await expired.sign(sm3_digest(b"x"))
    assert caught.value.code == "seal_not_valid" and "有效期" in str(caught.value)


def test_development_key_is_made_once(tmp_path: Path) -> None:
    path = ensure_dev_seal_key(tmp_path / "keys")
    first = load_sm2_private_key(path)
    assert ensure_dev_seal_key(tmp_path / "keys") == path
    assert load_sm2_private_key(path) == first and len(first[1]) == 128
    assert path.stat().st_mode & 0o777 == 0o600


class _SealService(BaseHTTPRequestHandler):
    """A stand-in of an external seal platform, signing with its own key."""

    signer: Sm2Signer
    clock: list[datetime]

    def log_message(self, format: str, *args: object) -> None:  # silence stderr
        pass

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        identity = self.signer._identity
        if self.path != f"/api/v1/seals/{identity.seal_id}":
            return self._send(404, {"code": "not_found"})
        self._send(200, identity.model_dump(mode="json"))

    def do_POST(self) -> None:
        if self.headers.get("authorization") != "Bearer seal-token":
            return self._send(401, {"code": "unauthenticated"})
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        try:
            sealed = self.signer.sign_at(bytes.fromhex(body["digest"]), self.clock[0])
        except SealNotValid as exc:
            return self._send(409, {"code": exc.code, "detail": exc.detail})
        self._send(200, sealed.model_dump(mode="json"))


@pytest.fixture
def seal_service() -> Iterator[tuple[str, Sm2Signer, list[datetime]]]:
    private, _ = generate_sm2_key()
    signer = make_signer(private)
    clock = [NOW]
    handler = type("Handler", (_SealService,), {"signer": signer, "clock": clock})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", signer, clock
    server.shutdown()
    server.server_close()
    thread.join()


async def test_http_seal_signer_signs_through_the_service(
    seal_service: tuple[str, Sm2Signer, list[datetime]],
) -> None:
    url, local, clock = seal_service
    public = local._identity.public_key
    async with httpx.AsyncClient(timeout=5) as http:
        signer = HttpSealSigner(
            base_url=url,
            seal_id=local._identity.seal_id,
            http=http,
            token="seal-token",
            pinned_public_key=public,
        )
        digest = sm3_digest("受理通知书".encode())
        sealed = await signer.sign(digest)
        assert sealed.seal.authority == AUTHORITY
        assert SealVerifier([await signer.identity()]).check(sealed, digest=digest).valid
        tbs = to_be_signed(digest_hex=digest.hex(), seal_id=sealed.seal.seal_id, signed_at=NOW)
        assert independent_sm2_verify(sealed.signature, tbs, public, 64, uid=DEFAULT_SIGNER_ID)

        clock[0] = UNTIL + timedelta(seconds=1)
        with pytest.raises(SealNotValid):
            await signer.sign(digest)

        _, other_public = generate_sm2_key()
        wrong_pin = HttpSealSigner(
            base_url=url, seal_id=local._identity.seal_id, http=http, pinned_public_key=other_public
        )
        with pytest.raises(SealUnavailable, match="公钥"):
            await wrong_pin.identity()


def production_seal(**overrides: Any) -> SimpleNamespace:
    """The seal settings of a service in production with the seal platform (as the manifests)."""
    values: dict[str, Any] = {
        "seal_backend": "http",
        "seal_service_url": "https://seal.example.gov.cn",
        "seal_public_key": generate_sm2_key()[1],
        "seal_private_key_file": None,
        "seal_id": "3101150000001",
        "seal_authority": AUTHORITY,
    }
    return SimpleNamespace(**{**values, **overrides})


async def test_an_unpinned_seal_service_trusts_an_impostor_so_production_refuses_it(
    seal_service: tuple[str, Sm2Signer, list[datetime]],
) -> None:
    """Whoever answers at the seal service URL first (here a stand-in with a key of its own, as a
    hijacked address would) chooses the key that the /verify pages trust when no key is pinned;
    production therefore refuses to start with the http seal and no well-formed pinned key, or a
    seal service that is not reached over https."""
    url, impostor, _ = seal_service
    seal_id = impostor._identity.seal_id
    digest = sm3_digest("准予行政许可决定书（伪造）".encode())
    forged = impostor.sign_at(digest, NOW)
    async with httpx.AsyncClient(timeout=5) as http:
        unpinned = OneSeal(HttpSealSigner(base_url=url, seal_id=seal_id, http=http))
        assert SealVerifier(await unpinned.trusted(AUTHORITY)).check(forged, digest=digest).valid
        real_public = generate_sm2_key()[1]
        pinned = OneSeal(
            HttpSealSigner(base_url=url, seal_id=seal_id, http=http, pinned_public_key=real_public)
        )
        with pytest.raises(SealUnavailable, match="公钥"):
            await pinned.trusted(AUTHORITY)

    refuse_dev_seal(production_seal(seal_public_key=real_public), prefix="APPROVAL_")
    for missing in (None, "", "  "):
        with pytest.raises(ValueError, match="needs APPROVAL_SEAL_PUBLIC_KEY"):
            refuse_dev_seal(production_seal(seal_public_key=missing), prefix="APPROVAL_")
    with pytest.raises(ValueError, match="placeholder"):
        refuse_dev_seal(
            production_seal(seal_public_key="<SM2 public key of seal 3101150000001>"),
            prefix="LICENSE_",
        )
    x_not_on_curve = f"{int(real_public[:64], 16) ^ 1:064x}" + real_public[64:]
    for malformed in (
        "04" + real_public,  # the uncompressed-point prefix
        real_public[:-1],
        real_public[:-1] + "g",
        x_not_on_curve,
        "f" * 128,  # beyond the field
    ):
        assert not is_sm2_public_key(malformed)
        with pytest.raises(ValueError, match="is not an SM2 public key"):
            refuse_dev_seal(production_seal(seal_public_key=malformed), prefix="LICENSE_")
    for insecure in ("http://seal.example.gov.cn", "seal.example.gov.cn", "https://", None):
        with pytest.raises(ValueError, match="SEAL_SERVICE_URL over https"):
            refuse_dev_seal(production_seal(seal_service_url=insecure), prefix="APPROVAL_")
    # A local key file needs no pin (the key is ours); the development seal is still refused.
    refuse_dev_seal(
        production_seal(seal_backend="local", seal_public_key=None, seal_private_key_file="/k"),
        prefix="APPROVAL_",
    )
    with pytest.raises(ValueError, match="development seal key"):
        refuse_dev_seal(
            production_seal(seal_backend="local", seal_private_key_file="/keys/dev-seal-sm2.key"),
            prefix="APPROVAL_",
        )


async def test_http_seal_signer_reports_an_unreachable_service() -> None:
    async with httpx.AsyncClient(timeout=1) as http:
        signer = HttpSealSigner(base_url="http://127.0.0.1:9", seal_id="x", http=http)
        with pytest.raises(SealUnavailable) as caught:
            await signer.sign(b"\0" * 32)
    assert caught.value.status == 503 and caught.value.code == "seal_service_unavailable"


def test_keys_whose_hex_starts_with_0_or_4_sign_and_verify() -> None:
    # Some SM2 libraries (gmssl 3.2.2) strip leading "0"/"4" characters of a hex public key.
    seen = 0
    while seen < 3:
        private, public = generate_sm2_key()
        if public[0] not in "04":
            continue
        seen += 1
        signature = sm2_sign(private, public, b"message")
        assert sm2_verify(public, b"message", signature)
        assert independent_sm2_verify(signature, b"message", public, 64, uid=DEFAULT_SIGNER_ID)


def test_sm3_matches_the_standard_vector() -> None:
    # GB/T 32905-2016, appendix A.1: SM3("abc")
    from govshared.seal import sm3_hex

    assert sm3_hex(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


async def test_each_authority_has_its_own_development_seal() -> None:
    master, _ = generate_sm2_key()
    seals = DevelopmentSeals(master, valid_from=FROM, valid_until=UNTIL, now=lambda: NOW)
    city = seals.signer_for("上海市经济和信息化委员会").identity_now()
    district = seals.signer_for("浦东新区经济和信息化委员会").identity_now()
    assert city.authority == "上海市经济和信息化委员会（开发用章）"
    assert district.authority == "浦东新区经济和信息化委员会（开发用章）"
    assert city.seal_id != district.seal_id and city.public_key != district.public_key
    # The seal's own name, given back, is the same seal; so is the one another process derives.
    again = DevelopmentSeals(master, valid_from=FROM, valid_until=UNTIL)
    assert again.signer_for(city.authority).identity_now() == city
    other, _ = generate_sm2_key()
    stranger = DevelopmentSeals(other, valid_from=FROM, valid_until=UNTIL)
    assert stranger.signer_for("上海市经济和信息化委员会").identity_now().public_key != (
        city.public_key
    )

    digest = sm3_digest("上海市经济和信息化委员会的决定".encode())
    signature = await seals.signer_for("上海市经济和信息化委员会").sign(digest)
    assert signature.seal == city
    verifier = SealVerifier(await seals.trusted("上海市经济和信息化委员会"))
    assert verifier.check(signature, digest=digest).valid
    # A city-level decision under the district's (genuine) seal is not the city's seal.
    by_district = await seals.signer_for("浦东新区经济和信息化委员会").sign(digest)
    wrong = SealVerifier(await seals.trusted("上海市经济和信息化委员会")).check(
        by_district, digest=digest
    )
    assert not wrong.valid and wrong.failure is Failure.UNKNOWN_SEAL
