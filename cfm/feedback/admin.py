"""Survey answers for staff: filters, and a CSV export for capacity planning."""
from __future__ import annotations

import csv

from django.contrib import admin
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy

from .models import SurveyResponse

CSV_FIELDS = ["id", "created_at", "account", "user", "refusal", "configuration", "count", "model", "use_case",
              "timeline", "comments"]


def _cell(value) -> str:
    # A cell starting with = + - @ would be a formula in a spreadsheet: quote it.
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@admin.register(SurveyResponse)
class SurveyResponseAdmin(admin.ModelAdmin):
    list_display = ["created_at", "account", "configuration", "count", "model", "timeline", "from_refusal"]
    list_filter = ["configuration", "timeline", "created_at", ("account", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["account__name", "model", "use_case", "comments"]
    list_select_related = ["account", "user"]
    date_hierarchy = "created_at"
    readonly_fields = ["account", "user", "refusal", "created_at"]
    actions = ["export_csv"]

    def has_add_permission(self, request):
        return False

    @admin.display(description=gettext_lazy("from a refusal"), boolean=True)
    def from_refusal(self, obj):
        return obj.refusal_id is not None

    @admin.action(description=gettext_lazy("Export the selected answers as CSV"))
    def export_csv(self, request, queryset):
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="cfm-survey-{stamp}.csv"'
        response.write("\ufeff")  # so spreadsheet programs read UTF-8 (Japanese answers)
        writer = csv.writer(response)
        writer.writerow(CSV_FIELDS)
        for r in queryset.select_related("account", "user").order_by("created_at", "id"):
            writer.writerow([_cell(v) for v in (
                r.id, r.created_at.isoformat(), r.account.name, r.user.username if r.user else "", r.refusal_id,
                r.configuration, r.count, r.model, r.use_case, r.timeline, r.comments)])
        return response
