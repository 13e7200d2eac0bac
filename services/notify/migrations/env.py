"""Alembic environment of notify: async engine, batch mode on SQLite, lock_timeout on PostgreSQL."""

from govshared.migrate import run_env
from notify.config import Settings
from notify.models import Base

run_env(Base.metadata, default_url=lambda: Settings().database_url)
