"""What the report pages show, decided in Python (views call these; the
template tags only format numbers and look up labels).

Every figure comes from the stored report or from cfm.catalog: nothing here
re-derives a verdict, a configuration or a memory figure the engine already
wrote, except for reports stored before the engine wrote them (said where).
"""
from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from cfm import catalog
from cfm.inspection.memory import default_sequence_length as memory_default_sequence_length
from cfm.inspection.report import verdict_of as report_verdict_of
from cfm.inspection.timeseries import parse_payload, size_time_series

from .texts import bignum, filesize

# --- The verdict -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Badge:
    verdict: str
    label: str
    title: str


#: One word, one colour, one sentence, everywhere (report, lists, registration partials, deploy page).
_BADGES = {
    "ready": (gettext_lazy("Deployable"),
              gettext_lazy("The platform will accept this model as it is, and its architecture is certified.")),
    "prepare": (gettext_lazy("Prepare first"),
                gettext_lazy("Deployable once Prepare has run: the report lists the preparation steps.")),
    "uncertified": (gettext_lazy("Uncertified"),
                    gettext_lazy("The checks pass, but the architecture or quantization is not certified: the "
                                 "platform does not support failures.")),
    "refused": (gettext_lazy("Not deployable"), gettext_lazy("A check failed: the platform will refuse this model "
                                                             "as it is.")),
}


def verdict_of(report: dict | None) -> str | None:
    """The report's `verdict`; a report stored before the field existed gets
    the contract's precedence over the fields it has (one rule, in the engine's
    report module, which the list columns use too)."""
    return report_verdict_of(report) if report else None


def badge(verdict: str | None) -> Badge | None:
    if verdict not in _BADGES:
        return None
    label, title = _BADGES[verdict]
    return Badge(verdict, str(label), str(title))


def headline(verdict: str | None) -> str:
    return {
        "ready": _("The platform will accept this model."),
        "prepare": _("The platform will accept this model once Prepare has run."),
        "uncertified": _("The platform will take this model, uncertified: failures are not supported."),
        "refused": _("The platform will refuse this model as it is."),
    }.get(verdict or "", "")


@dataclass(frozen=True)
class Actions:
    """Which buttons the report offers, and which one is primary."""
    prepare: bool
    deploy: bool
    primary: str | None  # "prepare", "deploy" or None
    caveat: str | None  # shown beside Deploy when deploying is allowed but not plain sailing


def actions(report: dict | None, *, current: bool, prepare_possible: bool) -> Actions:
    """The primary button follows the verdict: Prepare first when `prepare`,
    Deploy primary only when `ready` (or `uncertified`, with a caveat). A
    previous report (the re-run failed) offers nothing."""
    verdict = verdict_of(report)
    if not current or verdict is None:
        return Actions(False, False, None, None)
    needs_prep = bool((report or {}).get("preparation"))
    prepare = needs_prep and prepare_possible
    deploy = verdict != "refused"
    if verdict == "prepare":
        return Actions(prepare, deploy, "prepare" if prepare else None,
                       _("Deploying before Prepare has run ships the model without the steps it needs."))
    if verdict == "refused":
        return Actions(prepare, False, "prepare" if prepare else None, None)
    caveat = (_("Uncertified: the platform accepts it, but does not support its failures.")
              if verdict == "uncertified" else None)
    return Actions(prepare, deploy, "deploy", caveat)


# --- What the weights are ------------------------------------------------------------------------------


def weights_summary(report: dict) -> str | None:
    """"46.7B parameters stored in 4.2 bits on average (GPTQ), 24.7 GB":
    the real bits (serving bytes over parameters), not "16-bit-equivalent"
    parameters, which contradict a quantized model's parameter count."""
    params, served = report.get("parameters"), report.get("serving_bytes")
    if not isinstance(params, int) or params <= 0:
        return None
    method = report.get("quantization")
    if not isinstance(served, int) or served <= 0:
        if report.get("parameters_exact"):
            return None
        return _("%(params)s parameters (estimated from config.json); 16-bit serving needs about %(size)s.") % {
            "params": bignum(params), "size": filesize(params * 2)}
    bits = served * 8 / params
    shown = f"{bits:.0f}" if abs(bits - round(bits)) < 0.05 else f"{bits:.1f}"
    values = {"params": bignum(params), "bits": shown, "size": filesize(served), "method": str(method).upper()}
    if method:
        return _("%(params)s parameters stored in %(bits)s bits a parameter on average (%(method)s), %(size)s "
                 "on the GPUs.") % values
    return _("%(params)s parameters served in %(bits)s bits a parameter, %(size)s on the GPUs.") % values


def files_summary(report: dict) -> str | None:
    """"Weights: 16.1 GB of .bin files (size from the file list; parameters
    estimated)": a size for a model whose headers give none (a `.bin`-only
    model), from the report's `files_bytes` (the source's listing). None
    when the headers gave the size, or the listing gives none."""
    listed = report.get("files_bytes")
    if report.get("weight_bytes") is not None or not isinstance(listed, int) or isinstance(listed, bool):
        return None
    by_format = report.get("files_bytes_by_format")
    formats = [f for f in (by_format if isinstance(by_format, dict) else {}) if f in ("bin", "pt", "pth")]
    if isinstance(by_format, dict) and "safetensors" in by_format:
        formats = ["safetensors"]
    kinds = ", ".join(f".{f}" for f in formats) or ".bin"
    values = {"size": filesize(listed), "kinds": kinds}
    params = report.get("parameters")
    if isinstance(params, int) and params > 0 and not report.get("parameters_exact"):
        return _("Weights: %(size)s of %(kinds)s files (size from the file list; parameters estimated).") % values
    return _("Weights: %(size)s of %(kinds)s files (size from the file list).") % values


# --- Memory per configuration --------------------------------------------------------------------------


def default_sequence_length(report: dict) -> int:
    """The platform's default max_sequence_length, bounded by the model's context length (the
    deployment's own default: one rule, cfm.inspection.memory)."""
    context = report.get("context_length")
    return memory_default_sequence_length(context if isinstance(context, int) and context > 0 else None)


def parse_sequence_length(raw: str | None, report: dict) -> tuple[int, str | None]:
    """The length a reader chose on the page, or the default with a message saying why not."""
    default = default_sequence_length(report)
    if raw is None or str(raw).strip() == "":
        return default, None
    context = report.get("context_length")
    upper = context if isinstance(context, int) and context > 0 else catalog.PARAMETER_MAXIMUM
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = 0
    if not 1 <= value <= upper:
        return default, _("A sequence length is a whole number from 1 to %(max)s; showing %(default)s.") % {
            "max": f"{upper:,}", "default": f"{default:,}"}
    return value, None


def _segment(kind: str, label: str, nbytes: int, scale: int) -> dict:
    return {"kind": kind, "label": label, "bytes": nbytes, "width": round(100 * max(nbytes, 0) / scale, 2)}


def memory_rows(report: dict, sequence_length: int) -> list[dict]:
    """Per allowed configuration: its hardware and a bar of weights, runtime
    allowance, KV cache and the share the runtime keeps back, with how many
    tokens of KV cache fit and how many sequences of `sequence_length` fit
    at once. The figures are the report's `memory` (the engine's); a report
    without it still shows the hardware and the weights."""
    if report.get("family") != "general":
        return []
    memory = report.get("memory") if isinstance(report.get("memory"), dict) else None
    per_conf = (memory or {}).get("configurations") or {}
    served = report.get("serving_bytes")
    allowed = catalog.allowed_configurations(report.get("model_type"), "general") if report.get("model_type") \
        else catalog.GENERAL_CONFIGURATIONS
    rows = []
    for key in catalog.GENERAL_CONFIGURATIONS:
        if key not in allowed:
            continue
        conf = catalog.CONFIGURATIONS[key]
        figures = per_conf.get(key) or {}
        gpus = figures.get("gpus") or catalog.CONFIGURATION_GPUS[key]
        total = figures.get("gpu_memory_bytes") or gpus * catalog.GPU_MEMORY_BYTES
        allowance = gpus * catalog.RUNTIME_ALLOWANCE_BYTES
        reserve = total - gpus * catalog.GPU_USABLE_BYTES
        free = figures.get("free_bytes")
        tokens = figures.get("kv_cache_tokens")
        weights = served if isinstance(served, int) else None
        scale = max(total, (weights or 0) + allowance + reserve)
        segments = []
        if weights is not None:
            segments.append(_segment("weights", _("weights"), weights, scale))
        segments.append(_segment("allowance", _("runtime allowance"), allowance, scale))
        if isinstance(free, int) and free > 0:
            segments.append(_segment("kv", _("KV cache"), free, scale))
        segments.append(_segment("reserve", _("kept back by the runtime"), reserve, scale))
        fits = figures.get("fits") if "fits" in figures else (
            None if free is None else free > 0)
        sequences = tokens // sequence_length if isinstance(tokens, int) and sequence_length > 0 else None
        rows.append({
            "key": key, "short": conf.short, "label": _(conf.label), "gpus": gpus, "gpu_memory_bytes": total,
            "per_gpu_bytes": catalog.GPU_MEMORY_BYTES, "fits": fits, "free_bytes": free,
            "kv_cache_tokens": tokens, "sequences": sequences, "segments": segments,
            "over": weights is not None and fits is False,
            "recommended": key == report.get("configuration"),
        })
    return rows


def quantized_estimates(report: dict) -> list[dict]:
    """Would the model fit a smaller configuration if quantized to 8 or 4
    bits? An estimate: parameters × bits / 8 bytes, sized by the catalog's
    bounds. Only for an unquantized general model whose parameters are known."""
    params = report.get("parameters")
    if report.get("family") != "general" or report.get("quantization") or not isinstance(params, int) or params <= 0:
        return []
    allowed = catalog.allowed_configurations(report.get("model_type"), "general")
    current = report.get("configuration")
    order = catalog.CONFIGURATION_ORDER
    if current == min(allowed, key=order.index):
        return []  # already on the smallest configuration: quantizing would not change it
    rows = []
    for bits in catalog.QUANTIZATION_ESTIMATE_BITS:
        nbytes = params * bits // 8
        fit = catalog.configuration_for_serving_bytes(nbytes, allowed)
        smaller = fit is not None and (current is None or order.index(fit) < order.index(current))
        rows.append({"bits": bits, "bytes": nbytes, "configuration": fit,
                     "label": _(catalog.CONFIGURATIONS[fit].label) if fit else None, "smaller": smaller})
    return rows


# --- The dtype chart ---------------------------------------------------------------------------------


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


# --- Why this recommendation ---------------------------------------------------------------------------


def recommendation_reason(report: dict, size_message: str | None) -> str:
    """Why this configuration and this specification, in the reader's language."""
    parts = []
    conf = report.get("configuration")
    serving = report.get("serving_bytes")
    label = _(catalog.CONFIGURATIONS[conf].label) if conf in catalog.CONFIGURATIONS else None
    if conf and report.get("family") == "time_series":
        if size_message:
            parts.append(size_message)
    elif label:
        if serving:
            parts.append(_("%(conf)s is the smallest configuration whose bound holds %(size)s of weights as "
                           "served.") % {"conf": label, "size": filesize(serving)})
        else:
            parts.append(_("%(conf)s is the smallest configuration for the estimated parameter count.")
                         % {"conf": label})
        if report.get("tensor_parallel") is False:
            parts.append(_("This architecture has no tensor parallelism, so only %(small)s is offered.")
                         % {"small": _(catalog.CONFIGURATIONS[catalog.GENERAL_CONFIGURATIONS[0]].label)})
    spec = report.get("recommended_software_spec")
    if spec in catalog.SOFTWARE_SPECS:
        runtime = catalog.SOFTWARE_SPECS[spec][1]
        if report.get("family") == "time_series":
            parts.append(_("Time-series models run on the %(runtime)s.") % {"runtime": _(runtime)})
        elif len(report.get("software_specs") or []) > 1:
            parts.append(_("The %(runtime)s-based specification serves this architecture and is the faster "
                           "runtime.") % {"runtime": runtime})
        else:
            parts.append(_("Only the %(runtime)s-based specification serves this architecture.")
                         % {"runtime": runtime})
    if not parts:
        return _("No configuration or specification fits: see the failed checks.")
    return " ".join(parts)


# --- Time-series sizing on the page --------------------------------------------------------------------


def time_series_sizing(users_raw: str | None, payload_raw: str | None) -> dict:
    """The engine's time-series sizing for figures a reader typed into the
    report page's form: a size check (rendered like the report's) or the
    errors in the figures."""
    errors = {}
    users = None
    if users_raw not in (None, ""):
        try:
            users = int(str(users_raw).strip())
            if not 1 <= users <= catalog.PARAMETER_MAXIMUM:
                raise ValueError
        except ValueError:
            errors["users"] = _("Concurrent users is a whole number of at least 1.")
    payload = None
    try:
        payload = parse_payload(payload_raw)
    except ValueError:
        errors["payload"] = _("A payload is a series length (e.g. 512) or series × targets (e.g. 15x40).")
    if errors or (users is None and payload is None):
        return {"errors": errors, "check": None, "asked": bool(errors)}
    result = size_time_series(users, payload)
    check = {"id": "size", "status": result.status, "message_key": result.key, "params": result.params}
    return {"errors": {}, "check": check, "configuration": result.configuration, "asked": True}


def plural_units(n: int) -> str:
    return ngettext("%(n)s unit", "%(n)s units", n) % {"n": n}
