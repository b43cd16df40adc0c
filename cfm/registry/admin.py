"""Operators' view of registrations. Actions go through the services; the
stored Hub token is never shown (only whether there is one)."""
from __future__ import annotations

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from cfm.jobs import runtime, sweeper

from .models import ACTIVE_STATUSES, Registration

#: The error codes a job ends with (SourceError's, and the runner's own).
ERROR_CODES = ("source_unreadable", "repo_not_found", "revision_not_found", "access_denied", "hub_unavailable",
               "too_large", "timeout", "cancelled")


class ErrorCodeFilter(admin.SimpleListFilter):
    """Fixed choices: Django's default filter for a free-text column lists its
    DISTINCT values, which reads every row of the table on every list page."""

    title = _("error code")
    parameter_name = "error_code"

    def lookups(self, request, model_admin):
        return [(code, code) for code in ERROR_CODES]

    def queryset(self, request, queryset):
        return queryset.filter(error_code=self.value()) if self.value() else queryset


class RegistrationPaginator(Paginator):
    """The unfiltered list's total is the sum of the kept per-account counts,
    not a COUNT over every row; a filtered or searched list counts its rows."""

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        if isinstance(qs, QuerySet) and not qs.query.where:
            from .selectors import registrations_total

            return registrations_total()
        return super().count


@admin.register(Registration)
class RegistrationAdmin(admin.ModelAdmin):
    list_display = ("id", "source", "revision", "source_kind", "account", "status", "verdict", "configuration",
                    "error_code", "attempts", "has_token", "created_at", "finished_at")
    list_filter = ("status", "verdict", "source_kind", ErrorCodeFilter)
    # One count for the filtered list, not a second one of the whole table.
    show_full_result_count = False
    paginator = RegistrationPaginator
    # 50 rows of 13 columns: rendering the admin's cells is most of the page's time (100 took twice as long).
    list_per_page = 50
    search_fields = ("source", "account__name", "resolved_commit")
    list_select_related = ("account", "job")
    exclude = ("token_encrypted",)
    readonly_fields = [f.name for f in Registration._meta.fields if f.name != "token_encrypted"]
    actions = ["rerun", "cancel", "forget_token", "sweep_now"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name == "registry_registration_changelist":
            # The list shows columns, not the report: neither the JSON nor the secret is loaded per row.
            qs = qs.defer("report", "token_encrypted").annotate(
                stored_token=ExpressionWrapper(~Q(token_encrypted=""), output_field=BooleanField()))
        return qs

    @admin.display(boolean=True, description=_("Hub token stored"))
    def has_token(self, obj: Registration) -> bool:
        annotated = getattr(obj, "stored_token", None)
        return bool(obj.token_encrypted) if annotated is None else bool(annotated)

    def has_add_permission(self, request) -> bool:
        return False  # registrations come from users, through the services

    def _each(self, request, queryset, action) -> None:
        from . import services

        done = 0
        for registration in queryset.select_related("account"):
            try:
                action(registration=registration)
                done += 1
            except services.RegistrationError as exc:
                self.message_user(request, f"#{registration.pk}: {exc.message}", messages.WARNING)
        self.message_user(request, _("%(n)d registration(s) updated.") % {"n": done})

    @admin.action(description=_("Inspect again"))
    def rerun(self, request, queryset):
        from .services import registration_requeue

        self._each(request, queryset, registration_requeue)

    @admin.action(description=_("Cancel"))
    def cancel(self, request, queryset):
        n = 0
        for job_id in queryset.filter(status__in=ACTIVE_STATUSES, job__isnull=False).values_list("job", flat=True):
            runtime.cancel(job_id, message="Cancelled by an operator.")
            n += 1
        self.message_user(request, _("%(n)d job(s) cancelled.") % {"n": n})

    @admin.action(description=_("Delete the stored Hub token"))
    def forget_token(self, request, queryset):
        n = queryset.exclude(token_encrypted="").update(token_encrypted="")
        self.message_user(request, _("%(n)d token(s) deleted.") % {"n": n})

    @admin.action(description=_("Run the sweeper now"))
    def sweep_now(self, request, queryset):
        result = sweeper.sweep()
        self.message_user(request, _("Sweeper: %(q)d queued, %(r)d reclaimed, %(f)d failed.")
                          % {"q": result.queued, "r": result.reclaimed, "f": result.failed})
