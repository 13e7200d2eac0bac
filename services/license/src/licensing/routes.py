"""License's REST API (``/api/v1``): the reform catalogue and the licence register."""

from __future__ import annotations

from fastapi import APIRouter

from licensing.catalogue.routes import router as catalogue_router
from licensing.licences.routes import router as licences_router

routers: list[APIRouter] = [catalogue_router, licences_router]
