"""API v1: the user's accounts and their spaces (docs/api.md).
Also `account_or_404`, which every app's API uses for an account id;
pagination and ISO times live in cfm.apitools (re-exported here)."""
from __future__ import annotations

from django.db.models import OuterRef, Subquery
from django.utils.translation import gettext as _
from ninja import Router, Schema

from cfm.apitools import ApiError, iso, paginate

from .models import Membership
from .selectors import account_get, accounts_for

router = Router(tags=["accounts"])

__all__ = ["router", "account_or_404", "iso", "paginate"]


def account_or_404(request, account_id):
    """The user's account, or 404 exactly as for an id that does not exist."""
    try:
        in_range = 0 < int(account_id) < 2**63  # beyond a bigint: no such row, not a database error
    except (TypeError, ValueError):
        in_range = False
    account = account_get(user=request.user, account_id=account_id) if in_range else None
    if account is None:
        raise ApiError("not_found", _("No such account."))
    return account


class AccountOut(Schema):
    id: int
    name: str
    plan: str
    role: str


class SpaceOut(Schema):
    id: int
    name: str
    runtime_instance: bool


class AccountPage(Schema):
    items: list[AccountOut]
    next: str | None


class SpacePage(Schema):
    items: list[SpaceOut]
    next: str | None


@router.get("/accounts", response=AccountPage, summary="The accounts you are a member of")
def account_list(request):
    role = Membership.objects.filter(account=OuterRef("pk"), user=request.user).values("role")[:1]
    qs = accounts_for(user=request.user).annotate(my_role=Subquery(role)).order_by("name", "id")
    return paginate(request, qs, lambda a: {"id": a.id, "name": a.name, "plan": a.plan, "role": a.my_role})


@router.get("/accounts/{account_id}/spaces", response=SpacePage, summary="An account's deployment spaces")
def space_list(request, account_id: int):
    account = account_or_404(request, account_id)
    return paginate(request, account.spaces.order_by("name", "id"),
                    lambda s: {"id": s.id, "name": s.name, "runtime_instance": s.runtime_instance})
