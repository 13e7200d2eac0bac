"""Plays the applicant's phone: reads a signing session, checks its digest, signs it with a seal key.

    # issue a development seal (key and certificate in data/keys/signing-ca/seals/)
    make seal uscc=91350100M000100Y43 name=上海盐业示范有限公司
    # sign an open session
    python -m tools.phone sign --session http://127.0.0.1:8001/api/v1/signing-sessions/<id> \
        --token "$TOKEN" --key data/keys/signing-ca/seals/91350100M000100Y43.key \
        --cert data/keys/signing-ca/seals/91350100M000100Y43.pem
    # a person's key (make seal id_number=... name=...) signs a 送达回证 the same way
    # or only sign a digest (prints the SM2 signature r‖s, hex)
    python -m tools.phone digest --key <key file> <SM3 digest hex>

A real phone shows the content before signing; this one at least recomputes its SM3 digest, so that
it never signs a digest the server did not derive from the content it shows. A dropped connection is
survived: the same signature is posted again, and running the command again on a session it already
signed (a new, randomised SM2 signature by the same certificate) gets the same answer.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import httpx

from govshared.seal import load_sm2_private_key
from govshared.signing.phone import answer, sign_digest


def main(argv: list[str] | None = None) -> int:
    """``sign`` a session through the API, or sign a bare ``digest``."""
    parser = argparse.ArgumentParser(prog="python -m tools.phone")
    commands = parser.add_subparsers(dest="command", required=True)
    sign = commands.add_parser("sign", help="fetch a signing session, sign it, post the signature")
    sign.add_argument("--session", required=True, help="URL of the signing session")
    sign.add_argument("--token", required=True, help="the enterprise's bearer token")
    sign.add_argument("--key", required=True, type=Path)
    sign.add_argument("--cert", required=True, type=Path)
    digest = commands.add_parser("digest", help="sign an SM3 digest and print the signature")
    digest.add_argument("--key", required=True, type=Path)
    digest.add_argument("hex")
    args = parser.parse_args(argv)
    private, _ = load_sm2_private_key(args.key)
    if args.command == "digest":
        print(sign_digest(private, args.hex))
        return 0
    headers = {"authorization": f"Bearer {args.token}"}
    with httpx.Client(timeout=10.0, headers=headers) as http:
        session = http.get(args.session)
        if session.status_code != 200:
            print(session.text, file=sys.stderr)
            return 1
        content = session.json()
        print(
            "待签内容：", json.dumps(json.loads(content["content"]), ensure_ascii=False, indent=1)
        )
        body = answer(content, private_key=private, certificate_pem=args.cert.read_text())
        result = post_signature(http, args.session.rstrip("/") + "/signature", body)
        print(result.text)
        return 0 if result.status_code == 200 else 1


def post_signature(
    http: httpx.Client, url: str, body: dict[str, str], *, attempts: int = 3
) -> httpx.Response:
    """Post the signature; when the connection drops, post the very same body again (the server
    answers a repeat of a signature it already took as it did the first time)."""
    for attempt in range(1, attempts + 1):
        try:
            return http.post(url, json=body)
        except httpx.TransportError as exc:
            if attempt == attempts:
                raise
            print(f"连接中断（{type(exc).__name__}），重新提交同一签名", file=sys.stderr)
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


if __name__ == "__main__":
    sys.exit(main())
