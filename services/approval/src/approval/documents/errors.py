"""Documents' domain errors."""

from __future__ import annotations

from govshared.problems import Conflict, NotFound


class DocumentNotFound(NotFound):
    code = "document_not_found"
    title = "文书不存在"
    title_en = "Document not found"


class DocumentNotSealed(Conflict):
    code = "document_not_sealed_yet"
    title = "文书正在签章，请稍后下载"
    title_en = "The document is being sealed; try again shortly"
