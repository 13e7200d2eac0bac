"""Alembic environment of approval: async engine, batch mode on SQLite, lock_timeout on PostgreSQL."""

from approval.config import Settings
from approval.models import Base
from govshared.migrate import run_env

run_env(Base.metadata, default_url=lambda: Settings().database_url)
