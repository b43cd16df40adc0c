"""Writes on accounts, memberships and spaces (operators' commands, admin,
sign-up, the spaces page and API). Plans and roles are validated here,
whoever calls: a space is created, edited or deleted by an owner of its
account (`user=None` is an operator's command, trusted)."""
from __future__ import annotations

import unicodedata

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from cfm.errors import http_status

from . import hooks
from .models import Account, Membership, Plan, Role, Space


class AccountError(Exception):
    """A refused account or space change: `code` (its HTTP status in cfm/errors.py), the message."""

    def __init__(self, code: str, message: str, **extra):
        super().__init__(message)
        self.code, self.message, self.extra = code, message, extra

    @property
    def status(self) -> int:
        return http_status(self.code)


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
    # A NUL reached PostgreSQL from the rename form (a 500); control characters and lone surrogates have no
    # place in a name either.
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise AccountError("invalid_name", _("Contains a character that is not allowed."))
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


def _owner_only(*, user, account: Account, action: str) -> None:
    if user is None:
        return  # an operator's command
    role = Membership.objects.filter(account=account, user=user).values_list("role", flat=True).first()
    if role is None:
        raise AccountError("not_found", _("No such space."))
    if role != Role.OWNER:
        raise AccountError("owner_only", _(
            "Only an owner of the account “%(account)s” may %(action)s; ask one of its owners.")
            % {"account": account.name, "action": action})


def _flag(value, field: str) -> bool:
    # Exactly a boolean: "false" or 0 from a careless client must not read as a runtime that is there.
    if not isinstance(value, bool):
        raise AccountError("invalid", _("%(field)s is true or false.") % {"field": field}, field=field)
    return value


def space_create(*, account: Account, name: str, runtime_instance: bool = True, user=None) -> Space:
    """A new deployment space of `account`; `user` must own the account."""
    _owner_only(user=user, account=account, action=_("create spaces"))
    return Space.objects.create(account=account, name=_name(name),
                                runtime_instance=_flag(runtime_instance, "runtime_instance"))


def space_update(*, space: Space, user=None, name: str | None = None,
                 runtime_instance: bool | None = None) -> Space:
    """Rename a space or say whether a watsonx.ai Runtime is associated with it; None leaves a field as it is."""
    _owner_only(user=user, account=space.account, action=_("edit spaces"))
    fields = []
    if name is not None:
        space.name = _name(name)
        fields.append("name")
    if runtime_instance is not None:
        space.runtime_instance = _flag(runtime_instance, "runtime_instance")
        fields.append("runtime_instance")
    if fields:
        space.save(update_fields=fields)
    return space


def space_delete(*, space: Space, user=None) -> None:
    """Deletes a space that holds no live deployment (else 409 space_in_use,
    naming them). The row stays, marked deleted, for the history of the
    deployments it once held; its platform connection goes with it."""
    _owner_only(user=user, account=space.account, action=_("delete spaces"))
    with transaction.atomic():
        # The account lock is the one every deployment request takes: no deployment lands in the space meanwhile.
        Account.objects.select_for_update().filter(pk=space.account_id).first()
        live = hooks.live_deployments(space)
        if live:
            raise AccountError("space_in_use", _(
                "The space “%(space)s” holds %(n)s deployment(s): %(names)s. Delete them first.")
                % {"space": space.name, "n": len(live), "names": ", ".join(d.serving_name for d in live)},
                deployments=[d.pk for d in live])
        hooks.space_deleting(space)
        space.deleted_at = timezone.now()
        space.save(update_fields=["deleted_at"])
