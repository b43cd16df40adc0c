"""The one place where accounts reaches up to cfm.platform, which owns a
space's platform connection (a Connection with a one-to-one to Space):
the Space JSON names it, the Spaces page shows it, and deleting a space
deletes it. Without the platform app every space is plan-only."""
from __future__ import annotations

import importlib

from .models import Space


def _platform(module: str):
    # By name, not an import statement: this app stands below cfm.platform and must not need it.
    try:
        return importlib.import_module(f"cfm.platform.{module}")
    except ImportError:
        return None


def _connection_model():
    models = _platform("models")
    return models.Connection if models is not None else None


def connection_of(space: Space):
    """The space's Connection, or None while it is plan-only."""
    model = _connection_model()
    return model.objects.filter(space=space).first() if model is not None else None


def connections_by_space(spaces) -> dict:
    """{space id: Connection} for many spaces, in one query."""
    model = _connection_model()
    if model is None:
        return {}
    return {c.space_id: c for c in model.objects.filter(space__in=list(spaces))}


def connection_json(space: Space) -> dict | None:
    """The Space JSON's `platform` (docs/platform.md's Connection), or None."""
    connection = connection_of(space)
    if connection is None:
        return None
    return _platform("services").connection_body(connection)


def connection_drop(space: Space) -> None:
    """A deleted space keeps its row (for its deployments' history), so the cascade does not fire: its
    connection, secrets included, is deleted here."""
    model = _connection_model()
    if model is not None:
        model.objects.filter(space=space).delete()
