"""The Spaces page of an account: list, create, rename, toggle the runtime,
delete. Owners change spaces; members see them (and deploy into them). Every
write goes through accounts.services, which checks the role again; another
account (or space) is a 404, as one that does not exist."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from . import hooks, services
from .forms import SpaceForm
from .models import Role
from .selectors import account_get, accounts_for, role_in, space_get


def _account_or_404(request, account_id):
    account = account_get(user=request.user, account_id=account_id)
    if account is None:
        raise Http404
    return account


@login_required
def spaces_home(request):
    """The first account's spaces: the account a new sign-up owns."""
    owned = accounts_for(user=request.user).filter(memberships__user=request.user, memberships__role=Role.OWNER)
    account = owned.first() or accounts_for(user=request.user).first()
    if account is None:
        messages.info(request, _("You belong to no account yet. Ask an account owner to add you."))
        return redirect("dashboard")
    return redirect("spaces", account.pk)


@login_required
@require_http_methods(["GET", "POST"])
def spaces_page(request, account_id: int):
    account = _account_or_404(request, account_id)
    is_owner = role_in(user=request.user, account=account) == Role.OWNER
    form = SpaceForm(request.POST or None, prefix="new")
    if request.method == "POST" and form.is_valid():
        try:
            space = services.space_create(account=account, user=request.user, name=form.cleaned_data["name"],
                                          runtime_instance=form.cleaned_data["runtime_instance"])
        except services.AccountError as exc:
            if exc.code == "invalid_name":
                form.add_error("name", exc.message)
            else:  # owner_only: a member sees no form to carry the error
                messages.error(request, exc.message)
        else:
            messages.success(request, _("Space “%(name)s” created. You can deploy into it now.")
                             % {"name": space.name})
            return redirect("spaces", account.pk)
    spaces = list(account.spaces.order_by("name", "id"))
    connections, live = hooks.connections(spaces), hooks.live_counts(spaces)
    rows = [{"space": s, "connection": connections.get(s.pk), "live": live.get(s.pk, 0)} for s in spaces]
    first_run = not spaces and is_owner
    return render(request, "accounts/spaces.html", {
        "account": account, "accounts": accounts_for(user=request.user), "rows": rows, "form": form,
        "is_owner": is_owner, "first_run": first_run, "welcome": request.GET.get("welcome") == "1",
    }, status=400 if request.method == "POST" else 200)


def _space_or_404(request, space_id):
    space = space_get(user=request.user, space_id=space_id)
    if space is None:
        raise Http404
    return space


def _run(request, space, action, done: str):
    try:
        action()
    except services.AccountError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return redirect("spaces", space.account_id)


@login_required
@require_POST
def space_rename(request, space_id: int):
    space = _space_or_404(request, space_id)
    name = request.POST.get("name", "")
    return _run(request, space, lambda: services.space_update(space=space, user=request.user, name=name),
                _("Space renamed to “%(name)s”.") % {"name": name.strip()})


@login_required
@require_POST
def space_runtime(request, space_id: int):
    space = _space_or_404(request, space_id)
    wanted = request.POST.get("runtime_instance") == "1"
    done = (_("“%(name)s” now has a watsonx.ai Runtime instance.") if wanted
            else _("“%(name)s” has no watsonx.ai Runtime instance now: deployments into it are refused."))
    return _run(request, space,
                lambda: services.space_update(space=space, user=request.user, runtime_instance=wanted),
                done % {"name": space.name})


@login_required
@require_POST
def space_delete(request, space_id: int):
    space = _space_or_404(request, space_id)
    return _run(request, space, lambda: services.space_delete(space=space, user=request.user),
                _("Space “%(name)s” deleted.") % {"name": space.name})
