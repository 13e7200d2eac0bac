"""Files from outside and files served back: checked by content, named safely, never rendered.

An upload is accepted only when a maintained detector (puremagic) and the first bytes agree on one
of the accepted types, the file parses as that type (pypdf for PDF, Pillow for PNG and JPEG, the
OFD package structure of GB/T 33190), and nothing in it makes it also another kind of file: HTML
or script markup that a browser would run, an executable, or a ZIP archive riding along (the
polyglots that pass a first-bytes check). Stored files are served as attachments with
``X-Content-Type-Options: nosniff`` and a sandboxing CSP, so that a browser never renders one in
the service's origin; a client's file name is kept only as a sanitised display name.
"""

from __future__ import annotations

import io
import json
import re
import unicodedata
import warnings
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi.responses import Response

from govshared.problems import DomainError, UnsupportedMediaType
from govshared.storage import sniff_content_type

ACCEPTED_TYPES = ("application/pdf", "application/ofd", "image/png", "image/jpeg")
# What a stored file may be served as; anything else goes out as application/octet-stream.
SERVABLE_TYPES = frozenset(ACCEPTED_TYPES)
OCTET_STREAM = "application/octet-stream"
MAX_DISPLAY_NAME = 120

# What puremagic may call each accepted type (its first match must be one of these).
_DETECTED: dict[str, frozenset[str]] = {
    "application/pdf": frozenset({"application/pdf", "application/vnd.fdf"}),
    "image/png": frozenset({"image/png", "image/apng"}),
    "image/jpeg": frozenset({"image/jpeg", "image/jpg", "image/pjpeg"}),
}
# Markup a browser runs, anywhere in the file (a browser sniffing a file, or a file opened from
# disk, does not care where the PDF header is). Searched in the lower-cased bytes: a pattern that
# starts with a literal is scanned for quickly (20 MB in a fraction of a second).
_ACTIVE_MARKUP = re.compile(
    rb"<(?:!doctype\s+html|html|head|body|script|iframe|frame|frameset|object|embed|svg|meta"
    rb"|link|form|style|base|applet|img\s|a\s+href|\?php)[\s/>]"
)
_SCRIPT_URLS = (b"javascript:", b"vbscript:")
_EXECUTABLE = (b"This program cannot be run in DOS mode", b"This program must be run under Win32")
# Actions that run a script or a program, send the form or data somewhere, or open an embedded
# file (ISO 32000-2 12.6.4); a rich-media script command is one too.
_PDF_ACTIONS = frozenset(
    {"/JavaScript", "/Launch", "/ImportData", "/SubmitForm", "/RichMediaExecute", "/GoToE"}
)
# The embedded files a PDF may carry: a data file, by a plain name (see ``_PdfWalk._attachment``).
_DATA_ATTACHMENT = re.compile(r"[^\x00-\x1f\x7f/\\:*?\"<>|]{1,120}\.(?:json|xml)", re.IGNORECASE)
MAX_PDF_ATTACHMENT_BYTES = 1024 * 1024
# Bounds of the walk over a PDF's actions, form fields and outline (see ``_PdfWalk``).
MAX_PDF_NODES = 100_000
MAX_PDF_DEPTH = 64
MAX_ACTION_CHAIN = 16
_RISKY_ENTRY = re.compile(
    r"\.(?:exe|dll|com|scr|bat|cmd|ps1|sh|js|mjs|vbs|jar|html?|xhtml|svg|hta|msi)$", re.IGNORECASE
)
_PNG_END = b"IEND\xaeB`\x82"


class UploadContentRejected(DomainError):
    """The file is of an accepted type by its first bytes but is not safely that type alone."""

    status = 422
    code = "upload_content_rejected"
    title = "文件内容未通过安全检查"
    title_en = "The file's content failed the safety check"


@dataclass(frozen=True, slots=True)
class UploadLimits:
    """Bounds of the checks themselves (a decompression bomb must not become our problem)."""

    max_image_pixels: int = 50_000_000
    max_ofd_unpacked_bytes: int = 200 * 1024 * 1024
    max_ofd_entries: int = 10_000


def inspect_upload(data: bytes, *, declared: str, limits: UploadLimits | None = None) -> str:
    """The content type of an acceptable upload; 415 or 422 (with ``reason``) when it is not.

    CPU-bound (it parses the whole file): call it in a worker thread.
    """
    limits = limits or UploadLimits()
    real = sniff_content_type(data[:512])
    if real is None:
        raise UnsupportedMediaType("仅接受 PDF、OFD、PNG、JPEG 文件", accepted=list(ACCEPTED_TYPES))
    if declared not in ("", OCTET_STREAM, real):
        raise UnsupportedMediaType(
            f"文件内容为 {real}，与声明的类型 {declared} 不符", detected=real, declared=declared
        )
    _agree_with_detector(data, real)
    _refuse_polyglot(data, real)
    if real == "application/pdf":
        _parse_pdf(data)
    elif real == "application/ofd":
        _parse_ofd(data, limits)
    else:
        _parse_image(data, real, limits)
    return real


def _agree_with_detector(data: bytes, real: str) -> None:
    if real not in _DETECTED:
        # puremagic has no OFD signature (it guesses among ZIP-based formats by their entries):
        # an OFD package is checked by its structure instead (``_parse_ofd``).
        return
    # Imported by the first upload checked, not at start: its signature tables are about 0.9 MB
    # of a process's memory (bench/idle_rss.py), held from then on.
    import puremagic

    try:
        matches = puremagic.magic_string(data)
    except puremagic.PureError:
        matches = []
    if not matches or matches[0].mime_type not in _DETECTED[real]:
        found = matches[0].mime_type if matches else "unknown"
        raise UnsupportedMediaType(
            f"文件内容识别为 {found or '未知类型'}，不是 {real}", detected=found, declared=real
        )


def _refuse_polyglot(data: bytes, real: str) -> None:
    """Refuse a file that is also HTML, script, an executable or (except OFD) a ZIP archive."""
    lowered = data.lower()
    if _ACTIVE_MARKUP.search(lowered) is not None or any(u in lowered for u in _SCRIPT_URLS):
        raise UploadContentRejected("文件中含有网页或脚本代码", reason="active_content")
    if data.startswith((b"MZ", b"\x7fELF")) or any(marker in data for marker in _EXECUTABLE):
        raise UploadContentRejected("文件中含有可执行程序", reason="polyglot")
    if real != "application/ofd" and zipfile.is_zipfile(io.BytesIO(data)):
        raise UploadContentRejected("文件同时是一个压缩包", reason="polyglot")
    if real == "image/png" and not data.endswith(_PNG_END):
        raise UploadContentRejected("PNG 文件结束之后还有其他数据", reason="polyglot")


def _malformed(kind: str) -> UploadContentRejected:
    return UploadContentRejected(f"文件不是有效的 {kind} 文件", reason="malformed")


def _parse_pdf(data: bytes) -> None:
    """It must parse, have a page, and carry no scripts, launch actions or embedded files."""
    # pypdf and Pillow are imported by the first upload that needs them, not at start: a web
    # process that never parses a file does not hold them (bench/idle_rss.py).
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError
    from pypdf.generic import DictionaryObject

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise UploadContentRejected("请上传未加密的 PDF 文件", reason="encrypted")
        if len(reader.pages) < 1:
            raise _malformed("PDF")
        root = _resolved(reader.trailer["/Root"])
        if not isinstance(root, DictionaryObject):
            raise _malformed("PDF")
        _PdfWalk().inspect(root, reader.pages)
    except UploadContentRejected:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise _malformed("PDF") from exc


def _resolved(value: Any) -> Any:
    from pypdf.generic import IndirectObject

    return value.get_object() if isinstance(value, IndirectObject) else value


def _active(detail: str, **extensions: Any) -> UploadContentRejected:
    return UploadContentRejected(detail, reason="active_content", **extensions)


class _PdfWalk:
    """Every place a PDF reader runs something from, walked with bounds.

    The catalog's open action and triggers, the ``/Names`` JavaScript tree, each page's triggers
    and annotations, the interactive form's fields (through ``/Kids``) and the outline's items
    (bookmarks, through ``/First`` and ``/Next``), and every action chained after another with
    ``/Next``. An XFA form (scripts inside) or rich media is refused outright, an embedded file
    unless it is JSON or XML data (``_attachment``). The walk is
    iterative, visits at most ``MAX_PDF_NODES`` objects, nests at most ``MAX_PDF_DEPTH`` levels
    (an action chain ``MAX_ACTION_CHAIN``), and a tree that reaches one of its own nodes again
    (a cycle of indirect objects) is refused as malformed rather than walked for ever.
    """

    def __init__(self) -> None:
        self.left = MAX_PDF_NODES

    def inspect(self, root: Any, pages: Any) -> None:
        names = self._dict(root.get("/Names"))
        if names is not None and "/JavaScript" in names:
            raise _active("PDF 文件中含有脚本")
        if names is not None:
            for spec in self._name_tree(names.get("/EmbeddedFiles")):
                self._attachment(spec)
        for spec in self._array(root.get("/AF")):
            self._attachment(spec)
        self._actions(root.get("/OpenAction"))
        self._triggers(root.get("/AA"))
        for page in pages:
            self._triggers(page.get("/AA"))
            annotations = self._array(page.get("/Annots"))
            for annotation in annotations:
                self._node(self._dict(annotation))
        form = self._dict(root.get("/AcroForm"))
        if form is not None:
            if "/XFA" in form:
                raise _active("PDF 文件中含有 XFA 表单（可带脚本）")
            self._tree(self._array(form.get("/Fields")), children=("/Kids",), siblings=None)
        outline = self._dict(root.get("/Outlines"))
        if outline is not None:
            self._tree([outline.get("/First")], children=("/First",), siblings="/Next")

    def _count(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise UploadContentRejected(
                f"PDF 文件的动作、表单或书签超过 {MAX_PDF_NODES} 个，无法检查", reason="too_complex"
            )

    def _dict(self, value: Any) -> Any:
        from pypdf.generic import DictionaryObject

        self._count()
        value = _resolved(value)
        return value if isinstance(value, DictionaryObject) else None

    def _array(self, value: Any) -> list[Any]:
        from pypdf.generic import ArrayObject

        self._count()
        value = _resolved(value)
        return list(value) if isinstance(value, ArrayObject) else []

    def _node(self, node: Any) -> None:
        """An annotation, a form field or an outline item: what it runs, and no attachment."""
        if node is None:
            return
        if node.get("/Subtype") == "/RichMedia":
            raise _active("PDF 文件中含有多媒体内容（可带脚本）")
        if node.get("/Subtype") == "/FileAttachment":
            self._attachment(node.get("/FS"))
        self._actions(node.get("/A"))
        self._triggers(node.get("/AA"))

    def _attachment(self, value: Any) -> None:
        """An embedded file: only a data file (JSON or XML, by name and by content), held in the
        PDF itself. The suite's own sealed documents carry their signed data so
        (``onestop-licence.json``, ``onestop-seal.json``), as PDF/A-3 invoices carry XML; any
        other file (a program, a macro document, a page, another PDF) is nothing this check
        looks inside, and a reader opens it on a click."""
        from pypdf.generic import StreamObject

        spec = self._dict(value)
        # A reader may go by either name (/UF, the Unicode one, first): both must be a data file's.
        names = [
            str(_resolved(spec.get(key)))
            for key in ("/UF", "/F")
            if spec is not None and spec.get(key) is not None
        ]
        name = names[0][:120] if names else ""
        files = self._dict(spec.get("/EF")) if spec is not None else None
        if files is None or not names or not all(map(_DATA_ATTACHMENT.fullmatch, names)):
            raise _active(
                f"PDF 文件中附有嵌入文件「{name[:60]}」，请将其作为单独的材料上传", attachment=name
            )
        for stream in files.values():
            self._count()
            stream = _resolved(stream)
            if not isinstance(stream, StreamObject):
                raise _malformed("PDF")
            data = stream.get_data()  # pypdf stops a decompression at 75 MB (LimitReachedError)
            if len(data) > MAX_PDF_ATTACHMENT_BYTES:
                raise UploadContentRejected("PDF 文件中的嵌入文件过大", reason="too_complex")
            if not _is_plain_data(name, data):
                raise _active(
                    f"PDF 文件中的嵌入文件「{name[:60]}」不是有效的数据文件", attachment=name
                )

    def _name_tree(self, value: Any) -> list[Any]:
        """The values of a name tree (``/Names`` pairs, through ``/Kids``)."""
        values: list[Any] = []
        seen: set[tuple[int, int]] = set()
        pending: list[tuple[Any, int]] = [(value, 1)]
        while pending:
            reference, depth = pending.pop()
            _visit(
                reference,
                seen,
                lambda: UploadContentRejected("PDF 文件的名称树中有环", reason="malformed"),
            )
            node = self._dict(reference)
            if node is None:
                continue
            if depth > MAX_PDF_DEPTH:
                raise UploadContentRejected(
                    f"PDF 文件的名称树嵌套超过 {MAX_PDF_DEPTH} 层", reason="too_complex"
                )
            values.extend(self._array(node.get("/Names"))[1::2])
            pending.extend((kid, depth + 1) for kid in self._array(node.get("/Kids")))
        return values

    def _triggers(self, value: Any) -> None:
        """An additional-actions dictionary (``/AA``): the actions of its events."""
        triggers = self._dict(value)
        if triggers is not None:
            for action in triggers.values():
                self._actions(action)

    def _actions(self, value: Any) -> None:
        """An action and each one chained after it (``/Next``: one action or an array)."""
        from pypdf.generic import ArrayObject, DictionaryObject

        seen: set[tuple[int, int]] = set()
        pending: list[tuple[Any, int]] = [(value, 0)]
        while pending:
            action, depth = pending.pop()
            # Reaching an action twice: a cycle, or a lattice that a walk along every path would
            # take exponential time over.
            _visit(action, seen, lambda: _malformed("PDF"))
            self._count()
            action = _resolved(action)
            if depth > MAX_ACTION_CHAIN:
                raise _active("PDF 文件中的动作链过长")  # not a document's navigation
            if isinstance(action, ArrayObject):
                pending.extend((a, depth) for a in action)
            elif isinstance(action, DictionaryObject):
                if action.get("/S") in _PDF_ACTIONS or "/JS" in action:
                    raise _active("PDF 文件中含有脚本或启动程序的动作")
                if "/Next" in action:
                    pending.append((action.get("/Next"), depth + 1))
            # Anything else is a destination (a page and a fit) or nothing.

    def _tree(self, tops: list[Any], *, children: tuple[str, ...], siblings: str | None) -> None:
        """Form fields (``/Kids``) or outline items (``/First``, ``/Next``), each node checked."""
        seen: set[tuple[int, int]] = set()
        pending: list[tuple[Any, int]] = [(top, 1) for top in tops]
        while pending:
            reference, depth = pending.pop()
            _visit(
                reference,
                seen,
                lambda: UploadContentRejected("PDF 文件的表单或书签结构中有环", reason="malformed"),
            )
            node = self._dict(reference)
            if node is None:
                continue
            if depth > MAX_PDF_DEPTH:
                raise UploadContentRejected(
                    f"PDF 文件的表单或书签嵌套超过 {MAX_PDF_DEPTH} 层", reason="too_complex"
                )
            self._node(node)
            if siblings is not None and siblings in node:
                pending.append((node.get(siblings), depth))
            for key in children:
                kids = node.get(key)
                if key == "/Kids":
                    pending.extend((kid, depth + 1) for kid in self._array(kids))
                elif kids is not None:
                    pending.append((kids, depth + 1))


def _visit(
    reference: Any, seen: set[tuple[int, int]], cycle: Callable[[], UploadContentRejected]
) -> None:
    """Remember an indirect object a walk reaches; reaching one again raises ``cycle()``."""
    from pypdf.generic import IndirectObject

    if isinstance(reference, IndirectObject):
        ident = (reference.idnum, reference.generation)
        if ident in seen:
            raise cycle()
        seen.add(ident)


def _is_plain_data(name: str, data: bytes) -> bool:
    """UTF-8 JSON or XML text (by the name's extension) with no markup a browser runs and no
    document type (entities)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    lowered = data.lower()
    if _ACTIVE_MARKUP.search(lowered) or any(u in lowered for u in _SCRIPT_URLS):
        return False
    if name.lower().endswith(".xml"):
        return text.lstrip().startswith("<") and b"<!doctype" not in lowered
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _parse_image(data: bytes, real: str, limits: UploadLimits) -> None:
    """It must decode whole as the type it says, within a pixel bound."""
    from PIL import Image, UnidentifiedImageError

    expected = {"image/png": "PNG", "image/jpeg": "JPEG"}[real]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.format != expected:
                    raise _malformed(expected)
                if image.width * image.height > limits.max_image_pixels:
                    raise UploadContentRejected(
                        f"图片超过 {limits.max_image_pixels} 像素", reason="too_many_pixels"
                    )
                image.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()
    except UploadContentRejected:
        raise
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        ValueError,
        SyntaxError,  # Pillow's parsers raise it for a corrupt header
        EOFError,
    ) as exc:
        raise _malformed(expected) from exc


def _parse_ofd(data: bytes, limits: UploadLimits) -> None:
    """A ZIP package with ``OFD.xml`` at its root, bounded, with sound entries (GB/T 33190)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            entries = package.infolist()
            if len(entries) > limits.max_ofd_entries:
                raise UploadContentRejected("OFD 文件包含的条目过多", reason="malformed")
            if sum(e.file_size for e in entries) > limits.max_ofd_unpacked_bytes:
                raise UploadContentRejected("OFD 文件解压后过大", reason="malformed")
            for entry in entries:
                name = entry.filename
                if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/"):
                    raise UploadContentRejected("OFD 文件中含有越界路径", reason="malformed")
                if _RISKY_ENTRY.search(name):
                    raise UploadContentRejected("OFD 文件中含有可执行或网页文件", reason="polyglot")
            if package.testzip() is not None:
                raise _malformed("OFD")
            head = package.read("OFD.xml")[:4096]
    except UploadContentRejected:
        raise
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, NotImplementedError) as exc:
        raise _malformed("OFD") from exc
    if re.search(rb"<(?:\w+:)?OFD[\s>]", head) is None:
        raise _malformed("OFD")


_UNSAFE_NAME_CHARS = re.compile(r'[\\/:*?"<>|]')


def display_filename(raw: str | None, *, limit: int = MAX_DISPLAY_NAME) -> str | None:
    """A client's file name as a display name only: no path, no control or bidi characters."""
    if not raw:
        return None
    name = unicodedata.normalize("NFC", raw)
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(
        " " if unicodedata.category(c) in ("Zs", "Zl", "Zp") else c
        for c in name
        if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )
    name = _UNSAFE_NAME_CHARS.sub("_", name)
    name = re.sub(r"\s+", " ", name).strip(" .")
    if len(name) > limit:
        _stem, dot, ext = name.rpartition(".")
        keep = dot + ext if dot and 0 < len(ext) <= 10 else ""
        name = name[: limit - len(keep)].rstrip(" .") + keep
    return name or None


def content_disposition(filename: str, *, fallback: str) -> str:
    """``attachment`` with an ASCII ``filename`` and the UTF-8 ``filename*`` (RFC 6266, 8187)."""
    display = display_filename(filename) or fallback
    ascii_name = "".join(c if 32 < ord(c) < 127 and c not in '"\\%;' else "_" for c in display)
    if not ascii_name.strip("_."):
        ascii_name = fallback
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(display, safe='')}"


def download_headers(filename: str, *, fallback: str) -> dict[str, str]:
    """Headers that make a browser save a stored file, never render or sniff it."""
    return {
        "Content-Disposition": content_disposition(filename, fallback=fallback),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
    }


def file_response(
    data: bytes,
    *,
    filename: str,
    fallback: str,
    content_type: str | None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A stored file as a download: a known type as itself, anything else as octet-stream."""
    media_type = content_type if content_type in SERVABLE_TYPES else OCTET_STREAM
    return Response(
        data,
        media_type=media_type,
        headers={**download_headers(filename, fallback=fallback), **(headers or {})},
    )
