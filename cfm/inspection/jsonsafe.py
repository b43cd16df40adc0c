"""JSON from untrusted bytes: size- and depth-bounded, errors as reasons."""
from __future__ import annotations

import json
from typing import Any


class JsonProblem(ValueError):
    """Why bytes are not acceptable JSON; `reason` is a message key."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def _depth_ok(value: Any, max_depth: int) -> bool:
    # Iterative: a deep value must not blow the stack here either.
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def loads_bounded(raw: bytes, *, max_bytes: int, max_depth: int | None, object_pairs_hook=None,
                  parse_constant=None, strip_bom: bool = True) -> Any:
    """Parse JSON bytes or raise JsonProblem with reason one of
    `too_large`, `not_utf8`, `too_deep`, `not_json`.

    The C parser raises RecursionError on very deep input (100,000 levels
    cost it nothing); `max_depth` then bounds what is accepted (None: the
    caller validates the structure itself, as the header parser does)."""
    if len(raw) > max_bytes:
        raise JsonProblem("too_large", str(len(raw)))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonProblem("not_utf8", f"byte {exc.start}") from None
    if strip_bom and text.startswith("\ufeff"):
        text = text[1:]
    try:
        value = json.loads(text, object_pairs_hook=object_pairs_hook, parse_constant=parse_constant)
    except RecursionError:
        raise JsonProblem("too_deep", str(max_depth)) from None
    except ValueError as exc:  # JSONDecodeError, and int digit limits
        raise JsonProblem("not_json", str(exc)[:200]) from None
    if max_depth is not None and not _depth_ok(value, max_depth):
        raise JsonProblem("too_deep", str(max_depth))
    return value
