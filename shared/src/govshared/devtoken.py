"""``python -m govshared.devtoken``: print a development bearer token that ``make run`` accepts."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from govshared.auth import Role, dev_role_key, mint_token
from govshared.jwks import SUITE_SERVICES, service_audiences
from govshared.uscc import random_uscc, uscc_error


def main() -> None:
    """Parse arguments and print one token."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--role", required=True, choices=[r.value for r in Role])
    parser.add_argument(
        "--uscc",
        help="统一社会信用代码 (enterprise tokens); 'random': a new valid one, printed on stderr",
    )
    parser.add_argument("--jurisdiction", help="行政区划, e.g. 310000 or 310115 (staff tokens)")
    parser.add_argument("--department", help="部门代码 (staff giving 并联审批 opinions), e.g. SHGA")
    parser.add_argument("--sub", help="subject; defaults to the role and a random suffix")
    parser.add_argument("--name")
    parser.add_argument(
        "--to",
        choices=SUITE_SERVICES,
        help="the service a service token is for (its aud); default: all three",
    )
    parser.add_argument(
        "--ttl", type=int, default=8 * 3600, help="seconds (at most JWT_MAX_LIFETIME_SECONDS)"
    )
    parser.add_argument("--data-dir", default=os.environ.get("SUITE_DATA_DIR", "data"))
    args = parser.parse_args()
    if args.uscc == "random":
        args.uscc = random_uscc()
        # stdout stays the token alone (TOKEN=$(make -s token …)); the USCC goes beside it.
        print(f"uscc: {args.uscc}", file=sys.stderr)
    if args.role == Role.ENTERPRISE and (not args.uscc or uscc_error(args.uscc)):
        parser.error(f"enterprise tokens need a valid --uscc ({uscc_error(args.uscc or '')})")
    if args.role not in (Role.ENTERPRISE, Role.SERVICE, Role.ADMIN) and not args.jurisdiction:
        parser.error("staff tokens need --jurisdiction")
    # Each development key signs only the roles it is trusted for: the identity provider's
    # enterprises and staff, the services' key service tokens (with the services' issuer).
    private_key, issuer = dev_role_key(Path(args.data_dir) / "keys", args.role)
    print(
        mint_token(
            private_key,
            role=args.role,
            issuer=issuer,
            subject=args.sub or (f"ent:{args.uscc}" if args.uscc else None),
            uscc=args.uscc,
            jurisdiction=args.jurisdiction,
            name=args.name,
            department=args.department,
            audience=service_audiences(args.to) if args.role == Role.SERVICE else None,
            ttl_seconds=args.ttl,
        )
    )


if __name__ == "__main__":
    main()
