"""The tsfm_config.json check of a time-series model: an allowed handler, names and lengths that match."""
from __future__ import annotations

from typing import Any, TypeGuard

from cfm import catalog as rules

from ..derived import Derived
from ..facts import Facts
from .base import Outcome, json_detail, json_type, outcome


def tsfm_config(facts: Facts, model: Derived) -> Outcome:
    if facts.config is None:
        return outcome("tsfm_config", "skip", "tsfm_config.skip_config")
    if model.family != "time_series":
        return outcome("tsfm_config", "skip", "tsfm_config.skip")
    found = facts.tsfm_file
    if found is None:
        return outcome("tsfm_config", "fail", "tsfm_config.missing", prepare="add_tsfm_config")
    if found.problem is not None:
        exc = found.problem
        return outcome("tsfm_config", "fail", "tsfm_config.unreadable" if exc.reason == "unreadable" else
                       "tsfm_config.invalid", detail=json_detail(exc, facts.limits))
    doc = found.value
    if not isinstance(doc, dict):
        return outcome("tsfm_config", "fail", "tsfm_config.not_object", type=json_type(doc))
    handler = None
    for (mod_key, cls_key), allowed in rules.TSFM_HANDLERS.items():
        if mod_key in doc or cls_key in doc:
            pair = (doc.get(mod_key), doc.get(cls_key))
            # Strings compared to an allow-list, never imported; a list or object is simply
            # not an allowed name (and must not reach a set lookup: it is unhashable).
            if not all(isinstance(v, str) for v in pair) or pair not in allowed:
                good = next(iter(allowed))
                return outcome("tsfm_config", "fail", "tsfm_config.bad_handler", module=str(pair[0])[:120],
                               cls=str(pair[1])[:120], allowed=f"{good[0]} / {good[1]}")
            if not mod_key.startswith("tuning"):
                handler = handler or f"{pair[0]}.{pair[1]}"
    if handler is None:
        return outcome("tsfm_config", "fail", "tsfm_config.no_handler")
    for name, allowed_names in rules.TSFM_REQUIRED_MODEL_NAMES.items():
        if name in doc and not _allowed_tsfm_name(name, doc[name], allowed_names):
            return outcome("tsfm_config", "fail", "tsfm_config.bad_name", key=name, value=str(doc[name])[:120],
                           expected=" or ".join(sorted(allowed_names)))
    cfg = facts.config
    for key, source_key in rules.TSFM_LENGTHS.items():
        want, have = cfg.get(source_key), doc.get(key)
        if _positive_int(want) and have != want:
            return outcome("tsfm_config", "warn", "tsfm_config.warn_length", key=key, value=str(have)[:40],
                           source_key=source_key, expected=want)
    context, minimum = cfg.get("context_length"), doc.get("minimum_context_length")
    if _positive_int(context) and _positive_int(minimum) and minimum > context:
        return outcome("tsfm_config", "warn", "tsfm_config.warn_length", key="minimum_context_length",
                       value=str(minimum), source_key="context_length", expected=context)
    return outcome("tsfm_config", "pass", "tsfm_config.pass", handler=handler)


def _allowed_tsfm_name(key: str, value: object, allowed: set[str]) -> bool:
    """An allowed name, or (for a package key) a dotted module path inside an
    allowed package: compared as text, never imported."""
    if not isinstance(value, str):
        return False
    if value in allowed:
        return True
    if key not in rules.TSFM_PACKAGE_KEYS:
        return False
    head, _, rest = value.partition(".")
    return head in allowed and bool(rest) and all(part.isidentifier() and part.isascii() for part in rest.split("."))


def _positive_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
