"""What errors show. handler500: an error page that says what it can without a
traceback; a full disk (ENOSPC while Django spools an upload to its
temporary folder, before any cfm code runs) is the one cause worth naming:
507, no path. SecretMaskingReporterFilter: no password on the DEBUG page or
in an error mail."""
from __future__ import annotations

import errno
import re
import sys

from django.http import HttpResponse
from django.utils.translation import gettext as _
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter
from django.views.defaults import server_error as django_server_error

from .guards import API_PREFIX, envelope


def _disk_full() -> bool:
    exc = sys.exc_info()[1]
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def server_error(request, *args, **kwargs):
    if _disk_full():
        message = _("The server ran out of disk space; nothing was kept. Try again later.")
        if request.path_info.startswith(API_PREFIX):
            return envelope(507, "disk_full", message)
        return HttpResponse(message, status=507, content_type="text/plain; charset=utf-8")
    if request.path_info.startswith(API_PREFIX):
        return envelope(500, "internal", _("Something went wrong on the server; the error was logged."))
    return django_server_error(request, *args, **kwargs)


# --- error reports (the DEBUG page, the mails to ADMINS) --------------------------------------------------------

#: `scheme://user:password@`: the password part of any URL (redis://:pw@host, postgres://u:pw@host ...).
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*):(?P<pw>[^\s@/]+)@")


def mask_url_passwords(text: str) -> str:
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}:{SecretMaskingReporterFilter.cleansed_substitute}@", text)


class SecretMaskingReporterFilter(SafeExceptionReporterFilter):
    """Django's filter hides settings whose NAME looks secret; a password inside
    a URL (REDIS_URL, CELERY_BROKER_URL, DATABASE_URL, an environment variable
    in request.META under runserver, a local variable of a frame) has an
    innocent name. This one also masks every `scheme://user:password@` and
    hides the connection URLs whole."""

    hidden_settings = re.compile(
        SafeExceptionReporterFilter.hidden_settings.pattern + "|DATABASE_URL|REDIS_URL|BROKER_URL|DATABASES",
        flags=re.I)

    def cleanse_setting(self, key, value):
        cleansed = super().cleanse_setting(key, value)
        return mask_url_passwords(str(cleansed)) if isinstance(cleansed, str) else cleansed

    def get_traceback_frame_variables(self, request, tb_frame):
        return [(name, mask_url_passwords(value) if isinstance(value, str) else self._mask_any(value))
                for name, value in super().get_traceback_frame_variables(request, tb_frame)]

    def _mask_any(self, value):
        # Containers are shown by their repr: mask what the repr would show.
        if isinstance(value, (dict, list, tuple, set)) and _URL_PASSWORD.search(repr(value)):
            return mask_url_passwords(repr(value))
        return value


class SecretMaskingExceptionReporter(ExceptionReporter):
    """The exception's own message may hold a URL too (a driver naming where it failed)."""

    def get_traceback_data(self):
        data = super().get_traceback_data()
        if isinstance(data.get("exception_value"), str):
            data["exception_value"] = mask_url_passwords(data["exception_value"])
        return data
