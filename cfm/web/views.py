from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from cfm import catalog


def catalog_rows():
    specs = catalog.SOFTWARE_SPECS
    rows = []
    for a in catalog.ARCHITECTURES:
        rows.append({
            "arch": a,
            "configurations": [catalog.CONFIGURATIONS[c] for c in a.configurations],
            "specs": [(s, specs[s][0], specs[s][1]) for s in a.software_specs],
            "vllm": catalog.SPEC_VLLM in a.software_specs,
        })
    return rows


def home(request):
    return render(request, "web/home.html", {
        "rows": catalog_rows(),
        "configurations": [catalog.CONFIGURATIONS[c] for c in catalog.GENERAL_CONFIGURATIONS],
        "rules_version": catalog.RULES_VERSION,
        "unit_costs": catalog.UNIT_COSTS,
        "default_limit": catalog.DEFAULT_LIMIT_UNITS,
        "ts_rows": catalog.TS_SIZING_ROWS,
    })


@login_required
def dashboard(request):
    return render(request, "web/dashboard.html", {})
