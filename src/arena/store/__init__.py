"""Durable state: SQLAlchemy models, Alembic migrations, queries and exports."""
