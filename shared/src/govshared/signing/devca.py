"""The development CA: made once in the data folder, it issues test seals and publishes a CRL.

Production trusts the anchors of a licensed 电子认证服务机构 (电子签名法 第十六条) named in settings;
development makes this CA on first run, as ``govshared.auth.ensure_dev_keypair`` makes the development
token keys. ``make seal uscc=...`` issues a seal (key and certificate) to an enterprise.

    python -m govshared.signing.devca issue --uscc 91350100M000100Y43 --name 上海盐业示范有限公司
    python -m govshared.signing.devca revoke --serial 1f2e...
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from govshared.files import private_dir, write_private
from govshared.seal import generate_sm2_key, load_sm2_private_key
from govshared.signing.certs import (
    CertInfo,
    SealKind,
    build_certificate,
    build_crl,
    enterprise_name,
    hash_id_number,
    parse_certificate,
    person_name,
    random_serial,
    to_pem,
)

if TYPE_CHECKING:
    from asn1crypto import x509

CA_NAME = "一网通办开发环境电子认证服务（仅供测试）"
CRL_DAYS = 7  # the CA promises a new CRL within a week (nextUpdate)


def _write_private(path: Path, text: str) -> None:
    write_private(path, text.encode())


@dataclass(frozen=True)
class IssuedSeal:
    """A key pair and its certificate, as a phone holds them."""

    private_key: str  # SM2 private key, hex
    public_key: str
    certificate_pem: str
    serial: int
    key_path: Path | None = None
    cert_path: Path | None = None


class DevCA:
    """A CA whose key lives in ``directory`` (development and tests only)."""

    def __init__(self, directory: Path, *, now: datetime | None = None) -> None:
        from asn1crypto import x509

        self.directory = directory
        private_dir(self.directory)
        self._now = now
        key_path = directory / "ca-sm2.key"
        if not key_path.exists():
            private, _ = generate_sm2_key()
            _write_private(key_path, private + "\n")
        self.private_key, self.public_key = load_sm2_private_key(key_path)
        self.name = x509.Name.build({"country_name": "CN", "common_name": CA_NAME})
        if not self.cert_path.exists():
            start = self.now() - timedelta(days=1)
            der = build_certificate(
                issuer=self.name,
                issuer_private_key=self.private_key,
                issuer_public_key=self.public_key,
                subject=self.name,
                public_key=self.public_key,
                serial=random_serial(),
                not_before=start,
                not_after=start + timedelta(days=3650),
                is_ca=True,
            )
            self.cert_path.write_text(to_pem(der))
        self.certificate = parse_certificate(self.cert_path.read_text())
        if not self.crl_path.exists() or self._crl_due():
            self.publish_crl()

    def now(self) -> datetime:
        """The CA's clock (fixed in tests that ask for it)."""
        return self._now or datetime.now(UTC)

    @property
    def cert_path(self) -> Path:
        """The CA certificate (PEM): the trust anchor to configure."""
        return self.directory / "ca.pem"

    @property
    def crl_path(self) -> Path:
        """The CRL (DER) the CA publishes."""
        return self.directory / "crl.der"

    @property
    def _revoked_path(self) -> Path:
        return self.directory / "revoked.json"

    def _revoked(self) -> dict[int, datetime]:
        if not self._revoked_path.exists():
            return {}
        raw = json.loads(self._revoked_path.read_text())
        return {int(serial, 16): datetime.fromisoformat(at) for serial, at in raw.items()}

    def _crl_due(self) -> bool:
        age = datetime.now(UTC).timestamp() - self.crl_path.stat().st_mtime
        return age > (CRL_DAYS - 1) * 86400

    def publish_crl(self) -> Path:
        """Sign and write a fresh CRL with every revoked serial."""
        now = self.now()
        der = build_crl(
            issuer=self.name,
            issuer_private_key=self.private_key,
            issuer_public_key=self.public_key,
            revoked=self._revoked(),
            this_update=now - timedelta(minutes=1),
            next_update=now + timedelta(days=CRL_DAYS),
        )
        tmp = self.crl_path.with_suffix(".tmp")
        tmp.write_bytes(der)
        tmp.replace(self.crl_path)
        return self.crl_path

    def revoke(self, serial: int, *, at: datetime | None = None) -> None:
        """Revoke a certificate and publish the new CRL."""
        revoked = self._revoked()
        revoked[serial] = (at or self.now()).replace(microsecond=0)
        self._revoked_path.write_text(
            json.dumps({f"{s:x}": when.isoformat() for s, when in revoked.items()}, indent=1)
        )
        self.publish_crl()

    def _issue(
        self,
        subject: x509.Name,
        *,
        days: int,
        not_before: datetime | None,
        save_as: str | None,
        key_usage: frozenset[str] | None = None,
        extra_extensions: list[dict[str, Any]] | None = None,
    ) -> IssuedSeal:
        private, public = generate_sm2_key()
        start = not_before or self.now() - timedelta(minutes=5)
        serial = random_serial()
        der = build_certificate(
            issuer=self.name,
            issuer_private_key=self.private_key,
            issuer_public_key=self.public_key,
            subject=subject,
            public_key=public,
            serial=serial,
            not_before=start,
            not_after=start + timedelta(days=days),
            is_ca=False,
            key_usage=key_usage,
            extra_extensions=extra_extensions,
        )
        cert_pem = to_pem(der)
        key_path = cert_path = None
        if save_as:
            seals = private_dir(self.directory / "seals")
            key_path, cert_path = seals / f"{save_as}.key", seals / f"{save_as}.pem"
            _write_private(key_path, private + "\n")
            cert_path.write_text(cert_pem)
        return IssuedSeal(private, public, cert_pem, serial, key_path, cert_path)

    def issue_seal(
        self,
        *,
        uscc: str,
        name: str,
        kind: SealKind = SealKind.OFFICIAL,
        days: int = 365,
        not_before: datetime | None = None,
        save: bool = False,
        key_usage: frozenset[str] | None = None,
        extra_extensions: list[dict[str, Any]] | None = None,
    ) -> IssuedSeal:
        """Issue an enterprise's electronic seal bound to its USCC: a signing certificate
        (keyUsage digitalSignature and nonRepudiation) unless ``key_usage`` says otherwise, as for
        the encryption certificate of a dual-certificate pair (keyEncipherment, dataEncipherment),
        which a verifier must refuse; ``extra_extensions`` go in as given (tests)."""
        return self._issue(
            enterprise_name(uscc=uscc, name=name, seal_kind=kind),
            days=days,
            not_before=not_before,
            save_as=uscc if save else None,
            key_usage=key_usage,
            extra_extensions=extra_extensions,
        )

    def issue_person(
        self,
        *,
        name: str,
        id_number: str,
        days: int = 365,
        not_before: datetime | None = None,
        save: bool = False,
    ) -> IssuedSeal:
        """Issue a person's signing key; the ID number goes in only as a salted SM3 hash (and
        saved files are named after that salted hash, never the number)."""
        id_hash = hash_id_number(id_number)
        return self._issue(
            person_name(name=name, id_hash=id_hash),
            days=days,
            not_before=not_before,
            save_as=f"person-{id_hash.split(':', 1)[1][:16]}" if save else None,
        )


def ensure_dev_ca(directory: Path) -> DevCA:
    """The development CA kept in ``directory`` (made on first use)."""
    return DevCA(directory)


def default_directory() -> Path:
    """Where ``make run`` keeps it: ``$DATA_DIR/keys/signing-ca`` (``data`` by default)."""
    return Path(os.environ.get("DATA_DIR", "data")) / "keys" / "signing-ca"


def describe(info: CertInfo) -> str:
    """One line about a certificate."""
    return f"{info.display_name} {info.seal_kind} serial={info.serial:x} until={info.not_after:%Y-%m-%d}"


def main(argv: list[str] | None = None) -> None:
    """``issue`` a test seal to a USCC, a ``person``'s signing key, or ``revoke`` one by serial."""
    parser = argparse.ArgumentParser(prog="python -m govshared.signing.devca")
    parser.add_argument("--dir", type=Path, default=None)
    commands = parser.add_subparsers(dest="command", required=True)
    issue = commands.add_parser("issue")
    issue.add_argument("--uscc", required=True)
    issue.add_argument("--name", default="示范企业有限公司")
    issue.add_argument(
        "--kind", default=SealKind.OFFICIAL.value, choices=[k.value for k in SealKind]
    )
    issue.add_argument("--days", type=int, default=365)
    person = commands.add_parser("person", help="a natural person's signing key (个人签名)")
    person.add_argument("--name", required=True)
    person.add_argument("--id-number", required=True, help="居民身份证号码 (only its hash is kept)")
    person.add_argument("--days", type=int, default=365)
    revoke = commands.add_parser("revoke")
    revoke.add_argument("--serial", required=True)
    args = parser.parse_args(argv)
    ca = DevCA(args.dir or default_directory())
    if args.command == "issue":
        from govshared.uscc import is_valid_uscc

        if not is_valid_uscc(args.uscc):
            parser.error(f"{args.uscc} is not a valid 统一社会信用代码")
        seal = ca.issue_seal(
            uscc=args.uscc, name=args.name, kind=SealKind(args.kind), days=args.days, save=True
        )
        print(describe(parse_certificate(seal.certificate_pem)))
        print(f"key:         {seal.key_path}")
        print(f"certificate: {seal.cert_path}")
        print(f"CA:          {ca.cert_path}   CRL: {ca.crl_path}")
    elif args.command == "person":
        seal = ca.issue_person(name=args.name, id_number=args.id_number, days=args.days, save=True)
        print(describe(parse_certificate(seal.certificate_pem)))
        print(f"key:         {seal.key_path}")
        print(f"certificate: {seal.cert_path}")
    else:
        ca.revoke(int(args.serial, 16))
        print(f"revoked {args.serial}; CRL published at {ca.crl_path}")


if __name__ == "__main__":
    main()
