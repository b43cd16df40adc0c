from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Subquery
from django.db.models.fields.json import KT
from django.shortcuts import render
from django.utils.translation import gettext as _

from cfm import catalog
from cfm.accounts.models import Membership
from cfm.preparation.models import PrepareJob, PrepareStatus
from cfm.quota import services as quota_services
from cfm.quota.models import Deployment, DeploymentStatus
from cfm.registry.selectors import registration_counts, registrations_for


def catalog_rows():
    specs = catalog.SOFTWARE_SPECS
    rows = []
    for a in catalog.ARCHITECTURES:
        rows.append({
            "arch": a,
            "configurations": [catalog.CONFIGURATIONS[c] for c in a.configurations],
            "specs": [(s, specs[s][0], _(specs[s][1])) for s in a.software_specs],
            "vllm": catalog.SPEC_VLLM in a.software_specs,
        })
    return rows


def limit_examples(limit: int, costs: dict[str, int]) -> str:
    """How many of each general configuration ("N Small, N Medium or N Large")
    the default limit holds, from the live limit and unit costs (which an
    administrator may change), never a sentence written for the seed values."""
    parts = []
    for key in catalog.GENERAL_CONFIGURATIONS:
        n = limit // costs[key] if costs.get(key) else 0
        if n:
            parts.append(_("%(n)s %(configuration)s") % {"n": n, "configuration": _(catalog.CONFIGURATIONS[key].label)})
    if not parts:
        return ""
    if len(parts) == 1:
        return parts[0]
    return _("%(some)s or %(last)s") % {"some": ", ".join(parts[:-1]), "last": parts[-1]}


def home(request):
    costs, limit = quota_services.unit_costs(), quota_services.default_limit_units()
    return render(request, "web/home.html", {
        "rows": catalog_rows(),
        "configurations": [{"conf": catalog.CONFIGURATIONS[c], "units": costs[c], "gpus": catalog.CONFIGURATION_GPUS[c],
                            "gpu_gb": catalog.GPU_MEMORY_BYTES // 10**9}
                           for c in catalog.GENERAL_CONFIGURATIONS],
        "rules_version": catalog.RULES_VERSION,
        "default_limit": limit,
        "limit_examples": limit_examples(limit, costs),
        "extra_large_units": costs.get("extra_large"),
        "ts_rows": catalog.TS_SIZING_ROWS,
    })


#: registrations per dashboard page; the account cards count all of them
PAGE_SIZE = 50


def _page_number(raw) -> int:
    # Links are written by hand and kept in bookmarks: anything that is not a
    # positive whole number is the first page; beyond the end, the paginator
    # gives the last one.
    try:
        return max(1, int(raw))
    except (TypeError, ValueError):
        return 1


def _registrations_context(request, counts: dict[int, dict[str, int]] | None = None) -> dict:
    """One page of the user's registrations: the page's rows in one query,
    read from the (account, created_at) index, and the total from the
    per-account counts (one aggregate served by an index), whatever the row
    count. The list reads the verdict and configuration columns, never the
    report JSON."""
    # A prepared copy is the model's current state (cfm.preparation.selectors.latest_prepared): its verdict and
    # configuration replace the registration's own, read in the same single query.
    latest = (PrepareJob.objects.filter(registration=OuterRef("pk"), status=PrepareStatus.DONE,
                                        new_report__isnull=False).exclude(storage_location="")
              .order_by("-finished_at", "-id"))
    regs = registrations_for(user=request.user).annotate(
        prepared_verdict=Subquery(latest.annotate(v=KT("new_report__verdict")).values("v")[:1]),
        prepared_ok=Subquery(latest.values("new_report__deployable")[:1]),
        prepared_conf=Subquery(latest.annotate(c=KT("new_report__configuration")).values("c")[:1]))
    if counts is None:
        counts = registration_counts(account_ids=_member_account_ids(request.user))
    paginator = Paginator(regs, PAGE_SIZE)
    # The total is the sum of the account counts: no second COUNT over every row.
    paginator.__dict__["count"] = sum(c["total"] for c in counts.values())
    page = paginator.get_page(_page_number(request.GET.get("page")))
    rows = list(page.object_list)
    for row in rows:
        r: Any = row  # the annotations read back, which django-stubs cannot type
        if r.prepared_ok is not None:
            # a prepared report written before the verdict existed has only `deployable`
            r.verdict = r.prepared_verdict if r.prepared_verdict in catalog.VERDICTS else (
                "ready" if r.prepared_ok else "refused")
            r.configuration = r.prepared_conf or r.configuration
    # Polling stops once every job on this page has ended: the other pages are not on screen.
    return {"registrations": rows, "page_obj": page, "any_active": any(r.is_active for r in rows)}


def _member_account_ids(user) -> list[int]:
    return list(Membership.objects.filter(user=user).values_list("account_id", flat=True))


@login_required
def dashboard(request):
    memberships = (Membership.objects.filter(user=request.user).select_related("account")
                   .prefetch_related("account__spaces").order_by("account__name"))
    counts = registration_counts(account_ids=[m.account_id for m in memberships])
    ctx = _registrations_context(request, counts)
    empty = {"total": 0, "deployable": 0, "active": 0}
    deployments = dict(Deployment.objects.filter(account__in=[m.account_id for m in memberships],
                                                 status=DeploymentStatus.ACTIVE).order_by().values("account")
                       .annotate(n=Count("id")).values_list("account", "n"))
    accounts = [{"account": m.account, "role": m.role, "spaces": list(m.account.spaces.all()),
                 "counts": counts.get(m.account_id, empty), "deployments": deployments.get(m.account_id, 0)}
                for m in memberships]
    ctx.update(accounts=accounts, may_register=any(m.account.may_use_custom_models for m in memberships))
    return render(request, "web/dashboard.html", ctx)


@login_required
def dashboard_registrations(request):
    """The polled list: carries its own hx-trigger only while a job is active."""
    return render(request, "web/_registrations.html", _registrations_context(request))
