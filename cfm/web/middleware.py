"""Times in the reader's zone.

Decision: the browser tells its zone (Intl's resolvedOptions().timeZone) in
the `cfm_tz` cookie, set by static/js/timezone.js on every page; the server
renders times in that zone and names it ("2026-12-05 21:30 JST"). Without
the cookie (the very first page, a client without JavaScript, the API) times
are UTC, named as such. A zone name Python does not know is ignored. No
account setting: the zone follows the device, as a traveller expects.
"""
from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone

TZ_COOKIE = "cfm_tz"


@lru_cache(maxsize=512)
def reader_zone(name: str | None) -> ZoneInfo | None:
    if not name or len(name) > 64 or not all(c.isalnum() or c in "/_+-" for c in name):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


class ReaderTimezoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone = reader_zone(request.COOKIES.get(TZ_COOKIE))
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
