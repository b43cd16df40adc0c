"""The staff side of the quota. Every write goes through cfm.quota.services
(the same rules as the pages and the API); the ledger itself is read-only."""
from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Q, Value
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import services
from .forms import AdjustAccountForm, AdjustForm, AnswerForm
from .models import (
    AccountQuota,
    Deployment,
    DeploymentStatus,
    LedgerEntry,
    LimitRequest,
    QuotaSettings,
    Refusal,
    RequestStatus,
    UnitCost,
)

admin.site.site_header = gettext_lazy("cfm administration")
admin.site.site_title = gettext_lazy("cfm admin")
admin.site.index_title = gettext_lazy("Accounts, capacity and feedback")
# Change lists here are wide (usage bars, answers); the app list is on the index page.
admin.site.enable_nav_sidebar = False


def _intermediate(modeladmin, request, queryset, *, form, title, action, template, intro, danger=False):
    return TemplateResponse(request, template, {
        **modeladmin.admin_site.each_context(request), "title": title, "queryset": queryset, "form": form,
        "action": action, "opts": modeladmin.model._meta, "intro": intro, "danger": danger,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
    })


@admin.register(AccountQuota)
class AccountQuotaAdmin(admin.ModelAdmin):
    list_display = ["name", "plan_badge", "limit", "used", "usage_bar", "active_deployments", "pending_requests"]
    list_filter = ["plan"]
    search_fields = ["name", "memberships__user__username"]
    fields = ["name", "plan"]
    actions = ["verify_ledger", "adjust_limit"]

    def has_add_permission(self, request):
        return False  # accounts are created on the accounts side; this is their quota view

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_active=Count("deployments", filter=Q(deployments__status=DeploymentStatus.ACTIVE), distinct=True),
            n_pending=Count("limit_requests", filter=Q(limit_requests__status=RequestStatus.PENDING),
                            distinct=True),
            default_limit=Value(services.default_limit_units()),
            **services.ledger_annotations())

    def _usage(self, obj):
        return obj.used_units, max(obj.default_limit + obj.extra_units, 0)

    @admin.display(description=gettext_lazy("plan"), ordering="plan")
    def plan_badge(self, obj):
        cls = "pass" if obj.may_use_custom_models else "skip"
        return format_html('<span class="badge badge-{}">{}</span>', cls, obj.get_plan_display())

    @admin.display(description=gettext_lazy("limit"))
    def limit(self, obj):
        return self._usage(obj)[1]

    @admin.display(description=gettext_lazy("used"))
    def used(self, obj):
        return self._usage(obj)[0]

    @admin.display(description=gettext_lazy("usage"))
    def usage_bar(self, obj):
        used, limit = self._usage(obj)
        pct = 100 if not limit else min(round(100 * used / limit), 100)
        state = "fail" if used > limit else ("warn" if limit and used >= limit else "pass")
        return format_html('<span class="meter meter-{}" title="{} / {}"><span style="width:{}%"></span></span>',
                           state, used, limit, pct)

    @admin.display(description=gettext_lazy("deployments"), ordering="n_active")
    def active_deployments(self, obj):
        return obj.n_active

    @admin.display(description=gettext_lazy("pending requests"), ordering="n_pending")
    def pending_requests(self, obj):
        if not obj.n_pending:
            return "—"
        url = reverse("admin:quota_limitrequest_changelist") + f"?account__id__exact={obj.pk}&status__exact=pending"
        return format_html('<a class="badge badge-pending" href="{}">{}</a>', url, obj.n_pending)

    @admin.action(description=gettext_lazy("Verify the ledger of the selected accounts"))
    def verify_ledger(self, request, queryset):
        accounts = list(queryset)
        checks = services.ledger_verify_many(accounts=accounts)
        for account in accounts:
            check = checks[account.pk]
            if check.ok:
                self.message_user(request, _("%(account)s: the ledger balances (%(used)s units in use).")
                                  % {"account": account, "used": check.live_used}, messages.SUCCESS)
            else:
                self.message_user(request, _("%(account)s: %(problems)s")
                                  % {"account": account, "problems": " ".join(check.problems)}, messages.ERROR)

    @admin.action(description=gettext_lazy("Adjust the limit (writes a ledger entry with a reason)"))
    def adjust_limit(self, request, queryset):
        if "apply" in request.POST:
            form = AdjustForm(request.POST)
            if form.is_valid():
                try:
                    with transaction.atomic():  # all the selected accounts, or none
                        for account in queryset:
                            try:
                                services.ledger_adjust(user=request.user, account=account,
                                                       units=form.cleaned_data["units"],
                                                       reason=form.cleaned_data["reason"])
                            except services.QuotaRuleError as exc:
                                raise services.QuotaRuleError(f"{account}: {exc}") from None
                except services.QuotaRuleError as exc:
                    self.message_user(request, _("Nothing was adjusted. %(error)s") % {"error": exc}, messages.ERROR)
                    return None
                self.message_user(request, _("Adjusted %(n)s account(s) by %(units)s units.")
                                  % {"n": queryset.count(), "units": form.cleaned_data["units"]}, messages.SUCCESS)
                return None
        else:
            form = AdjustForm()
        return _intermediate(self, request, queryset, form=form, title=_("Adjust the limit"), action="adjust_limit",
                             template="admin/quota/intermediate.html",
                             intro=_("The entry is added to each account's ledger; entries are never edited."))


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "account", "kind_badge", "signed_units", "deployment", "actor_display", "reason"]
    list_filter = ["kind", ("account", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["account__name", "reason", "deployment__serving_name", "actor_name"]
    list_select_related = ["account", "deployment", "actor"]
    date_hierarchy = "created_at"
    change_list_template = "admin/quota/ledgerentry/change_list.html"

    def has_add_permission(self, request):
        return False  # entries are written by services only; adjustments through adjust_view

    def get_urls(self):
        extra = [
            path("adjust/", self.admin_site.admin_view(self.adjust_view), name="quota_ledgerentry_adjust"),
            path("verify/", self.admin_site.admin_view(self.verify_view), name="quota_ledgerentry_verify"),
        ]
        return extra + super().get_urls()

    def adjust_view(self, request):
        if not request.user.has_perm("quota.add_ledgerentry"):
            raise PermissionDenied
        form = AdjustAccountForm(request.POST or None, initial={"account": request.GET.get("account")})
        if request.method == "POST" and form.is_valid():
            try:
                services.ledger_adjust(user=request.user, account=form.cleaned_data["account"],
                                       units=form.cleaned_data["units"], reason=form.cleaned_data["reason"])
            except services.QuotaRuleError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, _("Adjustment written to the ledger of %(account)s.")
                                  % {"account": form.cleaned_data["account"]}, messages.SUCCESS)
                return redirect("admin:quota_ledgerentry_changelist")
        return TemplateResponse(request, "admin/quota/ledger_adjust.html", {
            **self.admin_site.each_context(request), "title": _("Adjust an account's limit"), "form": form,
            "opts": self.model._meta})

    def verify_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        accounts = list(AccountQuota.objects.order_by("name", "id"))
        checks = services.ledger_verify_many(accounts=accounts)
        rows = [(account, checks[account.pk]) for account in accounts]
        return TemplateResponse(request, "admin/quota/ledger_verify.html", {
            **self.admin_site.each_context(request), "title": _("Ledger verification"), "rows": rows,
            "all_ok": all(check.ok for _a, check in rows), "opts": self.model._meta})

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=gettext_lazy("actor"), ordering="actor_name")
    def actor_display(self, obj):
        if obj.actor_id is None and obj.actor_name:
            return _("%(name)s (deleted user)") % {"name": obj.actor_name}
        return obj.actor_name or (obj.actor.get_username() if obj.actor else "")

    @admin.display(description=gettext_lazy("kind"), ordering="kind")
    def kind_badge(self, obj):
        return format_html('<span class="entry entry-{}">{}</span>', obj.kind, obj.get_kind_display())

    @admin.display(description=gettext_lazy("units"), ordering="units")
    def signed_units(self, obj):
        return f"−{obj.units}" if obj.kind == "release" else (f"+{obj.units}" if obj.units > 0 else str(obj.units))


@admin.register(LimitRequest)
class LimitRequestAdmin(admin.ModelAdmin):
    list_display = ["created_at", "account", "asks_for", "current_limit", "status_badge", "short_reason",
                    "requested_by", "answered_by"]
    list_filter = ["status", ("account", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["account__name", "reason", "answer"]
    list_select_related = ["account", "requested_by", "answered_by"]
    readonly_fields = ["account", "requested_by", "units", "reason", "status", "answer", "answered_by",
                       "answered_at", "grant", "created_at"]
    actions = ["approve", "deny"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=gettext_lazy("asks for (units)"), ordering="units")
    def asks_for(self, obj):
        return obj.units

    @admin.display(description=gettext_lazy("reason"))
    def short_reason(self, obj):
        return obj.reason if len(obj.reason) <= 80 else obj.reason[:79] + "…"

    @admin.display(description=gettext_lazy("current limit"))
    def current_limit(self, obj):
        _used, extra = services.ledger_totals(account=obj.account)
        return max(services.default_limit_units() + extra, 0)

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_badge(self, obj):
        return format_html('<span class="badge badge-{}">{}</span>', obj.status, obj.get_status_display())

    def _decide(self, request, queryset, *, action, title, intro, decide, danger=False):
        if "apply" in request.POST:
            form = AnswerForm(request.POST)
            if form.is_valid():
                done = 0
                for req in queryset:
                    try:
                        decide(user=request.user, request=req, answer=form.cleaned_data["answer"])
                        done += 1
                    except services.QuotaRuleError as exc:
                        self.message_user(request, f"{req.account}: {exc}", messages.ERROR)
                if done:
                    self.message_user(request, _("%(n)s request(s) answered; the account sees the answer.")
                                      % {"n": done}, messages.SUCCESS)
                return None
        else:
            form = AnswerForm()
        return _intermediate(self, request, queryset, form=form, title=title, action=action,
                             template="admin/quota/intermediate.html", intro=intro, danger=danger)

    @admin.action(description=gettext_lazy("Approve: grant the requested limit"))
    def approve(self, request, queryset):
        return self._decide(request, queryset, action="approve", title=_("Approve limit requests"),
                            intro=_("Each approval writes a grant to the account's ledger, raising its limit to "
                                    "the requested total. You cannot approve an increase for an account you "
                                    "belong to."), decide=services.limit_request_approve)

    @admin.action(description=gettext_lazy("Deny, with a reason"))
    def deny(self, request, queryset):
        return self._decide(request, queryset, action="deny", title=_("Deny limit requests"),
                            intro=_("The reason is shown to the account on its usage page."),
                            decide=services.limit_request_deny, danger=True)


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ["serving_name", "account", "configuration", "units", "software_spec", "status_badge", "state",
                    "origin", "created_at"]
    # Drift: "outside cfm" lists what the sync found running that cfm did not make.
    list_filter = ["status", "state", "origin", "configuration", ("account", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["serving_name", "account__name", "registration__source"]
    list_select_related = ["account", "registration"]
    readonly_fields = [f.name for f in Deployment._meta.fields]
    actions = ["release"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_badge(self, obj):
        cls = "pass" if obj.is_active else "skip"
        return format_html('<span class="badge badge-{}">{}</span>', cls, obj.get_status_display())

    @admin.action(description=gettext_lazy("Release: delete and give back the units"))
    def release(self, request, queryset):
        n = 0
        for dep in queryset.filter(status=DeploymentStatus.ACTIVE):
            if services.deployment_delete(user=request.user, deployment=dep,
                                          reason=_("released by staff (%(user)s)") % {"user": request.user}):
                n += 1
        self.message_user(request, _("%(n)s deployment(s) released.") % {"n": n}, messages.SUCCESS)


@admin.register(Refusal)
class RefusalAdmin(admin.ModelAdmin):
    list_display = ["created_at", "account", "configuration", "needed_units", "used_units", "limit_units", "user"]
    list_filter = ["configuration", ("account", admin.RelatedOnlyFieldListFilter)]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(UnitCost)
class UnitCostAdmin(admin.ModelAdmin):
    list_display = ["configuration", "units", "updated_at"]
    list_editable = ["units"]
    def has_add_permission(self, request):
        return False  # one row per configuration, seeded from the catalog

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(QuotaSettings)
class QuotaSettingsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "updated_at"]

    def has_add_permission(self, request):
        return not QuotaSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False
