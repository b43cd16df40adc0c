"""What every check family shares: the outcome a check returns and the
helpers that word the facts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..jsonsafe import JsonProblem
from ..limits import InspectLimits
from ..report import Check

#: a parameter's longest text: values come from the model's files, and a 3 MB model_type
#: must not be repeated in every message
MAX_PARAM_CHARS = 300


@dataclass(frozen=True)
class Outcome:
    """A check's result, and the preparation step it asks for (catalog: PREPARATION_STEPS)."""
    check: Check
    prepare: str | None = None


def outcome(check_id: str, status: str, message_key: str, /, *, prepare: str | None = None,
            **params: Any) -> Outcome:
    # Positional-only: a template may well have a parameter called `key` (tsfm_config.bad_name).
    params = {k: (v[:MAX_PARAM_CHARS] + "…" if isinstance(v, str) and len(v) > MAX_PARAM_CHARS else v)
              for k, v in params.items()}
    return Outcome(Check(check_id, status, message_key, params), prepare)


def json_detail(exc: JsonProblem, limits: InspectLimits) -> str:
    """A JsonProblem's detail as words for a message."""
    if exc.reason == "too_deep":
        return f"nested more than {limits.max_json_depth} levels deep"
    if exc.reason == "not_utf8":
        return f"not UTF-8 text at {exc.detail}" if exc.detail else "not UTF-8 text"
    return exc.detail or exc.reason


def json_type(value: Any) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
            type(None): "null"}.get(type(value), type(value).__name__)


def names(paths: list[str], limit: int = 4) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")
