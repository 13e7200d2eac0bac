"""`make uscc` and `make token uscc=random`: a second valid test enterprise on request."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from govshared.auth import Role, TokenVerifier, ensure_dev_keypair
from govshared.uscc import uscc_error


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, check=True, timeout=60
    )


def test_make_uscc_prints_a_new_valid_code_each_time() -> None:
    first, second = (run("govshared.uscc").stdout.strip() for _ in range(2))
    assert uscc_error(first) is None and uscc_error(second) is None
    assert first != second


def test_a_token_for_a_random_enterprise_names_its_uscc_on_stderr(tmp_path: Path) -> None:
    made = run(
        "govshared.devtoken",
        "--role",
        "enterprise",
        "--uscc",
        "random",
        "--data-dir",
        str(tmp_path),
    )
    token = made.stdout.strip()
    assert "\n" not in token, "stdout is the token alone: TOKEN=$(make -s token …)"
    uscc = made.stderr.strip().removeprefix("uscc: ")
    assert uscc_error(uscc) is None
    _, public = ensure_dev_keypair(tmp_path / "keys")
    principal = TokenVerifier(public_key_pem=public.read_text()).verify(token)
    assert principal.role is Role.ENTERPRISE and principal.uscc == uscc
