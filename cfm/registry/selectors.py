"""Reads on registrations, scoped to the user's accounts: another account's
registration is None, exactly as one that does not exist (views answer 404)."""
from __future__ import annotations

from django.db.models import BooleanField, ExpressionWrapper, JSONField, Q, QuerySet
from django.db.models.fields.json import KT, KeyTransform

from cfm.accounts.models import Account
from cfm.accounts.selectors import accounts_for

from .models import Registration


def registrations_for(*, user, account: Account | None = None) -> QuerySet[Registration]:
    """The registrations the user may see, newest first; of one account when
    given (an account the user is not a member of gives none)."""
    qs = Registration.objects.filter(account__in=accounts_for(user=user)).select_related("account", "job")
    if account is not None:
        qs = qs.filter(account=account)
    # The report JSON can be large and the token is a secret: lists load neither.
    return (qs.defer("report", "token_encrypted")
            .annotate(has_token=ExpressionWrapper(~Q(token_encrypted=""), output_field=BooleanField()),
                      # the report's verdict without loading the report: True, False or None
                      report_deployable=KeyTransform("deployable", "report", output_field=JSONField()),
                      report_verdict=KT("report__verdict"))
            .order_by("-created_at", "-id"))


def registration_get(*, user, pk) -> Registration | None:
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        return None
    if not 0 < pk < 2**63:  # beyond a bigint: no such row (and no database error)
        return None
    return (Registration.objects.filter(pk=pk, account__in=accounts_for(user=user))
            .select_related("account", "job").first())
