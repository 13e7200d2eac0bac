"""Electronic seals: sign a document digest with the authority's seal, and verify it.

How documents are sealed and verified: docs/architecture.md ("Sealed documents") and docs/documents.md.

GB/T 38540 seals are SM2 signatures over SM3 digests. A signer signs a 32-byte SM3 digest of a
document's canonical content and answers with the signature and the seal's identity (seal id,
authority, validity period, public key). What is really signed is a small canonical statement that
binds the digest to the seal id and the signing time, so that a verifier can tell a signature made
after the seal expired from one made in time.

Two signers: ``Sm2Signer`` with a key from settings (a development key made on first run in the
data folder) and ``HttpSealSigner``, which asks an external seal service (the production shape: the
private key never lives in our services). ``SealVerifier`` checks a signature against the seals it
trusts and says why it fails. A ``SealBook`` says which seal signs for an authority: the one
configured seal (``OneSeal``), or in development a seal of each authority's own
(``DevelopmentSeals``), so that a city-level decision never bears a district's seal.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from tongsuopy.crypto import hashes as sm_hashes
from tongsuopy.crypto.asymciphers import ec
from tongsuopy.crypto.exceptions import InvalidSignature as _SmInvalidSignature

from govshared.chinatime import CHINA
from govshared.files import private_dir, write_private
from govshared.problems import DependencyUnavailable, DomainError

ALGORITHM = "SM2-with-SM3"
# GB/T 35276 default signer identity (ENTL = 128 bits), used by every SM2 library as the default.
DEFAULT_SIGNER_ID = "1234567812345678"
# SM2 curve order n (GB/T 32918.5).
_ORDER = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)


class SealNotValid(DomainError):
    """The seal is outside its validity period and may not sign."""

    status = 409
    code = "seal_not_valid"
    title = "电子印章不在有效期内，不能用印"
    title_en = "The electronic seal is outside its validity period and cannot sign"


class SealUnavailable(DependencyUnavailable):
    """The seal service could not be reached or answered wrongly."""

    code = "seal_service_unavailable"
    title = "电子印章服务暂时不可用"
    title_en = "The electronic seal service is unavailable"


class SealIdentity(BaseModel):
    """Who seals: the seal's id, the authority it belongs to, its validity and its public key."""

    model_config = ConfigDict(frozen=True)

    seal_id: str = Field(description="印章编码")
    authority: str = Field(description="用印机关")
    valid_from: datetime
    valid_until: datetime
    algorithm: str = ALGORITHM
    public_key: str = Field(description="SM2 public key, hex of x‖y (128 hex digits)")

    def valid_at(self, at: datetime) -> bool:
        """True when the seal may sign at ``at``."""
        return self.valid_from <= at <= self.valid_until

    @property
    def key_id(self) -> str:
        """A short fingerprint of the public key (SM3, first 16 hex digits)."""
        return sm3_hex(bytes.fromhex(self.public_key))[:16]


class SealSignature(BaseModel):
    """A signature over a digest, with the seal that made it and when."""

    model_config = ConfigDict(frozen=True)

    digest: str = Field(description="SM3 digest of the canonical content, hex")
    signed_at: datetime
    signature: str = Field(description="SM2 signature r‖s, hex")
    seal: SealIdentity


class Signer(Protocol):
    """Seals digests."""

    async def identity(self) -> SealIdentity:
        """The seal this signer uses."""
        ...

    async def sign(self, digest: bytes) -> SealSignature:
        """Sign a 32-byte SM3 digest; ``SealNotValid`` outside the seal's validity."""
        ...


def sm3_hex(data: bytes) -> str:
    """SM3 digest of ``data`` as hex (GB/T 32905), by OpenSSL through ``cryptography``.

    gmssl's pure-Python SM3 takes about 9 ms a kilobyte, which made hashing a PDF the slowest step
    of a decision; OpenSSL's is thousands of times faster and gives the same digest.
    """
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize().hex()


def sm3_digest(data: bytes) -> bytes:
    """SM3 digest of ``data``."""
    return bytes.fromhex(sm3_hex(data))


def canonical_json(value: Any) -> bytes:
    """The canonical JSON form: sorted keys, no spaces, UTF-8, dates as ISO 8601."""

    def default(obj: Any) -> str:
        if isinstance(obj, datetime | date):
            return obj.isoformat()
        raise TypeError(f"not JSON serialisable: {type(obj).__name__}")

    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=default
    ).encode()


def to_be_signed(*, digest_hex: str, seal_id: str, signed_at: datetime) -> bytes:
    """The statement a seal signs: the digest bound to the seal and the signing time."""
    return canonical_json(
        {
            "alg": ALGORITHM,
            "digest": digest_hex,
            "seal_id": seal_id,
            "signed_at": signed_at.astimezone(UTC).isoformat(),
        }
    )


def _private_key(value: int) -> Any:
    # Tongsuo (OpenSSL with the Chinese algorithms, through tongsuopy) does SM2 in C: about 0.5 ms a
    # signature against 14 ms in pure Python (gmssl), 0.6 ms a verification against 26 ms.
    return ec.derive_private_key(value, ec.SM2())


def _public_hex(value: int) -> str:
    numbers = _private_key(value).public_key().public_numbers()
    return f"{numbers.x:064x}{numbers.y:064x}"


def new_sm2_private_key() -> str:
    """A new SM2 private key (hex): a random integer in [1, n − 2] (GB/T 32918.1), no library."""
    return f"{secrets.randbelow(_ORDER - 1) + 1:064x}"


def generate_sm2_key() -> tuple[str, str]:
    """A new SM2 key pair: (private key hex, public key hex x‖y)."""
    private = new_sm2_private_key()
    return private, _public_hex(int(private, 16))


def sm2_sign(private_key: str, public_key: str, message: bytes) -> str:
    """SM2 signature r‖s over e = SM3(Z_A ‖ message) (GB/T 32918.2), with the default signer id.

    Tongsuo computes Z_A from the public key and the default id 1234567812345678 and draws the
    nonce from its CSPRNG; gmssl and snowland-smx verify what it signs, and it verifies theirs.
    ``public_key`` is accepted for the interface's sake (the private key determines it).
    """
    return _sign_with(_private_key(int(private_key, 16)), message)


def _sign_with(key: Any, message: bytes) -> str:
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(sm_hashes.SM3())))
    return f"{r:064x}{s:064x}"


def sm2_verify(public_key: str, message: bytes, signature: str) -> bool:
    """True when ``signature`` is a valid SM2 signature of ``message`` under ``public_key``."""
    if len(signature) != 128 or len(public_key) != 128:
        return False
    try:
        r, s = int(signature[:64], 16), int(signature[64:], 16)
        x, y = int(public_key[:64], 16), int(public_key[64:], 16)
        if not (0 < r < _ORDER and 0 < s < _ORDER):
            return False
        key = ec.EllipticCurvePublicNumbers(x, y, ec.SM2()).public_key()
        key.verify(encode_dss_signature(r, s), message, ec.ECDSA(sm_hashes.SM3()))
    except (ValueError, TypeError, _SmInvalidSignature):
        return False
    return True


def ensure_dev_seal_key(directory: Path) -> Path:
    """Create (once) and return the development SM2 seal key kept in the data folder."""
    private_dir(directory)
    path = directory / "dev-seal-sm2.key"
    if not path.exists():
        write_private(path, (new_sm2_private_key() + "\n").encode())
    return path


def read_sm2_private_key(path: Path) -> str:
    """Read a hex SM2 private key file; the private key's hex (no public key: Tongsuo is not
    loaded, about 4.4 MB of a process's memory, until a seal first signs)."""
    value = int(path.read_text().strip().lower(), 16)
    if not 0 < value < _ORDER:
        raise ValueError(f"{path} does not hold an SM2 private key")
    return f"{value:064x}"


def load_sm2_private_key(path: Path) -> tuple[str, str]:
    """Read a hex SM2 private key file; (private hex, public hex)."""
    private = read_sm2_private_key(path)
    return private, _public_hex(int(private, 16))


class Sm2Signer:
    """Signs with an SM2 key held by this process (development, or a key from a mounted secret)."""

    def __init__(
        self,
        *,
        private_key: str,
        seal_id: str,
        authority: str,
        valid_from: datetime,
        valid_until: datetime,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        value = int(private_key, 16)
        self._private = f"{value:064x}"
        self._key = _private_key(value)
        public = _public_hex(value)
        self._identity = SealIdentity(
            seal_id=seal_id,
            authority=authority,
            valid_from=valid_from,
            valid_until=valid_until,
            public_key=public,
        )
        self._now = now or (lambda: datetime.now(UTC))

    async def identity(self) -> SealIdentity:
        """The seal's identity."""
        return self._identity

    def identity_now(self) -> SealIdentity:
        """The seal's identity, synchronously (the key is local)."""
        return self._identity

    async def sign(self, digest: bytes) -> SealSignature:
        """Sign now, if the seal is valid now."""
        return self.sign_at(digest, self._now())

    def sign_at(self, digest: bytes, at: datetime) -> SealSignature:
        """Sign as of ``at``; refuses outside the seal's validity."""
        if len(digest) != 32:
            raise ValueError("an SM3 digest has 32 bytes")
        seal = self._identity
        if not seal.valid_at(at):
            raise SealNotValid(
                f"印章 {seal.seal_id}（{seal.authority}）有效期为 "
                f"{seal.valid_from:%Y-%m-%d} 至 {seal.valid_until:%Y-%m-%d}，当前不能用印",
                seal_id=seal.seal_id,
                valid_from=seal.valid_from.isoformat(),
                valid_until=seal.valid_until.isoformat(),
            )
        tbs = to_be_signed(digest_hex=digest.hex(), seal_id=seal.seal_id, signed_at=at)
        return SealSignature(
            digest=digest.hex(),
            signed_at=at,
            signature=_sign_with(self._key, tbs),
            seal=seal,
        )


class HttpSealSigner:
    """Asks an external seal service to sign (``POST {base}/api/v1/seals/{id}/sign``).

    The service answers with the signature, the signing time and the seal's identity; the answer is
    checked against the public key pinned in settings when one is given (else the one the service
    published first), so a misbehaving service cannot slip in another key.
    """

    def __init__(
        self,
        *,
        base_url: str,
        seal_id: str,
        http: httpx.AsyncClient,
        token: str | None = None,
        pinned_public_key: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.seal_id = seal_id
        self.http = http
        self.token = token
        self.pinned_public_key = pinned_public_key
        self._identity: SealIdentity | None = None

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"} if self.token else {}

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self.http.request(
                method, f"{self.base_url}{path}", headers=self._headers(), **kwargs
            )
        except httpx.HTTPError as exc:
            raise SealUnavailable(
                f"电子印章服务不可用：{type(exc).__name__}", dependency="seal"
            ) from exc

    async def identity(self) -> SealIdentity:
        """The seal's identity as the service publishes it (fetched once)."""
        if self._identity is None:
            response = await self._call("GET", f"/api/v1/seals/{self.seal_id}")
            if response.status_code != 200:
                raise SealUnavailable(f"电子印章服务返回 {response.status_code}", dependency="seal")
            identity = SealIdentity.model_validate(response.json())
            if self.pinned_public_key and identity.public_key != self.pinned_public_key.lower():
                raise SealUnavailable("电子印章服务公布的公钥与配置不一致", dependency="seal")
            self._identity = identity
        return self._identity

    async def sign(self, digest: bytes) -> SealSignature:
        """Sign through the service; its refusal of an expired seal becomes ``SealNotValid``."""
        expected = await self.identity()
        response = await self._call(
            "POST", f"/api/v1/seals/{self.seal_id}/sign", json={"digest": digest.hex()}
        )
        if response.status_code == 409:
            body = response.json()
            raise SealNotValid(body.get("detail") or SealNotValid.title, seal_id=self.seal_id)
        if response.status_code != 200:
            raise SealUnavailable(f"电子印章服务返回 {response.status_code}", dependency="seal")
        result = SealSignature.model_validate(response.json())
        tbs = to_be_signed(
            digest_hex=result.digest, seal_id=result.seal.seal_id, signed_at=result.signed_at
        )
        if (
            result.digest != digest.hex()
            or result.seal.public_key != expected.public_key
            or not sm2_verify(expected.public_key, tbs, result.signature)
        ):
            raise SealUnavailable("电子印章服务返回的签名无法验证", dependency="seal")
        return result


class Failure(StrEnum):
    """Why a signature does not hold."""

    UNKNOWN_SEAL = "unknown_seal"  # not a seal we trust (or another key under its id)
    BAD_SIGNATURE = "bad_signature"  # the signature does not match the statement
    DIGEST_MISMATCH = "digest_mismatch"  # the content was changed after sealing
    SEAL_EXPIRED = "seal_not_valid_at_signing"  # signed outside the seal's validity


FAILURE_LABELS: dict[Failure, str] = {
    Failure.UNKNOWN_SEAL: "签章所用印章不是本系统登记的可信印章（未知密钥）",
    Failure.BAD_SIGNATURE: "签名值与签名内容不符，文件可能被伪造",
    Failure.DIGEST_MISMATCH: "文件内容与签名时不一致，已被篡改",
    Failure.SEAL_EXPIRED: "用印时间不在印章有效期内",
}


class SealCheck(BaseModel):
    """The outcome of checking a signature."""

    valid: bool
    failure: Failure | None = None
    reason: str | None = None
    seal: SealIdentity | None = Field(default=None, description="The trusted seal, when known")


class SealVerifier:
    """Checks signatures against the seals it trusts (by seal id and public key)."""

    def __init__(self, trusted: Iterable[SealIdentity]) -> None:
        self._trusted: dict[tuple[str, str], SealIdentity] = {
            (seal.seal_id, seal.public_key.lower()): seal for seal in trusted
        }

    def trust(self, seal: SealIdentity) -> None:
        """Add a seal (e.g. one published by the seal service)."""
        self._trusted[(seal.seal_id, seal.public_key.lower())] = seal

    def check(self, signature: SealSignature, *, digest: bytes) -> SealCheck:
        """Is ``signature`` a genuine, in-time seal over ``digest``? If not, why not."""
        trusted = self._trusted.get((signature.seal.seal_id, signature.seal.public_key.lower()))
        if trusted is None:
            return _failed(Failure.UNKNOWN_SEAL)
        tbs = to_be_signed(
            digest_hex=signature.digest,
            seal_id=signature.seal.seal_id,
            signed_at=signature.signed_at,
        )
        if not sm2_verify(trusted.public_key, tbs, signature.signature):
            return _failed(Failure.BAD_SIGNATURE, trusted)
        if signature.digest != digest.hex():
            return _failed(Failure.DIGEST_MISMATCH, trusted)
        # The trusted record's validity counts, not what the document claims about its seal.
        if not trusted.valid_at(signature.signed_at):
            return _failed(Failure.SEAL_EXPIRED, trusted)
        return SealCheck(valid=True, seal=trusted)


def _failed(failure: Failure, seal: SealIdentity | None = None) -> SealCheck:
    return SealCheck(valid=False, failure=failure, reason=FAILURE_LABELS[failure], seal=seal)


class SealSettings(Protocol):
    """The settings fields ``signer_from_settings`` reads (every sealing service names them alike)."""

    seal_backend: str
    seal_service_url: str | None
    seal_service_token: SecretStr | None
    seal_public_key: str | None
    seal_private_key_file: str | None
    seal_id: str
    seal_authority: str
    seal_valid_from: date
    seal_valid_until: date
    data_dir: Path


def signer_from_settings(settings: SealSettings, http: httpx.AsyncClient) -> Signer:
    """The seal the settings choose: the seal service (``http``) or a local SM2 key (``local``:
    the key file given, else a development key made once in ``data_dir/keys``)."""
    if settings.seal_backend == "http":
        assert settings.seal_service_url is not None
        return HttpSealSigner(
            base_url=settings.seal_service_url,
            seal_id=settings.seal_id,
            http=http,
            token=(
                settings.seal_service_token.get_secret_value()
                if settings.seal_service_token
                else None
            ),
            pinned_public_key=settings.seal_public_key,
        )
    key_file = (
        Path(settings.seal_private_key_file)
        if settings.seal_private_key_file
        else ensure_dev_seal_key(settings.data_dir / "keys")
    )
    private, _ = load_sm2_private_key(key_file)
    return Sm2Signer(
        private_key=private,
        seal_id=settings.seal_id,
        authority=settings.seal_authority,
        valid_from=datetime.combine(settings.seal_valid_from, time.min, CHINA),
        valid_until=datetime.combine(settings.seal_valid_until, time.max, CHINA),
    )


DEVELOPMENT_SEAL_SUFFIX = "（开发用章）"


class SealBook(Protocol):
    """Which seal signs for an authority, and which seals a verifier trusts."""

    def signer_for(self, authority: str) -> Signer:
        """The seal that signs the documents ``authority`` issues."""
        ...

    async def trusted(self, authority: str) -> list[SealIdentity]:
        """The seals that may have sealed a document issued by ``authority``."""
        ...


class OneSeal:
    """The configured seal (a seal service or a key file) signs for every authority."""

    def __init__(self, signer: Signer) -> None:
        self.signer = signer

    def signer_for(self, authority: str) -> Signer:
        """The configured seal, whoever the authority."""
        return self.signer

    async def trusted(self, authority: str) -> list[SealIdentity]:
        """Only the configured seal."""
        return [await self.signer.identity()]


class DevelopmentSeals:
    """One development seal per authority, named "<authority>（开发用章）".

    Each seal's key is derived from the one development key (SM3 of it and the authority's name),
    so that every process sharing the data folder signs and verifies the same seals without a key
    file per authority, and nobody without the development key can make one.
    """

    def __init__(
        self,
        master_private_key: str,
        *,
        valid_from: datetime,
        valid_until: datetime,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._master = f"{int(master_private_key, 16):064x}"
        self._valid_from = valid_from
        self._valid_until = valid_until
        self._now = now
        self._signers: dict[str, Sm2Signer] = {}

    def signer_for(self, authority: str) -> Sm2Signer:
        """The development seal of ``authority`` (made on first use, then kept)."""
        authority = authority.removesuffix(DEVELOPMENT_SEAL_SUFFIX)
        signer = self._signers.get(authority)
        if signer is None:
            derived = sm3_digest(f"{self._master}|seal|{authority}".encode())
            private = int.from_bytes(derived, "big") % (_ORDER - 1) + 1
            signer = Sm2Signer(
                private_key=f"{private:064x}",
                seal_id="DEV-SEAL-" + sm3_hex(authority.encode())[:12].upper(),
                authority=authority + DEVELOPMENT_SEAL_SUFFIX,
                valid_from=self._valid_from,
                valid_until=self._valid_until,
                now=self._now,
            )
            self._signers[authority] = signer
        return signer

    async def trusted(self, authority: str) -> list[SealIdentity]:
        """The development seal of that authority only: another authority's seal is unknown."""
        return [self.signer_for(authority).identity_now()]


def seal_book_from_settings(settings: SealSettings, http: httpx.AsyncClient) -> SealBook:
    """The seals the settings choose: a seal service or a key file signs for every authority;
    without either (development), each authority gets a development seal of its own, derived from
    the development key made once in ``data_dir/keys``."""
    if settings.seal_backend == "http" or settings.seal_private_key_file:
        return OneSeal(signer_from_settings(settings, http))
    return DevelopmentSeals(
        read_sm2_private_key(ensure_dev_seal_key(settings.data_dir / "keys")),
        valid_from=datetime.combine(settings.seal_valid_from, time.min, CHINA),
        valid_until=datetime.combine(settings.seal_valid_until, time.max, CHINA),
    )
