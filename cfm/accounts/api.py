"""API v1: the user's accounts and their spaces (shared/docs/api-contract.md).
Also the helpers every app's API shares: pagination and ISO times."""
from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from django.db.models import OuterRef, Subquery
from django.utils.translation import gettext as _
from ninja import Router, Schema

from cfm.api import ApiError

from .models import Membership
from .selectors import account_get, accounts_for

router = Router(tags=["accounts"])

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, as the contract says."""
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z") if dt else None


def paginate(request, qs, render, *, page_size: int = PAGE_SIZE) -> dict:
    """{"items": [...], "next": URL | null}: `offset` and `limit` (≤ 200) in the query."""
    try:
        offset = int(request.GET.get("offset", 0))
        limit = int(request.GET.get("limit", page_size))
    except ValueError:
        raise ApiError(400, "invalid", _("offset and limit must be whole numbers."),
                       fields={"offset": "invalid"}) from None
    if offset < 0 or not 1 <= limit <= MAX_PAGE_SIZE:
        raise ApiError(400, "invalid", _("offset must be ≥ 0 and limit between 1 and 200."),
                       fields={"limit" if offset >= 0 else "offset": "out of range"})
    rows = list(qs[offset:offset + limit + 1])
    nxt = None
    if len(rows) > limit:
        params = request.GET.copy()
        params["offset"] = offset + limit
        nxt = request.build_absolute_uri(request.path + "?" + urlencode(params, doseq=True))
    return {"items": [render(r) for r in rows[:limit]], "next": nxt}


def account_or_404(request, account_id):
    """The user's account, or 404 exactly as for an id that does not exist."""
    try:
        in_range = 0 < int(account_id) < 2**63  # beyond a bigint: no such row, not a database error
    except (TypeError, ValueError):
        in_range = False
    account = account_get(user=request.user, account_id=account_id) if in_range else None
    if account is None:
        raise ApiError(404, "not_found", _("No such account."))
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
