"""Deployments: a request validated (plan, model, specification, parameters),
its units reserved under the account's lock, its life recorded, its units
released once. The ledger's lock and totals come from ledger.py."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from cfm import catalog
from cfm.accounts.models import Account, Space
from cfm.accounts.permissions import require_may_change
from cfm.preparation.selectors import latest_prepared
from cfm.registry.models import Status as RegistrationStatus

from .bodies import platform_request
from .errors import DeploymentRefused
from .ledger import default_limit_units, ledger_totals, lock_account, unit_cost
from .models import (
    Deployment,
    DeploymentEvent,
    DeploymentState,
    DeploymentStatus,
    EntryKind,
    IdempotencyRecord,
    LedgerEntry,
    Origin,
    Refusal,
)
from .parameters import conf_label, validate_parameters
from .serialize import deployment_body


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
    return DeploymentRefused("not_deployable", message, registration_status=status)


def deployment_validate(*, account: Account, registration, space: Space | None, configuration: str | None = None,
                        software_spec: str | None = None, serving_name: str | None,
                        parameters: dict | None = None) -> DeploymentPlan:
    """Every check that does not need the quota, all in one round: the answer
    is the first refusal in the contract's order (its status and code), and its
    `fields` name every input at fault, so a form or a client fixes them all at
    once. Raises DeploymentRefused."""
    configuration = normalize_configuration(configuration)
    if not account.may_use_custom_models:
        raise DeploymentRefused("plan_not_allowed", _(
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
        refuse(DeploymentRefused("invalid", _("The space belongs to another account."),
                                 fields={"space": _("Choose a space of this account.")}))
    name_ok = isinstance(serving_name, str) and re.fullmatch(catalog.SERVING_NAME_PATTERN, serving_name)
    if not name_ok:
        refuse(DeploymentRefused("invalid", _("The serving name is not valid."), fields={
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
            refuse(DeploymentRefused("runtime_missing", _(
                "The space has no watsonx.ai Runtime instance. Associate one on the space's Manage tab, "
                "or choose another space.")), "space")
        plan = _model_plan(report, configuration, software_spec, parameters, refuse)
    if name_ok and Deployment.objects.filter(account=account, serving_name=serving_name,
                                             status=DeploymentStatus.ACTIVE).exists():
        refuse(DeploymentRefused("serving_name_taken", _(
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
        refuse(DeploymentRefused("configuration_not_allowed", _(
            "%(conf)s is not available for this model; choose one of: %(allowed)s.") % {
            "conf": conf, "allowed": ", ".join(allowed)}, allowed=list(allowed)), "configuration")
        failed = True
    elif recommended in catalog.CONFIGURATIONS and _order(conf) < _order(recommended):
        if family == "time_series":
            # Time-series sizes are about load, not memory: smaller serves fewer users.
            warnings.append({"code": "configuration_below_recommendation", "message": _(
                "%(rec)s was recommended for the expected load; %(conf)s serves fewer concurrent users.")
                % {"rec": conf_label(recommended), "conf": conf_label(conf)}})
        else:
            refuse(DeploymentRefused("configuration_too_small", _(
                "The model needs at least %(rec)s; %(conf)s would fail with insufficient resources.")
                % {"rec": conf_label(recommended), "conf": conf_label(conf)}, minimum=recommended), "configuration")
            failed = True
    specs = report.get("software_specs") or []
    spec = software_spec or report.get("recommended_software_spec") or (specs[0] if specs else None)
    if spec is None or spec not in specs:
        refuse(DeploymentRefused("spec_not_allowed", _(
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
        lock_account(deployment.account_id)
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
        raise DeploymentRefused("idempotency_key_reused", _(
            "This Idempotency-Key was already used for a different request."))
    if record.status_code != 201:
        raise DeploymentRefused.from_body(record.body)
    assert record.deployment is not None  # a 201 is stored with its deployment, which is never deleted
    return DeploymentOutcome(deployment=record.deployment, body=record.body, replayed=True)


def _quota_refusal(*, account, user, registration, plan, used, limit) -> DeploymentRefused:
    refusal = Refusal.objects.create(account=account, user=user, registration=registration,
                                     configuration=plan.configuration, needed_units=plan.units, used_units=used,
                                     limit_units=limit)
    survey = reverse("feedback:survey", args=[account.id]) + f"?refusal={refusal.id}"
    return DeploymentRefused("quota_exceeded", _(
        "This account uses %(used)s of %(limit)s units; a %(conf)s deployment needs %(need)s more. Delete a "
        "deployment or request a limit increase (not guaranteed: it depends on capacity).") % {
        "used": used, "limit": limit, "conf": conf_label(plan.configuration), "need": plan.units},
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
        locked = lock_account(space.account_id)
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
            locked = lock_account(account.id)
            # A concurrent request with the same key for this account waited on the lock.
            if (record := _recorded(user, idempotency_key)) is not None:
                return _replay(record, fingerprint)
            if Deployment.objects.filter(account=locked, serving_name=serving_name,
                                         status=DeploymentStatus.ACTIVE).exists():
                raise DeploymentRefused("serving_name_taken", _(
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
        raise DeploymentRefused("serving_name_taken", _(
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
        lock_account(deployment.account_id)
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
