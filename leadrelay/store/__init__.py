"""The state store: SQLAlchemy 2 async on SQLite (embedded default) or PostgreSQL (production)."""

from leadrelay.store.engine import create_engine_for
from leadrelay.store.unit_of_work import Store, Transaction

__all__ = ["Store", "Transaction", "create_engine_for"]
