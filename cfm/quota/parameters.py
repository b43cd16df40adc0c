"""Deployment parameters against the platform's table (cfm/catalog) and the
model's own bounds: its context length and the configuration's KV cache."""
from __future__ import annotations

from django.utils.translation import gettext as _

from cfm import catalog
from cfm.inspection.memory import default_sequence_length, kv_cache_tokens

from .errors import DeploymentRefused


def conf_label(conf: str) -> str:
    return _(catalog.CONFIGURATIONS[conf].label)


def parameter_defaults(report: dict | None) -> dict:
    """The defaults a deployment of this model gets for what it leaves out
    (platform-rules, "deployment parameters against memory and context"): the
    platform's, except max_sequence_length = min(2048, context_length) and
    max_new_tokens = min(2048, that), so a model with a short context gets
    defaults that start. dtype stays the platform's default (float16): the
    rules give no other; the deploy form suggests the model's own."""
    defaults = {p.name: p.default for p in catalog.DEPLOYMENT_PARAMETERS}
    sequence = default_sequence_length(_context_length(report))
    defaults["max_sequence_length"] = sequence
    defaults["max_new_tokens"] = min(catalog.DEFAULT_SEQUENCE_LENGTH, sequence)
    return defaults


def suggested_dtype(report: dict | None) -> str:
    """The dtype the deploy form proposes: bfloat16 when most of the model's
    16-bit tensors are BF16 (a BF16 model served in float16 may overflow), else
    the platform's default."""
    dtypes = (report or {}).get("dtypes") or {}
    bf16, f16 = dtypes.get("BF16", 0), dtypes.get("F16", 0)
    return "bfloat16" if isinstance(bf16, int) and isinstance(f16, int) and bf16 > f16 else "float16"


def _context_length(report: dict | None) -> int | None:
    value = (report or {}).get("context_length")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def validate_parameters(*, parameters: dict | None, software_spec: str, family: str, report: dict | None = None,
                        configuration: str | None = None) -> tuple[dict, list[dict]]:
    """The platform's parameter table: defaults filled in, ranges checked,
    then the model's own bounds (its context length, the configuration's KV
    cache). Returns (effective parameters, warnings); raises invalid_parameters
    naming every parameter at fault at once."""
    warnings: list[dict] = []
    given = dict(parameters or {})
    if family == "time_series":
        if given:
            warnings.append({"code": "parameters_ignored",
                             "message": _("Time-series deployments take no parameters; the ones given are "
                                          "ignored.")})
        return {}, warnings
    known = {p.name: p for p in catalog.DEPLOYMENT_PARAMETERS}
    errors: dict[str, str] = {}
    extra: dict = {}
    for name in given:
        if name not in known:
            errors[f"parameters.{name}"] = _("Unknown parameter.")
    defaults = parameter_defaults(report)
    given_sequence = given.get("max_sequence_length")
    if "max_new_tokens" not in given and isinstance(given_sequence, int) and not isinstance(given_sequence, bool):
        # A shorter sequence given alone: the new tokens default within it, not to 2048 beyond it.
        defaults["max_new_tokens"] = max(min(defaults["max_new_tokens"], given_sequence),
                                         known["max_new_tokens"].minimum or 0)
    effective: dict = {}
    for p in catalog.DEPLOYMENT_PARAMETERS:
        value = given.get(p.name, defaults[p.name])
        if software_spec in p.unused_with:
            if p.name in given:
                warnings.append({"code": "parameter_unused",
                                 "message": _("%(name)s is not used with %(spec)s; it is left out.")
                                 % {"name": p.name, "spec": software_spec}})
            continue
        if p.choices:
            if value not in p.choices:
                errors[f"parameters.{p.name}"] = _("Must be one of %(choices)s.") % {
                    "choices": ", ".join(p.choices)}
                continue
        else:
            low, high = p.minimum, p.maximum
            if (not isinstance(value, int) or isinstance(value, bool)
                    or (low is not None and value < low) or (high is not None and value > high)):
                errors[f"parameters.{p.name}"] = _("Must be a whole number from %(min)s to %(max)s.") % {
                    "min": low, "max": high}
                continue
        effective[p.name] = value
    for p in catalog.DEPLOYMENT_PARAMETERS:
        if p.at_least and p.name in effective and isinstance(effective.get(p.at_least), int):
            if effective[p.name] < effective[p.at_least]:
                errors[f"parameters.{p.name}"] = _("Must be at least %(other)s (%(value)s).") % {
                    "other": p.at_least, "value": effective[p.at_least]}
    sequence = effective.get("max_sequence_length")
    if "parameters.max_sequence_length" not in errors and isinstance(sequence, int):
        problem = _memory_bounds(report, configuration, sequence, effective.get("max_batch_size"), warnings, extra)
        if problem:
            errors["parameters.max_sequence_length"] = problem
    if errors:
        raise DeploymentRefused("invalid_parameters", _(
            "Some parameters are outside the platform's ranges: %(names)s.") % {
            "names": ", ".join(sorted(k.removeprefix("parameters.") for k in errors))}, fields=errors, **extra)
    return effective, warnings


def _memory_bounds(report: dict | None, configuration: str | None, sequence: int, batch, warnings: list[dict],
                   extra: dict) -> str | None:
    """The decision on deployment parameters against memory and context: the
    message refusing max_sequence_length, or None (a warning is appended when
    the batch does not fit at once). Bounds the report does not know (a report
    from before the memory fields) are not checked."""
    context = _context_length(report)
    if context is not None and sequence > context:
        extra["context_length"] = context
        return _("Must be at most %(limit)s, the model's context length (context_length); the runtime refuses to "
                 "start beyond it.") % {"limit": context}
    tokens = kv_cache_tokens(report, configuration)
    if tokens is None or configuration is None:
        return None
    if sequence > tokens:
        extra["kv_cache_tokens"] = tokens
        allowed = catalog.allowed_configurations((report or {}).get("model_type"),
                                                 (report or {}).get("family") or "general")
        up = catalog.next_configuration(configuration, allowed)
        if up is not None:
            extra["next_configuration"] = up
            return _("Must be at most %(limit)s: %(conf)s holds %(limit)s tokens of KV cache, fewer than one "
                     "sequence of %(value)s. Lower it, or choose %(next)s (it holds %(next_tokens)s tokens).") % {
                "limit": tokens, "conf": conf_label(configuration), "value": sequence, "next": conf_label(up),
                "next_tokens": kv_cache_tokens(report, up) or "?"}
        return _("Must be at most %(limit)s: %(conf)s holds %(limit)s tokens of KV cache, fewer than one sequence "
                 "of %(value)s, and no larger configuration is available for this model.") % {
            "limit": tokens, "conf": conf_label(configuration), "value": sequence}
    if isinstance(batch, int) and batch * sequence > tokens:
        fit = tokens // sequence
        warnings.append({"code": "batch_exceeds_kv_cache", "sequences": fit, "message": _(
            "%(conf)s holds %(tokens)s tokens of KV cache: %(fit)s sequences of %(value)s tokens fit at once, not "
            "max_batch_size %(batch)s; the others wait.") % {
            "conf": conf_label(configuration), "tokens": tokens, "fit": fit, "value": sequence, "batch": batch}})
    return None
