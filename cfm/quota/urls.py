from django.urls import path

from . import views

app_name = "quota"

urlpatterns = [
    path("usage/", views.usage_home, name="usage_home"),
    path("<int:account_id>/usage/", views.usage, name="usage"),
    path("<int:account_id>/limit-request/", views.limit_request, name="limit_request"),
    path("registrations/<int:registration_id>/deploy/", views.deploy, name="deploy"),
    path("deployments/<int:deployment_id>/", views.deployment_detail, name="deployment"),
    path("deployments/<int:deployment_id>/live/", views.deployment_live, name="deployment_live"),
    path("deployments/<int:deployment_id>/delete/", views.deployment_delete, name="deployment_delete"),
]
