"""The page of a space's platform connection: the form (owners), the
"Test connection" button with each check's verdict, and disconnecting.
Members see the connection without its secrets; another account's space is
a 404, as one that does not exist. Every action calls platform.services,
which checks the role again."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from cfm.accounts.selectors import role_in, space_get

from . import services
from .forms import ConnectionForm
from .models import Connection

#: the session key that carries the last check's verdicts across the redirect to the page
CHECK_SESSION_KEY = "cfm.connection_check"


def _space_or_404(request, space_id):
    space = space_get(user=request.user, space_id=space_id)
    if space is None:
        raise Http404
    return space


@login_required
@require_http_methods(["GET", "POST"])
def connection_page(request, space_id: int):
    space = _space_or_404(request, space_id)
    is_owner = role_in(user=request.user, account=space.account) == "owner"
    connection = Connection.objects.filter(space=space).first()
    form = ConnectionForm(request.POST or None, connection=connection)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.connection_put(user=request.user, space=space, data=form.body())
            except services.ConnectionRuleError as exc:
                form.add_service_errors(exc.fields)
                if not exc.fields:
                    form.add_error(None, exc.message)
                status = exc.status
            else:
                messages.success(request, _("The connection is saved. Test it before deploying."))
                return redirect("space_platform", space.pk)
        else:
            status = 400
    checks = request.session.pop(CHECK_SESSION_KEY, None)
    if not isinstance(checks, dict) or checks.get("space") != space.pk:
        checks = None
    return render(request, "platform/connection.html", {
        "space": space, "account": space.account, "connection": connection, "form": form, "is_owner": is_owner,
        "checks": checks,
    }, status=status)


@login_required
@require_POST
def connection_test(request, space_id: int):
    space = _space_or_404(request, space_id)
    try:
        result = services.connection_check(user=request.user, space=space)
    except services.ConnectionRuleError as exc:
        messages.error(request, exc.message)
    else:
        request.session[CHECK_SESSION_KEY] = {"space": space.pk, **result.body()}
    return redirect("space_platform", space.pk)


@login_required
@require_POST
def connection_remove(request, space_id: int):
    space = _space_or_404(request, space_id)
    try:
        services.connection_delete(user=request.user, space=space)
    except services.ConnectionRuleError as exc:
        messages.error(request, exc.message)
        return redirect("space_platform", space.pk)
    messages.success(request, _("“%(name)s” is plan-only again: deployments into it give the request bodies to send "
                                "yourself.") % {"name": space.name})
    return redirect("spaces", space.account_id)
