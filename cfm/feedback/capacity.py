"""The staff capacity page: unmet demand (refused requests and survey
answers) by configuration, week by week. Anyone else gets a 404.

It lives here, above the quota, because it reads both the quota's refusals
and this app's survey answers (the quota imports nothing of feedback). Its
address stays /quota/capacity/ (cfm/urls.py)."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Sum
from django.db.models.functions import TruncWeek
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from cfm import catalog
from cfm.quota import charts
from cfm.quota.models import LimitRequest, Refusal, RequestStatus
from cfm.quota.services import unit_costs

from .models import SurveyResponse, Timeline

WEEKS = 12


def _weekly(qs, value) -> dict[tuple, int]:
    rows = (qs.annotate(week=TruncWeek("created_at")).values("week", "configuration")
            .annotate(v=value).order_by())
    return {(r["week"].date(), r["configuration"]): r["v"] or 0 for r in rows}


def capacity(request):
    if not (request.user.is_authenticated and request.user.is_staff):
        raise Http404
    today = timezone.now().date()
    this_monday = today - timedelta(days=today.weekday())
    weeks = [this_monday - timedelta(weeks=k) for k in range(WEEKS - 1, -1, -1)]
    since = timezone.make_aware(datetime.combine(weeks[0], datetime.min.time()))
    refusals = Refusal.objects.filter(created_at__gte=since)
    surveys = SurveyResponse.objects.filter(created_at__gte=since)
    refused = _weekly(refusals, Count("id"))
    wanted = _weekly(surveys, Sum("count"))
    confs = charts.configuration_series()
    labels = [date_format(w, "M j") for w in weeks]

    def series(data):
        return [charts.Series(k, label, [data.get((w, k), 0) for w in weeks]) for k, label in confs]

    costs = unit_costs()
    all_refusals = Refusal.objects.values("configuration").annotate(n=Count("id"), units=Sum("needed_units"))
    all_surveys = SurveyResponse.objects.values("configuration").annotate(n=Count("id"), deployments=Sum("count"))
    by_conf: dict[str, dict[str, Any]] = {
        k: {"key": k, "label": label, "short": catalog.CONFIGURATIONS[k].short, "refusals": 0,
            "refused_units": 0, "responses": 0,
            "deployments": 0, "units": 0} for k, label in confs}
    for r in all_refusals:
        by_conf[r["configuration"]].update(refusals=r["n"], refused_units=r["units"] or 0)
    for answer in all_surveys:
        row = by_conf[answer["configuration"]]
        row.update(responses=answer["n"], deployments=answer["deployments"] or 0)
        row["units"] = row["deployments"] * costs.get(answer["configuration"], 0)
    timelines = dict(Timeline.choices)
    by_timeline = [(timelines.get(r["timeline"], r["timeline"]), r["n"]) for r in
                   SurveyResponse.objects.values("timeline").annotate(n=Count("id")).order_by("-n")]
    top_models = (SurveyResponse.objects.exclude(model="").values("model")
                  .annotate(n=Count("id"), deployments=Sum("count")).order_by("-deployments", "-n")[:10])
    pending = LimitRequest.objects.filter(status=RequestStatus.PENDING).select_related("account")
    return render(request, "quota/capacity.html", {
        "refusal_chart": charts.stacked_bars(categories=labels, series=series(refused),
                                             title=_("Refused deployment requests per week, by configuration")),
        "survey_chart": charts.stacked_bars(categories=labels, series=series(wanted),
                                            title=_("Deployments asked for in surveys per week, by configuration")),
        "rows": list(by_conf.values()),
        "totals": {
            "refusals": sum(r["refusals"] for r in by_conf.values()),
            "responses": sum(r["responses"] for r in by_conf.values()),
            "units": sum(r["units"] for r in by_conf.values()),
            "pending": pending.count(),
        },
        "by_timeline": by_timeline, "top_models": top_models, "pending": pending[:20], "weeks": WEEKS,
        "colours": charts.SIZE_COLOURS, "order": catalog.CONFIGURATION_ORDER,
    })
