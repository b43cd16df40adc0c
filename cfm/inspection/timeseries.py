"""Time-series sizing: the guide's table of concurrent users per
configuration and payload (platform-rules section 4)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from cfm.catalog import CONFIGURATIONS, TIME_SERIES_CONFIGURATIONS, TS_SIZING_ROWS, TsSizingRow

_MULTI = re.compile(r"^\s*(\d+)\s*[x×X*]\s*(\d+)\s*$")


@dataclass(frozen=True)
class Payload:
    length: int | None = None  # univariate series length
    series: int | None = None
    targets: int | None = None

    def __str__(self) -> str:
        if self.length is not None:
            return f"a univariate series of length {self.length}"
        return f"{self.series} series × {self.targets} targets"


def parse_payload(text: str | None) -> Payload | None:
    """`LENGTH` or `SxT`; None for no payload; ValueError for nonsense."""
    if text is None or str(text).strip() == "":
        return None
    text = str(text).strip()
    m = _MULTI.match(text)
    if m:
        s, t = int(m.group(1)), int(m.group(2))
        if s < 1 or t < 1:
            raise ValueError("series and targets must be at least 1")
        return Payload(series=s, targets=t)
    if text.isdigit() and int(text) >= 1:
        return Payload(length=int(text))
    raise ValueError(f"payload {text!r} is neither a series length (e.g. 512) nor series x targets (e.g. 15x40)")


def _row_label(row: TsSizingRow, payload: Payload) -> str:
    if payload.length is not None:
        return f"length {row.univariate_length}"
    return f"{row.series} × {row.targets}"


def _row_for(payload: Payload) -> tuple[TsSizingRow, bool]:
    """The first row (smallest payload first) that holds the payload, and
    whether the payload is beyond the table."""
    rows = sorted(TS_SIZING_ROWS, key=lambda r: r.univariate_length)
    for row in rows:
        if payload.length is not None and row.univariate_length >= payload.length:
            return row, False
        if payload.length is None and row.series * row.targets >= (payload.series or 0) * (payload.targets or 0):
            return row, False
    return rows[-1], True


@dataclass
class TsSizing:
    configuration: str
    status: str
    key: str
    params: dict = field(default_factory=dict)


def size_time_series(users: int | None, payload: Payload | None) -> TsSizing:
    if users is None and payload is None:
        small = [r.users["small"] for r in TS_SIZING_ROWS]
        return TsSizing("small", "pass", "size.ts_assumed", {
            "assumption": f"one user at a time and any payload in the guide's table "
                          f"(Small serves {min(small)} to {max(small)} concurrent users)",
            "configuration": CONFIGURATIONS["small"].label,
        })
    users = users if users is not None else 1
    # Without a payload, size for the heaviest row: the safe side.
    assumed_payload = payload or Payload(length=max(r.univariate_length for r in TS_SIZING_ROWS))
    row, beyond = _row_for(assumed_payload)
    fit = next((c for c in TIME_SERIES_CONFIGURATIONS if row.users[c] >= users), None)
    payload_text = str(assumed_payload) + ("" if payload else " (assumed: the heaviest in the table)")
    if fit is None:
        return TsSizing("extra_large", "warn", "size.ts_warn_users", {
            "users": users, "capacity": row.users["extra_large"], "payload": payload_text,
            "configuration": CONFIGURATIONS["extra_large"].label})
    label = CONFIGURATIONS[fit].label
    if beyond:
        return TsSizing(fit, "warn", "size.ts_warn_payload", {
            "payload": payload_text, "row": _row_label(row, assumed_payload), "users": users,
            "capacity": row.users[fit], "configuration": label})
    return TsSizing(fit, "pass", "size.ts_pass", {
        "users": users, "capacity": row.users[fit], "payload": payload_text, "configuration": label})
