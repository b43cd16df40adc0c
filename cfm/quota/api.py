"""API v1: deployments, usage and limit requests (docs/api.md)."""
from __future__ import annotations

from django.utils.translation import gettext as _
from ninja import Router, Schema, Status

from cfm.accounts.api import account_or_404
from cfm.accounts.models import Space
from cfm.accounts.selectors import accounts_for
from cfm.apitools import ApiError, iso, paginate

from . import backends, selectors, services
from .models import Deployment, LimitRequest

router = Router(tags=["deployments"])


class DeploymentIn(Schema):
    registration: int
    space: int
    configuration: str | None = None
    software_spec: str | None = None
    serving_name: str
    parameters: dict | None = None


@router.post("/deployments", response={201: dict}, summary="Deploy a registered model within the quota")
def deployment_create(request, payload: DeploymentIn):
    registration = selectors.registration_get(user=request.user, registration_id=payload.registration)
    if registration is None:
        raise ApiError("not_found", _("No such registration."))
    space = Space.objects.filter(pk=payload.space, account__in=accounts_for(user=request.user)).first()
    if space is None:
        raise ApiError("not_found", _("No such space."))
    key = (request.headers.get("Idempotency-Key") or "").strip()[:200] or None
    try:
        outcome = backends.deployment_start(
            user=request.user, registration=registration, space=space, configuration=payload.configuration,
            software_spec=payload.software_spec, serving_name=payload.serving_name, parameters=payload.parameters,
            idempotency_key=key)
    except services.DeploymentRefused as exc:
        raise ApiError(exc.code, exc.message, **exc.extra) from None
    return Status(201, outcome.body)


@router.get("/deployments", response=dict, summary="Active deployments")
def deployment_list(request, account: int | None = None):
    acc = account_or_404(request, account) if account is not None else None
    qs = selectors.deployments_for(user=request.user, account=acc).order_by("-created_at", "-id")
    return paginate(request, qs, services.deployment_body)


@router.get("/deployments/{deployment_id}", response=dict, summary="One deployment (also one that ended)")
def deployment_detail(request, deployment_id: int):
    dep = selectors.deployment_get(user=request.user, deployment_id=deployment_id, active_only=False)
    if dep is None:
        raise ApiError("not_found", _("No such deployment."))
    return services.deployment_body(dep)


@router.delete("/deployments/{deployment_id}", response={202: dict, 204: None},
               summary="Delete: a plan at once (204), a real deployment from the platform (202, deleting)")
def deployment_remove(request, deployment_id: int):
    dep = selectors.deployment_get(user=request.user, deployment_id=deployment_id)
    outcome = "gone" if dep is None else backends.deployment_remove(user=request.user, deployment=dep)
    if dep is None or outcome == "gone":
        raise ApiError("not_found", _("No such deployment."))
    if outcome == "deleting":
        return Status(202, services.deployment_body(dep))
    return Status(204, None)


def usage_body(usage: services.Usage) -> dict:
    return {"account": usage.account.id, "limit_units": usage.limit_units, "used_units": usage.used_units,
            "free_units": usage.free_units, "default_limit_units": usage.default_limit_units,
            "unit_costs": usage.unit_costs,
            "deployments": [services.deployment_body(d) for d in usage.deployments]}


@router.get("/accounts/{account_id}/usage", response=dict, summary="Units used and the limit", tags=["accounts"])
def account_usage(request, account_id: int):
    return usage_body(services.quota_usage(account=account_or_404(request, account_id)))


def limit_request_body(req: LimitRequest) -> dict:
    return {"id": req.id, "account": req.account_id, "units": req.units, "reason": req.reason,
            "status": req.status, "answer": req.answer or None, "created_at": iso(req.created_at),
            "answered_at": iso(req.answered_at)}


class LimitRequestIn(Schema):
    account: int
    units: int
    reason: str


@router.post("/limit-requests", response={201: dict}, summary="Ask for a higher total limit", tags=["limits"])
def limit_request_create(request, payload: LimitRequestIn):
    account = account_or_404(request, payload.account)
    try:
        req = services.limit_request_create(user=request.user, account=account, units=payload.units,
                                            reason=payload.reason)
    except services.QuotaRuleError as exc:
        if exc.status == 400:
            raise ApiError("invalid", exc.message, fields={exc.field or "body": exc.message}) from None
        raise ApiError(exc.code, exc.message, **exc.extra) from None
    return Status(201, limit_request_body(req))


@router.get("/limit-requests", response=dict, summary="Limit requests and their answers", tags=["limits"])
def limit_request_list(request, account: int | None = None):
    if account is not None:
        qs = selectors.limit_requests_for(account=account_or_404(request, account))
    else:
        qs = LimitRequest.objects.filter(account__in=accounts_for(user=request.user))
    return paginate(request, qs.order_by("-created_at", "-id"), limit_request_body)


__all__ = ["router", "usage_body", "limit_request_body", "Deployment"]
