"""The 告知承诺 text of a guide: license's, one text per reform-item version, served unchanged.

License owns the reform mode of an item per jurisdiction and effective date, and with it the
commitment text (its ``/reform-items/{code}/mode`` answer). Approval's guide keeps no copy: it
serves license's text and its SHA-256, fetched through the typed client (cached for
``APPROVAL_REFORM_MODE_CACHE_SECONDS``), and intake checks the digest an applicant signs against
the same answer. A stored guide from before this rule may still hold a text of its own: it is
never served nor used.
"""

from __future__ import annotations

from datetime import date
from typing import TypeVar

from approval.catalogue.schemas import ItemOut, ItemVersionOut
from approval.clients.license import LicenseClient
from govshared.events import ReformMode

View = TypeVar("View", ItemOut, ItemVersionOut)


def without_stored_text(view: View) -> View:
    """A guide as stored, less any commitment text of its own (license's is the only one)."""
    view.guide.commitment_text = None
    return view


async def with_license_text(item: ItemOut, license: LicenseClient, *, on: date) -> ItemOut:
    """The guide with license's commitment text in force on ``on`` (call outside a transaction)."""
    without_stored_text(item)
    answer = await license.reform_mode(item_code=item.code, jurisdiction=item.jurisdiction, on=on)
    if answer is not None and answer.mode is ReformMode.COMMITMENT and answer.commitment_text:
        item.guide.commitment_text = answer.commitment_text
        item.commitment_text_sha256 = answer.commitment_text_sha256
        item.commitment_version = answer.version
    return item
