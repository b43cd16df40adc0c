"""Sign-up and the settings page (API tokens: created and shown once, revoked)."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .forms import ApiTokenForm, SignUpForm
from .models import ApiToken
from .selectors import accounts_for
from .tokens import token_create, token_revoke


def signup(request):
    if request.user.is_authenticated:
        return redirect("dashboard")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("Welcome to cfm, %(name)s.") % {"name": user.username})
        return redirect("dashboard")
    return render(request, "accounts/signup.html", {"form": form})


@login_required
def settings_page(request):
    form = ApiTokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        token, raw = token_create(user=request.user, name=form.cleaned_data["name"], expires_at=form.expires_at())
        # The raw token exists only in this response: it is stored hashed.
        new_token = {"token": token, "raw": raw}
        form = ApiTokenForm()
    tokens = ApiToken.objects.filter(user=request.user).order_by("-created_at")
    accounts = accounts_for(user=request.user).prefetch_related("memberships")
    return render(request, "accounts/settings.html", {
        "form": form, "tokens": tokens, "new_token": new_token, "now": timezone.now(),
        "accounts": [(a, next((m.role for m in a.memberships.all() if m.user_id == request.user.pk), None))
                     for a in accounts],
    })


@login_required
@require_POST
def token_revoke_view(request, pk: int):
    token = ApiToken.objects.filter(user=request.user, pk=pk).first()
    if token is None:
        raise Http404
    token_revoke(token=token)
    messages.success(request, _("Token %(prefix)s… revoked.") % {"prefix": token.prefix})
    return redirect("settings")
