"""Registration points for the apps built on the registry: they add to its
pages without the registry importing them (the import rules in
pyproject.toml keep the registry below the quota and Prepare)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: context name -> function(registration) giving its value on the registration page;
#: each app adds its own in its AppConfig.ready (Prepare: "prepare_partial_file")
_detail_context: dict[str, Callable[[Any], Any]] = {}


def add_detail_context(name: str, fn: Callable[[Any], Any]) -> None:
    _detail_context[name] = fn


def detail_context(registration) -> dict[str, Any]:
    return {name: fn(registration) for name, fn in _detail_context.items()}
