"""Numbers, sizes and check messages as a reader reads them: the report's
words rendered in the reader's language. Used by the registry's presenters
and views, and registered as template filters by cfm.web's template tags
(formatting sits below both, so neither imports the other for it).

A check in the stored report carries `message_key` and `params`: the text is
the template translated through gettext (the catalogue holds the
`gettext_noop` strings of cfm.inspection.messages), then filled in with the
parameters, so the same report reads in English or Japanese.
"""
from __future__ import annotations

import re

from django.utils import formats
from django.utils.translation import gettext, gettext_noop

from cfm import catalog
from cfm.inspection.messages import HEADER_REASONS, MESSAGES, render

_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def filesize(value) -> str:
    """Decimal units, as the platform's guide and the Hub show sizes."""
    try:
        n = float(value)
    except (TypeError, ValueError):
        return "–"
    unit = 0
    while abs(n) >= 1000 and unit < len(_UNITS) - 1:
        n /= 1000
        unit += 1
    if unit == 0:
        return f"{int(n)} B"
    shown = f"{n:.1f}" if n < 100 else f"{n:.0f}"
    # "80 GB", not "80.0 GB": a round size reads as people write it
    return f"{shown.removesuffix('.0')} {_UNITS[unit]}"


def num(value) -> str:
    """A whole number in the reader's locale, grouped (1,234,567)."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        return "–"
    return formats.number_format(n, force_grouping=True)


def bignum(value) -> str:
    """8030261248 -> 8.03B; small numbers with separators."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        return "–"
    for div, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if abs(n) >= div:
            return f"{n / div:.3g}{suffix}"
    return f"{n:,}"


def _param_phrases():
    # English values the engine puts into params (configuration labels, the
    # reasons a size cannot be computed): marked so that they are translated.
    return (
        gettext_noop("Small"),
        gettext_noop("Medium"),
        gettext_noop("Large"),
        gettext_noop("Extra large"),
        gettext_noop("config.json is missing or invalid"),
        gettext_noop("the architecture is not supported"),
        gettext_noop("a safetensors header is malformed"),
        gettext_noop("there are no safetensors headers and config.json lacks the sizes to estimate from"),
    )


def _translated_params(key: str, params: dict) -> dict:
    out = dict(params or {})
    # A malformed header's reason is itself a keyed sentence.
    reason_key = out.get("reason_key")
    if reason_key in HEADER_REASONS:
        out["reason"] = render(gettext(HEADER_REASONS[reason_key]), out.get("reason_params") or {})
    elif isinstance(out.get("reason"), str):
        out["reason"] = gettext(out["reason"])
    if key.startswith("known_issues.rope_llama3"):
        # reports stored before the version became a parameter
        out.setdefault("min_transformers", catalog.ROPE_FIX["min_transformers"])
    if isinstance(out.get("configuration"), str):
        out["configuration"] = gettext(out["configuration"])
    if key.startswith("size.ts_"):
        for name in ("payload", "row"):
            if isinstance(out.get(name), str):
                out[name] = _payload_words(out[name])
    if key == "size.ts_assumed":
        small = [r.users["small"] for r in catalog.TS_SIZING_ROWS]
        out["assumption"] = gettext(
            "one user at a time and any payload in the guide's table (Small serves %(low)s to %(high)s "
            "concurrent users)"
        ) % {"low": min(small), "high": max(small)}
    return out


_ASSUMED = " (assumed: the heaviest in the table)"
_UNIVARIATE = re.compile(r"^(?:a univariate series of )?length (\d+)$")
_MULTIVARIATE = re.compile(r"^(\d+) (?:series )?× (\d+)(?: targets)?$")


def _payload_words(text: str) -> str:
    """The time-series sizing's payload and table row, which the engine
    writes in English ("a univariate series of length 512", "15 series × 40
    targets", "length 1000", "23 × 100"), in the reader's language. Anything
    else stays as written."""
    assumed = text.endswith(_ASSUMED)
    core = text.removesuffix(_ASSUMED)
    if m := _UNIVARIATE.match(core):
        words = gettext("a univariate series of length %(n)s") % {"n": m.group(1)}
    elif m := _MULTIVARIATE.match(core):
        words = gettext("%(series)s series × %(targets)s targets") % {"series": m.group(1), "targets": m.group(2)}
    else:
        return text
    return words + gettext(" (assumed: the heaviest in the table)") if assumed else words


def _check_text(check: dict, index: int) -> str | None:
    key = check.get("message_key")
    if key in MESSAGES:
        tmpl = MESSAGES[key][index]
        if tmpl is None:
            return None
        return render(gettext(tmpl), _translated_params(key, check.get("params") or {}))
    # A report from before keys existed: its English text as stored.
    return check.get("message" if index == 0 else "remedy")


def check_message(check: dict) -> str:
    return _check_text(check, 0) or ""


def check_remedy(check: dict) -> str | None:
    if check.get("status") in ("pass", "skip"):
        return None
    return _check_text(check, 1)
