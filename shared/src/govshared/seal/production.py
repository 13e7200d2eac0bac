"""The checks production makes of a service's seal settings at start-up: no development seal, and
a seal service reached over https with the seal's public key pinned.

Plain Python on purpose: settings are read before Tongsuo (the SM2 library) is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEV_SEAL_MARK = "开发用章"


def refuse_dev_seal(settings: Any, *, prefix: str) -> None:
    """Refuse the development seal in production: its key file, its DEV- id, its 开发用章 authority;
    and with the seal service (``http``), an unpinned seal key or a service not reached over https
    (``refuse_unpinned_seal_service``).

    A document sealed with it would look official and is not: anyone with a checkout has the key.
    """
    key_file = getattr(settings, "seal_private_key_file", None)
    if key_file and Path(key_file).name.startswith("dev-"):
        raise ValueError(f"production refuses the development seal key {key_file}")
    if str(getattr(settings, "seal_id", "")).upper().startswith("DEV-"):
        raise ValueError(f"production needs the seal's real 印章编码 in {prefix}SEAL_ID")
    if DEV_SEAL_MARK in str(getattr(settings, "seal_authority", "")):
        raise ValueError(
            f"production refuses the development seal authority ({prefix}SEAL_AUTHORITY)"
        )
    refuse_unpinned_seal_service(settings, prefix=prefix)


# GB/T 32918.5: the SM2 curve y² = x³ + ax + b over F_p.
_P = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF", 16)
_A = _P - 3
_B = int("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93", 16)


def is_sm2_public_key(value: str) -> bool:
    """True for 128 hex digits x‖y of a point on the SM2 curve (checked here, in Python: settings
    are read before Tongsuo is loaded)."""
    if len(value) != 128 or any(c not in "0123456789abcdefABCDEF" for c in value):
        return False
    x, y = int(value[:64], 16), int(value[64:], 16)
    return x < _P and y < _P and (y * y - (x * x * x + _A * x + _B)) % _P == 0


def refuse_unpinned_seal_service(settings: Any, *, prefix: str) -> None:
    """Production with ``SEAL_BACKEND=http``: refuse a seal key that is not pinned, or not an SM2
    public key, and a seal service URL that is not https.

    Without a pinned key, ``OneSeal.trusted`` trusts whatever key answers at the seal service URL
    the first time a pod asks: whoever answers in its place (a DNS or network hijack, a plain-http
    path) chooses the key that the public /verify pages accept, and forged documents verify.
    """
    if getattr(settings, "seal_backend", None) != "http":
        return
    key = getattr(settings, "seal_public_key", None) or ""
    if not key.strip():
        raise ValueError(
            f"production with {prefix}SEAL_BACKEND=http needs {prefix}SEAL_PUBLIC_KEY: the seal's "
            "SM2 public key as registered with the seal platform (hex x‖y, 128 digits; "
            "`make keys seal=1` prints it), so that only signatures by that key are accepted"
        )
    if key.lstrip().startswith("<"):
        raise ValueError(
            f"{prefix}SEAL_PUBLIC_KEY is still the manifests' placeholder {key!r}: fill in the "
            "seal's SM2 public key as registered with the seal platform (hex x‖y, 128 digits)"
        )
    if not is_sm2_public_key(key):
        raise ValueError(
            f"{prefix}SEAL_PUBLIC_KEY={key[:40]!r} is not an SM2 public key: give the seal's public "
            "key as 128 hex digits x‖y (no 04 prefix, no spaces) of a point on the SM2 curve, as "
            "the seal platform registered it"
        )
    url = urlsplit(getattr(settings, "seal_service_url", None) or "")
    if url.scheme != "https" or not url.hostname:
        raise ValueError(
            f"production needs {prefix}SEAL_SERVICE_URL over https (https://<seal platform>): "
            "its token and the documents' digests must not travel in clear"
        )
