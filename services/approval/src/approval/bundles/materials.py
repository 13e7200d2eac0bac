"""Materials of a bundle uploaded once and shared: one stored blob, one material row per item.

Each item's application records the upload as its own material (``application_materials``) with
the same ``storage_key`` and SHA-256: staff of each item read it with the case, and the blob is
stored once.
"""

from __future__ import annotations

import uuid

from fastapi import UploadFile
from sqlalchemy.ext.asyncio import AsyncSession

from approval.bundles.errors import BundleApplicationNotFound
from approval.bundles.repository import BundleApplicationRepository, BundleRepository
from approval.bundles.schemas import BundleDefinition, BundleMaterialOut
from approval.errors import MaterialNotInGuide
from approval.materials.service import MaterialService
from approval.reading import ApplicationReader
from govshared.auth import Principal


async def upload_shared(
    session: AsyncSession,
    *,
    materials: MaterialService,
    reader: ApplicationReader,
    principal: Principal,
    bundle_application_id: uuid.UUID,
    name: str,
    file: UploadFile,
) -> BundleMaterialOut:
    """Store the file once and record it as the material of every item that needs it; nothing
    is recorded unless every one of those items takes it now.

    Each item's application is checked as the law has it today (``ApplicationReader.effective``),
    as a single upload is: one past its Art. 32 acceptance period is accepted, and takes no upload.
    """
    repository = BundleApplicationRepository(session)
    found = await repository.get(bundle_application_id)
    if found is None or found.applicant_uscc != principal.uscc:
        raise BundleApplicationNotFound(f"一件事申请 {bundle_application_id} 不存在")
    version = await BundleRepository(session).version(found.bundle_code, found.bundle_version)
    assert version is not None
    definition = BundleDefinition.model_validate(version.definition)
    shared = next((m for m in definition.materials if m.name == name), None)
    if shared is None:
        raise MaterialNotInGuide(
            f"「{name}」不是该一件事共享的材料", allowed=[m.name for m in definition.materials]
        )
    applications = {
        a.item_code: await reader.effective(a)
        for a in await repository.member_applications(found.id)
    }
    targets = [(applications[t.item_code], t.item_code, t.material) for t in shared.maps_to]
    # Read now: the end of the read (below) expires the rows.
    ids = {code: application.id for application, code, _material in targets}
    for application, _code, material in targets:
        await materials.check_upload(application=application, name=material)
    key = f"bundle-applications/{found.id}/{uuid.uuid4()}"
    # The checks' read ends here (receive): the blob is stored with no transaction open, and
    # ``record`` checks each application again, as it is now, in the write's transaction.
    received = await materials.receive(file)
    await materials.storage.put(key, received.data, content_type=received.content_type)
    recorded = []
    for application, item_code, material in targets:
        out = await materials.record(
            application=application,
            name=material,
            received=received,
            key=key,
            material_id=uuid.uuid4(),
            filename=file.filename,
        )
        recorded.append(
            {
                "item_code": item_code,
                "application_id": str(ids[item_code]),
                "material": material,
                "material_id": str(out.id),
            }
        )
    return BundleMaterialOut(
        name=name,
        sha256=received.sha256,
        size=received.size,
        content_type=received.content_type,
        materials=recorded,
    )
