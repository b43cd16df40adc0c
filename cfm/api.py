"""The HTTP API v1 (shared/docs/api-contract.md): one NinjaAPI; each app
adds its Router in `_mount()`. Errors are always
{"error": {"code", "message", ...}}."""
from __future__ import annotations

from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from cfm.accounts.tokens import token_user


class BearerAuth(HttpBearer):
    def authenticate(self, request, token):
        user = token_user(token)
        if user is not None:
            request.user = user
        return user


api = NinjaAPI(
    title="cfm API", version="1", urls_namespace="api", auth=BearerAuth(),
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
    code = {400: "invalid", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
            413: "too_large", 429: "rate_limited"}.get(exc.status_code, "error")
    return error_response(request, exc.status_code, code, str(exc))


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
