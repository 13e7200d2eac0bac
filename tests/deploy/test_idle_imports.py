"""A web process does not load the PDF, upload-checking and object-storage stacks before it needs
them.

reportlab, pypdf, Pillow and boto3 together held some 30 MB of each service's idle memory
(``bench/idle_rss.py``), puremagic's signature tables about 0.9 MB more; they are imported by the
first document sealed or checked, the first upload checked or parsed, the first S3 store made. Each
service's app is imported and built in a fresh interpreter, as ``python -m <service>.main`` does
before serving.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

HEAVY = ("reportlab", "pypdf", "PIL", "boto3", "botocore", "puremagic")


@pytest.mark.parametrize("module", ["approval.main", "licensing.main", "notify.main"])
def test_a_built_app_has_not_imported_the_pdf_upload_or_s3_stacks(module: str) -> None:
    code = (
        "import importlib, json, sys;"
        f"importlib.import_module({module!r}).create_app();"
        f"print(json.dumps(sorted({{n.split('.')[0] for n in sys.modules}} & set({HEAVY!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("module", ["approval.main", "licensing.main", "notify.main"])
def test_a_built_app_on_sqlite_has_not_loaded_the_postgresql_driver(module: str) -> None:
    """On SQLite (``make run``'s default) asyncpg stays unloaded (~2 MB): its error classes are
    registered as outages only for an app on PostgreSQL, and recognised only once it is loaded."""
    code = (
        "import importlib, sys;"
        f"importlib.import_module({module!r}).create_app();"
        "print('asyncpg' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_the_lazy_imports_still_work() -> None:
    """What moved into functions is found when called: a sealed-PDF check, a date's text, the
    detector that names an upload's type by its content."""
    from PIL import Image

    from govshared.chinatime import china_date_text
    from govshared.seal.pdf import china_date_text as from_pdf
    from govshared.uploads import UploadContentRejected, inspect_upload

    assert china_date_text("2026-11-29") == from_pdf("2026-11-29") == "2026年11月29日"
    with pytest.raises(UploadContentRejected):
        inspect_upload(b"%PDF-1.4\n%broken", declared="application/pdf")
    # A real PNG is named so by the detector (puremagic) as well as by its first bytes.
    image = io.BytesIO()
    Image.new("RGB", (2, 2), "red").save(image, format="PNG")
    assert inspect_upload(image.getvalue(), declared="image/png") == "image/png"
