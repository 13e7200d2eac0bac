"""Template versions: the built-in texts and those admins publish, and previews of drafts."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from govshared.auth import Principal
from notify.config import Settings
from notify.delivery import Composer, utcnow
from notify.errors import TemplateNotFound, TemplateRenderFailed
from notify.models import Channel, Template
from notify.repository import TemplateRepository
from notify.schemas import TemplateCreate, TemplatePreviewIn, TemplatePreviewOut
from notify.templates.builtin import BUILTIN_TEMPLATES, STAFF_CHANNEL
from notify.templates.sandbox import TemplateSpec, check_syntax, off_loop, render


class TemplateService:
    """Admins' template versions, bound to one transaction's session."""

    def __init__(self, session: AsyncSession, *, settings: Settings) -> None:
        self.session = session
        self.settings = settings

    async def list_templates(self, *, event_type: str | None) -> list[dict[str, Any]]:
        """Built-in and published versions."""
        builtin = [
            {
                "event_type": spec.event_type,
                "channel": slot,
                "version": spec.version,
                "title": spec.title,
                "body": spec.body,
                "sms_template_id": spec.sms_template_id,
                "builtin": True,
            }
            for (etype, slot), spec in sorted(BUILTIN_TEMPLATES.items())
            if event_type is None or etype == event_type
        ]
        published = [
            {
                "event_type": t.event_type,
                "channel": t.channel,
                "version": t.version,
                "title": t.title,
                "body": t.body,
                "sms_template_id": t.sms_template_id,
                "builtin": False,
                "created_at": t.created_at,
            }
            for t in await TemplateRepository(self.session).versions(event_type)
        ]
        return builtin + published

    async def publish_template(self, *, principal: Principal, body: TemplateCreate) -> Template:
        """Publish the next version of a template (it must compile; SMS needs an approved id)."""
        # Compiling 20 000 characters of someone's template is work: not on the event loop.
        await off_loop(check_syntax, body.body)
        if body.title:
            await off_loop(check_syntax, body.title)
        if body.channel == Channel.SMS and not body.sms_template_id:
            raise TemplateRenderFailed("短信模板须填写服务商审核通过的模板编号 sms_template_id")
        repo = TemplateRepository(self.session)
        current = await repo.max_version(body.event_type, body.channel)
        builtin = BUILTIN_TEMPLATES.get((body.event_type, body.channel))
        version = max(current or 0, builtin.version if builtin else 0) + 1
        template = Template(
            event_type=body.event_type,
            channel=body.channel,
            version=version,
            title=body.title,
            body=body.body,
            sms_template_id=body.sms_template_id,
            created_by=principal.subject,
            created_at=utcnow(),
        )
        await repo.add(template)
        return template

    async def preview(self, *, body: TemplatePreviewIn) -> TemplatePreviewOut:
        """Render the template in force, or a draft, with sample data."""
        limits = self.settings.template_limits()
        composer = Composer(await TemplateRepository(self.session).latest(), limits)
        spec = composer.spec(body.event_type, body.channel)
        if body.body is not None:
            channel = Channel.INBOX if body.channel == STAFF_CHANNEL else Channel(body.channel)
            spec = TemplateSpec(
                body.event_type,
                channel,
                0,
                body.title,
                body.body,
                spec.sms_template_id if spec else "SMS_DRAFT",
            )
        if spec is None:
            raise TemplateNotFound(f"{body.event_type} 没有 {body.channel} 模板")
        # A draft is anyone's text: it renders in a worker thread, within the render limits
        # (which bound its time too: the thread cannot be stopped from outside, so it stops
        # itself when its budget is spent).
        rendered = await off_loop(render, spec, body.data, limits)
        return TemplatePreviewOut(
            version=spec.version or None,
            title=rendered.title,
            body=rendered.body,
            sms_template_id=rendered.sms_template_id,
            sms_params=rendered.sms_params,
        )
