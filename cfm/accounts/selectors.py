"""Reads scoped to what a user may see: another account's object is None
(the views turn it into 404, exactly as for an id that does not exist)."""
from __future__ import annotations

from django.db.models import QuerySet

from .models import Account, Membership, Role, Space


def accounts_for(*, user) -> QuerySet[Account]:
    if not getattr(user, "is_authenticated", False):
        return Account.objects.none()
    return Account.objects.filter(memberships__user=user).distinct()


def account_get(*, user, account_id) -> Account | None:
    try:
        return accounts_for(user=user).get(pk=int(account_id))
    except (Account.DoesNotExist, TypeError, ValueError):
        return None


def role_in(*, user, account: Account) -> str | None:
    m = Membership.objects.filter(user=user, account=account).only("role").first()
    return m.role if m else None


def is_owner(*, user, account: Account) -> bool:
    return role_in(user=user, account=account) == Role.OWNER


def spaces_for(*, user, account: Account | None = None) -> QuerySet[Space]:
    """The live spaces of the user's accounts (of one account when given)."""
    qs = Space.objects.filter(account__in=accounts_for(user=user)).select_related("account")
    if account is not None:
        qs = qs.filter(account=account)
    return qs.order_by("name", "id")


def space_get(*, user, space_id) -> Space | None:
    try:
        space_id = int(space_id)
    except (TypeError, ValueError):
        return None
    if not 0 < space_id < 2**63:  # beyond a bigint: no such row (and no database error)
        return None
    return spaces_for(user=user).filter(pk=space_id).first()
