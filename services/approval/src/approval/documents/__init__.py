"""Sealed documents: notices and decisions signed with the authority's seal, verifiable by anyone."""

from govshared.jwks import service_of_subject

# The one service that reads a document, and so an application: notify, which delivers it (the
# email's attachment). No other service reads applications (个人信息保护法 第六条: no more personal
# information than the purpose needs).
DELIVERING_SERVICE = "notify"


def is_delivering_service(subject: str) -> bool:
    """A token's ``sub`` is the delivering service's (``service:notify``)."""
    return service_of_subject(subject) == DELIVERING_SERVICE
