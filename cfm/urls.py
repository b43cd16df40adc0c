from django.contrib import admin
from django.urls import include, path

from cfm import api
from cfm.feedback.capacity import capacity
from cfm.web.health import healthz

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls()),  # JSON answers for every path under it, also unknown ones
    path("accounts/", include("cfm.accounts.urls")),
    path("accounts/", include("cfm.platform.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("models/", include("cfm.registry.urls")),
    path("models/", include("cfm.preparation.urls")),
    path("quota/capacity/", capacity, name="capacity"),  # quota and survey data: a page of cfm.feedback
    path("quota/", include("cfm.quota.urls")),
    path("feedback/", include("cfm.feedback.urls")),
    path("", include("cfm.web.urls")),
]

handler500 = "cfm.web.errors.server_error"
