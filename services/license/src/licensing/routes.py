"""License's REST API (``/api/v1``): the reform catalogue and the licence register."""

from __future__ import annotations

from fastapi import APIRouter

from licensing.catalogue.routes import router as catalogue_router
from licensing.certificates.routes import public_router as certificates_page_router
from licensing.certificates.routes import router as certificates_router
from licensing.inspections.routes import public_router as inspections_public_router
from licensing.inspections.routes import router as inspections_router
from licensing.licences.routes import router as licences_router

# Certificates first: ``/licences/verify`` must not be read as a licence number.
routers: list[APIRouter] = [
    catalogue_router,
    certificates_router,
    certificates_page_router,
    licences_router,
    inspections_router,
    inspections_public_router,
]
