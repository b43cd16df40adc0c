"""The capacity survey page, reachable from the limit notice (with the
refused request) and from the usage page. Only for the user's own accounts:
anything else is a 404."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from cfm.accounts.selectors import account_get
from cfm.quota.selectors import refusal_get

from .forms import SurveyForm
from .services import survey_submit


@login_required
@require_http_methods(["GET", "POST"])
def survey(request, account_id: int):
    account = account_get(user=request.user, account_id=account_id)
    if account is None:
        raise Http404
    refusal = None
    refusal_id = request.POST.get("refusal") or request.GET.get("refusal")
    if refusal_id:
        refusal = refusal_get(account=account, refusal_id=refusal_id)
        if refusal is None:
            raise Http404
    initial = {"configuration": refusal.configuration} if refusal else {}
    if refusal and refusal.registration is not None:
        initial["model"] = refusal.registration.source
    report = (refusal.registration.report or {}) if refusal and refusal.registration is not None else {}
    form = SurveyForm(request.POST or None, initial=initial, family=report.get("family"))
    if request.method == "POST" and form.is_valid():
        survey_submit(user=request.user, account=account, refusal=refusal, **form.cleaned_data)
        messages.success(request, _("Thank you: your answer helps plan capacity."))
        return redirect("quota:usage", account.id)
    return render(request, "feedback/survey.html", {"account": account, "refusal": refusal, "form": form})
