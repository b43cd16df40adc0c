"""No password on the DEBUG error page (finding 8 of issue 11): passwords in
URLs are masked in settings, in request.META (runserver puts the process's
environment there) and in the frames' variables."""
from __future__ import annotations

import sys

from django.test import Client, RequestFactory
from django.urls import path
from django.views.debug import get_exception_reporter_class

from cfm.web.errors import mask_url_passwords

SECRET = "hunter2-s3cr3t"


def _debug_page(settings, **meta) -> str:
    settings.DEBUG = True
    settings.REDIS_URL = f"redis://:{SECRET}@127.0.0.1:6379/0"
    settings.CELERY_BROKER_URL = f"redis://default:{SECRET}@127.0.0.1:6379/0"
    settings.DATABASE_URL = f"postgres://cfm:{SECRET}@db:5432/cfm"
    settings.CFM_S3_ENDPOINT = f"https://key:{SECRET}@s3.example.com"
    request = RequestFactory().get("/boom", **meta)
    connection = f"amqp://guest:{SECRET}@rabbit//"  # noqa: F841  (a frame variable the page shows)
    try:
        raise RuntimeError(f"cannot reach redis://:{SECRET}@127.0.0.1:6379/0")
    except RuntimeError:
        return get_exception_reporter_class(request)(request, *sys.exc_info()).get_traceback_html()


def test_the_debug_page_shows_no_password_in_a_url(settings):
    page = _debug_page(settings, REDIS_URL=f"redis://:{SECRET}@127.0.0.1:6379/0",
                       SOME_ENV=f"postgres://u:{SECRET}@h/db")
    assert SECRET not in page
    assert "REDIS_URL" in page and "CELERY_BROKER_URL" in page  # listed, not shown


def test_the_masking_keeps_the_rest_of_the_url():
    assert mask_url_passwords(f"redis://:{SECRET}@h:6379/0 and https://u:{SECRET}@x/y") == (
        "redis://:********************@h:6379/0 and https://u:********************@x/y")
    assert mask_url_passwords("https://huggingface.co/org/name") == "https://huggingface.co/org/name"


def _failing_view(request):
    broker = f"redis://:{SECRET}@127.0.0.1:6379/0"  # noqa: F841  (a frame variable the page shows)
    raise ConnectionError("the broker is down")


urlpatterns = [path("boom", _failing_view)]


def test_a_real_500_with_debug_shows_no_password(settings, db):
    settings.DEBUG = True
    settings.ROOT_URLCONF = __name__
    settings.REDIS_URL = f"redis://:{SECRET}@127.0.0.1:6379/0"
    r = Client(raise_request_exception=False).get("/boom", HTTP_ACCEPT="text/html",
                                                  REDIS_URL=f"redis://:{SECRET}@x:1/0")
    assert r.status_code == 500 and "the broker is down" in r.content.decode()
    assert SECRET not in r.content.decode()
