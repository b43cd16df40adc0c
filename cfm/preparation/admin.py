from django.contrib import admin

from .models import PrepareJob


@admin.register(PrepareJob)
class PrepareJobAdmin(admin.ModelAdmin):
    """Read-mostly: the job row is written by the worker and the services."""

    list_display = ("id", "registration", "account", "status", "stage", "error_code", "storage_backend",
                    "created_at", "finished_at")
    list_filter = ("status", "storage_backend", "error_code")
    search_fields = ("registration__source", "storage_location")
    readonly_fields = [f.name for f in PrepareJob._meta.fields]

    def has_add_permission(self, request):
        return False
