"""一件事 with items needing a signed 告知承诺 or the legal representative's signed application: the
bundle application carries them per item, checked and used as a submission of the item alone."""

from __future__ import annotations

from typing import Any

import httpx

from govshared.auth import Role
from govshared.signing import SealKind
from govshared.signing.devca import DevCA
from govshared.signing.phone import answer
from govshared.testing import Tokens, problem, random_uscc

from .test_commitment import FORM as COMMITMENT_FORM
from .test_commitment import ITEM as COMMITMENT_ITEM
from .test_legal_representative import ITEM as SIGNED_ITEM


async def publish_bundle(client: httpx.AsyncClient, tokens: Tokens) -> str:
    """节能审查 (告知承诺) and 民用爆炸物品销售许可 (法定代表人签署) in one bundle."""
    code = f"YJS-S-{random_uscc()[-6:]}"
    fields = [
        {"name": "project_name", "label": "项目名称", "type": "string", "required": True},
        {
            "name": "annual_energy_tce",
            "label": "年综合能源消费量",
            "type": "number",
            "required": True,
        },
    ]
    definition = {
        "description": "开办民用爆炸物品销售企业并办理节能审查",
        "items": [{"item_code": COMMITMENT_ITEM}, {"item_code": SIGNED_ITEM}],
        "form_fields": [
            {**f, "maps_to": [{"item_code": COMMITMENT_ITEM, "field": f["name"]}]} for f in fields
        ],
    }
    admin = tokens.staff(Role.ADMIN)
    body = {
        "code": code,
        "name": "开办民爆销售企业",
        "jurisdiction": "310000",
        "definition": definition,
    }
    assert (await client.post("/api/v1/bundles", json=body, headers=admin)).status_code == 201
    assert (await client.post(f"/api/v1/bundles/{code}/publish", headers=admin)).status_code == 200
    return code


async def signed_commitment(client: httpx.AsyncClient, phone: Any) -> str:
    session = (
        await client.post(
            "/api/v1/signing-sessions",
            json={"item_code": COMMITMENT_ITEM, "applicant_name": phone.name},
            headers=phone.headers,
        )
    ).json()
    assert (await phone.sign(client, session)).status_code == 200
    return str(session["id"])


async def signed_application(
    client: httpx.AsyncClient, phone: Any, ca: DevCA, form: dict[str, Any]
) -> str:
    opened = await client.post(
        "/api/v1/signing-sessions",
        json={
            "purpose": "application",
            "item_code": SIGNED_ITEM,
            "applicant_name": phone.name,
            "business_type": "new",
            "form": form,
        },
        headers=phone.headers,
    )
    assert opened.status_code == 201, opened.text
    session = opened.json()
    legal = ca.issue_seal(uscc=phone.uscc, name=phone.name, kind=SealKind.LEGAL_REPRESENTATIVE)
    signed = await client.post(
        f"/api/v1/signing-sessions/{session['id']}/signature",
        json=answer(session, private_key=legal.private_key, certificate_pem=legal.certificate_pem),
        headers=phone.headers,
    )
    assert signed.status_code == 200, signed.text
    return str(session["id"])


async def apply(
    client: httpx.AsyncClient, phone: Any, code: str, items: list[dict[str, Any]], key: str = ""
) -> httpx.Response:
    headers = {**phone.headers, **({"Idempotency-Key": key} if key else {})}
    body = {"bundle_code": code, "applicant_name": phone.name, "form": COMMITMENT_FORM}
    return await client.post(
        "/api/v1/bundle-applications", json={**body, "items": items}, headers=headers
    )


async def status(client: httpx.AsyncClient, phone: Any, session_id: str) -> str:
    found = await client.get(f"/api/v1/signing-sessions/{session_id}", headers=phone.headers)
    return str(found.json()["status"])


async def own(client: httpx.AsyncClient, phone: Any) -> list[str]:
    listed = await client.get("/api/v1/applications", headers=phone.headers)
    return [a["item_code"] for a in listed.json()["items"]]


async def test_each_item_carries_its_own_signature_and_the_bundle_uses_them_once(
    client: httpx.AsyncClient, tokens: Tokens, phone: Any, ca: DevCA
) -> None:
    code = await publish_bundle(client, tokens)
    commitment = await signed_commitment(client, phone)
    signed = await signed_application(client, phone, ca, form={})
    items = [
        {
            "item_code": COMMITMENT_ITEM,
            "sign_commitment": True,
            "commitment_signing_session": commitment,
        },
        {"item_code": SIGNED_ITEM, "application_signing_session": signed},
    ]
    first = await apply(client, phone, code, items, key=f"sig-{commitment}")
    assert first.status_code == 201, first.text
    members = {m["item_code"]: m for m in first.json()["items"]}
    # 告知承诺: decided at once on the signed letter; the other item enters the workflow
    assert members[COMMITMENT_ITEM]["state"] == "approved"
    assert members[SIGNED_ITEM]["state"] == "submitted"
    # both signatures used, by this bundle, although two items were prepared one after the other
    assert await status(client, phone, commitment) == "consumed"
    assert await status(client, phone, signed) == "consumed"
    for item_code, detail in (
        (COMMITMENT_ITEM, "commitment_signature"),
        (SIGNED_ITEM, "application_signature"),
    ):
        trail = (
            await client.get(
                f"/api/v1/applications/{members[item_code]['application_id']}/events",
                headers=phone.headers,
            )
        ).json()
        evidence = next(e["details"][detail] for e in trail if detail in e["details"])
        assert evidence["signing_session"] == (commitment if detail.startswith("c") else signed)

    # a retry with its key answers the same and writes nothing twice
    again = await apply(client, phone, code, items, key=f"sig-{commitment}")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert sorted(await own(client, phone)) == sorted([COMMITMENT_ITEM, SIGNED_ITEM])
    # without the key, the used signatures cannot carry a second bundle
    replayed = await apply(client, phone, code, items)
    body = problem(replayed)
    assert body["code"] == "bundle_item_not_submitted" and body["item_code"] == COMMITMENT_ITEM
    assert body["item_problem"]["code"] == "signing_session_replayed"
    assert sorted(await own(client, phone)) == sorted([COMMITMENT_ITEM, SIGNED_ITEM])


async def test_missing_or_wrong_signatures_are_refused_as_for_the_item_alone(
    client: httpx.AsyncClient, tokens: Tokens, phone: Any, ca: DevCA
) -> None:
    code = await publish_bundle(client, tokens)
    commitment = await signed_commitment(client, phone)
    with_commitment = {
        "item_code": COMMITMENT_ITEM,
        "sign_commitment": True,
        "commitment_signing_session": commitment,
    }

    async def refused(items: list[dict[str, Any]]) -> dict[str, Any]:
        response = await apply(client, phone, code, items)
        assert response.status_code == 422, response.text
        return problem(response)

    # the legal representative's signature missing: the item's own problem, nothing stored
    missing = await refused([with_commitment])
    assert missing["code"] == "bundle_item_not_submitted" and missing["item_code"] == SIGNED_ITEM
    assert missing["item_problem"]["code"] == "legal_representative_signature_required"
    assert missing["item_problem"]["required_seal"] == "法定代表人章"
    # the commitment wanted but its signed letter missing
    unsigned = await refused(
        [{"item_code": COMMITMENT_ITEM, "sign_commitment": True}, {"item_code": SIGNED_ITEM}]
    )
    assert unsigned["item_code"] == COMMITMENT_ITEM
    assert unsigned["item_problem"]["code"] == "signature_required"
    # a signed application over another form than the one the bundle maps to the item
    other_form = await signed_application(client, phone, ca, form={"note": "别的表单"})
    wrong = await refused(
        [with_commitment, {"item_code": SIGNED_ITEM, "application_signing_session": other_form}]
    )
    assert (
        wrong["item_code"] == SIGNED_ITEM and wrong["item_problem"]["code"] == "signature_required"
    )
    # the commitment letter used by the first item was rolled back with the refusal
    assert await status(client, phone, commitment) == "signed"
    assert await status(client, phone, other_form) == "signed"
    # a commitment for an item the bundle does not hold
    stranger = await refused([{"item_code": "JXW-CN-012", "sign_commitment": True}])
    assert stranger["code"] == "bundle_item_not_in_bundle" and stranger["item_codes"] == [
        "JXW-CN-012"
    ]
    assert await own(client, phone) == []
    listed = await client.get("/api/v1/bundle-applications", headers=phone.headers)
    assert listed.json()["items"] == []


async def submit_alone(
    client: httpx.AsyncClient, phone: Any, key: str, **body: Any
) -> httpx.Response:
    """``POST /api/v1/applications`` of one item with the ``Idempotency-Key`` ``key``."""
    return await client.post(
        "/api/v1/applications",
        json={"applicant_name": phone.name, **body},
        headers={**phone.headers, "Idempotency-Key": key},
    )


def alone_commitment(session_id: str) -> dict[str, Any]:
    return {
        "item_code": COMMITMENT_ITEM,
        "form": COMMITMENT_FORM,
        "sign_commitment": True,
        "commitment_signing_session": session_id,
    }


def alone_signed(session_id: str) -> dict[str, Any]:
    # The form the bundle maps to the item (none of its fields): the one the session signed.
    return {"item_code": SIGNED_ITEM, "form": {}, "application_signing_session": session_id}


def bundle_items(commitment: str, signed: str) -> list[dict[str, Any]]:
    return [
        {
            "item_code": COMMITMENT_ITEM,
            "sign_commitment": True,
            "commitment_signing_session": commitment,
        },
        {"item_code": SIGNED_ITEM, "application_signing_session": signed},
    ]


async def test_a_signature_used_by_a_single_submission_cannot_carry_a_bundle_with_its_key(
    client: httpx.AsyncClient, tokens: Tokens, phone: Any, ca: DevCA
) -> None:
    code = await publish_bundle(client, tokens)
    commitment = await signed_commitment(client, phone)
    signed = await signed_application(client, phone, ca, form={})
    key = f"same-key-{commitment}"
    first = await submit_alone(client, phone, key, **alone_commitment(commitment))
    assert first.status_code == 201 and first.json()["state"] == "approved", first.text

    # The same key on the bundle route is another request: the letter is used already.
    bundled = await apply(client, phone, code, bundle_items(commitment, signed), key=key)
    refused = problem(bundled)
    assert bundled.status_code == 422 and refused["code"] == "bundle_item_not_submitted"
    assert refused["item_code"] == COMMITMENT_ITEM
    assert refused["item_problem"]["code"] == "signing_session_replayed"
    # Nothing of the bundle: one application (the first), the other signature still unused.
    assert await own(client, phone) == [COMMITMENT_ITEM]
    assert await status(client, phone, signed) == "signed"
    listed = await client.get("/api/v1/bundle-applications", headers=phone.headers)
    assert listed.json()["items"] == []

    # The single submission's own retry still gets its application back.
    again = await submit_alone(client, phone, key, **alone_commitment(commitment))
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    # And the legal representative's signature the same way: used alone, then refused in a bundle.
    alone = await submit_alone(client, phone, f"{key}-2", **alone_signed(signed))
    assert alone.status_code == 201, alone.text
    fresh = await signed_commitment(client, phone)
    bundled = await apply(client, phone, code, bundle_items(fresh, signed), key=f"{key}-2")
    refused = problem(bundled)
    assert refused["item_code"] == SIGNED_ITEM
    assert refused["item_problem"]["code"] == "signing_session_replayed"
    assert sorted(await own(client, phone)) == sorted([COMMITMENT_ITEM, SIGNED_ITEM])
    assert await status(client, phone, fresh) == "signed"


async def test_signatures_used_by_a_bundle_cannot_carry_a_single_submission_with_its_key(
    client: httpx.AsyncClient, tokens: Tokens, phone: Any, ca: DevCA
) -> None:
    code = await publish_bundle(client, tokens)
    commitment = await signed_commitment(client, phone)
    signed = await signed_application(client, phone, ca, form={})
    key = f"same-key-{commitment}"
    first = await apply(client, phone, code, bundle_items(commitment, signed), key=key)
    assert first.status_code == 201, first.text
    made = sorted(await own(client, phone))
    assert made == sorted([COMMITMENT_ITEM, SIGNED_ITEM])

    # The same key on the single route: neither signature carries a second application.
    for body in (alone_commitment(commitment), alone_signed(signed)):
        again = await submit_alone(client, phone, key, **body)
        assert again.status_code == 409, again.text
        assert problem(again)["code"] == "signing_session_replayed"
    assert sorted(await own(client, phone)) == made

    # The bundle's own retry still gets its answer back, and writes nothing.
    retried = await apply(client, phone, code, bundle_items(commitment, signed), key=key)
    assert retried.status_code == 201 and retried.headers["Idempotent-Replayed"] == "true"
    assert retried.json()["id"] == first.json()["id"]
    assert sorted(await own(client, phone)) == made
