"""Writes to the quota: deployments, the ledger, limit requests.

Every movement of capacity goes through `_lock_account`: the account row is
taken with SELECT ... FOR UPDATE inside the caller's transaction, so two
requests for the same account queue instead of both reading "3 of 4 used"
and both reserving (on SQLite the IMMEDIATE transaction mode serialises
writers the same way).
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, F, IntegerField, OuterRef, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from cfm import catalog
from cfm.accounts.models import Account, Membership, Space
from cfm.accounts.permissions import require_may_change
from cfm.inspection.memory import default_sequence_length, kv_cache_tokens
from cfm.preparation.selectors import latest_prepared
from cfm.registry.models import Status as RegistrationStatus
from cfm.textcaps import FREE_TEXT_MAX

from . import lifecycle
from .models import (
    LIMIT_REQUEST_MAX_UNITS,
    LIMIT_REQUEST_REASON_MAX,
    QUOTA_MAX_UNITS,
    Deployment,
    DeploymentEvent,
    DeploymentState,
    DeploymentStatus,
    EntryKind,
    IdempotencyRecord,
    LedgerEntry,
    LimitRequest,
    Origin,
    QuotaSettings,
    Refusal,
    RequestStatus,
    UnitCost,
)

#: placeholders the user replaces with the platform's ids before sending
CONNECTION_PLACEHOLDER = "<CONNECTION_ID>"
SPACE_PLACEHOLDER = "<SPACE_ID>"
ASSET_PLACEHOLDER = "<ASSET_ID>"
BUCKET_PLACEHOLDER = "<BUCKET>"


class DeploymentRefused(Exception):
    """A refused deployment request: `status` and the API error body."""

    def __init__(self, status: int, code: str, message: str, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    @property
    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}

    @classmethod
    def from_body(cls, status: int, body: dict) -> DeploymentRefused:
        err = dict(body["error"])
        return cls(status, err.pop("code"), err.pop("message"), **err)


class QuotaRuleError(Exception):
    """A limit request or ledger action that the rules do not allow. `field`
    names the input at fault; `status` and `code` are the API's answer and
    `extra` goes into its error body."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, **extra):
        super().__init__(message)
        self.message, self.field, self.extra = message, field, extra


class PlanNotAllowed(QuotaRuleError):
    """The account's plan may not use custom models at all."""

    status = 403
    code = "plan_not_allowed"


class LimitRequestPending(QuotaRuleError):
    """The same request is already waiting for an answer."""

    status = 409
    code = "limit_request_pending"


# --- Unit costs and limits (admin-editable data, seeded from the catalog) ----------------------------


def unit_costs() -> dict[str, int]:
    costs = dict(catalog.UNIT_COSTS)
    costs.update(UnitCost.objects.values_list("configuration", "units"))
    return costs


def unit_cost(configuration: str) -> int:
    return unit_costs()[configuration]


def default_limit_units() -> int:
    return QuotaSettings.current().default_limit_units


def _signed_units():
    # used = reserve - release; the limit's extra = grant + adjust (adjust is signed)
    return {
        "used": Sum(Case(When(kind=EntryKind.RESERVE, then=F("units")),
                         When(kind=EntryKind.RELEASE, then=-F("units")),
                         default=Value(0), output_field=IntegerField())),
        "extra": Sum(Case(When(kind__in=[EntryKind.GRANT, EntryKind.ADJUST], then=F("units")),
                          default=Value(0), output_field=IntegerField())),
    }


def ledger_annotations() -> dict:
    """`used_units` and `extra_units` for a queryset of accounts, from the
    entries, without a query per row (lists in the admin)."""
    sums = _signed_units()

    def sub(expr):
        qs = (LedgerEntry.objects.filter(account=OuterRef("pk")).order_by().values("account")
              .annotate(total=expr).values("total"))
        return Coalesce(Subquery(qs, output_field=IntegerField()), Value(0))

    return {"used_units": sub(sums["used"]), "extra_units": sub(sums["extra"])}


def ledger_totals(*, account: Account) -> tuple[int, int]:
    """(used units, units added to the default limit), from the entries alone."""
    sums = LedgerEntry.objects.filter(account=account).aggregate(**_signed_units())
    return sums["used"] or 0, sums["extra"] or 0


@dataclass
class Usage:
    account: Account
    limit_units: int
    used_units: int
    default_limit_units: int
    extra_units: int
    unit_costs: dict[str, int]
    deployments: list = field(default_factory=list)

    @property
    def free_units(self) -> int:
        return max(self.limit_units - self.used_units, 0)

    @property
    def percent(self) -> int:
        if self.limit_units <= 0:
            return 100 if self.used_units else 0
        return min(round(100 * self.used_units / self.limit_units), 100)


def quota_usage(*, account: Account) -> Usage:
    used, extra = ledger_totals(account=account)
    default = default_limit_units()
    deployments = list(Deployment.objects.filter(account=account, status=DeploymentStatus.ACTIVE)
                       .select_related("registration", "space").prefetch_related("events")
                       .order_by("created_at", "id"))
    return Usage(account=account, limit_units=max(default + extra, 0), used_units=used, default_limit_units=default,
                 extra_units=extra, unit_costs=unit_costs(), deployments=deployments)


@dataclass
class LedgerCheck:
    ok: bool
    ledger_used: int
    live_used: int
    problems: list[str]


def ledger_verify(*, account: Account) -> LedgerCheck:
    """Recompute usage from the entries and compare it with live deployments:
    each active deployment has one reservation and no release, each released
    one both, and the totals agree."""
    return ledger_verify_many(accounts=[account])[account.pk]


def ledger_verify_many(*, accounts) -> dict[int, LedgerCheck]:
    """ledger_verify for many accounts in three queries, whatever their
    number (the admin's verification page checks them all)."""
    ids = [a.pk for a in accounts]
    used: dict[int, int] = {i: 0 for i in ids}
    for account_id, total in (LedgerEntry.objects.filter(account_id__in=ids).values("account_id")
                              .annotate(used=_signed_units()["used"]).values_list("account_id", "used")):
        used[account_id] = total or 0
    entries: dict[int, dict[str, int]] = {}
    for dep_id, kind, units in LedgerEntry.objects.filter(account_id__in=ids, deployment__isnull=False) \
            .values_list("deployment_id", "kind", "units"):
        entries.setdefault(dep_id, {})[kind] = units
    live: dict[int, int] = {i: 0 for i in ids}
    problems: dict[int, list[str]] = {i: [] for i in ids}
    for dep in Deployment.objects.filter(account_id__in=ids).only("id", "account_id", "serving_name", "status",
                                                                  "units").order_by("id"):
        rows = entries.get(dep.id, {})
        found = problems[dep.account_id]
        if dep.is_active:
            live[dep.account_id] += dep.units
        if rows.get(EntryKind.RESERVE) != dep.units:
            found.append(_("Deployment %(name)s has no matching reservation.") % {"name": dep.serving_name})
        released = EntryKind.RELEASE in rows
        if dep.is_active and released:
            found.append(_("Deployment %(name)s is active but was released.") % {"name": dep.serving_name})
        if not dep.is_active and rows.get(EntryKind.RELEASE) != dep.units:
            found.append(_("Deployment %(name)s was deleted without a release.") % {"name": dep.serving_name})
    checks = {}
    for i in ids:
        found = problems[i]
        if used[i] != live[i]:
            found.insert(0, _("The ledger counts %(ledger)s units in use, live deployments hold %(live)s.")
                         % {"ledger": used[i], "live": live[i]})
        checks[i] = LedgerCheck(ok=not found, ledger_used=used[i], live_used=live[i], problems=found)
    return checks


def _lock_account(account_id: int) -> Account:
    return Account.objects.select_for_update().get(pk=account_id)


# --- Validation of a deployment request --------------------------------------------------------------


@dataclass
class DeploymentPlan:
    """A validated request: what would be reserved and sent to the platform."""

    configuration: str
    units: int
    software_spec: str
    serving_name: str
    parameters: dict
    warnings: list[dict]
    family: str


def _order(conf: str) -> int:
    return catalog.CONFIGURATION_ORDER.index(conf)


def _label(conf: str) -> str:
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
        raise DeploymentRefused(422, "invalid_parameters", _(
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
                "limit": tokens, "conf": _label(configuration), "value": sequence, "next": _label(up),
                "next_tokens": kv_cache_tokens(report, up) or "?"}
        return _("Must be at most %(limit)s: %(conf)s holds %(limit)s tokens of KV cache, fewer than one sequence "
                 "of %(value)s, and no larger configuration is available for this model.") % {
            "limit": tokens, "conf": _label(configuration), "value": sequence}
    if isinstance(batch, int) and batch * sequence > tokens:
        fit = tokens // sequence
        warnings.append({"code": "batch_exceeds_kv_cache", "sequences": fit, "message": _(
            "%(conf)s holds %(tokens)s tokens of KV cache: %(fit)s sequences of %(value)s tokens fit at once, not "
            "max_batch_size %(batch)s; the others wait.") % {
            "conf": _label(configuration), "tokens": tokens, "fit": fit, "value": sequence, "batch": batch}})
    return None


def normalize_configuration(configuration: str | None) -> str | None:
    """The API spells configurations in lower case ("small"); "Small" or
    " SMALL " mean the same one."""
    if isinstance(configuration, str):
        return configuration.strip().lower() or None
    return configuration


def _not_deployable(registration, *, prepared: bool = False) -> DeploymentRefused:
    status = registration.status
    if prepared:
        message = _("The prepared copy of this model cannot be deployed: see the failed checks in its report.")
    elif status == RegistrationStatus.DONE and registration.report:
        message = _("This model cannot be deployed as it is: see the failed checks in its report.")
    elif registration.is_active:
        message = _("The inspection of this model has not finished yet, so there is no report to deploy from; "
                    "try again when it is done.")
    else:
        message = _("The inspection of this model did not finish (it failed or was cancelled), so there is no "
                    "report to deploy from. Inspect it again.")
    return DeploymentRefused(422, "not_deployable", message, registration_status=status)


def deployment_validate(*, account: Account, registration, space: Space | None, configuration: str | None = None,
                        software_spec: str | None = None, serving_name: str | None,
                        parameters: dict | None = None) -> DeploymentPlan:
    """Every check that does not need the quota, all in one round: the answer
    is the first refusal in the contract's order (its status and code), and its
    `fields` name every input at fault, so a form or a client fixes them all at
    once. Raises DeploymentRefused."""
    configuration = normalize_configuration(configuration)
    if not account.may_use_custom_models:
        raise DeploymentRefused(403, "plan_not_allowed", _(
            "Only accounts on the Standard plan may deploy custom foundation models; this account is on "
            "the %(plan)s plan.") % {"plan": account.get_plan_display()})
    refusals: list[DeploymentRefused] = []
    fields: dict[str, str] = {}

    def refuse(refusal: DeploymentRefused, field: str | None = None) -> None:
        refusals.append(refusal)
        if field and field not in fields:
            fields[field] = refusal.message
        for name, message in (refusal.extra.get("fields") or {}).items():
            fields.setdefault(name, message)

    if space is not None and space.account_id != account.id:
        refuse(DeploymentRefused(400, "invalid", _("The space belongs to another account."),
                                 fields={"space": _("Choose a space of this account.")}))
    name_ok = isinstance(serving_name, str) and re.fullmatch(catalog.SERVING_NAME_PATTERN, serving_name)
    if not name_ok:
        refuse(DeploymentRefused(400, "invalid", _("The serving name is not valid."), fields={
            "serving_name": _("Use only a-z, 0-9 and _, at most %(max)s characters.")
            % {"max": catalog.SERVING_NAME_MAX}}))
    # The prepared copy, when there is one, is what would be deployed: its report decides.
    prepared = latest_prepared(registration)
    report = (prepared.report if prepared is not None else registration.report) or {}
    plan = None
    if not report.get("deployable"):
        refuse(_not_deployable(registration, prepared=prepared is not None))
    else:
        if (space is None or not space.runtime_instance) and "space" not in fields:
            refuse(DeploymentRefused(422, "runtime_missing", _(
                "The space has no watsonx.ai Runtime instance. Associate one on the space's Manage tab, "
                "or choose another space.")), "space")
        plan = _model_plan(report, configuration, software_spec, parameters, refuse)
    if name_ok and Deployment.objects.filter(account=account, serving_name=serving_name,
                                             status=DeploymentStatus.ACTIVE).exists():
        refuse(DeploymentRefused(409, "serving_name_taken", _(
            "The serving name %(name)s is already used by a deployment of this account.") % {"name": serving_name}),
            "serving_name")
    if refusals:
        first = refusals[0]
        if fields:
            first.extra["fields"] = fields
        raise first
    assert plan is not None and isinstance(serving_name, str)
    plan.serving_name = serving_name
    return plan


def _model_plan(report: dict, configuration: str | None, software_spec: str | None, parameters: dict | None,
                refuse) -> DeploymentPlan | None:
    """Configuration, specification and parameters against the model's report;
    each refusal goes to `refuse`. The plan, or None when something was refused."""
    family = report.get("family") or "general"
    recommended = report.get("configuration")
    allowed = catalog.allowed_configurations(report.get("model_type"), family)
    conf = configuration or recommended
    warnings: list[dict] = []
    failed = False
    conf_ok = isinstance(conf, str) and conf in catalog.CONFIGURATIONS and conf in allowed
    if not conf_ok or not isinstance(conf, str):
        # Named as the API spells them: a label ("Small") here once read as a refusal of itself.
        refuse(DeploymentRefused(422, "configuration_not_allowed", _(
            "%(conf)s is not available for this model; choose one of: %(allowed)s.") % {
            "conf": conf, "allowed": ", ".join(allowed)}, allowed=list(allowed)), "configuration")
        failed = True
    elif recommended in catalog.CONFIGURATIONS and _order(conf) < _order(recommended):
        if family == "time_series":
            # Time-series sizes are about load, not memory: smaller serves fewer users.
            warnings.append({"code": "configuration_below_recommendation", "message": _(
                "%(rec)s was recommended for the expected load; %(conf)s serves fewer concurrent users.")
                % {"rec": _label(recommended), "conf": _label(conf)}})
        else:
            refuse(DeploymentRefused(422, "configuration_too_small", _(
                "The model needs at least %(rec)s; %(conf)s would fail with insufficient resources.")
                % {"rec": _label(recommended), "conf": _label(conf)}, minimum=recommended), "configuration")
            failed = True
    specs = report.get("software_specs") or []
    spec = software_spec or report.get("recommended_software_spec") or (specs[0] if specs else None)
    if spec is None or spec not in specs:
        refuse(DeploymentRefused(422, "spec_not_allowed", _(
            "%(spec)s cannot serve this model; choose one of: %(specs)s.")
            % {"spec": spec, "specs": ", ".join(specs)}, allowed=list(specs)), "software_spec")
        failed = True
    try:
        # The KV-cache bound needs a configuration the model may use; the context bound does not.
        effective, param_warnings = validate_parameters(
            parameters=parameters, software_spec=spec if isinstance(spec, str) else "", family=family,
            report=report, configuration=conf if conf_ok else None)
    except DeploymentRefused as exc:
        refuse(exc)
        return None
    if failed:
        return None
    assert conf is not None and spec is not None
    warnings.extend(param_warnings)
    return DeploymentPlan(configuration=conf, units=unit_cost(conf), software_spec=spec, serving_name="",
                          parameters=effective, warnings=warnings, family=family)


def asset_body(*, registration, software_spec: str, space_id: str, connection_id: str, bucket: str,
               file_path: str) -> dict:
    """The model asset request of the contract (platform-api.md), exactly:
    the storage goes in `foundation_model.model_location`."""
    return {
        "name": registration.source,
        "type": "custom_foundation_model_1.0",
        "software_spec": {"name": software_spec},
        "space_id": space_id,
        "foundation_model": {
            "model_id": registration.source,
            "model_location": {"type": "connection_asset", "connection": {"id": connection_id},
                               "location": {"bucket": bucket, "file_path": file_path}},
        },
    }


def online_deployment_body(*, asset_id: str, serving_name: str, space_id: str, configuration: str, family: str,
                           parameters: dict) -> dict:
    """The deployment request of the contract: `hardware_request` with the
    model's parameters, or for a time-series model `hardware_spec` and no
    `foundation_model` parameters."""
    online: dict = {"serving_name": serving_name}
    body: dict = {"asset": {"id": asset_id}, "name": serving_name, "space_id": space_id,
                  "online": {"parameters": online}}
    if family == "time_series":
        body["hardware_spec"] = dict(catalog.TS_HARDWARE_SPEC[configuration])
    else:
        online["foundation_model"] = dict(parameters)
        body["hardware_request"] = dict(catalog.CONFIGURATIONS[configuration].hardware_request)
    return body


def platform_request(*, registration, plan: DeploymentPlan) -> dict:
    """The two request bodies the platform takes: the model asset and the
    online deployment, with placeholders for the platform's own ids."""
    file_path = "models/" + re.sub(r"[^A-Za-z0-9._/-]+", "_", registration.source).strip("/")
    asset = asset_body(registration=registration, software_spec=plan.software_spec, space_id=SPACE_PLACEHOLDER,
                       connection_id=CONNECTION_PLACEHOLDER, bucket=settings.CFM_S3_BUCKET or BUCKET_PLACEHOLDER,
                       file_path=file_path)
    deployment = online_deployment_body(asset_id=ASSET_PLACEHOLDER, serving_name=plan.serving_name,
                                        space_id=SPACE_PLACEHOLDER, configuration=plan.configuration,
                                        family=plan.family, parameters=plan.parameters)
    return {"asset": asset, "deployment": deployment}


def _iso(dt) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def deployment_body(deployment: Deployment) -> dict:
    """The API's Deployment object."""
    return {
        "id": deployment.id, "account": deployment.account_id, "registration": deployment.registration_id,
        "space": deployment.space_id, "configuration": deployment.configuration, "units": deployment.units,
        "software_spec": deployment.software_spec, "serving_name": deployment.serving_name,
        "parameters": deployment.parameters, "warnings": deployment.warnings,
        "created_at": _iso(deployment.created_at), "platform_request": deployment.platform_request,
        "status": deployment.state, "status_message": lifecycle.render(deployment.message_key,
                                                                         deployment.message_params),
        "platform": _platform_out(deployment.platform), "origin": deployment.origin,
        "progress": deployment.progress or None, "error": deployment.error,
        "events": [{"at": _iso(e.at), "status": e.state, "message": lifecycle.render(e.message_key, e.message_params)}
                   for e in deployment.events.all()],
    }


def _platform_out(platform: dict | None) -> dict | None:
    if not platform:
        return None
    return {k: platform.get(k) for k in ("asset_id", "deployment_id", "file_path", "inference_url")}


def deployment_event(*, deployment: Deployment, key: str, params: dict | None = None,
                     state: str | None = None, aside: bool = False) -> DeploymentEvent:
    """Record a step of the deployment's life; it becomes the status message
    (unless `aside`: a clean-up after a failure keeps the failure's), and
    with `state` the deployment moves there."""
    fields: list[str] = []
    if not aside:
        deployment.message_key, deployment.message_params = key, params or {}
        fields += ["message_key", "message_params"]
    if state is not None:
        deployment.state = state
        fields.append("state")
    if fields:
        deployment.save(update_fields=fields)
    return DeploymentEvent.objects.create(deployment=deployment, state=deployment.state, message_key=key,
                                          message_params=params or {})


def deployment_release(*, deployment: Deployment, state: str, key: str, params: dict | None = None,
                       error: dict | None = None, user=None) -> bool:
    """End a deployment as `failed` or `deleted`: its units go back to the
    account (exactly those it reserved), once, under the account's lock.
    False when it had already ended."""
    assert state in (DeploymentState.FAILED, DeploymentState.DELETED)
    with transaction.atomic():
        _lock_account(deployment.account_id)
        dep = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if not dep.is_active:
            return False
        dep.status = DeploymentStatus.RELEASED
        dep.released_at = timezone.now()
        dep.released_by = user
        dep.error = error
        dep.save(update_fields=["status", "released_at", "released_by", "error"])
        deployment_event(deployment=dep, key=key, params=params, state=state)
        LedgerEntry.objects.create(account_id=dep.account_id, kind=EntryKind.RELEASE, units=dep.units,
                                   deployment=dep, actor=user, reason=f"{state} {dep.serving_name}: {key}")
    deployment.refresh_from_db()
    return True


def _fingerprint(**request) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class DeploymentOutcome:
    deployment: Deployment
    body: dict
    replayed: bool = False


def _recorded(user, key: str | None) -> IdempotencyRecord | None:
    """The first answer stored under this user's Idempotency-Key, if any."""
    if not key:
        return None
    return IdempotencyRecord.objects.select_related("deployment").filter(user=user, key=key).first()


def _replay(record: IdempotencyRecord, fingerprint: str) -> DeploymentOutcome:
    if record.fingerprint != fingerprint:
        raise DeploymentRefused(422, "idempotency_key_reused", _(
            "This Idempotency-Key was already used for a different request."))
    if record.status_code != 201:
        raise DeploymentRefused.from_body(record.status_code, record.body)
    assert record.deployment is not None  # a 201 is stored with its deployment, which is never deleted
    return DeploymentOutcome(deployment=record.deployment, body=record.body, replayed=True)


def _quota_refusal(*, account, user, registration, plan, used, limit) -> DeploymentRefused:
    refusal = Refusal.objects.create(account=account, user=user, registration=registration,
                                     configuration=plan.configuration, needed_units=plan.units, used_units=used,
                                     limit_units=limit)
    survey = reverse("feedback:survey", args=[account.id]) + f"?refusal={refusal.id}"
    return DeploymentRefused(409, "quota_exceeded", _(
        "This account uses %(used)s of %(limit)s units; a %(conf)s deployment needs %(need)s more. Delete a "
        "deployment or request a limit increase (not guaranteed: it depends on capacity).") % {
        "used": used, "limit": limit, "conf": _label(plan.configuration), "need": plan.units},
        limit_units=limit, used_units=used, needed_units=plan.units, refusal=refusal.id,
        survey_url=survey, increase_request_url=reverse("quota:limit_request", args=[account.id]))


def outside_deployment_record(*, space: Space, deployment_id: str, serving_name: str, configuration: str,
                              state: str, size: str, asset_id: str = "") -> Deployment:
    """A deployment the sync found on the platform that cfm did not make: it
    counts in the account's usage like any other (a reservation in the
    ledger, beyond the limit if it must be: it runs whatever cfm thinks), so
    the limit reflects what really runs."""
    units = unit_cost(configuration)
    with transaction.atomic():
        locked = _lock_account(space.account_id)
        name = serving_name[:catalog.SERVING_NAME_MAX] or f"outside_{deployment_id}"[:catalog.SERVING_NAME_MAX]
        if Deployment.objects.filter(account=locked, serving_name=name, status=DeploymentStatus.ACTIVE).exists():
            name = f"outside_{deployment_id}"[:catalog.SERVING_NAME_MAX]
        dep = Deployment.objects.create(
            account=locked, registration=None, space=space, created_by=None, configuration=configuration,
            units=units, software_spec="", serving_name=name, parameters={}, warnings=[], platform_request={},
            state=state, origin=Origin.OUTSIDE, platform_state=state,
            platform={"deployment_id": deployment_id, "asset_id": asset_id or None, "file_path": None,
                      "inference_url": None})
        LedgerEntry.objects.create(account=locked, kind=EntryKind.RESERVE, units=units, deployment=dep,
                                   reason=f"outside cfm: {deployment_id}")
        deployment_event(deployment=dep, key="found_outside", params={"size": size})
    return dep


def platform_limit_refusal(*, deployment: Deployment) -> dict:
    """The platform refused a deployment for the account's own limit: the
    same notice as cfm's refusal (a Refusal row the survey links to, the
    usage, the survey and increase-request links), as the `error` of the
    failed deployment."""
    used, extra = ledger_totals(account=deployment.account)
    limit = max(default_limit_units() + extra, 0)
    refusal = Refusal.objects.create(account_id=deployment.account_id, user=deployment.created_by,
                                     registration=deployment.registration, configuration=deployment.configuration,
                                     needed_units=deployment.units, used_units=max(used, 0), limit_units=limit)
    survey = reverse("feedback:survey", args=[deployment.account_id]) + f"?refusal={refusal.id}"
    return {"code": "quota_exceeded", "source": "platform", "limit_units": limit, "used_units": used,
            "needed_units": deployment.units, "refusal": refusal.id, "survey_url": survey,
            "increase_request_url": reverse("quota:limit_request", args=[deployment.account_id])}


def deployment_request(*, user, registration, space: Space | None, configuration: str | None = None,
                       software_spec: str | None = None, serving_name: str, parameters: dict | None = None,
                       idempotency_key: str | None = None, deploy: dict | None = None) -> DeploymentOutcome:
    """Reserve units for a deployment and record it, or raise DeploymentRefused.

    `deploy` (the first event's parameters): the space has a platform
    connection and cfm.platform takes the deployment on (it starts
    `uploading`); None: it is a plan (`reserved`).

    With an idempotency key the first answer (201 or the quota's 409) is
    stored: the same key and request again get the same answer and nothing
    is reserved twice; the same key with another request is refused (422).
    Input is validated before the quota, so a taken serving name is a 409
    serving_name_taken even when the account is full.
    """
    account = registration.account
    configuration = normalize_configuration(configuration)  # "Small" and "small" are one request
    fingerprint = _fingerprint(registration=registration.id, space=getattr(space, "id", None),
                               configuration=configuration, software_spec=software_spec, serving_name=serving_name,
                               parameters=parameters)
    if (record := _recorded(user, idempotency_key)) is not None:
        return _replay(record, fingerprint)
    try:
        plan = deployment_validate(account=account, registration=registration, space=space,
                                   configuration=configuration, software_spec=software_spec,
                                   serving_name=serving_name, parameters=parameters)
    except DeploymentRefused:
        # The same key may have committed since the lookup above: its deployment
        # now holds the serving name, and this request is that one, replayed.
        if (record := _recorded(user, idempotency_key)) is not None:
            return _replay(record, fingerprint)
        raise
    assert space is not None  # deployment_validate refuses a missing space
    refused: DeploymentRefused | None = None
    try:
        with transaction.atomic():
            locked = _lock_account(account.id)
            # A concurrent request with the same key for this account waited on the lock.
            if (record := _recorded(user, idempotency_key)) is not None:
                return _replay(record, fingerprint)
            if Deployment.objects.filter(account=locked, serving_name=serving_name,
                                         status=DeploymentStatus.ACTIVE).exists():
                raise DeploymentRefused(409, "serving_name_taken", _(
                    "The serving name %(name)s is already used by a deployment of this account.")
                    % {"name": serving_name})
            used, extra = ledger_totals(account=locked)
            limit = max(default_limit_units() + extra, 0)
            if used + plan.units > limit:
                refused = _quota_refusal(account=locked, user=user, registration=registration, plan=plan,
                                         used=used, limit=limit)
                if idempotency_key:
                    IdempotencyRecord.objects.create(user=user, key=idempotency_key, fingerprint=fingerprint,
                                                     status_code=409, body=refused.body)
                outcome = None
            else:
                dep = Deployment.objects.create(
                    account=locked, registration=registration, space=space, created_by=user,
                    configuration=plan.configuration, units=plan.units, software_spec=plan.software_spec,
                    serving_name=serving_name, parameters=plan.parameters, warnings=plan.warnings,
                    platform_request=platform_request(registration=registration, plan=plan),
                    state=DeploymentState.RESERVED if deploy is None else DeploymentState.UPLOADING)
                LedgerEntry.objects.create(account=locked, kind=EntryKind.RESERVE, units=plan.units, deployment=dep,
                                           actor=user, reason=f"deploy {serving_name}")
                deployment_event(deployment=dep, key="reserved" if deploy is None else "queued", params=deploy)
                body = deployment_body(dep)
                if idempotency_key:
                    IdempotencyRecord.objects.create(user=user, key=idempotency_key, fingerprint=fingerprint,
                                                     status_code=201, body=body, deployment=dep)
                outcome = DeploymentOutcome(deployment=dep, body=body)
    except IntegrityError:
        # The same key raced in for another account (the lock is per account),
        # or the serving-name index caught what the check could not.
        if (record := _recorded(user, idempotency_key)) is not None:
            return _replay(record, fingerprint)
        raise DeploymentRefused(409, "serving_name_taken", _(
            "The serving name %(name)s is already used by a deployment of this account.")
            % {"name": serving_name}) from None
    if refused is not None:
        raise refused
    assert outcome is not None  # set whenever nothing was refused
    return outcome


def deployment_delete(*, user, deployment: Deployment, reason: str = "") -> bool:
    """Release a deployment's units (exactly those it reserved). Deleting an
    already released deployment is a no-op that reports False. The member who
    made it, an owner of the account or staff may (else OwnerOnly)."""
    require_may_change(user=user, account_id=deployment.account_id, created_by_id=deployment.created_by_id)
    with transaction.atomic():
        _lock_account(deployment.account_id)
        dep = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if not dep.is_active:
            return False
        dep.status = DeploymentStatus.RELEASED
        dep.released_at = timezone.now()
        dep.released_by = user
        dep.save(update_fields=["status", "released_at", "released_by"])
        deployment_event(deployment=dep, key="released", state=DeploymentState.DELETED)
        LedgerEntry.objects.create(account_id=dep.account_id, kind=EntryKind.RELEASE, units=dep.units,
                                   deployment=dep, actor=user, reason=reason or f"delete {dep.serving_name}")
    deployment.refresh_from_db()
    return True


# --- Limit requests and adjustments -------------------------------------------------------------------


def limit_request_create(*, user, account: Account, units: int, reason: str) -> LimitRequest:
    """Ask for a new total limit. Refused with a QuotaRuleError: a plan that
    may not use custom models (403 plan_not_allowed); a total not above the
    current limit or above LIMIT_REQUEST_MAX_UNITS, or a reason missing or
    longer than LIMIT_REQUEST_REASON_MAX (400, naming the field); the same
    total already pending for the account (409 limit_request_pending, with
    that request's id). Checked under the account's lock, so two identical
    requests at once make one."""
    if not account.may_use_custom_models:
        raise PlanNotAllowed(_(
            "Only accounts on the Standard plan may use custom foundation models; this account is on the "
            "%(plan)s plan, so it has no deployment limit to raise.") % {"plan": account.get_plan_display()})
    if isinstance(units, bool) or not isinstance(units, int) or units > LIMIT_REQUEST_MAX_UNITS:
        raise QuotaRuleError(_("Ask for a whole number of units, at most %(max)s.")
                             % {"max": LIMIT_REQUEST_MAX_UNITS}, field="units")
    reason = (reason or "").strip()
    if not reason:
        raise QuotaRuleError(_("Say why the account needs more capacity."), field="reason")
    if len(reason) > LIMIT_REQUEST_REASON_MAX:
        raise QuotaRuleError(_("Keep the reason to %(max)s characters (it has %(length)s).")
                             % {"max": LIMIT_REQUEST_REASON_MAX, "length": len(reason)}, field="reason")
    with transaction.atomic():
        locked = _lock_account(account.id)
        _used, extra = ledger_totals(account=locked)
        limit = max(default_limit_units() + extra, 0)
        if units <= limit:
            raise QuotaRuleError(_("Ask for a total above the current limit of %(limit)s units.")
                                 % {"limit": limit}, field="units")
        pending = LimitRequest.objects.filter(account=locked, status=RequestStatus.PENDING, units=units).first()
        if pending is not None:
            raise LimitRequestPending(_(
                "A request for %(units)s units is already waiting for an answer (request %(id)s); the answer "
                "will appear on the usage page.") % {"units": units, "id": pending.id}, limit_request=pending.id)
        return LimitRequest.objects.create(account=locked, requested_by=user, units=units, reason=reason)


def _may_decide(*, user, request: LimitRequest, answer: str = "") -> None:
    if not (user.is_staff and user.is_active):
        raise QuotaRuleError(_("Only staff may answer limit requests."))
    _text_fits(answer, "answer")


def _text_fits(text: str, field: str) -> None:
    if len(text or "") > FREE_TEXT_MAX:
        raise QuotaRuleError(_("The %(field)s may be at most %(max)s characters (it has %(length)s).")
                             % {"field": field, "max": FREE_TEXT_MAX, "length": len(text)}, field=field)


def limit_request_approve(*, user, request: LimitRequest, answer: str = "") -> LimitRequest:
    """Approve: a grant entry raises the limit to the requested total. Nobody
    approves an increase for an account they belong to."""
    _may_decide(user=user, request=request, answer=answer)
    if request.requested_by_id == user.id or Membership.objects.filter(account_id=request.account_id,
                                                                        user=user).exists():
        raise QuotaRuleError(_("You cannot approve an increase for your own account."))
    with transaction.atomic():
        _lock_account(request.account_id)
        req = LimitRequest.objects.select_for_update().get(pk=request.pk)
        if req.status != RequestStatus.PENDING:
            raise QuotaRuleError(_("This request was already answered."))
        _used, extra = ledger_totals(account=req.account)
        # Against the raw total, not the limit shown (which is never below 0): were
        # the total below zero, a grant computed from the shown 0 would fall short.
        delta = req.units - (default_limit_units() + extra)
        if delta <= 0:
            raise QuotaRuleError(_("The account's limit is already at or above the requested %(units)s units.")
                                 % {"units": req.units})
        req.grant = LedgerEntry.objects.create(
            account_id=req.account_id, kind=EntryKind.GRANT, units=delta, actor=user,
            reason=answer or _("Limit request #%(id)s approved") % {"id": req.id})
        req.status, req.answer, req.answered_by, req.answered_at = (RequestStatus.APPROVED, answer, user,
                                                                    timezone.now())
        req.save(update_fields=["grant", "status", "answer", "answered_by", "answered_at"])
    return req


def limit_request_deny(*, user, request: LimitRequest, answer: str) -> LimitRequest:
    _may_decide(user=user, request=request, answer=answer)
    if not answer or not answer.strip():
        raise QuotaRuleError(_("Give the reason for the denial; the account sees it."))
    with transaction.atomic():
        req = LimitRequest.objects.select_for_update().get(pk=request.pk)
        if req.status != RequestStatus.PENDING:
            raise QuotaRuleError(_("This request was already answered."))
        req.status, req.answer, req.answered_by, req.answered_at = (RequestStatus.DENIED, answer.strip(), user,
                                                                    timezone.now())
        req.save(update_fields=["status", "answer", "answered_by", "answered_at"])
    return req


def ledger_adjust(*, user, account: Account, units: int, reason: str) -> LedgerEntry:
    """Move the account's limit by `units` (either sign), with a reason."""
    if not units:
        raise QuotaRuleError(_("An adjustment moves the limit by at least one unit."))
    if abs(units) > QUOTA_MAX_UNITS:
        raise QuotaRuleError(_("An adjustment moves the limit by at most %(max)s units.") % {"max": QUOTA_MAX_UNITS})
    if not reason or not reason.strip():
        raise QuotaRuleError(_("An adjustment needs a reason."))
    _text_fits(reason, "reason")
    with transaction.atomic():
        _lock_account(account.id)
        _used, extra = ledger_totals(account=account)
        limit = default_limit_units() + extra
        if limit + units < 0:
            # A limit below zero would show as 0 and silently swallow later grants.
            raise QuotaRuleError(_("The limit is %(limit)s units: an adjustment of %(units)s would take it below "
                                   "zero. The most it can be lowered by is %(limit)s.")
                                 % {"limit": limit, "units": units})
        return LedgerEntry.objects.create(account=account, kind=EntryKind.ADJUST, units=units, actor=user,
                                          reason=reason.strip())


__all__ = [
    "DeploymentRefused", "QuotaRuleError", "PlanNotAllowed", "LimitRequestPending", "Usage", "LedgerCheck",
    "DeploymentPlan", "DeploymentOutcome",
    "unit_costs", "unit_cost", "default_limit_units", "ledger_totals", "ledger_annotations", "quota_usage",
    "ledger_verify",
    "deployment_validate", "normalize_configuration", "validate_parameters", "platform_request", "deployment_body",
    "parameter_defaults", "suggested_dtype",
    "asset_body", "online_deployment_body", "deployment_event", "deployment_release", "platform_limit_refusal",
    "outside_deployment_record",
    "deployment_request",
    "deployment_delete", "limit_request_create", "limit_request_approve", "limit_request_deny", "ledger_adjust",
]
