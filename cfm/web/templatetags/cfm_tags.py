"""Filters for the report pages.

A check in the stored report carries `message_key` and `params`: the page
translates the template through gettext (the catalogue holds the
`gettext_noop` strings of cfm.inspection.messages) and only then fills in
the parameters, so the same report reads in English or Japanese.
"""

from __future__ import annotations

from django import template
from django.utils import formats
from django.utils.translation import gettext, gettext_noop

from cfm import catalog
from cfm.inspection.messages import HEADER_REASONS, MESSAGES, render

register = template.Library()

_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


@register.filter
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


@register.filter
def num(value) -> str:
    """A whole number in the reader's locale, grouped (1,234,567)."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        return "–"
    return formats.number_format(n, force_grouping=True)


@register.filter
def verdict_badge(verdict):
    """The label and explanation of a verdict (the words live in the presenter)."""
    from cfm.registry.presenters import badge

    return badge(verdict)


@register.filter
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
    if key == "size.ts_assumed":
        small = [r.users["small"] for r in catalog.TS_SIZING_ROWS]
        out["assumption"] = gettext(
            "one user at a time and any payload in the guide's table (Small serves %(low)s to %(high)s "
            "concurrent users)"
        ) % {"low": min(small), "high": max(small)}
    return out


def _check_text(check: dict, index: int) -> str | None:
    key = check.get("message_key")
    if key in MESSAGES:
        tmpl = MESSAGES[key][index]
        if tmpl is None:
            return None
        return render(gettext(tmpl), _translated_params(key, check.get("params") or {}))
    # A report from before keys existed: its English text as stored.
    return check.get("message" if index == 0 else "remedy")


@register.filter
def check_message(check: dict) -> str:
    return _check_text(check, 0) or ""


@register.filter
def check_remedy(check: dict) -> str | None:
    if check.get("status") in ("pass", "skip"):
        return None
    return _check_text(check, 1)


def _labels():
    # Marked here so makemessages finds them; translated per request below.
    return {
        "config_present": gettext_noop("config.json present"),
        "config_valid": gettext_noop("config.json valid"),
        "architecture": gettext_noop("Architecture"),
        "trust_remote_code": gettext_noop("Custom code"),
        "weights_format": gettext_noop("Weights format"),
        "safetensors_header": gettext_noop("Safetensors headers"),
        "safetensors_index": gettext_noop("Safetensors index"),
        "safetensors_metadata": gettext_noop("Safetensors metadata"),
        "dtypes": gettext_noop("Tensor dtypes"),
        "tokenizer": gettext_noop("Tokenizer"),
        "quantization": gettext_noop("Quantization"),
        "tsfm_config": gettext_noop("tsfm_config.json"),
        "size": gettext_noop("Size"),
        "software_spec": gettext_noop("Software specification"),
        "known_issues": gettext_noop("Known issues"),
    }


@register.filter
def check_label(check_id: str) -> str:
    return gettext(_labels().get(check_id, check_id))


def _status_words():
    return {
        "pass": gettext_noop("Pass"),
        "warn": gettext_noop("Warning"),
        "fail": gettext_noop("Fail"),
        "skip": gettext_noop("Skipped"),
    }


@register.filter
def status_label(status: str) -> str:
    return gettext(_status_words().get(status, status))


def _steps():
    return {
        "": gettext_noop("Waiting for a worker"),
        "queued": gettext_noop("Waiting for a worker"),
        "fetching": gettext_noop("Fetching files"),
        "listing_files": gettext_noop("Listing files"),
        "reading_config": gettext_noop("Reading config.json"),
        "reading_headers": gettext_noop("Reading safetensors headers"),
        "checking": gettext_noop("Checking the platform's rules"),
        "starting": gettext_noop("Starting"),
        "retrying": gettext_noop("Waiting to retry"),
        "requeued": gettext_noop("Queued again"),
        "reused": gettext_noop("Reused the report of the same commit"),
        "done": gettext_noop("Done"),
    }


@register.filter
def step_label(step: str) -> str:
    return gettext(_steps().get(step or "", step))


def _preparation():
    return {
        "convert_weights_to_safetensors": (
            gettext_noop("Convert the weights to safetensors"),
            # Prepare's cast to 16 bits is an option, off by default: the report cannot say which.
            gettext_noop("The PyTorch weights are rewritten as safetensors; every tensor keeps its dtype unless "
                         "you choose on the Prepare page to cast 32-bit floats to 16 bits."),
        ),
        "generate_tokenizer_json": (
            gettext_noop("Generate tokenizer.json"),
            gettext_noop("The fast tokenizer file is built from the slow-tokenizer files."),
        ),
        "add_tsfm_config": (
            gettext_noop("Add tsfm_config.json"),
            gettext_noop("Written from config.json's context and prediction lengths."),
        ),
        "fix_safetensors_metadata": (
            gettext_noop("Fix the safetensors metadata"),
            gettext_noop('Only the header is rewritten, with {"format": "pt"}.'),
        ),
        "fix_rope_scaling": (
            gettext_noop("Rewrite rope_scaling"),
            gettext_noop(
                "The two-field form older runtimes accept; behaviour changes past the original context length."
            ),
        ),
    }


@register.filter
def preparation_title(step: str) -> str:
    return gettext(_preparation().get(step, (step, ""))[0])


@register.filter
def preparation_detail(step: str) -> str:
    return gettext(_preparation().get(step, (step, ""))[1])


def _limitations():
    return {
        "no_tuning": gettext_noop("A custom foundation model cannot be tuned on the platform."),
        "no_prompt_governance": gettext_noop(
            "Prompt templates of a custom foundation model cannot be evaluated or tracked with watsonx.governance."
        ),
    }


@register.filter
def limitation_text(key: str) -> str:
    return gettext(_limitations().get(key, key))


@register.filter
def configuration_label(key) -> str:
    if not key:
        return gettext("none fits")
    conf = catalog.CONFIGURATIONS.get(key)
    return gettext(conf.label) if conf else str(key)


@register.filter
def percent(done, total) -> int:
    try:
        done, total = int(done), int(total)
    except (TypeError, ValueError):
        return 0
    if total <= 0:
        return 0
    return max(0, min(100, round(100 * done / total)))


def _dtype_bytes(report: dict, dtypes: dict) -> dict | None:
    """Bytes per dtype as stored: the report's `dtype_bytes` (beyond the
    contract, written since it existed); for an older report with a single
    dtype, all of `weight_bytes`; otherwise unknown (None)."""
    sizes = report.get("dtype_bytes")
    if isinstance(sizes, dict) and set(sizes) == set(dtypes) and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in sizes.values()):
        return sizes
    weight = report.get("weight_bytes")
    if len(dtypes) == 1 and isinstance(weight, int) and not isinstance(weight, bool) and weight >= 0:
        return {next(iter(dtypes)): weight}
    return None


@register.filter
def dtype_bars(report: dict) -> list[dict]:
    """Rows for the dtype bar chart: bytes per dtype as stored (what a
    deployment has to hold), with the number of tensors and, for floats the
    runtime casts to 16 bits, the bytes as served. Widths in percent of the
    largest (the chart is plain HTML/CSS: no chart library). A report that
    does not give the bytes falls back to tensors per dtype (`bytes` None)."""
    report = report or {}
    dtypes = report.get("dtypes") or {}
    if not dtypes:
        return []
    sizes = _dtype_bytes(report, dtypes)
    measure = sizes if sizes is not None else dtypes
    top = max(measure.values()) or 1
    total = sum(measure.values()) or 1
    rows = []
    for k in sorted(dtypes, key=lambda k: (-measure[k], k)):
        v = measure[k]
        nbytes = sizes[k] if sizes is not None else None
        bits = catalog.DTYPE_BITS.get(k) if k in catalog.FLOAT_DOWNCAST_DTYPES else None
        share = round(100 * v / total)
        rows.append({"dtype": k, "count": dtypes[k], "bytes": nbytes, "width": max(1, round(100 * v / top)),
                     "share": share, "tiny": v > 0 and share == 0,
                     # the runtime casts these to 16 bits: 2 bytes a value, as the report's serving_bytes
                     "served": nbytes * 16 // bits if nbytes is not None and bits else None})
    return rows


@register.filter
def get_item(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def configuration_short(key) -> str:
    conf = catalog.CONFIGURATIONS.get(key or "")
    return conf.short if conf else ""


@register.filter
def limitations(report: dict) -> list[str]:
    return list((report or {}).get("limitations") or catalog.LIMITATIONS)
