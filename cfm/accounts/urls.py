from django.urls import path

from . import space_views, views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("settings/", views.settings_page, name="settings"),
    path("settings/tokens/<int:pk>/revoke/", views.token_revoke_view, name="token_revoke"),
    path("spaces/", space_views.spaces_home, name="spaces_home"),
    path("<int:account_id>/spaces/", space_views.spaces_page, name="spaces"),
    path("spaces/<int:space_id>/rename/", space_views.space_rename, name="space_rename"),
    path("spaces/<int:space_id>/runtime/", space_views.space_runtime, name="space_runtime"),
    path("spaces/<int:space_id>/delete/", space_views.space_delete, name="space_delete"),
]
