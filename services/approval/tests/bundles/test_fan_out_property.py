"""Property of the fan-out: for any bundle and combined form, every item gets exactly one
application with the fields mapped to it and the shared materials, or, when one item cannot be
submitted, nothing at all is stored."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import httpx
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from approval.catalogue.demo import demo_items
from govshared.auth import Role
from govshared.testing import Tokens, blank_pdf, problem, random_uscc

GUIDES = {item.code: item.guide.model_dump(mode="json") for item in demo_items()}
MODES = {item.code: item.reform_mode for item in demo_items()}
# Items an enterprise can apply for with the combined form alone (no signature, not cancelled).
PLAIN = sorted(
    code
    for code, guide in GUIDES.items()
    if MODES[code] != "cancel_approval" and not guide.get("required_signature")
)
# Drawn more often: the items with form fields (the others have none to map).
WEIGHTED = PLAIN + 2 * [c for c in PLAIN if GUIDES[c].get("form_fields")]
# An item that cannot be submitted: cancelled (license), or needing a signature not given.
POISON = ["JXW-QX-008", "JXW-XK-007"]
TEXT = st.text(alphabet="上海浦东新区申江路号仓库甲乙丙一二三ABC123", min_size=1, max_size=40)


@st.composite
def bundles(draw: st.DrawFn) -> dict[str, Any]:
    """A bundle definition, a combined form for it, and the item (if any) that must fail."""
    codes = draw(st.lists(st.sampled_from(WEIGHTED), min_size=1, max_size=4, unique=True))
    poison = draw(st.none() | st.sampled_from(POISON))
    if poison is not None:
        codes.insert(draw(st.integers(0, len(codes))), poison)
    elif len(codes) < 2:
        codes.append(draw(st.sampled_from([c for c in PLAIN if c not in codes])))
    # Each item field goes to a combined field; fields of one type may share one combined field.
    targets = [(c, f) for c in codes for f in GUIDES[c].get("form_fields", [])]
    groups: dict[tuple[str, int], list[tuple[str, dict[str, Any]]]] = {}
    for code, spec in targets:
        groups.setdefault((spec["type"], draw(st.integers(0, 1))), []).append((code, spec))
    form_fields, form = [], {}
    for position, ((kind, _), members) in enumerate(sorted(groups.items())):
        name = f"field_{position}"
        required = any(spec.get("required", True) for _, spec in members)
        form_fields.append(
            {
                "name": name,
                "label": f"合并字段{position}",
                "type": kind,
                "required": required,
                "maps_to": [{"item_code": c, "field": s["name"]} for c, s in members],
            }
        )
        if required or draw(st.booleans()):
            form[name] = draw(TEXT if kind == "string" else st.integers(1, 10**6))
    # Shared materials: those of the items that take uploads after submission (not filings,
    # filed at once), each shared by every such item whose guide lists it.
    takers = [c for c in codes if MODES[c] != "approval_to_filing" and c not in POISON]
    names = sorted({m["name"] for c in takers for m in GUIDES[c]["materials"]})
    shared = draw(st.lists(st.sampled_from(names), max_size=2, unique=True)) if names else []
    materials = [
        {
            "name": name,
            "maps_to": [
                {"item_code": c, "material": name}
                for c in takers
                if name in {m["name"] for m in GUIDES[c]["materials"]}
            ],
        }
        for name in shared
    ]
    definition = {
        "description": "生成的一件事",
        "items": [{"item_code": c} for c in codes],
        "form_fields": form_fields,
        "materials": materials,
    }
    return {"definition": definition, "form": form, "poison": poison}


def item_forms(definition: dict[str, Any], form: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What each item's form must hold: every mapped field that was filled in."""
    expected: dict[str, dict[str, Any]] = {i["item_code"]: {} for i in definition["items"]}
    for field in definition["form_fields"]:
        if field["name"] in form:
            for target in field["maps_to"]:
                expected[target["item_code"]][target["field"]] = form[field["name"]]
    return expected


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=bundles())
async def test_every_item_once_with_its_fields_and_materials_or_nothing(
    client: httpx.AsyncClient, tokens: Tokens, case: dict[str, Any]
) -> None:
    definition, form, poison = case["definition"], case["form"], case["poison"]
    event(f"failing item: {poison}")
    event(f"shared materials: {len(definition['materials'])}")
    event(f"combined fields: {len(definition['form_fields'])}")
    code = f"YJS-P-{uuid.uuid4().hex[:10].upper()}"
    admin = tokens.staff(Role.ADMIN)
    body = {
        "code": code,
        "name": "生成的一件事",
        "jurisdiction": "310000",
        "definition": definition,
    }
    created = await client.post("/api/v1/bundles", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert (await client.post(f"/api/v1/bundles/{code}/publish", headers=admin)).status_code == 200
    uscc = random_uscc()
    applicant = tokens.enterprise(uscc)
    submitted = await client.post(
        "/api/v1/bundle-applications",
        json={"bundle_code": code, "applicant_name": "上海生成示范有限公司", "form": form},
        headers=applicant,
    )
    own = (await client.get("/api/v1/applications?limit=100", headers=applicant)).json()["items"]
    bundles_own = (await client.get("/api/v1/bundle-applications", headers=applicant)).json()
    if poison is not None:
        refused = problem(submitted)
        assert refused["code"] == "bundle_item_not_submitted" and refused["item_code"] == poison
        assert own == [] and bundles_own["items"] == []
        return
    assert submitted.status_code == 201, submitted.text
    codes = [i["item_code"] for i in definition["items"]]
    assert [m["item_code"] for m in submitted.json()["items"]] == codes
    assert sorted(a["item_code"] for a in own) == sorted(codes)  # exactly one each
    expected = item_forms(definition, form)
    assert {a["item_code"]: a["form"] for a in own} == expected
    assert [b["id"] for b in bundles_own["items"]] == [submitted.json()["id"]]
    pdf = blank_pdf()
    for material in definition["materials"]:
        uploaded = await client.post(
            f"/api/v1/bundle-applications/{submitted.json()['id']}/materials",
            data={"name": material["name"]},
            files={"file": ("材料.pdf", pdf, "application/pdf")},
            headers=applicant,
        )
        assert uploaded.status_code == 201, uploaded.text
    for application in own:
        listed = await client.get(
            f"/api/v1/applications/{application['id']}/materials", headers=applicant
        )
        names = sorted(m["name"] for m in listed.json()["materials"])
        wanted = sorted(
            t["material"]
            for m in definition["materials"]
            for t in m["maps_to"]
            if t["item_code"] == application["item_code"]
        )
        assert names == wanted
        assert all(
            m["sha256"] == hashlib.sha256(pdf).hexdigest() for m in listed.json()["materials"]
        )
