"""Alembic environment of license: async engine, batch mode on SQLite, lock_timeout on PostgreSQL."""

from govshared.migrate import run_env
from licensing.config import Settings
from licensing.models import Base

run_env(Base.metadata, default_url=lambda: Settings().database_url)
