"""Reads scoped to what a user may see (None or an empty queryset for
anything of another account; the views and API turn that into 404)."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, QuerySet

from cfm.accounts.models import Account
from cfm.accounts.selectors import accounts_for
from cfm.registry.models import Registration

from .ledger import default_limit_units, ledger_totals, unit_costs
from .models import Deployment, DeploymentStatus, LedgerEntry, LimitRequest, Refusal


def deployments_for(*, user, account=None) -> QuerySet[Deployment]:
    qs = Deployment.objects.filter(account__in=accounts_for(user=user), status=DeploymentStatus.ACTIVE)
    if account is not None:
        qs = qs.filter(account=account)
    return qs.select_related("registration", "space", "account").prefetch_related("events")


def deployment_get(*, user, deployment_id, active_only: bool = True) -> Deployment | None:
    qs = Deployment.objects.filter(account__in=accounts_for(user=user)).select_related("registration", "space",
                                                                                         "account")
    if active_only:
        qs = qs.filter(status=DeploymentStatus.ACTIVE)
    try:
        return qs.get(pk=int(deployment_id))
    except (Deployment.DoesNotExist, TypeError, ValueError):
        return None


def registration_get(*, user, registration_id) -> Registration | None:
    try:
        return Registration.objects.select_related("account").get(
            pk=int(registration_id), account__in=accounts_for(user=user))
    except (Registration.DoesNotExist, TypeError, ValueError):
        return None


def refusal_get(*, account, refusal_id) -> Refusal | None:
    try:
        return Refusal.objects.get(pk=int(refusal_id), account=account)
    except (Refusal.DoesNotExist, TypeError, ValueError):
        return None


def ledger_for(*, account) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(account=account).select_related("deployment", "actor")


def limit_requests_for(*, account) -> QuerySet[LimitRequest]:
    return LimitRequest.objects.filter(account=account).select_related("requested_by", "answered_by")


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


def registration_live_deployments(registration: Registration) -> list[Deployment]:
    """The deployments of a registration that still hold units (the registration's page lists them)."""
    return list(registration.deployments.filter(status=DeploymentStatus.ACTIVE).select_related("space")
                .order_by("created_at", "id"))


def space_live_deployments(space) -> list[Deployment]:
    """The deployments that still hold units in a space (a space in use cannot be deleted)."""
    return list(Deployment.objects.filter(space_id=space.pk, status=DeploymentStatus.ACTIVE)
                .order_by("created_at", "id"))


def space_live_counts(spaces) -> dict[int, int]:
    """{space id: its deployments that still hold units}, in one query."""
    return dict(Deployment.objects.filter(space__in=list(spaces), status=DeploymentStatus.ACTIVE).order_by()
                .values("space").annotate(n=Count("id")).values_list("space", "n"))
