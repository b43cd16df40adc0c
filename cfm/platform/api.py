"""API v1: a space's platform connection (shared/docs/platform-api.md)."""
from __future__ import annotations

from django.utils.translation import gettext as _
from ninja import Router, Status

from cfm.accounts.models import Space
from cfm.accounts.selectors import accounts_for
from cfm.apitools import ApiError, BodyNotJSON, body_json

from . import services

router = Router(tags=["platform"])


def _space_or_404(request, space_id: int) -> Space:
    space = None
    if 0 < space_id < 2**63:
        space = (Space.objects.select_related("account")
                 .filter(pk=space_id, account__in=accounts_for(user=request.user)).first())
    if space is None:
        raise ApiError("not_found", _("No such space."))
    return space


def _raise(exc: services.ConnectionRuleError):
    if exc.fields:
        raise ApiError(exc.code, exc.message, fields=exc.fields) from None
    raise ApiError(exc.code, exc.message) from None


@router.get("/spaces/{space_id}/platform", response=dict, summary="The space's platform connection")
def connection_get(request, space_id: int):
    space = _space_or_404(request, space_id)
    conn = services.connection_get(user=request.user, space=space)
    if conn is None:
        raise ApiError("not_found", _("This space has no platform connection."))
    return services.connection_body(conn)


@router.put("/spaces/{space_id}/platform", response=dict, summary="Connect the space to the platform")
def connection_put(request, space_id: int):
    space = _space_or_404(request, space_id)
    try:
        # The API's one bounded parser: json.loads reached the recursion limit on a deep body (a 500).
        data = body_json(request.body.strip() or b"null")
    except BodyNotJSON as exc:
        raise ApiError("invalid", exc.message, fields=exc.fields) from None
    try:
        conn = services.connection_put(user=request.user, space=space, data=data)
    except services.ConnectionRuleError as exc:
        _raise(exc)
    return services.connection_body(conn)


@router.delete("/spaces/{space_id}/platform", response={204: None}, summary="Back to plan-only")
def connection_delete(request, space_id: int):
    space = _space_or_404(request, space_id)
    try:
        if not services.connection_delete(user=request.user, space=space):
            raise ApiError("not_found", _("This space has no platform connection."))
    except services.ConnectionRuleError as exc:
        _raise(exc)
    return Status(204, None)


@router.post("/spaces/{space_id}/platform/check", response=dict, summary="Test the connection")
def connection_check(request, space_id: int):
    space = _space_or_404(request, space_id)
    try:
        return services.connection_check(user=request.user, space=space).body()
    except services.ConnectionRuleError as exc:
        _raise(exc)
