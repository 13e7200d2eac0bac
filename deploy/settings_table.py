"""Print the settings of each service as markdown tables, read from the Settings classes.

``uv run python deploy/settings_table.py`` prints what ``deploy/README.md`` pastes under
"Settings" (``--write`` replaces the tables there); ``tests/deploy`` checks that the two agree, so
the table never drifts from the code.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings


@dataclass(frozen=True)
class Service:
    """A service, its Settings class and how its settings reach the containers."""

    name: str
    prefix: str
    settings: type[BaseSettings]


def services() -> list[Service]:
    """The three services, imported lazily so that this module loads without them."""
    from approval.config import Settings as ApprovalSettings
    from licensing.config import Settings as LicenseSettings
    from notify.config import Settings as NotifySettings

    return [
        Service("approval", "APPROVAL_", ApprovalSettings),
        Service("license", "LICENSE_", LicenseSettings),
        Service("notify", "NOTIFY_", NotifySettings),
    ]


# Where Kubernetes takes a setting from when it is not in the service's ConfigMap <svc>-config.
SOURCES = {
    "database_url": "Secret `{svc}-database`",
    "s3_access_key": "Secret `{svc}-object-storage`",
    "s3_secret_key": "Secret `{svc}-object-storage`",
    "seal_service_token": "Secret `{svc}-seal-service` (optional)",
    "smtp_username": "Secret `notify-providers` (optional)",
    "smtp_password": "Secret `notify-providers` (optional)",
    "sms_api_key": "Secret `notify-providers` (optional)",
    "sms_receipt_secret": "Secret `notify-providers` (optional)",
    "jwt_issuer": "ConfigMap `onestop-identity` (optional)",
    "jwt_audience": "ConfigMap `onestop-identity` (optional)",
    "jwt_jwks_url": "ConfigMap `onestop-identity` (optional)",
}


def env_names(service: Service) -> dict[str, str]:
    """Environment variable name of each field of the service's settings."""
    return {f"{service.prefix}{name.upper()}": name for name in service.settings.model_fields}


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = text or str(annotation)
    for noise in ("typing.", "pathlib.", "pydantic.types."):
        text = text.replace(noise, "")
    return text.replace("Optional[", "").replace("NoneType", "None")


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if value is None:
        return "—"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, (list, dict)):
        return f"`{json.dumps(value, ensure_ascii=False)}`"
    if value == "":
        return '`""`'
    return f"`{value}`"


def table(service: Service) -> str:
    """The markdown table of one service's settings."""
    lines = [
        f"#### {service.name} (`{service.prefix}*`)",
        "",
        "| variable | type | default | Kubernetes source | description |",
        "|---|---|---|---|---|",
    ]
    for env, name in env_names(service).items():
        field = service.settings.model_fields[name]
        source = SOURCES.get(name, "ConfigMap `{svc}-config`").format(svc=service.name)
        cells = [f"`{env}`", _type_name(field.annotation), _default(field), source]
        cells.append(field.description or "")
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def render() -> str:
    """All three tables, separated by blank lines."""
    return "\n\n".join(table(service) for service in services()) + "\n"


def write(readme: Path) -> None:
    """Replace the tables in ``readme`` (from the first service's heading to the next section)."""
    text = readme.read_text()
    start = text.index(f"#### {services()[0].name} (")
    end = text.index("\n## ", start)
    readme.write_text(text[:start] + render() + text[end:])


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write(Path(__file__).resolve().parent / "README.md")
    else:
        print(render(), end="")
