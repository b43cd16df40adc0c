from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("catalog/", views.home, name="catalog"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/registrations/", views.dashboard_registrations, name="dashboard_registrations"),
]
