"""Operators' view of registrations. Actions go through the services; the
stored Hub token is never shown (only whether there is one)."""
from __future__ import annotations

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from cfm.jobs import runtime, sweeper

from .models import ACTIVE_STATUSES, Registration


@admin.register(Registration)
class RegistrationAdmin(admin.ModelAdmin):
    list_display = ("id", "source", "revision", "source_kind", "account", "status", "error_code", "attempts",
                    "has_token", "created_at", "finished_at")
    list_filter = ("status", "source_kind", "error_code")
    search_fields = ("source", "account__name", "resolved_commit")
    list_select_related = ("account", "job")
    exclude = ("token_encrypted",)
    readonly_fields = [f.name for f in Registration._meta.fields if f.name != "token_encrypted"]
    actions = ["rerun", "cancel", "forget_token", "sweep_now"]

    @admin.display(boolean=True, description=_("Hub token stored"))
    def has_token(self, obj: Registration) -> bool:
        return bool(obj.token_encrypted)

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
