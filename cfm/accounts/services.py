"""Writes on accounts, memberships and spaces (operators' commands, admin,
sign-up). Plans and roles are validated here, whoever calls."""
from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from .models import Account, Membership, Plan, Role, Space


class AccountError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _plan(plan: str) -> str:
    value = (plan or "").strip().lower()
    if value not in Plan.values:
        raise AccountError("invalid_plan", _("Unknown plan “%(plan)s”: use %(plans)s.")
                           % {"plan": plan, "plans": ", ".join(Plan.values)})
    return value


def _role(role: str) -> str:
    value = (role or "").strip().lower()
    if value not in Role.values:
        raise AccountError("invalid_role", _("Unknown role “%(role)s”: use %(roles)s.")
                           % {"role": role, "roles": ", ".join(Role.values)})
    return value


def _name(name: str) -> str:
    value = (name or "").strip()
    if not value or len(value) > 120:
        raise AccountError("invalid_name", _("A name has 1 to 120 characters."))
    return value


@transaction.atomic
def account_create(*, name: str, plan: str, owner) -> Account:
    account = Account.objects.create(name=_name(name), plan=_plan(plan))
    Membership.objects.create(account=account, user=owner, role=Role.OWNER)
    return account


def membership_add(*, account: Account, user, role: str = Role.MEMBER) -> Membership:
    """Adds `user` to `account`; an existing member gets the new role."""
    role = _role(role)
    try:
        with transaction.atomic():
            membership, created = Membership.objects.get_or_create(account=account, user=user,
                                                                   defaults={"role": role})
    except IntegrityError:  # a concurrent add of the same member
        membership, created = Membership.objects.get(account=account, user=user), False
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def space_create(*, account: Account, name: str, runtime_instance: bool = True) -> Space:
    return Space.objects.create(account=account, name=_name(name), runtime_instance=runtime_instance)
