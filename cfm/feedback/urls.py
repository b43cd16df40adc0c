from django.urls import path

from . import views

app_name = "feedback"

urlpatterns = [
    path("<int:account_id>/survey/", views.survey, name="survey"),
]
