"""Sign-up and the settings page (API tokens: created and shown once, revoked)."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .forms import ApiTokenForm, SignUpForm
from .models import ApiToken
from .selectors import accounts_for
from .tokens import token_create, token_matches, token_revoke, token_seal, token_unseal


def signup(request):
    if request.user.is_authenticated:
        return redirect("dashboard")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("Welcome to cfm, %(name)s.") % {"name": user.username})
        owned = accounts_for(user=user).first()
        if owned is not None and owned.may_use_custom_models:
            # A new account has no space, so nothing could be deployed: the first step is creating one.
            # (An account on another plan may not deploy at all: it goes to the dashboard, which says so.)
            return redirect(reverse("spaces", args=[owned.pk]) + "?welcome=1")
        return redirect("dashboard")
    return render(request, "accounts/signup.html", {"form": form})


#: The session key that carries a new token, sealed, from its creation to the one page that shows it.
NEW_TOKEN_SESSION_KEY = "cfm.new_api_token"


def _new_token_once(request) -> dict | None:
    """The token created just before the redirect here, with its raw value,
    taken out of the session: a reload shows it no more."""
    held = request.session.pop(NEW_TOKEN_SESSION_KEY, None)
    if not isinstance(held, dict) or not isinstance(held.get("id"), int):
        return None
    token = ApiToken.objects.filter(user=request.user, pk=held["id"]).first()
    raw = token_unseal(str(held.get("sealed", "")))
    if token is None or raw is None or not token_matches(token=token, raw=raw):
        return None
    return {"token": token, "raw": raw}


@login_required
def settings_page(request):
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token, raw = token_create(user=request.user, name=form.cleaned_data["name"], expires_at=form.expires_at())
        # Post/Redirect/Get: reloading the page that shows the token must not create another one. The raw token
        # crosses the redirect in the session, sealed, and is taken out when shown.
        request.session[NEW_TOKEN_SESSION_KEY] = {"id": token.pk, "sealed": token_seal(raw)}
        return redirect("settings")
    new_token = _new_token_once(request)
    tokens = ApiToken.objects.filter(user=request.user).order_by("-created_at")
    accounts = accounts_for(user=request.user).prefetch_related("memberships")
    response = render(request, "accounts/settings.html", {
        "form": form, "tokens": tokens, "new_token": new_token, "now": timezone.now(),
        "accounts": [(a, next((m.role for m in a.memberships.all() if m.user_id == request.user.pk), None))
                     for a in accounts],
    })
    if new_token:
        add_never_cache_headers(response)  # no-store: not kept by the browser's or any proxy's cache either
    return response


@login_required
@require_POST
def token_revoke_view(request, pk: int):
    token = ApiToken.objects.filter(user=request.user, pk=pk).first()
    if token is None:
        raise Http404
    token_revoke(token=token)
    messages.success(request, _("Token %(prefix)s… revoked.") % {"prefix": token.prefix})
    return redirect("settings")
