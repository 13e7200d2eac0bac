"""Make the production keys: each service's token key, the ``jwks.json`` verifiers trust, seal keys.

``python -m tools.keys --out ../onestop-keys/2026-12 --generation 2026-12`` (``make keys``) writes

- ``<svc>-private.pem`` (RSA 3072): signs the service's tokens to the other services; its ``kid`` is
  ``<svc>-<generation>`` (set ``<PREFIX>SERVICE_KEY_ID`` to it);
- ``services-jwks.json`` (``<PREFIX>SERVICE_JWT_KEYS_FILE``): the new service public keys first, then
  the keys of ``--previous`` (the ``services-jwks.json`` still in use: both generations verify during a
  rotation). These keys are trusted for ``role=service`` only;
- ``jwks.json`` (``<PREFIX>JWT_JWKS_FILE``), with ``--idp``: the identity provider's public keys, trusted
  for enterprise and staff tokens only (a service key is never in it, so a stolen service key cannot
  mint an enterprise or an admin);
- with ``--seal``, ``<svc>-seal-sm2.key`` (hex SM2 private key, for ``<PREFIX>SEAL_PRIVATE_KEY_FILE``)
  for approval and license, and the public key to pin (``<PREFIX>SEAL_PUBLIC_KEY``);

and prints the ``kubectl`` commands that load them as Secrets. Nothing is written over: a fresh
folder per generation. Nothing is written inside a git work tree either (unless ``--allow-in-repo``):
private keys in a checkout are one ``git add -A``, archive or build context away from leaking. The
rotation procedure is in deploy/README.md ("Keys").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from govshared.seal import generate_sm2_key

SERVICES = ("approval", "license", "notify")
SEALING = ("approval", "license")


def _write_secret(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only; refuse to overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def service_key(name: str, generation: str) -> tuple[str, dict[str, Any]]:
    """A new RSA key of a service: (private PEM, its public JWK with kid ``<name>-<generation>``)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=f"{name}-{generation}", use="sig", alg="RS256")
    return pem, jwk


class InsideWorkTree(ValueError):
    """The output folder is inside a git work tree."""


def git_work_tree(path: Path) -> Path | None:
    """The git work tree ``path`` is (or would be, once made) inside, or ``None``: the nearest
    folder above it, symbolic links resolved, that holds a ``.git`` (a folder, or the file of a
    linked work tree or submodule)."""
    probe = path.expanduser().absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    probe = probe.resolve()
    for folder in (probe, *probe.parents):
        if (folder / ".git").exists():
            return folder
    return None


def make_keys(
    out: Path,
    *,
    generation: str,
    previous: dict[str, Any] | None = None,
    idp: dict[str, Any] | None = None,
    seal: bool = False,
    allow_in_repo: bool = False,
) -> dict[str, Any]:
    """Write a generation of keys into ``out`` (a new folder, outside any git work tree unless
    ``allow_in_repo``); what was made, by name."""
    tree = git_work_tree(out)
    if tree is not None and not allow_in_repo:
        raise InsideWorkTree(
            f"{out} is inside the git work tree {tree}: production private keys are not written "
            f"into a checkout. Choose a folder outside it (make keys out=../onestop-keys/{generation}"
            " ...), or pass --allow-in-repo (make keys ... allow_in_repo=1) if you mean it"
        )
    out.mkdir(parents=True, exist_ok=False)
    new_keys = []
    made: dict[str, Any] = {"kids": {}, "seal_public_keys": {}}
    for name in SERVICES:
        pem, jwk = service_key(name, generation)
        _write_secret(out / f"{name}-private.pem", pem)
        new_keys.append(jwk)
        made["kids"][name] = jwk["kid"]
    kept = [
        k for k in (previous or {}).get("keys", []) if k.get("kid") not in made["kids"].values()
    ]
    services = {"keys": new_keys + kept}
    (out / "services-jwks.json").write_text(json.dumps(services, indent=2) + "\n")
    if idp is not None:
        identity = {"keys": list(idp.get("keys", []))}
        (out / "jwks.json").write_text(json.dumps(identity, indent=2) + "\n")
    if seal:
        for name in SEALING:
            private, public = generate_sm2_key()
            _write_secret(out / f"{name}-seal-sm2.key", private + "\n")
            made["seal_public_keys"][name] = public
    return made


def instructions(out: Path, made: dict[str, Any], namespace: str) -> str:
    """The commands that load a generation into the cluster."""
    lines = [f"# keys in {out}; load them into namespace {namespace}:"]
    ns = f"kubectl -n {namespace}"
    identity = (
        f"--from-file=jwks.json={out}/jwks.json "
        if (out / "jwks.json").exists()
        else "--from-file=jwks.json=<your identity provider's JWKS> "
    )
    lines.append(
        f"{ns} create secret generic onestop-jwks {identity}"
        f"--from-file=services-jwks.json={out}/services-jwks.json "
        "--dry-run=client -o yaml | kubectl apply -f -"
    )
    for name, kid in made["kids"].items():
        lines.append(
            f"{ns} create secret generic {name}-service-key "
            f"--from-file=private.pem={out}/{name}-private.pem --dry-run=client -o yaml "
            "| kubectl apply -f -"
        )
        lines.append(f"#   and set {name.upper()}_SERVICE_KEY_ID={kid} in {name}-config")
    for name, public in made["seal_public_keys"].items():
        prefix = name.upper()
        lines.append(
            f"{ns} create secret generic {name}-seal-key "
            f"--from-file=seal-sm2.key={out}/{name}-seal-sm2.key --dry-run=client -o yaml "
            "| kubectl apply -f -"
        )
        lines.append(
            f"#   {prefix}_SEAL_BACKEND=local, {prefix}_SEAL_PRIVATE_KEY_FILE=<mounted seal-sm2.key>; "
            f"or register the public key with the seal platform: {prefix}_SEAL_PUBLIC_KEY={public}"
        )
    return "\n".join(lines)


def main() -> None:
    """CLI."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="a new folder for this generation, outside the checkout (e.g. ../onestop-keys/2026-12)",
    )
    parser.add_argument("--generation", required=True, help="names the kids, e.g. 2026-12")
    parser.add_argument(
        "--previous", type=Path, help="the services-jwks.json in use (kept during rotation)"
    )
    parser.add_argument("--idp", type=Path, help="the identity provider's JWKS, to trust too")
    parser.add_argument(
        "--seal", action="store_true", help="also SM2 seal keys (approval, license)"
    )
    parser.add_argument("--namespace", default="onestop")
    parser.add_argument(
        "--allow-in-repo",
        action="store_true",
        help="write into a folder inside a git work tree all the same (refused by default)",
    )
    args = parser.parse_args()
    out = args.out.expanduser()
    try:
        made = make_keys(
            out,
            generation=args.generation,
            previous=json.loads(args.previous.read_text()) if args.previous else None,
            idp=json.loads(args.idp.read_text()) if args.idp else None,
            seal=args.seal,
            allow_in_repo=args.allow_in_repo,
        )
    except FileExistsError:
        sys.exit(f"{out} exists: keys are never written over; choose a new folder")
    except InsideWorkTree as exc:
        sys.exit(str(exc))
    print(instructions(out, made, args.namespace))


if __name__ == "__main__":
    main()
