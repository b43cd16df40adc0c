from django.urls import path

from . import views

# Mounted under accounts/ beside the Spaces page: accounts/spaces/<id>/platform/...
urlpatterns = [
    path("spaces/<int:space_id>/platform/", views.connection_page, name="space_platform"),
    path("spaces/<int:space_id>/platform/check/", views.connection_test, name="space_platform_check"),
    path("spaces/<int:space_id>/platform/delete/", views.connection_remove, name="space_platform_delete"),
]
