from django.urls import path

from . import views

urlpatterns = [
    path("new/", views.register, name="register"),
    path("<int:pk>/", views.registration_detail, name="registration"),
    path("<int:pk>/live/", views.registration_live, name="registration_live"),
    path("<int:pk>/report.json", views.registration_report_json, name="registration_report_json"),
    path("<int:pk>/rerun/", views.registration_rerun, name="registration_rerun"),
    path("<int:pk>/cancel/", views.registration_cancel, name="registration_cancel"),
    path("<int:pk>/delete/", views.registration_delete, name="registration_delete"),
    path("<int:pk>/forget-token/", views.registration_forget_token, name="registration_forget_token"),
]
