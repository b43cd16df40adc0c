"""The HTTP API v1 (docs/api.md): one NinjaAPI; each app
adds its Router in `_mount()`. Errors are always
{"error": {"code", "message", ...}}, also where no endpoint is reached (a
body that is not JSON, a method a path does not take, a path that does not
exist: see `urls()`). Every list pages with `paginate`."""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpResponseNotAllowed
from django.urls import re_path
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer
from pydantic import ValidationError as PydanticError

from cfm.accounts.tokens import token_user


class BearerAuth(HttpBearer):
    def authenticate(self, request, token):
        user = token_user(token)
        if user is not None:
            request.user = user
        return user


class BodyNotJSON(ValueError):
    pass


class JSONParser(Parser):
    """ninja's parser, with its failure marked: ninja turns any parser error
    into a bare HttpError(400), and `_http_error` below recognises this one
    by its cause."""

    def parse_body(self, request):
        try:
            return super().parse_body(request)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer of 4300+ digits
            raise BodyNotJSON(str(exc)) from exc


api = NinjaAPI(
    title="cfm API", version="1", urls_namespace="api", auth=BearerAuth(), parser=JSONParser(),
    description="Register models, read compatibility reports, deploy within the quota.",
)


class ApiError(Exception):
    """Raise from any endpoint: becomes {"error": {"code", "message", **extra}}."""

    def __init__(self, status: int, code: str, message: str, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def error_response(request, status: int, code: str, message: str, **extra):
    return api.create_response(request, {"error": {"code": code, "message": message, **extra}}, status=status)


@api.exception_handler(ApiError)
def _api_error(request, exc: ApiError):
    return error_response(request, exc.status, exc.code, exc.message, **exc.extra)


@api.exception_handler(ValidationError)
def _validation(request, exc: ValidationError):
    fields = {}
    for err in exc.errors:
        loc = [str(x) for x in err.get("loc", []) if x not in ("body", "payload", "query", "path")]
        fields[".".join(loc) or "body"] = err.get("msg", "invalid")
    return error_response(request, 400, "invalid", "The request is not valid.", fields=fields)


@api.exception_handler(AuthenticationError)
def _auth(request, exc):
    return error_response(request, 401, "unauthenticated", "A valid Bearer token is required.")


@api.exception_handler(Http404)
def _not_found(request, exc):
    return error_response(request, 404, "not_found", "No such object.")


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    if isinstance(exc.__cause__, BodyNotJSON):  # as POST /registrations answers it, which parses its own body
        return error_response(request, 400, "invalid", _("The body is not JSON."), fields={"body": "not JSON"})
    code = {400: "invalid", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
            413: "too_large", 429: "rate_limited"}.get(exc.status_code, "error")
    return error_response(request, exc.status_code, code, str(exc))


# --- bodies read by hand ----------------------------------------------------------------------------------------

def parse_body(request, schema, *, required: bool = True):
    """A body an endpoint reads itself (one that takes JSON or a form, or an
    optional body), validated by `schema`: JSON, or a form as `curl -F` or
    an HTML form sends it. An empty body where none is required gives the
    schema's defaults; anything else wrong is a 400 whose `fields` say what."""
    if (request.content_type or "").startswith(("multipart/", "application/x-www-form-urlencoded")):
        data: Any = {k: request.POST.get(k) for k in request.POST}
        if not data and not required:
            return schema()
    else:
        raw = request.body.strip() if request.body else b""
        if not raw and not required:
            return schema()
        try:
            data = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "invalid", _("The body is not JSON."), fields={"body": "not JSON"}) from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid", _("The body must be a JSON object."), fields={"body": "not an object"})
    try:
        return schema.model_validate(data)
    except PydanticError as exc:
        fields = {".".join(str(x) for x in e["loc"]) or "body": e["msg"] for e in exc.errors()}
        raise ApiError(400, "invalid", _("The request is not valid."), fields=fields) from None


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
        raise ApiError(400, "invalid", message, fields={name: message})
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


# --- URLs: JSON where Django would answer with HTML ------------------------------------------------------------

def _json_405(view):
    """ninja answers a method no operation of the path takes with a plain
    HttpResponseNotAllowed; this keeps its Allow header and gives the envelope."""

    @wraps(view)  # keeps csrf_exempt
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if not isinstance(response, HttpResponseNotAllowed):
            return response
        allowed = sorted(m.strip() for m in response["Allow"].split(","))
        out = error_response(request, 405, "method_not_allowed",
                             _("%(method)s is not allowed here; this path takes %(allowed)s.")
                             % {"method": request.method, "allowed": ", ".join(allowed)}, allowed=allowed)
        out["Allow"] = ", ".join(allowed)
        return out

    return wrapper


def _no_such_path(request, *args, **kwargs):
    return error_response(request, 404, "not_found", _("There is no such path in the API."))


def urls() -> tuple[list, str, str]:
    """`api.urls` for `path("api/v1/", ...)`, with JSON 405s and, last, a
    JSON 404 for every other path under the prefix (Django's own 404 page is
    HTML and, with DEBUG, lists every URL pattern)."""
    patterns, app_name, namespace = api.urls
    patterns = list(patterns)
    for pattern in patterns:
        pattern.callback = _json_405(pattern.callback)
    patterns.append(re_path(r"^", _no_such_path))
    return patterns, app_name, namespace


def _mount() -> None:
    """Each app's router, mounted once at import."""
    import importlib

    for module in ("cfm.accounts.api", "cfm.registry.api", "cfm.quota.api", "cfm.feedback.api",
                   "cfm.preparation.api"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue  # that app has no API (yet)
            raise
        api.add_router("/", mod.router)


_mount()
