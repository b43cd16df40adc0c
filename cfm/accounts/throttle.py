"""Login throttling, on django-axes: failed logins are counted per account
(username) and per client address in the database, so every web process
sees the same counts. Once locked, the password is not even checked (each
check costs ~0.3 s of CPU), and the login page says when to try again.

Administrators unlock in the admin (Axes › Access attempts: delete the rows)
or with `manage.py axes_reset_username USER` / `axes_reset_ip ADDRESS`.
API bearer tokens never go through this: they are not passwords."""
from __future__ import annotations

import math

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import render
from django.utils.translation import gettext as _


class LoginThrottleBackend(AxesStandaloneBackend):
    """axes' gate, except for callers without a request (the test client's
    `login()`, a shell): there is no client to count, so nothing to throttle,
    and the next backend authenticates as usual."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def lockout_message() -> str:
    minutes = max(1, math.ceil(settings.CFM_LOGIN_LOCKOUT_SECONDS / 60))
    return _("Too many failed logins for this account or from this address. Try again in %(minutes)s minutes, "
             "or ask an administrator to unlock it.") % {"minutes": minutes}


def login_locked_out(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: the login page again, with the reason and the
    retry time (429 with Retry-After), never a bare text page."""
    form = AuthenticationForm(request, data=request.POST or None)
    form.errors.clear()
    form.add_error(None, lockout_message())
    response = render(request, "registration/login.html",
                      {"form": form, "next": request.POST.get("next", "") if request.method == "POST" else ""},
                      status=429)
    response["Retry-After"] = str(settings.CFM_LOGIN_LOCKOUT_SECONDS)
    return response
