from django.urls import path

from . import views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("settings/", views.settings_page, name="settings"),
    path("settings/tokens/<int:pk>/revoke/", views.token_revoke_view, name="token_revoke"),
]
