"""The ledger: unit costs and limits, the totals read from the entries,
their verification, and the movements of the limit (limit requests and
their grants, adjustments).

Every movement of capacity goes through `lock_account`: the account row is
taken with SELECT ... FOR UPDATE inside the caller's transaction, so two
requests for the same account queue instead of both reading "3 of 4 used"
and both reserving (on SQLite the IMMEDIATE transaction mode serialises
writers the same way).
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Case, F, IntegerField, OuterRef, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from cfm import catalog
from cfm.accounts.models import Account, Membership
from cfm.textcaps import FREE_TEXT_MAX

from .errors import LimitRequestPending, PlanNotAllowed, QuotaRuleError
from .models import (
    LIMIT_REQUEST_MAX_UNITS,
    LIMIT_REQUEST_REASON_MAX,
    QUOTA_MAX_UNITS,
    Deployment,
    EntryKind,
    LedgerEntry,
    LimitRequest,
    QuotaSettings,
    RequestStatus,
    UnitCost,
)

# --- Unit costs and limits (admin-editable data, seeded from the catalog) ----------------------------


def unit_costs() -> dict[str, int]:
    costs = dict(catalog.UNIT_COSTS)
    costs.update(UnitCost.objects.values_list("configuration", "units"))
    return costs


def unit_cost(configuration: str) -> int:
    return unit_costs()[configuration]


def default_limit_units() -> int:
    return QuotaSettings.current().default_limit_units


def _signed_units():
    # used = reserve - release; the limit's extra = grant + adjust (adjust is signed)
    return {
        "used": Sum(Case(When(kind=EntryKind.RESERVE, then=F("units")),
                         When(kind=EntryKind.RELEASE, then=-F("units")),
                         default=Value(0), output_field=IntegerField())),
        "extra": Sum(Case(When(kind__in=[EntryKind.GRANT, EntryKind.ADJUST], then=F("units")),
                          default=Value(0), output_field=IntegerField())),
    }


def ledger_annotations() -> dict:
    """`used_units` and `extra_units` for a queryset of accounts, from the
    entries, without a query per row (lists in the admin)."""
    sums = _signed_units()

    def sub(expr):
        qs = (LedgerEntry.objects.filter(account=OuterRef("pk")).order_by().values("account")
              .annotate(total=expr).values("total"))
        return Coalesce(Subquery(qs, output_field=IntegerField()), Value(0))

    return {"used_units": sub(sums["used"]), "extra_units": sub(sums["extra"])}


def ledger_totals(*, account: Account) -> tuple[int, int]:
    """(used units, units added to the default limit), from the entries alone."""
    sums = LedgerEntry.objects.filter(account=account).aggregate(**_signed_units())
    return sums["used"] or 0, sums["extra"] or 0


@dataclass
class LedgerCheck:
    ok: bool
    ledger_used: int
    live_used: int
    problems: list[str]


def ledger_verify(*, account: Account) -> LedgerCheck:
    """Recompute usage from the entries and compare it with live deployments:
    each active deployment has one reservation and no release, each released
    one both, and the totals agree."""
    return ledger_verify_many(accounts=[account])[account.pk]


def ledger_verify_many(*, accounts) -> dict[int, LedgerCheck]:
    """ledger_verify for many accounts in three queries, whatever their
    number (the admin's verification page checks them all)."""
    ids = [a.pk for a in accounts]
    used: dict[int, int] = {i: 0 for i in ids}
    for account_id, total in (LedgerEntry.objects.filter(account_id__in=ids).values("account_id")
                              .annotate(used=_signed_units()["used"]).values_list("account_id", "used")):
        used[account_id] = total or 0
    entries: dict[int, dict[str, int]] = {}
    for dep_id, kind, units in LedgerEntry.objects.filter(account_id__in=ids, deployment__isnull=False) \
            .values_list("deployment_id", "kind", "units"):
        entries.setdefault(dep_id, {})[kind] = units
    live: dict[int, int] = {i: 0 for i in ids}
    problems: dict[int, list[str]] = {i: [] for i in ids}
    for dep in Deployment.objects.filter(account_id__in=ids).only("id", "account_id", "serving_name", "status",
                                                                  "units").order_by("id"):
        rows = entries.get(dep.id, {})
        found = problems[dep.account_id]
        if dep.is_active:
            live[dep.account_id] += dep.units
        if rows.get(EntryKind.RESERVE) != dep.units:
            found.append(_("Deployment %(name)s has no matching reservation.") % {"name": dep.serving_name})
        released = EntryKind.RELEASE in rows
        if dep.is_active and released:
            found.append(_("Deployment %(name)s is active but was released.") % {"name": dep.serving_name})
        if not dep.is_active and rows.get(EntryKind.RELEASE) != dep.units:
            found.append(_("Deployment %(name)s was deleted without a release.") % {"name": dep.serving_name})
    checks = {}
    for i in ids:
        found = problems[i]
        if used[i] != live[i]:
            found.insert(0, _("The ledger counts %(ledger)s units in use, live deployments hold %(live)s.")
                         % {"ledger": used[i], "live": live[i]})
        checks[i] = LedgerCheck(ok=not found, ledger_used=used[i], live_used=live[i], problems=found)
    return checks


def lock_account(account_id: int) -> Account:
    return Account.objects.select_for_update().get(pk=account_id)


# --- Limit requests and adjustments -------------------------------------------------------------------


def limit_request_create(*, user, account: Account, units: int, reason: str) -> LimitRequest:
    """Ask for a new total limit. Refused with a QuotaRuleError: a plan that
    may not use custom models (403 plan_not_allowed); a total not above the
    current limit or above LIMIT_REQUEST_MAX_UNITS, or a reason missing or
    longer than LIMIT_REQUEST_REASON_MAX (400, naming the field); the same
    total already pending for the account (409 limit_request_pending, with
    that request's id). Checked under the account's lock, so two identical
    requests at once make one."""
    if not account.may_use_custom_models:
        raise PlanNotAllowed(_(
            "Only accounts on the Standard plan may use custom foundation models; this account is on the "
            "%(plan)s plan, so it has no deployment limit to raise.") % {"plan": account.get_plan_display()})
    if isinstance(units, bool) or not isinstance(units, int) or units > LIMIT_REQUEST_MAX_UNITS:
        raise QuotaRuleError(_("Ask for a whole number of units, at most %(max)s.")
                             % {"max": LIMIT_REQUEST_MAX_UNITS}, field="units")
    reason = (reason or "").strip()
    if not reason:
        raise QuotaRuleError(_("Say why the account needs more capacity."), field="reason")
    if len(reason) > LIMIT_REQUEST_REASON_MAX:
        raise QuotaRuleError(_("Keep the reason to %(max)s characters (it has %(length)s).")
                             % {"max": LIMIT_REQUEST_REASON_MAX, "length": len(reason)}, field="reason")
    with transaction.atomic():
        locked = lock_account(account.id)
        _used, extra = ledger_totals(account=locked)
        limit = max(default_limit_units() + extra, 0)
        if units <= limit:
            raise QuotaRuleError(_("Ask for a total above the current limit of %(limit)s units.")
                                 % {"limit": limit}, field="units")
        pending = LimitRequest.objects.filter(account=locked, status=RequestStatus.PENDING, units=units).first()
        if pending is not None:
            raise LimitRequestPending(_(
                "A request for %(units)s units is already waiting for an answer (request %(id)s); the answer "
                "will appear on the usage page.") % {"units": units, "id": pending.id}, limit_request=pending.id)
        return LimitRequest.objects.create(account=locked, requested_by=user, units=units, reason=reason)


def _may_decide(*, user, request: LimitRequest, answer: str = "") -> None:
    if not (user.is_staff and user.is_active):
        raise QuotaRuleError(_("Only staff may answer limit requests."))
    _text_fits(answer, "answer")


def _text_fits(text: str, field: str) -> None:
    if len(text or "") > FREE_TEXT_MAX:
        raise QuotaRuleError(_("The %(field)s may be at most %(max)s characters (it has %(length)s).")
                             % {"field": field, "max": FREE_TEXT_MAX, "length": len(text)}, field=field)


def limit_request_approve(*, user, request: LimitRequest, answer: str = "") -> LimitRequest:
    """Approve: a grant entry raises the limit to the requested total. Nobody
    approves an increase for an account they belong to."""
    _may_decide(user=user, request=request, answer=answer)
    if request.requested_by_id == user.id or Membership.objects.filter(account_id=request.account_id,
                                                                        user=user).exists():
        raise QuotaRuleError(_("You cannot approve an increase for your own account."))
    with transaction.atomic():
        lock_account(request.account_id)
        req = LimitRequest.objects.select_for_update().get(pk=request.pk)
        if req.status != RequestStatus.PENDING:
            raise QuotaRuleError(_("This request was already answered."))
        _used, extra = ledger_totals(account=req.account)
        # Against the raw total, not the limit shown (which is never below 0): were
        # the total below zero, a grant computed from the shown 0 would fall short.
        delta = req.units - (default_limit_units() + extra)
        if delta <= 0:
            raise QuotaRuleError(_("The account's limit is already at or above the requested %(units)s units.")
                                 % {"units": req.units})
        req.grant = LedgerEntry.objects.create(
            account_id=req.account_id, kind=EntryKind.GRANT, units=delta, actor=user,
            reason=answer or _("Limit request #%(id)s approved") % {"id": req.id})
        req.status, req.answer, req.answered_by, req.answered_at = (RequestStatus.APPROVED, answer, user,
                                                                    timezone.now())
        req.save(update_fields=["grant", "status", "answer", "answered_by", "answered_at"])
    return req


def limit_request_deny(*, user, request: LimitRequest, answer: str) -> LimitRequest:
    _may_decide(user=user, request=request, answer=answer)
    if not answer or not answer.strip():
        raise QuotaRuleError(_("Give the reason for the denial; the account sees it."))
    with transaction.atomic():
        req = LimitRequest.objects.select_for_update().get(pk=request.pk)
        if req.status != RequestStatus.PENDING:
            raise QuotaRuleError(_("This request was already answered."))
        req.status, req.answer, req.answered_by, req.answered_at = (RequestStatus.DENIED, answer.strip(), user,
                                                                    timezone.now())
        req.save(update_fields=["status", "answer", "answered_by", "answered_at"])
    return req


def ledger_adjust(*, user, account: Account, units: int, reason: str) -> LedgerEntry:
    """Move the account's limit by `units` (either sign), with a reason."""
    if not units:
        raise QuotaRuleError(_("An adjustment moves the limit by at least one unit."))
    if abs(units) > QUOTA_MAX_UNITS:
        raise QuotaRuleError(_("An adjustment moves the limit by at most %(max)s units.") % {"max": QUOTA_MAX_UNITS})
    if not reason or not reason.strip():
        raise QuotaRuleError(_("An adjustment needs a reason."))
    _text_fits(reason, "reason")
    with transaction.atomic():
        lock_account(account.id)
        _used, extra = ledger_totals(account=account)
        limit = default_limit_units() + extra
        if limit + units < 0:
            # A limit below zero would show as 0 and silently swallow later grants.
            raise QuotaRuleError(_("The limit is %(limit)s units: an adjustment of %(units)s would take it below "
                                   "zero. The most it can be lowered by is %(limit)s.")
                                 % {"limit": limit, "units": units})
        return LedgerEntry.objects.create(account=account, kind=EntryKind.ADJUST, units=units, actor=user,
                                          reason=reason.strip())
