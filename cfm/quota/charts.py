"""Server-rendered SVG charts (no JavaScript, no CDN): the usage gauge and
the capacity page's stacked bars. Every label is escaped."""
from __future__ import annotations

import math
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from cfm import catalog

#: the same colours as the .size-* badges in cfm.css
SIZE_COLOURS = {"small": "#24a148", "medium": "#1192e8", "large": "#8a3ffc", "extra_large": "#d02670"}
TRACK = "#e7ebf0"


def _point(cx: float, cy: float, r: float, fraction: float) -> tuple[float, float]:
    theta = math.pi * (1 - fraction)
    return cx + r * math.cos(theta), cy - r * math.sin(theta)


def _arc(cx, cy, r, f0, f1, colour, width, title="") -> str:
    x0, y0 = _point(cx, cy, r, f0)
    x1, y1 = _point(cx, cy, r, f1)
    t = f"<title>{escape(title)}</title>" if title else ""
    return (f'<path d="M {x0:.2f} {y0:.2f} A {r} {r} 0 0 1 {x1:.2f} {y1:.2f}" fill="none" stroke="{colour}" '
            f'stroke-width="{width}" stroke-linecap="butt">{t}</path>')


def usage_gauge(*, used: int, limit: int, deployments=()) -> SafeString:
    """A half-circle gauge: one coloured segment per deployment (by size),
    a white tick between units, the figure in the middle."""
    w, h, cx, cy, r, width = 260, 160, 130, 135, 105, 26
    scale = max(limit, used, 1)
    parts = [_arc(cx, cy, r, 0, 1, TRACK, width)]
    start = 0
    for dep in deployments:
        f0, f1 = start / scale, min((start + dep.units) / scale, 1)
        label = ngettext("%(name)s: %(conf)s, %(units)s unit", "%(name)s: %(conf)s, %(units)s units", dep.units) % {
            "name": dep.serving_name, "conf": dep.get_configuration_display(), "units": dep.units}
        parts.append(_arc(cx, cy, r, f0, f1, SIZE_COLOURS.get(dep.configuration, "#0f62fe"), width, label))
        start += dep.units
    if used > start:  # units the ledger counts without a listed deployment (should not happen)
        parts.append(_arc(cx, cy, r, start / scale, min(used / scale, 1), "#c4262e", width))
    for unit in range(1, scale):
        xa, ya = _point(cx, cy, r - width / 2, unit / scale)
        xb, yb = _point(cx, cy, r + width / 2, unit / scale)
        parts.append(f'<line x1="{xa:.2f}" y1="{ya:.2f}" x2="{xb:.2f}" y2="{yb:.2f}" stroke="#fff" stroke-width="2"/>')
    state = "fail" if used > limit else ("warn" if limit and used >= limit else "pass")
    colour = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#c4262e"}[state]
    label = ngettext("%(used)s of %(limit)s unit used", "%(used)s of %(limit)s units used", limit) % {
        "used": used, "limit": limit}
    parts.append(f'<text x="{cx}" y="{cy - 22}" text-anchor="middle" font-size="36" font-weight="700" '
                 f'fill="{colour}">{used}<tspan font-size="20" fill="#5b6472"> / {limit}</tspan></text>')
    # Outside the f-string: xgettext does not look inside one, so the words were never in the catalogue.
    caption = _("units used")
    parts.append(f'<text x="{cx}" y="{cy + 2}" text-anchor="middle" font-size="13" fill="#5b6472">'
                 f'{escape(caption)}</text>')
    return mark_safe(
        f'<svg class="gauge gauge-{state}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        f'aria-label="{escape(label)}"><title>{escape(label)}</title>{"".join(parts)}</svg>')


@dataclass
class Series:
    key: str
    label: str
    values: list[int]


def stacked_bars(*, categories: list[str], series: list[Series], title: str, unit_label: str = "") -> SafeString:
    """Stacked columns, one per category (a week), one colour per series (a
    configuration), with a y axis and a legend."""
    w, h = 720, 260
    left, right, top, bottom = 44, 12, 16, 58
    plot_w, plot_h = w - left - right, h - top - bottom
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    peak = max(totals + [1])
    step = _nice_step(peak)
    ymax = step * math.ceil(peak / step)
    parts = []
    for k in range(0, int(ymax / step) + 1):
        v = k * step
        y = top + plot_h - plot_h * v / ymax
        parts.append(f'<line x1="{left}" x2="{w - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e7ebf0"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#5b6472">{v}</text>')
    n = max(len(categories), 1)
    slot = plot_w / n
    bar = min(slot * 0.62, 48)
    for i, cat in enumerate(categories):
        x = left + slot * i + (slot - bar) / 2
        y = top + plot_h
        for s in series:
            v = s.values[i]
            if not v:
                continue
            hgt = plot_h * v / ymax
            y -= hgt
            tip = f"{cat} · {s.label}: {v} {unit_label}".strip()
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{hgt:.1f}" rx="2" '
                         f'fill="{SIZE_COLOURS.get(s.key, "#0f62fe")}"><title>{escape(tip)}</title></rect>')
        if totals[i]:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle" font-size="11" '
                         f'font-weight="600" fill="#161b22">{totals[i]}</text>')
        parts.append(f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle" font-size="11" '
                     f'fill="#5b6472">{escape(cat)}</text>')
    lx = left
    for s in series:
        parts.append(f'<rect x="{lx}" y="{h - 18}" width="12" height="12" rx="2" '
                     f'fill="{SIZE_COLOURS.get(s.key, "#0f62fe")}"/>')
        parts.append(f'<text x="{lx + 17}" y="{h - 8}" font-size="12" fill="#161b22">{escape(s.label)}</text>')
        lx += 30 + 8 * len(s.label)
    summary = ", ".join(f"{s.label}: {sum(s.values)}" for s in series)
    return mark_safe(
        f'<svg class="chart" viewBox="0 0 {w} {h}" width="100%" role="img" '
        f'aria-label="{escape(title)} — {escape(summary)}"><title>{escape(title)}</title>{"".join(parts)}</svg>')


def _nice_step(peak: int) -> int:
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000):
        if peak / step <= 5:
            return step
    return 10 ** len(str(peak))


def configuration_series(keys=catalog.CONFIGURATION_ORDER) -> list[tuple[str, str]]:
    return [(k, _(catalog.CONFIGURATIONS[k].label)) for k in keys]
