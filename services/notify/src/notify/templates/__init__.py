"""Chinese message templates: versioned per event type and channel, rendered in a Jinja2 sandbox.

``sandbox`` renders them within limits, ``builtin`` holds the texts of record (version 1 and the
versions changed since), ``service`` lists, publishes and previews the versions admins write.
"""

from notify.templates.builtin import BUILTIN_TEMPLATES, STAFF_CHANNEL
from notify.templates.sandbox import (
    DEFAULT_LIMITS,
    Rendered,
    RenderLimits,
    TemplateSpec,
    check_syntax,
    off_loop,
    render,
    render_text,
    variables,
)

__all__ = [
    "BUILTIN_TEMPLATES",
    "DEFAULT_LIMITS",
    "STAFF_CHANNEL",
    "RenderLimits",
    "Rendered",
    "TemplateSpec",
    "check_syntax",
    "off_loop",
    "render",
    "render_text",
    "variables",
]
