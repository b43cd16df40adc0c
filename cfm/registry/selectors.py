"""Reads on registrations, scoped to the user's accounts: another account's
registration is None, exactly as one that does not exist (views answer 404)."""
from __future__ import annotations

from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet, Subquery, Sum

from cfm.accounts.models import Account, Membership
from cfm.accounts.selectors import accounts_for

from .models import Registration, RegistrationCounts


def registrations_for(*, user, account: Account | None = None) -> QuerySet[Registration]:
    """The registrations the user may see, newest first; of one account when
    given (an account the user is not a member of gives none). Lists read the
    verdict and configuration columns, never the report JSON; a page is read
    from the (account, created_at, id) index, whatever the row count."""
    # A plain subquery of the user's memberships (no join, no DISTINCT): the planner walks the
    # newest-first index and stops at the page's end instead of sorting every row of the account.
    mine = Membership.objects.filter(user=user).values("account_id") if getattr(
        user, "is_authenticated", False) else Membership.objects.none().values("account_id")
    qs = Registration.objects.filter(account_id__in=Subquery(mine)).select_related("account", "job")
    if account is not None:
        qs = qs.filter(account=account)
    # The report JSON can be large and the token is a secret: lists load neither.
    return (qs.defer("report", "token_encrypted")
            .annotate(has_token=ExpressionWrapper(~Q(token_encrypted=""), output_field=BooleanField()))
            .order_by("-created_at", "-id"))


def registration_counts(*, account_ids) -> dict[int, dict[str, int]]:
    """Per account: registrations in total, deployable ones (done, not
    refused) and running jobs: one row each, kept by the database's triggers
    (RegistrationCounts), so the answer costs the same at any row count."""
    rows = RegistrationCounts.objects.filter(account_id__in=list(account_ids)).values(
        "account_id", "total", "deployable", "active")
    return {row["account_id"]: {"total": row["total"], "deployable": row["deployable"], "active": row["active"]}
            for row in rows}


def registrations_total() -> int:
    """Every account's registrations: the sum of the kept counts (the admin's list)."""
    return RegistrationCounts.objects.aggregate(n=Sum("total"))["n"] or 0


def registration_get(*, user, pk) -> Registration | None:
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        return None
    if not 0 < pk < 2**63:  # beyond a bigint: no such row (and no database error)
        return None
    return (Registration.objects.filter(pk=pk, account__in=accounts_for(user=user))
            .select_related("account", "job").first())
