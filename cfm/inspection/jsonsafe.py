"""JSON from untrusted bytes: size- and depth-bounded, errors as reasons."""
from __future__ import annotations

import functools
import gc
import json
import threading
from contextlib import contextmanager
from typing import Any


class JsonProblem(ValueError):
    """Why bytes are not acceptable JSON; `reason` is a message key."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


_gc_lock = threading.Lock()
_gc_holders = 0
_gc_was_enabled = False


@contextmanager
def no_gc():
    """The cyclic collector off while untrusted JSON is parsed and walked: a
    million-tensor header or a 256k-entry tokenizer makes millions of containers
    (none of them in a cycle), and the generation-2 passes over them cost as much
    as the parse itself (13 s instead of 3 s for a 100 MB header). Counted, so that
    threads parsing at once restore it once."""
    global _gc_holders, _gc_was_enabled
    with _gc_lock:
        if _gc_holders == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_holders += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0 and _gc_was_enabled:
                gc.enable()


def _depth_ok(value: Any, max_depth: int) -> bool:
    # Iterative: a deep value must not blow the stack here either. Only containers are
    # pushed: a 64 MB flat array of 30 million numbers must not become 30 million tuples.
    if not isinstance(value, (dict, list)):
        return True
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            return False
        for v in item.values() if isinstance(item, dict) else item:
            if isinstance(v, (dict, list)):
                stack.append((v, depth + 1))
    return True


@functools.cache
def _decoder(object_pairs_hook, parse_constant) -> json.JSONDecoder:
    """One decoder per kind of parse (json.loads with a hook builds a new one per call,
    which a 191-shard model pays 191 times). A JSONDecoder holds no state between calls."""
    return json.JSONDecoder(object_pairs_hook=object_pairs_hook, parse_constant=parse_constant)


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
    if text.startswith("\ufeff"):
        if not strip_bom:
            raise JsonProblem("not_json", "it starts with a UTF-8 byte-order mark, which JSON readers such as "
                                          "transformers' refuse")
        text = text[1:]
    with no_gc():
        try:
            value = _decoder(object_pairs_hook, parse_constant).decode(text)
        except RecursionError:
            raise JsonProblem("too_deep", str(max_depth)) from None
        except ValueError as exc:  # JSONDecodeError, and int digit limits
            raise JsonProblem("not_json", str(exc)[:200]) from None
        # Nesting needs an opening bracket per level: a text with few of them (an index: two) needs no walk.
        if max_depth is not None and text.count("{") + text.count("[") > max_depth and not _depth_ok(value, max_depth):
            raise JsonProblem("too_deep", str(max_depth))
    return value
