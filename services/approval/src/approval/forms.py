"""An application's form checked against its service guide's fields (办事指南).

Intake and the signing of an application letter check the same form the same way; this module
sits below both, so that neither imports the other.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from approval.errors import FormInvalid

_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "boolean": (bool,),
    "date": (str,),
}


def validate_form(guide: dict[str, Any], form: dict[str, Any]) -> None:
    """Check the form against the guide's fields: required ones present, types right, no strangers."""
    fields = {f["name"]: f for f in guide.get("form_fields", [])}
    problems: list[dict[str, str]] = []
    for name, spec in fields.items():
        value = form.get(name)
        if value is None or value == "":
            if spec.get("required", True):
                problems.append({"name": f"form.{name}", "reason": f"必填：{spec['label']}"})
            continue
        kind = spec.get("type", "string")
        if not isinstance(value, _FIELD_TYPES[kind]) or (
            kind == "number" and isinstance(value, bool)
        ):
            problems.append({"name": f"form.{name}", "reason": f"{spec['label']}应为{kind}"})
        elif kind == "date":
            try:
                date.fromisoformat(str(value))
            except ValueError:
                problems.append(
                    {"name": f"form.{name}", "reason": f"{spec['label']}应为日期 YYYY-MM-DD"}
                )
        elif isinstance(value, str) and spec.get("max_length") and len(value) > spec["max_length"]:
            problems.append({"name": f"form.{name}", "reason": f"{spec['label']}过长"})
    if fields:
        problems += [
            {"name": f"form.{name}", "reason": "办事指南中没有该字段"}
            for name in form
            if name not in fields
        ]
    if problems:
        raise FormInvalid("；".join(p["reason"] for p in problems), invalid_params=problems)


def licence_particulars(guide: dict[str, Any], form: dict[str, Any]) -> dict[str, Any]:
    """The 许可事项 an approval writes on the licence: the form's values of the guide's fields
    marked ``particular``, each under its label (the name the certificate prints). license issues
    a new licence with them and a 变更 (Art. 49) changes them on the holder's licence; a field left
    empty changes nothing."""
    return {
        spec["label"]: form[spec["name"]]
        for spec in guide.get("form_fields", [])
        if spec.get("particular") and form.get(spec["name"]) not in (None, "")
    }
