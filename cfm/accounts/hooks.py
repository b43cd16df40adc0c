"""Registration points for the apps built on accounts: what a space holds
and how it reaches the platform, without accounts importing them (the
import rules in pyproject.toml keep accounts below every feature app).

- the quota adds `live_deployments(space)` (the deployments that still hold
  units in it: a space in use cannot be deleted) and `live_counts(spaces)`;
- the platform adds `connection_json(space)` (the Space JSON's `platform`),
  `connections(spaces)` ({space id: its Connection}) and
  `space_deleting(space)` (a deleted space keeps its row, so nothing
  cascades: its connection, secrets included, goes here).

Without them a space holds nothing and is plan-only."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

_hooks: dict[str, Callable[..., Any]] = {}


def add(name: str, fn: Callable[..., Any]) -> None:
    if name not in {"live_deployments", "live_counts", "connection_json", "connections", "space_deleting"}:
        raise ValueError(f"no such accounts hook: {name}")
    _hooks[name] = fn


def live_deployments(space) -> list:
    fn = _hooks.get("live_deployments")
    return list(fn(space)) if fn else []


def live_counts(spaces) -> dict[int, int]:
    fn = _hooks.get("live_counts")
    return dict(fn(spaces)) if fn else {}


def connection_json(space) -> dict | None:
    fn = _hooks.get("connection_json")
    return fn(space) if fn else None


def connections(spaces) -> dict[int, Any]:
    fn = _hooks.get("connections")
    return dict(fn(spaces)) if fn else {}


def space_deleting(space) -> None:
    fn = _hooks.get("space_deleting")
    if fn:
        fn(space)
