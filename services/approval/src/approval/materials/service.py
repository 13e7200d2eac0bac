"""Materials use cases."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import UploadFile
from sqlalchemy import insert, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession

from approval.catalogue.repository import ItemRepository
from approval.clients.license import LicenseClient
from approval.errors import (
    ApplicationNotFound,
    IllegalTransition,
    MaterialNotInGuide,
    NoValidLicence,
)
from approval.materials.schemas import MaterialChecklist, MaterialOut, ToleranceOut
from approval.models import Application, Material
from approval.repository import ApplicationRepository
from approval.transitions import append_audit
from govshared.applications import ENDED_UNGRANTED, ApplicationState
from govshared.db import end_read
from govshared.problems import PayloadTooLarge
from govshared.storage import Storage
from govshared.uploads import UploadLimits, display_filename, inspect_upload

UPLOAD_STATES = frozenset({ApplicationState.SUBMITTED, ApplicationState.SUPPLEMENT_REQUESTED})
CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Received:
    """An uploaded file, read and checked: its bytes, real type, size and SHA-256."""

    data: bytes
    content_type: str
    size: int
    sha256: str


class MaterialService:
    """Uploads and e-licence substitutions."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        storage: Storage,
        license_client: LicenseClient,
        max_bytes: int,
        limits: UploadLimits | None = None,
    ) -> None:
        self.session = session
        self.storage = storage
        self.license = license_client
        self.max_bytes = max_bytes
        self.limits = limits or UploadLimits()

    async def _guide_materials(self, application: Application) -> dict[str, dict[str, Any]]:
        version = await ItemRepository(self.session).version(
            application.item_code, application.item_version
        )
        guide = version.guide if version is not None else {}
        return {m["name"]: m for m in guide.get("materials", [])}

    async def _spec(self, application: Application, name: str) -> dict[str, Any]:
        state = ApplicationState(application.state)
        if state not in UPLOAD_STATES and (
            state in ENDED_UNGRANTED
            or not any(
                t.name == name and t.delivered_at is None
                for t in await ApplicationRepository(self.session).tolerances(application.id)
            )
        ):
            raise IllegalTransition(
                "只有待受理或待补正的申请，或容缺受理后待补交的材料，可以提交",
                current_state=application.state,
            )
        specs = await self._guide_materials(application)
        if name not in specs:
            raise MaterialNotInGuide(f"「{name}」不是该事项办事指南中的材料", allowed=sorted(specs))
        return specs[name]

    async def _current(self, application: Application, name: str) -> Application:
        """The application read again in the write's transaction, the material checked against
        it: its state may have changed while a network call was answered. The row given may have
        been expired by the end of the read (``end_read``): its id is taken without loading it."""
        identity = sa_inspect(application).identity
        application_id = identity[0] if identity else application.id
        current = await ApplicationRepository(self.session).get(application_id)
        if current is None:  # pragma: no cover - applications are never deleted
            raise ApplicationNotFound(f"申请 {application_id} 不存在")
        await self._spec(current, name)
        return current

    async def upload(self, *, application: Application, name: str, file: UploadFile) -> MaterialOut:
        """Check size and real type, keep the SHA-256, store the blob, then record it.

        The blob is stored (object storage is a network call) with no transaction open; the
        material is then checked again against the application as it is now, and recorded.
        """
        await self._spec(application, name)
        material_id = uuid.uuid4()
        key = f"applications/{application.id}/{material_id}"
        received = await self.receive(file)  # the read ends: what follows is the storage call
        await self.storage.put(key, received.data, content_type=received.content_type)
        return await self.record(
            application=application,
            name=name,
            received=received,
            key=key,
            material_id=material_id,
            filename=file.filename,
        )

    async def check_upload(self, *, application: Application, name: str) -> None:
        """The application takes this material now (its state, its guide); a problem otherwise."""
        await self._spec(application, name)

    async def receive(self, file: UploadFile) -> Received:
        """Read the file within the size limit, hash it and check its real type (not stored).

        The checks' read ends first: what follows a received file is storing it (object storage
        is a network call), with no transaction open; ``record`` checks again in the write.
        """
        await end_read(self.session)
        if file.size is not None and file.size > self.max_bytes:
            raise PayloadTooLarge(f"文件超过 {self.max_bytes // (1024 * 1024)} MB 上限")
        digest = hashlib.sha256()
        chunks: list[bytes] = []
        size = 0
        while chunk := await file.read(CHUNK):
            size += len(chunk)
            if size > self.max_bytes:
                raise PayloadTooLarge(f"文件超过 {self.max_bytes // (1024 * 1024)} MB 上限")
            digest.update(chunk)
            chunks.append(chunk)
        data = b"".join(chunks)
        declared = (file.content_type or "").split(";")[0].strip().lower()
        # The whole file is parsed: CPU work kept off the event loop.
        real = await asyncio.to_thread(inspect_upload, data, declared=declared, limits=self.limits)
        return Received(data=data, content_type=real, size=size, sha256=digest.hexdigest())

    async def record(
        self,
        *,
        application: Application,
        name: str,
        received: Received,
        key: str,
        material_id: uuid.UUID,
        filename: str | None,
    ) -> MaterialOut:
        """Record a stored blob as a material of the application (a shared blob: one key, many
        applications), checked again against the application as it is now (its state may have
        changed while the blob was stored)."""
        application = await self._current(application, name)
        row = {
            "id": material_id,
            "application_id": application.id,
            "name": name,
            "source": "upload",
            # The client's name is only ever a display name: no path, no control characters.
            "filename": display_filename(filename),
            "content_type": received.content_type,
            "size": received.size,
            "sha256": received.sha256,
            "storage_key": key,
            "licence_no": None,
            "uploaded_at": datetime.now(UTC),
        }
        await self.session.execute(insert(Material).values(**row))
        await self._delivered(application, row)
        return MaterialOut.model_validate(row)

    async def _delivered(self, application: Application, row: dict[str, Any]) -> None:
        """A material accepted as missing (容缺受理) has arrived: recorded, and in the trail."""
        repository = ApplicationRepository(self.session)
        if not await repository.deliver_tolerance(
            application.id, row["name"], material_id=row["id"], at=row["uploaded_at"]
        ):
            return
        # Hold the row before reading the chain's end, as every writer of the trail does.
        await repository.touch(application.id, at=row["uploaded_at"])
        last_seq, last_hash = await repository.chain_end(application.id)
        state = ApplicationState(application.state)
        await append_audit(
            self.session,
            application_id=application.id,
            seq=last_seq + 1,
            prev_hash=last_hash,
            action="tolerated_material_delivered",
            from_state=state,
            to_state=state,
            actor=(application.applicant_uscc, "enterprise"),
            at=row["uploaded_at"],
            details={"material": row["name"], "material_id": str(row["id"])},
        )

    async def from_licence(self, *, application: Application, name: str) -> MaterialOut:
        """Satisfy a material with a valid e-licence the enterprise holds, asking license.

        License is asked with no transaction open (the checks' read ended first); the material
        is then checked again against the application as it is now, and recorded.
        """
        spec = await self._spec(application, name)
        licence_type = spec.get("replaced_by_licence_type")
        if not licence_type:
            raise NoValidLicence(f"「{name}」不能以电子证照替代，请上传")
        uscc = application.applicant_uscc
        await end_read(self.session)
        held = await self.license.valid_licences(uscc=uscc)
        match = next((lic for lic in held if lic.licence_type == licence_type), None)
        if match is None:
            raise NoValidLicence(
                f"未查到申请人持有有效的「{name}」电子证照，请上传材料", licence_type=licence_type
            )
        application = await self._current(application, name)
        row = {
            "id": uuid.uuid4(),
            "application_id": application.id,
            "name": name,
            "source": "e_licence",
            "filename": None,
            "content_type": None,
            "size": None,
            "sha256": None,
            "storage_key": None,
            "licence_no": match.licence_no,
            "uploaded_at": datetime.now(UTC),
        }
        await self.session.execute(insert(Material).values(**row))
        await self._delivered(application, row)
        return MaterialOut.model_validate(row)

    async def checklist(self, *, application: Application) -> MaterialChecklist:
        """What the application has against what its guide requires."""
        rows = (
            await self.session.scalars(
                select(Material)
                .where(Material.application_id == application.id)
                .order_by(Material.uploaded_at)
            )
        ).all()
        have = {m.name for m in rows}
        specs = await self._guide_materials(application)
        missing = [n for n, s in specs.items() if s.get("required", True) and n not in have]
        tolerances = await ApplicationRepository(self.session).tolerances(application.id)
        return MaterialChecklist(
            materials=[MaterialOut.model_validate(m) for m in rows],
            missing_required=missing,
            complete=not missing,
            tolerated=[ToleranceOut.model_validate(t) for t in tolerances],
        )

    async def content(
        self, *, application: Application, material_id: uuid.UUID
    ) -> tuple[Material, bytes]:
        """An uploaded file's bytes (fetched from storage once the row's read has ended)."""
        material = await self.session.get(Material, material_id)
        if (
            material is None
            or material.application_id != application.id
            or not material.storage_key
        ):
            raise MaterialNotInGuide("材料不存在或不是上传文件")
        # A detached row keeps its values through the read's end (a rollback would expire them).
        self.session.expunge(material)
        await end_read(self.session)
        return material, await self.storage.get(material.storage_key)
