"""The HTTP API v1 (docs/api.md): one NinjaAPI; each app
adds its Router in `_mount()`. Errors are always
{"error": {"code", "message", ...}}, also where no endpoint is reached (a
body that is not JSON, a method a path does not take, a path that does not
exist: see `urls()`). Every list pages with `paginate` (cfm/apitools.py, with
`ApiError`, which the app APIs import from there)."""
from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFilesSent
from django.http import Http404, HttpResponseNotAllowed
from django.http.multipartparser import MultiPartParserError
from django.urls import re_path
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer

from cfm.accounts.permissions import OwnerOnly
from cfm.accounts.tokens import token_user
from cfm.apitools import ApiError, BodyNotJSON, body_json
from cfm.errors import STATUS_CODE, http_status


class BearerAuth(HttpBearer):
    def authenticate(self, request, token):
        user = token_user(token)
        if user is not None:
            request.user = user
        return user


class JSONParser(Parser):
    """ninja's parser through `body_json` (one JSON parser: depth-capped, no
    NUL), with its failure marked: ninja turns any parser error into a bare
    HttpError(400), and `_http_error` below recognises this one by its cause."""

    def parse_body(self, request):
        return body_json(request.body)


class CfmAPI(NinjaAPI):
    """ninja's API, whose OpenAPI schema also documents each operation's
    errors, the enumerations and examples (cfm.openapi)."""

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        from cfm.openapi import document

        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        document(schema)
        return schema


api = CfmAPI(
    title="cfm API", version="1", urls_namespace="api", auth=BearerAuth(), parser=JSONParser(),
    description="Register models, read compatibility reports, deploy within the quota.",
)


def error_response(request, code: str, message: str, *, status: int | None = None, **extra):
    """The envelope, with the status cfm/errors.py gives the code (`status`
    only for an answer ninja made with a status of its own)."""
    return api.create_response(request, {"error": {"code": code, "message": message, **extra}},
                               status=status or http_status(code))


@api.exception_handler(ApiError)
def _api_error(request, exc: ApiError):
    return error_response(request, exc.code, exc.message, status=exc.status, **exc.extra)


@api.exception_handler(ValidationError)
def _validation(request, exc: ValidationError):
    fields = {}
    for err in exc.errors:
        loc = [str(x) for x in err.get("loc", []) if x not in ("body", "payload", "query", "path")]
        fields[".".join(loc) or "body"] = err.get("msg", "invalid")
    return error_response(request, "invalid", "The request is not valid.", fields=fields)


@api.exception_handler(AuthenticationError)
def _auth(request, exc):
    return error_response(request, "unauthenticated", "A valid Bearer token is required.")


@api.exception_handler(Http404)
def _not_found(request, exc):
    return error_response(request, "not_found", "No such object.")


@api.exception_handler(OwnerOnly)
def _owner_only(request, exc: OwnerOnly):
    return error_response(request, "owner_only", exc.message)


@api.exception_handler(RequestDataTooBig)
def _too_big(request, exc):
    return error_response(request, "too_large", _("A field of the request is over %(cap)s bytes.")
                          % {"cap": settings.DATA_UPLOAD_MAX_MEMORY_SIZE})


@api.exception_handler(TooManyFilesSent)
def _too_many_files(request, exc):
    return error_response(request, "invalid", _("The request has more than %(cap)s files.")
                          % {"cap": settings.DATA_UPLOAD_MAX_NUMBER_FILES}, fields={"body": "too many files"})


@api.exception_handler(MultiPartParserError)
def _bad_multipart(request, exc):
    return error_response(request, "invalid", _("The multipart body could not be read."),
                          fields={"body": "not a valid multipart body"})


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    if isinstance(exc.__cause__, BodyNotJSON):  # as POST /registrations answers it, which parses its own body
        return error_response(request, "invalid", exc.__cause__.message, fields=exc.__cause__.fields)
    return error_response(request, STATUS_CODE.get(exc.status_code, "error"), str(exc), status=exc.status_code)


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
        out = error_response(request, "method_not_allowed",
                             _("%(method)s is not allowed here; this path takes %(allowed)s.")
                             % {"method": request.method, "allowed": ", ".join(allowed)}, allowed=allowed)
        out["Allow"] = ", ".join(allowed)
        return out

    return wrapper


def _no_such_path(request, *args, **kwargs):
    return error_response(request, "not_found", _("There is no such path in the API."))


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
                   "cfm.preparation.api", "cfm.platform.api"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue  # that app has no API (yet)
            raise
        api.add_router("/", mod.router)


_mount()
