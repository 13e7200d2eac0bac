"""tools/keys.py (make keys): production keys that the services accept, and a rotation that works."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from govshared.auth import (
    DEFAULT_SERVICE_ISSUER,
    SERVICE_ROLES,
    Role,
    ServiceTokenSource,
    TokenVerifier,
    load_verifier,
    mint_token,
)
from govshared.problems import Unauthenticated
from govshared.seal import load_sm2_private_key
from tools.keys import SERVICES, InsideWorkTree, git_work_tree, make_keys, service_key

from .support import ROOT


def token_of(folder: Path, service: str, kid: str) -> str:
    private = (folder / f"{service}-private.pem").read_text()
    return mint_token(private, role=Role.SERVICE, subject=f"service:{service}", kid=kid)


def test_a_generation_verifies_and_a_rotation_keeps_both_until_the_old_is_dropped(
    tmp_path: Path,
) -> None:
    idp_private, idp_key = service_key("idp", "2026")  # the portal's identity provider
    first = make_keys(tmp_path / "g1", generation="g1", idp={"keys": [idp_key]}, seal=True)
    jwks1 = json.loads((tmp_path / "g1" / "services-jwks.json").read_text())
    identity = json.loads((tmp_path / "g1" / "jwks.json").read_text())
    assert [k["kid"] for k in jwks1["keys"]] == [f"{s}-g1" for s in SERVICES]
    assert [k["kid"] for k in identity["keys"]] == ["idp-2026"]
    portal = mint_token(
        idp_private, role=Role.ENTERPRISE, uscc="91350100M000100Y43", kid="idp-2026"
    )
    assert TokenVerifier(jwks=identity).verify(portal).uscc == "91350100M000100Y43"
    # A service key is not in the identity provider's set: it cannot mint an enterprise.
    forged = mint_token(
        (tmp_path / "g1" / "approval-private.pem").read_text(),
        role=Role.ENTERPRISE,
        uscc="91350100M000100Y43",
        kid=first["kids"]["approval"],
    )
    with pytest.raises(Exception, match="key"):
        TokenVerifier(jwks=identity).verify(forged)
    for service in SERVICES:
        assert (tmp_path / "g1" / f"{service}-private.pem").stat().st_mode & 0o077 == 0
        principal = TokenVerifier(jwks=jwks1, roles=SERVICE_ROLES).verify(
            token_of(tmp_path / "g1", service, first["kids"][service])
        )
        assert principal.role is Role.SERVICE

    # Rotation: the new generation first, the one in use kept; both verify meanwhile.
    second = make_keys(tmp_path / "g2", generation="g2", previous=jwks1)
    jwks2 = json.loads((tmp_path / "g2" / "services-jwks.json").read_text())
    assert [k["kid"] for k in jwks2["keys"]] == [*(f"{s}-g{n}" for n in (2, 1) for s in SERVICES)]
    assert not (tmp_path / "g2" / "jwks.json").exists()  # no --idp: the IdP's file is left as it is
    both = TokenVerifier(jwks=jwks2, roles=SERVICE_ROLES)
    old = token_of(tmp_path / "g1", "approval", first["kids"]["approval"])
    new = token_of(tmp_path / "g2", "approval", second["kids"]["approval"])
    assert both.verify(old).role is both.verify(new).role is Role.SERVICE
    # Then the old keys are dropped (the next generation, or services-jwks.json without them).
    only_new = TokenVerifier(jwks={"keys": jwks2["keys"][: len(SERVICES)]}, roles=SERVICE_ROLES)
    assert only_new.verify(new).role is Role.SERVICE
    with pytest.raises(Exception, match="key"):
        only_new.verify(old)

    # Seal keys load as the local seal backend reads them, and match the public key to pin.
    for service in ("approval", "license"):
        _, public = load_sm2_private_key(tmp_path / "g1" / f"{service}-seal-sm2.key")
        assert public == first["seal_public_keys"][service]


def test_the_command_never_writes_over_a_generation(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "tools.keys",
        "--out",
        str(tmp_path / "k"),
        "--generation",
        "x",
    ]
    made = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    assert made.returncode == 0, made.stderr
    assert "create secret generic onestop-jwks" in made.stdout
    assert "services-jwks.json=" in made.stdout
    assert "APPROVAL_SERVICE_KEY_ID=approval-x" in made.stdout
    again = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    assert again.returncode != 0 and "never written over" in again.stderr


def test_each_services_key_speaks_for_that_service_only(tmp_path: Path) -> None:
    """The services' JWKS as production loads it: a key verifies the tokens of the service its
    kid names, so a stolen notify key cannot post approval's decisions to license."""
    made = make_keys(tmp_path / "g1", generation="2026-12")
    verifier = load_verifier(
        public_key_file=None,
        jwks_file=None,
        jwks_url=None,
        issuer=None,
        audience=None,
        service_keys_file=str(tmp_path / "g1" / "services-jwks.json"),
        bound_service_keys=True,
    )
    notify_key = (tmp_path / "g1" / "notify-private.pem").read_text()
    services = {"role": Role.SERVICE, "issuer": DEFAULT_SERVICE_ISSUER}
    own = mint_token(notify_key, subject="service:notify", kid="notify-2026-12", **services)
    assert verifier.verify(own).subject == "service:notify"
    for kid in (made["kids"]["notify"], made["kids"]["approval"], None):
        impostor = mint_token(notify_key, subject="service:approval", kid=kid, **services)
        with pytest.raises(Unauthenticated):
            verifier.verify(impostor)
    # Each service accepts only the tokens sent to it: the token approval's relay sends notify,
    # replayed to license, is refused, whatever key signed it.
    license_verifier = load_verifier(
        public_key_file=None,
        jwks_file=None,
        jwks_url=None,
        issuer=None,
        audience="onestop",
        service_keys_file=str(tmp_path / "g1" / "services-jwks.json"),
        bound_service_keys=True,
        service="license",
    )
    approval = ServiceTokenSource(
        (tmp_path / "g1" / "approval-private.pem").read_text(),
        service_name="approval",
        audience="onestop",
        kid=made["kids"]["approval"],
    )
    assert license_verifier.verify(approval.token_for("license")).subject == "service:approval"
    with pytest.raises(Unauthenticated):
        license_verifier.verify(approval.token_for("notify"))
    # A key whose kid names no service (as the development pair, shared by the three services, has
    # no kid at all) binds none: production refuses to start with it among the services' keys.
    unbound = tmp_path / "unbound-jwks.json"
    unbound.write_text(
        json.dumps(
            {
                "keys": [
                    {**k, "kid": "shared"}
                    for k in json.loads((tmp_path / "g1" / "services-jwks.json").read_text())[
                        "keys"
                    ]
                ]
            }
        )
    )
    with pytest.raises(ValueError, match="kid names its service"):
        load_verifier(
            public_key_file=None,
            jwks_file=None,
            jwks_url=None,
            issuer=None,
            audience=None,
            service_keys_file=str(unbound),
            bound_service_keys=True,
        )


def _keys_command(out: str, *extra: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tools.keys", "--out", out, "--generation", "x", *extra]
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, check=False)


def test_keys_are_never_written_into_a_git_checkout_unless_asked(tmp_path: Path) -> None:
    """Production private keys inside a checkout are a `git add -A`, an archive or a build context
    away from leaking: refused (nothing made), however the folder is named, unless
    ``--allow-in-repo``."""
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    (tmp_path / "link").symlink_to(checkout)
    for out in ("keys/2026-12", str(checkout / "deep" / "er" / "g"), str(tmp_path / "link" / "k")):
        refused = _keys_command(out, cwd=checkout)
        assert refused.returncode != 0, out
        assert "inside the git work tree" in refused.stderr and "--allow-in-repo" in refused.stderr
        assert sorted(p.name for p in checkout.iterdir()) == [".git"], "nothing was written"
    with pytest.raises(InsideWorkTree):
        make_keys(checkout / "keys" / "g", generation="g")
    allowed = _keys_command("keys/2026-12", "--allow-in-repo", cwd=checkout)
    assert allowed.returncode == 0, allowed.stderr
    assert (checkout / "keys" / "2026-12" / "approval-private.pem").exists()
    # Next to the checkout is fine, as the documented command does.
    beside = _keys_command("../onestop-keys/2026-12", cwd=checkout)
    assert beside.returncode == 0, beside.stderr
    assert (tmp_path / "onestop-keys" / "2026-12" / "services-jwks.json").exists()


def test_the_documented_make_keys_writes_outside_this_checkout_and_keys_is_ignored() -> None:
    readme = (ROOT / "deploy" / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    documented = re.findall(r"make keys\s+out=(\S+)", readme + makefile)
    assert len(documented) >= 3, documented
    for out in documented:
        path = Path(out.replace("<generation>", "2026-12")).expanduser()
        # make runs in the checkout's root: a relative out= is relative to it.
        resolved = (ROOT / path) if not path.is_absolute() else path
        assert git_work_tree(resolved) != ROOT.resolve(), f"make keys out={out} is in the checkout"
    # And this checkout refuses them: nothing is made under its keys/ folder.
    out = ROOT / "keys" / f"test-{uuid.uuid4().hex}"
    try:
        refused = _keys_command(str(out), cwd=ROOT)
        assert refused.returncode != 0 and "inside the git work tree" in refused.stderr
        assert not out.exists()
    finally:
        shutil.rmtree(out, ignore_errors=True)
        if out.parent.is_dir() and not any(out.parent.iterdir()):
            out.parent.rmdir()
    # Keys written there all the same (--allow-in-repo, or an older tools/keys.py) are ignored by git.
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "keys/2026-12/approval-private.pem"], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0, "/keys/ is not in .gitignore"
