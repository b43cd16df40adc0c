from django.urls import path

from . import views

# Mounted under models/ beside the registry's routes: models/<pk>/prepare/...
urlpatterns = [
    path("<int:pk>/prepare/", views.prepare_page, name="prepare"),
    path("<int:pk>/prepare/<int:job_id>/live/", views.prepare_live, name="prepare_live"),
    path("<int:pk>/prepare/<int:job_id>/cancel/", views.prepare_cancel, name="prepare_cancel"),
    path("<int:pk>/prepare/<int:job_id>/review/", views.prepare_review, name="prepare_review"),
    path("<int:pk>/prepared/reinspect/", views.prepared_reinspect, name="prepared_reinspect"),
    path("<int:pk>/prepare/<int:job_id>/download.zip", views.prepared_download, name="prepared_download"),
]
