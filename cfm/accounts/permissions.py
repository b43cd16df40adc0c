"""What a role may do, enforced in the services so that pages and API agree.

- Every member of an account sees its objects and may register, inspect
  (re-run), prepare and deploy.
- What changes or removes an object someone made (delete or cancel a
  registration, replace or forget its Hub token, delete a deployment, cancel
  or answer a Prepare job) is for the member who made it and the account's
  owners. An object whose maker was deleted is the owners'.
- Spaces and connections are the owners' (docs/platform.md).
- API tokens belong to their user alone (accounts.views, the token selectors).
- Staff act as operators (they hold the admin, which does all of this anyway).

The refusal is OwnerOnly: 403 `owner_only` in the API, a message on the pages."""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from .models import Membership, Role


class OwnerOnly(PermissionDenied):
    code = "owner_only"

    def __init__(self, message: str | None = None):
        self.message = message or _("Only an owner of the account or the member who made this may do that.")
        super().__init__(self.message)


def may_change(*, user, account_id: int, created_by_id: int | None) -> bool:
    """The maker, an owner of the account, or staff."""
    if created_by_id is not None and created_by_id == user.pk:
        return True
    if user.is_staff and user.is_active:
        return True
    return Membership.objects.filter(account_id=account_id, user=user, role=Role.OWNER).exists()


def require_may_change(*, user, account_id: int, created_by_id: int | None) -> None:
    if not may_change(user=user, account_id=account_id, created_by_id=created_by_id):
        raise OwnerOnly()
