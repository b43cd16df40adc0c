"""API v1: the user's accounts and their spaces (docs/api.md, and
docs/platform.md for creating, editing and deleting spaces).
Also `account_or_404` and `space_or_404`, which every app's API uses for an
account or space id; pagination and ISO times live in cfm.apitools
(re-exported here)."""
from __future__ import annotations

from typing import NoReturn

from django.db.models import OuterRef, Subquery
from django.utils.translation import gettext as _
from ninja import Router, Schema, Status
from pydantic import StrictBool

from cfm.apitools import ApiError, iso, paginate, parse_body

from . import hooks, services
from .models import Membership, Space
from .selectors import account_get, accounts_for, space_get

router = Router(tags=["accounts"])

__all__ = ["router", "account_or_404", "space_or_404", "space_body", "iso", "paginate"]


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


def space_or_404(request, space_id) -> Space:
    """The user's space (a live one), or 404 exactly as for an id that does not exist."""
    space = space_get(user=request.user, space_id=space_id)
    if space is None:
        raise ApiError("not_found", _("No such space."))
    return space


def space_body(space: Space) -> dict:
    return {"id": space.id, "account": space.account_id, "name": space.name,
            "runtime_instance": space.runtime_instance, "platform": hooks.connection_json(space)}


def _raise(exc: services.AccountError) -> NoReturn:
    fields = {exc.extra["field"]: exc.message} if "field" in exc.extra else None
    extra = {k: v for k, v in exc.extra.items() if k != "field"}
    if exc.code == "invalid_name":
        fields = {"name": exc.message}
    if fields:
        raise ApiError("invalid", exc.message, fields=fields, **extra) from None
    raise ApiError(exc.code, exc.message, **extra) from None


class SpaceIn(Schema):
    name: str
    runtime_instance: StrictBool = True  # "false" is not a boolean: it would read as True


class SpacePatch(Schema):
    name: str | None = None
    runtime_instance: StrictBool | None = None


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


@router.post("/accounts/{account_id}/spaces", response={201: dict}, summary="Create a deployment space (owners)")
def space_create(request, account_id: int):
    account = account_or_404(request, account_id)
    # Read by hand: the owner check comes before the body, and a bad body still gets the envelope.
    body = parse_body(request, SpaceIn)
    try:
        space = services.space_create(account=account, user=request.user, name=body.name,
                                      runtime_instance=body.runtime_instance)
    except services.AccountError as exc:
        _raise(exc)
    return Status(201, space_body(space))


@router.get("/spaces/{space_id}", response=dict, summary="A deployment space and its platform connection")
def space_detail(request, space_id: int):
    return space_body(space_or_404(request, space_id))


@router.patch("/spaces/{space_id}", response=dict, summary="Rename a space or set its runtime (owners)")
def space_update(request, space_id: int):
    space = space_or_404(request, space_id)
    body = parse_body(request, SpacePatch)
    try:
        space = services.space_update(space=space, user=request.user, name=body.name,
                                      runtime_instance=body.runtime_instance)
    except services.AccountError as exc:
        _raise(exc)
    return space_body(space)


@router.delete("/spaces/{space_id}", response={204: None}, summary="Delete a space without deployments (owners)")
def space_delete(request, space_id: int):
    space = space_or_404(request, space_id)
    try:
        services.space_delete(space=space, user=request.user)
    except services.AccountError as exc:
        _raise(exc)
    return Status(204, None)
