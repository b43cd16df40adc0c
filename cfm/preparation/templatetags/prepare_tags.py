"""Filters for the Prepare page: durations and transfer rates in words."""
from __future__ import annotations

from django import template
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def duration(seconds) -> str:
    """12 s, 4 min 05 s, 2 h 10 min."""
    try:
        s = int(round(float(seconds)))
    except (TypeError, ValueError):
        return "–"
    if s < 60:
        return _("%(s)d s") % {"s": s}
    if s < 3600:
        return _("%(m)d min %(s)02d s") % {"m": s // 60, "s": s % 60}
    return _("%(h)d h %(m)02d min") % {"h": s // 3600, "m": (s % 3600) // 60}


@register.filter
def rate(bytes_per_second) -> str:
    try:
        value = float(bytes_per_second)
    except (TypeError, ValueError):
        return "–"
    if value <= 0:
        return "–"
    return _("%(size)s/s") % {"size": filesizeformat(int(value))}


@register.filter
def pct(done, total) -> int:
    try:
        return max(0, min(100, int(int(done) * 100 / int(total)))) if int(total) else 0
    except (TypeError, ValueError):
        return 0
