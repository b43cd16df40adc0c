"""What every app's API module uses: the error to raise (`ApiError`, which
cfm/api.py turns into the envelope), ISO times, pagination and bodies read
by hand. It imports no app: cfm/api.py mounts every app's router, so an
app's API importing cfm/api.py itself would make an import cycle."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.utils.translation import gettext as _
from pydantic import ValidationError as PydanticError

from cfm.errors import http_status
from cfm.inspection.jsonsafe import JsonProblem, loads_bounded


class ApiError(Exception):
    """Raise from any endpoint: becomes {"error": {"code", "message", **extra}},
    with the status cfm/errors.py gives the code (`app`: the app answering,
    for a code whose status depends on it)."""

    def __init__(self, code: str, message: str, *, app: str | None = None, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = http_status(code, app=app), code, message, extra


# --- bodies read by hand ----------------------------------------------------------------------------------------

#: The deepest JSON a body may nest (the API's bodies are flat objects; deployment parameters one level more).
#: Deeper input used to reach the parser's recursion limit: a 500 instead of a 400.
API_MAX_JSON_DEPTH = 32


class BodyNotJSON(ValueError):
    """A body refused while parsing: `message` for the envelope, `fields` naming what."""

    def __init__(self, message: str, fields: dict[str, str]):
        super().__init__(message)
        self.message, self.fields = message, fields


def _nul_field(value: Any, path: str = "") -> str | None:
    """The path of the first string (key or value) holding a NUL character,
    which PostgreSQL cannot store in text; None when there is none."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return where or "body"
        elif isinstance(item, dict):
            for k, v in item.items():
                key = f"{where}.{k}" if where else str(k)
                if "\x00" in str(k):
                    return key
                stack.append((v, key))
        elif isinstance(item, list):
            stack.extend((v, f"{where}.{i}" if where else str(i)) for i, v in enumerate(item))
    return None


def refuse_nul(data: Any) -> None:
    if (where := _nul_field(data)) is not None:
        raise BodyNotJSON(_("Text may not contain NUL characters."), {where.replace("\x00", "\\0"): "NUL character"})


def body_json(raw: bytes) -> Any:
    """The one JSON parser of request bodies (ninja's, through cfm/api.py, and
    parse_body's): bounded in depth, no NUL in any string. Raises BodyNotJSON
    saying what is wrong."""
    try:
        data = loads_bounded(raw, max_bytes=len(raw), max_depth=API_MAX_JSON_DEPTH)
    except JsonProblem as exc:
        if exc.reason == "too_deep":
            raise BodyNotJSON(_("The body nests deeper than %(depth)s levels.") % {"depth": API_MAX_JSON_DEPTH},
                              {"body": "too deep"}) from None
        raise BodyNotJSON(_("The body is not JSON."), {"body": "not JSON"}) from None
    if b"\\u0000" in raw:  # only then is there a NUL to find
        refuse_nul(data)
    if b"\\ud" in raw.lower():  # only then can there be a lone surrogate (raw UTF-8 cannot carry one)
        refuse_surrogates(data)
    return data


def _surrogate_field(value: Any, path: str = "") -> str | None:
    """The path of the first string (key or value) holding a lone surrogate
    ("\\ud800" in JSON), which no database nor UTF-8 encoder takes."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if _has_surrogate(item):
                return where or "body"
        elif isinstance(item, dict):
            for k, v in item.items():
                key = f"{where}.{k}" if where else str(k)
                if _has_surrogate(str(k)):
                    return key.encode("utf-8", "backslashreplace").decode("ascii")
                stack.append((v, key))
        elif isinstance(item, list):
            stack.extend((v, f"{where}.{i}" if where else str(i)) for i, v in enumerate(item))
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def refuse_surrogates(data: Any) -> None:
    # A lone surrogate reached the database (or the cipher) as a UnicodeEncodeError: a 500.
    if (where := _surrogate_field(data)) is not None:
        raise BodyNotJSON(_("Text may not contain unpaired surrogate characters."),
                          {where.replace("\x00", "\\0"): "unpaired surrogate"})


def parse_body(request, schema, *, required: bool = True):
    """A body an endpoint reads itself (one that takes JSON or a form, or an
    optional body), validated by `schema`: JSON, or a form as `curl -F` or
    an HTML form sends it. An empty body where none is required gives the
    schema's defaults; anything else wrong is a 400 whose `fields` say what."""
    try:
        if (request.content_type or "").startswith(("multipart/", "application/x-www-form-urlencoded")):
            data: Any = {k: request.POST.get(k) for k in request.POST}
            if not data and not required:
                return schema()
            refuse_nul(data)
        else:
            raw = request.body.strip() if request.body else b""
            if not raw and not required:
                return schema()
            data = body_json(raw or b"null")
    except BodyNotJSON as exc:
        raise ApiError("invalid", exc.message, fields=exc.fields) from None
    if not isinstance(data, dict):
        raise ApiError("invalid", _("The body must be a JSON object."), fields={"body": "not an object"})
    try:
        return schema.model_validate(data)
    except PydanticError as exc:
        fields = {".".join(str(x) for x in e["loc"]) or "body": e["msg"] for e in exc.errors()}
        raise ApiError("invalid", _("The request is not valid."), fields=fields) from None


# --- pagination, shared by every list ----------------------------------------------------------------------

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
#: Far beyond any list here, and small enough that offset + limit fits every
#: database's OFFSET/LIMIT (a larger number used to reach the database: a 500).
MAX_OFFSET = 1_000_000


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, as the contract says."""
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z") if dt else None


def _page_param(request, name: str, default: int, low: int, high: int) -> int:
    raw = request.GET.get(name)
    if raw is None:
        return default
    # Digits only: int() would also take " 5", "+5", "1_000" and non-ASCII digits.
    value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 12 else None
    if value is None or not low <= value <= high:
        message = _("%(name)s must be a whole number from %(low)s to %(high)s.") % {
            "name": name, "low": low, "high": high}
        raise ApiError("invalid", message, fields={name: message})
    return value


def paginate(request, qs, render: Callable[[Any], Any], *, page_size: int = PAGE_SIZE) -> dict:
    """{"items": [...], "next": URL | null}: `offset` (0 to MAX_OFFSET) and
    `limit` (1 to MAX_PAGE_SIZE) in the query; anything else is a 400."""
    offset = _page_param(request, "offset", 0, 0, MAX_OFFSET)
    limit = _page_param(request, "limit", page_size, 1, MAX_PAGE_SIZE)
    rows = list(qs[offset:offset + limit + 1])
    nxt = None
    if len(rows) > limit:
        params = request.GET.copy()
        params["offset"] = offset + limit
        nxt = request.build_absolute_uri(request.path + "?" + urlencode(params, doseq=True))
    return {"items": [render(r) for r in rows[:limit]], "next": nxt}
