"""Operators' view of every job run (read-only): what runs, where, how often
it was tried, and why it failed."""
from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from . import runtime, sweeper
from .models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "subject_id", "status", "progress_step", "attempts", "error_code", "worker",
                    "created_at", "finished_at")
    list_filter = ("kind", "status", "error_code")
    search_fields = ("subject_id", "worker", "error_code")
    readonly_fields = [f.name for f in Job._meta.fields]
    actions = ["cancel", "sweep_now"]

    def has_add_permission(self, request) -> bool:
        return False  # jobs come from the features' services

    @admin.action(description=_("Cancel"))
    def cancel(self, request, queryset):
        n = 0
        for pk in queryset.filter(status__in=("queued", "running", "waiting")).values_list("pk", flat=True):
            runtime.cancel(pk, message="Cancelled by an operator.")
            n += 1
        self.message_user(request, _("%(n)d job(s) cancelled.") % {"n": n})

    @admin.action(description=_("Run the sweeper now"))
    def sweep_now(self, request, queryset):
        result = sweeper.sweep()
        self.message_user(request, _("Sweeper: %(q)d queued, %(r)d reclaimed, %(f)d failed.")
                          % {"q": result.queued, "r": result.reclaimed, "f": result.failed})
