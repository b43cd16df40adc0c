"""handler500: an error page that says what it can without a traceback. A full
disk (ENOSPC while Django spools an upload to its temporary folder, before
any cfm code runs) is the one cause worth naming: 507, no path."""
from __future__ import annotations

import errno
import sys

from django.http import HttpResponse
from django.utils.translation import gettext as _
from django.views.defaults import server_error as django_server_error

from .middleware import API_PREFIX, envelope


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
