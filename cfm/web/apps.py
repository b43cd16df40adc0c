from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "cfm.web"
    label = "web"
    verbose_name = "cfm pages"
