"""Alembic migrations, shipped inside the package so `memberbot db upgrade` works anywhere."""
