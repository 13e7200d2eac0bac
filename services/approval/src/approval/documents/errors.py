"""Documents' domain errors."""

from __future__ import annotations

from govshared.problems import NotFound


class DocumentNotFound(NotFound):
    code = "document_not_found"
    title = "文书不存在"
    title_en = "Document not found"
