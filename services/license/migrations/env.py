"""Alembic environment of license: async engine, batch mode on SQLite, lock_timeout on PostgreSQL."""

from govshared.migrate import run_env
from licensing.config import Settings
from licensing.inspections import models as _inspection_models  # noqa: F401  (its tables)
from licensing.models import Base

run_env(Base.metadata, default_url=lambda: Settings().database_url)
