"""PDF uploads: what runs from a form field, a bookmark or an attachment is refused too.

Beyond the open action, the page and annotation actions and the ``/Names`` JavaScript tree: the
interactive form's fields (through ``/Kids``) and its XFA, the outline's items (through ``/First``
and ``/Next``), actions chained with ``/Next``, and embedded files. Every walk is bounded: a cycle
of indirect objects is refused as malformed, never walked for ever.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from pypdf import PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    FloatObject,
    IndirectObject,
    NameObject,
    NumberObject,
    RectangleObject,
    TextStringObject,
)

from govshared.auth import Role
from govshared.testing import Tokens, problem, random_uscc
from govshared.uploads import MAX_PDF_DEPTH, UploadContentRejected, inspect_upload

from ..documents.conftest import Flow

MATERIAL = "仓储设施证明材料"


@pytest.fixture
def flow(client: httpx.AsyncClient, tokens: Tokens, app: FastAPI) -> Flow:
    """A fresh enterprise's application flow."""
    return Flow(client=client, tokens=tokens, uscc=random_uscc(), app=app)


def _name(value: str) -> NameObject:
    return NameObject(value)


def _dict(**entries: object) -> DictionaryObject:
    return DictionaryObject({_name(f"/{k}"): v for k, v in entries.items()})


def javascript(code: str = "app.alert(1)") -> DictionaryObject:
    return _dict(S=_name("/JavaScript"), JS=TextStringObject(code))


def launch(program: str = "cmd.exe") -> DictionaryObject:
    return _dict(S=_name("/Launch"), F=TextStringObject(program))


def go_to(writer: PdfWriter) -> ArrayObject:
    """A destination: the first page, fitted."""
    return ArrayObject([writer.pages[0].indirect_reference, _name("/Fit")])


def pdf(build: Callable[[PdfWriter], None]) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    build(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def add(writer: PdfWriter, obj: DictionaryObject | ArrayObject) -> IndirectObject:
    return writer._add_object(obj)


def acroform(writer: PdfWriter, fields: list[IndirectObject], **extra: object) -> None:
    writer._root_object[_name("/AcroForm")] = add(
        writer, _dict(Fields=ArrayObject(fields), **extra)
    )


def outline(writer: PdfWriter, items: list[DictionaryObject]) -> list[IndirectObject]:
    """Top-level bookmarks, chained with /Next (the references, to tie cycles with)."""
    root = _dict(Type=_name("/Outlines"))
    root_ref = add(writer, root)
    refs = [add(writer, item) for item in items]
    for item, ref in zip(items, refs, strict=True):
        item[_name("/Parent")] = root_ref
    for item, following in zip(items, refs[1:], strict=False):
        item[_name("/Next")] = following
    root[_name("/First")] = refs[0]
    root[_name("/Last")] = refs[-1]
    root[_name("/Count")] = NumberObject(len(items))
    writer._root_object[_name("/Outlines")] = root_ref
    return refs


def bookmark(title: str, **entries: object) -> DictionaryObject:
    return _dict(Title=TextStringObject(title), **entries)


def field_with_a_keystroke_script(writer: PdfWriter) -> None:
    # A text field under a parent field, on no page's /Annots: only the form's tree reaches it.
    parent = _dict(T=TextStringObject("企业信息"))
    parent_ref = add(writer, parent)
    kid = _dict(
        FT=_name("/Tx"),
        T=TextStringObject("名称"),
        Parent=parent_ref,
        AA=_dict(K=javascript("event.rc = app.launchURL('https://example.com')")),
    )
    parent[_name("/Kids")] = ArrayObject([add(writer, kid)])
    acroform(writer, [parent_ref])


def field_with_an_action(writer: PdfWriter) -> None:
    button = _dict(FT=_name("/Btn"), T=TextStringObject("提交"), A=javascript())
    acroform(writer, [add(writer, button)])


def bookmark_with_a_script(writer: PdfWriter) -> None:
    outline(writer, [bookmark("第一章", A=javascript())])


def launch_chained_after_a_bookmark(writer: PdfWriter) -> None:
    # The second bookmark (reached through /Next) goes to page 1, then (its action's /Next)
    # starts a program.
    goes = _dict(S=_name("/GoTo"), D=go_to(writer), Next=add(writer, launch()))
    outline(writer, [bookmark("目录", Dest=go_to(writer)), bookmark("附录", A=goes)])


def nested_bookmark_with_a_script(writer: PdfWriter) -> None:
    child = bookmark("1.1", A=javascript())
    [chapter] = outline(writer, [bookmark("第一章", Dest=go_to(writer))])
    child[_name("/Parent")] = chapter
    chapter_dict = chapter.get_object()
    chapter_dict[_name("/First")] = chapter_dict[_name("/Last")] = add(writer, child)


def xfa_form(writer: PdfWriter) -> None:
    # Compressed, as XFA usually is: the script inside is not visible in the file's bytes.
    xfa = DecodedStreamObject()
    xfa.set_data(
        b'<xdp:xdp xmlns:xdp="http://ns.adobe.com/xdp/"><template><subform><event '
        b'activity="initialize"><script contentType="application/x-javascript">app.alert(1)'
        b"</script></event></subform></template></xdp:xdp>"
    )
    acroform(writer, [], XFA=add(writer, xfa.flate_encode()))


def embedded_file(writer: PdfWriter) -> None:
    writer.add_attachment("说明.bat", b"@echo off\r\ndel /q %USERPROFILE%\\Documents\r\n")


def embedded_json_that_is_not(writer: PdfWriter) -> None:
    writer.add_attachment("data.json", b"@echo off\r\nformat c:\r\n")


def embedded_json_with_another_unicode_name(writer: PdfWriter) -> None:
    # /F says data.json, /UF (what a reader shows and saves as) says run.cmd.
    writer.add_attachment("data.json", b'{"a": 1}')
    names = writer._root_object["/Names"]["/EmbeddedFiles"]["/Names"]
    names[1].get_object()[_name("/UF")] = TextStringObject("run.cmd")


def embedded_data(writer: PdfWriter) -> None:
    """What the suite's sealed documents carry: their signed data, as JSON."""
    writer.add_attachment("onestop-licence.json", '{"licence_no": "沪盐批0001"}'.encode())
    writer.add_attachment(
        "invoice.xml", b'<?xml version="1.0"?><Invoice><Total>1</Total></Invoice>'
    )


def file_attachment_annotation(writer: PdfWriter) -> None:
    spec = _dict(Type=_name("/Filespec"), F=TextStringObject("附件.docm"))
    annotation = _dict(
        Type=_name("/Annot"),
        Subtype=_name("/FileAttachment"),
        Rect=RectangleObject([0, 0, 10, 10]),
        FS=add(writer, spec),
    )
    writer.pages[0][_name("/Annots")] = ArrayObject([add(writer, annotation)])


def cyclic_outline(writer: PdfWriter) -> None:
    first, second = outline(
        writer, [bookmark("一", Dest=go_to(writer)), bookmark("二", Dest=go_to(writer))]
    )
    second.get_object()[_name("/Next")] = first


def field_that_is_its_own_kid(writer: PdfWriter) -> None:
    field = _dict(T=TextStringObject("循环"))
    ref = add(writer, field)
    field[_name("/Kids")] = ArrayObject([ref])
    acroform(writer, [ref])


def fields_nested_too_deep(writer: PdfWriter) -> None:
    ref = add(writer, _dict(FT=_name("/Tx"), T=TextStringObject("底")))
    for level in range(MAX_PDF_DEPTH + 1):
        ref = add(writer, _dict(T=TextStringObject(f"层{level}"), Kids=ArrayObject([ref])))
    acroform(writer, [ref])


def action_lattice(writer: PdfWriter) -> None:
    # Seven levels of 64-way /Next arrays onto one action: 64**7 paths through 8 objects. A walk
    # that does not remember what it has visited never ends.
    ref = add(writer, _dict(S=_name("/GoTo"), D=go_to(writer)))
    for _ in range(7):
        ref = add(writer, _dict(S=_name("/GoTo"), D=go_to(writer), Next=ArrayObject([ref] * 64)))
    writer._root_object[_name("/OpenAction")] = ref


REFUSED = {
    "a form field's keystroke script": (field_with_a_keystroke_script, "active_content"),
    "a form field's action": (field_with_an_action, "active_content"),
    "a bookmark with a script": (bookmark_with_a_script, "active_content"),
    "a launch chained after a bookmark": (launch_chained_after_a_bookmark, "active_content"),
    "a nested bookmark with a script": (nested_bookmark_with_a_script, "active_content"),
    "an xfa form": (xfa_form, "active_content"),
    "an embedded file": (embedded_file, "active_content"),
    "an embedded .json that is not json": (embedded_json_that_is_not, "active_content"),
    "an embedded .json whose unicode name is a program's": (
        embedded_json_with_another_unicode_name,
        "active_content",
    ),
    "a file attachment annotation": (file_attachment_annotation, "active_content"),
    "a cyclic outline": (cyclic_outline, "malformed"),
    "a field that is its own kid": (field_that_is_its_own_kid, "malformed"),
    "fields nested too deep": (fields_nested_too_deep, "too_complex"),
    "a lattice of chained actions": (action_lattice, "malformed"),
}


def plain_bookmarks_and_form(writer: PdfWriter) -> None:
    """What a real material has: bookmarks that go to pages, and a form that only holds values."""
    chapter = writer.add_outline_item(title="第一章 企业基本情况", page_number=0)
    writer.add_outline_item(title="1.1 仓储设施", page_number=0, parent=chapter)
    writer.add_outline_item(title="第二章 承诺", page_number=0)
    uri = _dict(S=_name("/URI"), URI=TextStringObject("https://zwfw.sh.gov.cn"))
    outline_root = writer._root_object["/Outlines"].get_object()
    outline_root["/First"].get_object()[_name("/A")] = uri
    widget = _dict(
        Type=_name("/Annot"),
        Subtype=_name("/Widget"),
        FT=_name("/Tx"),
        T=TextStringObject("企业名称"),
        V=TextStringObject("上海盐业示范有限公司"),
        Rect=RectangleObject([10, 10, 150, 30]),
        P=writer.pages[0].indirect_reference,
    )
    widget_ref = add(writer, widget)
    check = _dict(FT=_name("/Btn"), T=TextStringObject("同意"), V=_name("/Yes"))
    writer.pages[0][_name("/Annots")] = ArrayObject([widget_ref])
    acroform(
        writer,
        [widget_ref, add(writer, check)],
        DA=TextStringObject("/Helv 0 Tf 0 g"),
        NeedAppearances=FloatObject(1),
    )


PLAIN = pdf(plain_bookmarks_and_form)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_active_content_in_forms_bookmarks_and_attachments_is_refused(name: str) -> None:
    build, reason = REFUSED[name]
    with pytest.raises(UploadContentRejected) as caught:
        inspect_upload(pdf(build), declared="application/pdf")
    assert caught.value.extensions["reason"] == reason


def test_plain_bookmarks_and_a_form_without_actions_pass() -> None:
    assert b"/Outlines" in PLAIN and b"/AcroForm" in PLAIN
    assert inspect_upload(PLAIN, declared="application/pdf") == "application/pdf"


def test_embedded_json_and_xml_data_pass() -> None:
    assert inspect_upload(pdf(embedded_data), declared="application/pdf") == "application/pdf"


async def test_a_sealed_document_of_the_suite_is_accepted_as_a_material(flow: Flow) -> None:
    # A notice this suite sealed, its signed data riding along as an embedded JSON file
    # (onestop-seal.json), uploaded by its holder as a material of another application.
    await flow.submit()
    await flow.step("accept", Role.ACCEPTOR)
    [notice] = await flow.documents()
    sealed = await flow.client.get(
        f"/api/v1/applications/{flow.application_id}/documents/{notice['id']}/pdf",
        headers=flow.applicant,
    )
    assert sealed.status_code == 200 and b"/EmbeddedFiles" in sealed.content
    base = await materials_of_a_new_application(flow.client, flow.tokens, flow.uscc)
    uploaded = await flow.client.post(
        base,
        data={"name": MATERIAL},
        files={"file": ("受理通知书.pdf", sealed.content, "application/pdf")},
        headers=flow.tokens.enterprise(flow.uscc),
    )
    assert uploaded.status_code == 201, uploaded.text


async def materials_of_a_new_application(
    client: httpx.AsyncClient, tokens: Tokens, uscc: str
) -> str:
    created = await client.post(
        "/api/v1/applications",
        json={
            "item_code": "JXW-XK-002",
            "applicant_name": "上海盐业示范有限公司",
            "form": {"warehouse_address": "上海市", "warehouse_area": 100},
        },
        headers=tokens.enterprise(uscc),
    )
    assert created.status_code == 201, created.text
    return f"/api/v1/applications/{created.json()['id']}/materials"


async def test_through_the_materials_upload(client: httpx.AsyncClient, tokens: Tokens) -> None:
    uscc = random_uscc()
    base = await materials_of_a_new_application(client, tokens, uscc)
    for name in (
        "a form field's keystroke script",
        "a launch chained after a bookmark",
        "an embedded file",
        "a cyclic outline",
    ):
        build, reason = REFUSED[name]
        refused = await client.post(
            base,
            data={"name": MATERIAL},
            files={"file": ("证明.pdf", pdf(build), "application/pdf")},
            headers=tokens.enterprise(uscc),
        )
        assert refused.status_code == 422, (name, refused.text)
        assert problem(refused)["code"] == "upload_content_rejected"
        assert problem(refused)["reason"] == reason, name
    accepted = await client.post(
        base,
        data={"name": MATERIAL},
        files={"file": ("证明.pdf", PLAIN, "application/pdf")},
        headers=tokens.enterprise(uscc),
    )
    assert accepted.status_code == 201, accepted.text
    listed = (await client.get(base, headers=tokens.enterprise(uscc))).json()
    assert [m["id"] for m in listed["materials"]] == [accepted.json()["id"]]
