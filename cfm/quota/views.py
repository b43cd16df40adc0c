"""Pages: deploy a registration, a deployment's platform requests, the usage
page and the limit-increase request. Another account's object is a 404,
exactly like one that does not exist."""
from __future__ import annotations

import json
import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from cfm import catalog
from cfm.accounts.models import Space
from cfm.accounts.permissions import OwnerOnly, may_change
from cfm.accounts.selectors import account_get, accounts_for, role_in
from cfm.preparation.selectors import latest_prepared
from cfm.registry import presenters

from . import backends, charts, lifecycle, selectors, services
from .forms import DeploymentForm, LimitRequestForm
from .models import TRACKED_STATES, Deployment, DeploymentState


def _account_or_404(user, account_id):
    account = account_get(user=user, account_id=account_id)
    if account is None:
        raise Http404
    return account


def _holdings(usage: services.Usage) -> list[dict]:
    return [{"name": d.serving_name, "configuration": d.configuration, "label": d.get_configuration_display(),
             "units": d.units, "url": reverse("quota:deployment", args=[d.id])} for d in usage.deployments]


def _configuration(key):
    if key not in catalog.CONFIGURATIONS:
        return None
    conf = catalog.CONFIGURATIONS[key]
    return {"key": key, "short": conf.short, "label": _(conf.label)}


def _unit_cost_rows(usage: services.Usage) -> list[tuple]:
    return [(k, charts.SIZE_COLOURS[k], label, usage.unit_costs[k]) for k, label in charts.configuration_series()]


@login_required
@require_http_methods(["GET", "POST"])
def deploy(request, registration_id: int):
    registration = selectors.registration_get(user=request.user, registration_id=registration_id)
    if registration is None:
        raise Http404
    account = registration.account
    spaces = list(Space.objects.filter(account=account))
    usage = services.quota_usage(account=account)
    # The latest prepared copy, when there is one, is what gets deployed: its report fills the form.
    prepared = latest_prepared(registration)
    report = (prepared.report if prepared is not None else registration.report) or {}
    form = DeploymentForm(request.POST or None, registration=registration, spaces=spaces,
                          unit_costs=usage.unit_costs, report=report)
    refusal = None
    problem = None
    if request.method == "POST" and not form.is_valid():
        _validate_the_rest(form, registration=registration, spaces=spaces)
    elif request.method == "POST":
        space = next((s for s in spaces if str(s.id) == form.cleaned_data["space"]), None)
        try:
            outcome = backends.deployment_start(
                user=request.user, registration=registration, space=space,
                configuration=form.cleaned_data["configuration"], software_spec=form.cleaned_data["software_spec"],
                serving_name=form.cleaned_data["serving_name"], parameters=form.parameters(),
                idempotency_key="form:" + form.cleaned_data["idempotency_key"])
        except services.DeploymentRefused as exc:
            if exc.code == "quota_exceeded":
                refusal = exc.extra
                usage = services.quota_usage(account=account)
            else:
                problem = exc
                _attach_errors(form, exc)
            _fresh_key(form)
        else:
            if not outcome.replayed and outcome.deployment.state == DeploymentState.RESERVED:
                messages.success(request, _("Deployment %(name)s is reserved: %(units)s units.")
                                 % {"name": outcome.deployment.serving_name, "units": outcome.deployment.units})
            elif not outcome.replayed:
                units = outcome.deployment.units
                messages.success(request, ngettext(
                    "Deploying %(name)s: %(units)s unit is held while it runs. This page follows it.",
                    "Deploying %(name)s: %(units)s units are held while it runs. This page follows it.", units)
                    % {"name": outcome.deployment.serving_name, "units": units})
            return redirect("quota:deployment", outcome.deployment.id)
    return render(request, "quota/deploy.html", {
        "form_error_count": len(form.non_field_errors()) + sum(len(f.errors) for f in form),
        "registration": registration, "report": report, "account": account, "form": form, "usage": usage,
        "prepared": prepared, "is_owner": role_in(user=request.user, account=account) == "owner",
        "gauge": charts.usage_gauge(used=usage.used_units, limit=usage.limit_units, deployments=usage.deployments),
        "refusal": refusal, "problem": problem, "holdings": _holdings(usage),
        "deployable": bool(report.get("deployable")), "plan_ok": account.may_use_custom_models,
        "verdict": presenters.verdict_of(report) if prepared is not None or registration.status == "done" else None,
        # what each configuration holds at the platform's default sequence length, beside the parameters
        "memory_rows": presenters.memory_rows(report, presenters.default_sequence_length(report)),
        "sequence_length": presenters.default_sequence_length(report),
        "no_runtime": bool(spaces) and not any(s.runtime_instance for s in spaces),
        "unit_costs": _unit_cost_rows(usage),
        "recommended": _configuration(report.get("configuration")),
        "recommended_units": usage.unit_costs.get(report.get("configuration", ""), 0),
    }, status=409 if refusal else (422 if problem and problem.status == 422 else 200))


def _attach_errors(form, exc: services.DeploymentRefused, skip: frozenset[str] | set[str] = frozenset()) -> None:
    fields = exc.extra.get("fields") or {}
    mapping = {"serving_name_taken": "serving_name", "configuration_too_small": "configuration",
               "configuration_not_allowed": "configuration", "spec_not_allowed": "software_spec",
               "runtime_missing": "space"}
    done = set(skip)  # a field's own error already says what is wrong with it; one message per field
    if exc.code in mapping and mapping[exc.code] not in done:
        form.add_error(mapping[exc.code], exc.message)
        done.add(mapping[exc.code])
    for name, message in fields.items():
        # The service names every field at fault at once (`fields`), the first refusal's field included.
        target = "param_" + name.split(".", 1)[1] if name.startswith("parameters.") else name
        if target in done:
            continue
        done.add(target)
        form.add_error(target if target in form.fields else None, message)
    if not fields and exc.code not in mapping:
        form.add_error(None, exc.message)


def _validate_the_rest(form, *, registration, spaces) -> None:
    """One round: a form the browser sent with errors of its own (a number
    that is not one, a missing choice) is still checked by the service for
    everything else it could read, so the serving name, the configuration
    and the parameters are all reported now, not on the next submit. Only
    the validation runs: nothing is reserved."""
    data = form.cleaned_data
    space = next((s for s in spaces if str(s.id) == data.get("space")), None)
    try:
        services.deployment_validate(
            account=registration.account, registration=registration, space=space,
            configuration=data.get("configuration"), software_spec=data.get("software_spec"),
            serving_name=data.get("serving_name") or form.data.get("serving_name", ""),
            parameters=form.parameters())
    except services.DeploymentRefused as exc:
        _attach_errors(form, exc, skip=set(form.errors))


def _fresh_key(form) -> None:
    """A form shown again after a refusal gets a new key: sending it again is
    a new request (e.g. after freeing capacity), not a replay of the refusal."""
    data = form.data.copy()
    data["idempotency_key"] = uuid.uuid4().hex
    form.data = data


def _deployment_context(request, dep) -> dict:
    """The deployment's page and its polled fragment: the state, its message and every event in the reader's
    language (cfm.quota.lifecycle), the upload's bytes, the request bodies."""
    req = dep.platform_request or {}
    usage = services.quota_usage(account=dep.account)
    prepared = latest_prepared(dep.registration) if dep.registration is not None else None
    events = [{"at": e.at, "message": lifecycle.render(e.message_key, e.message_params),
               "state": e.state, "badge": _EventBadge(e.state)} for e in dep.events.all()]
    return {
        "dep": dep, "account": dep.account, "events": events, "tracked": dep.state in TRACKED_STATES,
        "status_message": lifecycle.render(dep.message_key, dep.message_params) if dep.message_key else "",
        "progress": dep.progress or {}, "usage": usage, "holdings": _holdings(usage) if dep.error else [],
        "is_owner": role_in(user=request.user, account=dep.account) == "owner",
        "may_change": may_change(user=request.user, account_id=dep.account_id, created_by_id=dep.created_by_id),
        "asset_json": json.dumps(req.get("asset", {}), indent=2),
        "deployment_json": json.dumps(req.get("deployment", {}), indent=2),
        "prepared_url": reverse("prepared_download", args=[prepared.job.registration_id, prepared.job.pk])
        if prepared is not None else "",
    }


class _EventBadge:
    """An event's state, shaped like a deployment for quota/_state_badge.html."""

    origin = ""

    def __init__(self, state: str):
        self.state = state

    def get_state_display(self) -> str:
        return str(dict(DeploymentState.choices).get(self.state, self.state))


@login_required
def deployment_detail(request, deployment_id: int):
    dep = selectors.deployment_get(user=request.user, deployment_id=deployment_id, active_only=False)
    if dep is None:
        raise Http404
    return render(request, "quota/deployment.html", _deployment_context(request, dep))


@login_required
def deployment_live(request, deployment_id: int):
    """The polled fragment; once the deployment no longer moves it comes without the trigger, so polling stops."""
    dep = selectors.deployment_get(user=request.user, deployment_id=deployment_id, active_only=False)
    if dep is None:
        raise Http404
    return render(request, "quota/_deployment_live.html", _deployment_context(request, dep))


@login_required
@require_POST
def deployment_delete(request, deployment_id: int):
    dep = selectors.deployment_get(user=request.user, deployment_id=deployment_id)
    if dep is None:
        raise Http404
    try:
        outcome = backends.deployment_remove(user=request.user, deployment=dep)
    except OwnerOnly as exc:
        messages.error(request, exc.message)
        return redirect("quota:deployment", dep.pk)
    if outcome == "deleting":
        messages.success(request, _("Deployment %(name)s is being deleted from the platform; its %(units)s units are "
                                    "free once it is gone.") % {"name": dep.serving_name, "units": dep.units})
    else:
        messages.success(request, _("Deployment %(name)s was deleted; %(units)s units are free again.")
                         % {"name": dep.serving_name, "units": dep.units})
    return redirect("quota:usage", dep.account_id)


@login_required
def usage_home(request):
    first = accounts_for(user=request.user).first()
    if first is None:
        raise Http404
    return redirect("quota:usage", first.id)


@login_required
def usage(request, account_id: int):
    account = _account_or_404(request.user, account_id)
    u = services.quota_usage(account=account)
    return render(request, "quota/usage.html", {
        "account": account, "usage": u, "role": role_in(user=request.user, account=account),
        "accounts": accounts_for(user=request.user),
        "gauge": charts.usage_gauge(used=u.used_units, limit=u.limit_units, deployments=u.deployments),
        "ledger": selectors.ledger_for(account=account)[:50],
        "requests": selectors.limit_requests_for(account=account)[:20],
        "unit_costs": _unit_cost_rows(u),
        "survey_url": reverse("feedback:survey", args=[account.id]),
    })


@login_required
@require_http_methods(["GET", "POST"])
def limit_request(request, account_id: int):
    account = _account_or_404(request.user, account_id)
    u = services.quota_usage(account=account)
    form = LimitRequestForm(request.POST or None, current_limit=u.limit_units)
    if request.method == "POST" and form.is_valid():
        try:
            services.limit_request_create(user=request.user, account=account, units=form.cleaned_data["units"],
                                          reason=form.cleaned_data["reason"])
        except services.QuotaRuleError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, _("Your request was sent. An increase is not guaranteed: it depends on "
                                        "capacity. The answer will appear on this page."))
            return redirect("quota:usage", account.id)
    return render(request, "quota/limit_request.html", {"account": account, "usage": u, "form": form})


__all__ = ["deploy", "deployment_detail", "deployment_delete", "usage_home", "usage", "limit_request", "Deployment"]
