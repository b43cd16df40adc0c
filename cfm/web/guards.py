"""Request guards that must act before any view (or CSRF check) reads a body.

- BodyCapMiddleware refuses a body by its Content-Length, before a byte of it
  is read: Django would otherwise spool a multipart body to a temporary file
  as soon as anything touches `request.POST` (the CSRF check does, for every
  POST, logged in or not). Anyone not logged in gets CFM_ANON_BODY_MAX_BYTES;
  logged-in users CFM_BODY_MAX_BYTES, except a multipart POST to an upload
  endpoint, which may carry CFM_UPLOAD_MAX_BYTES. Django reads no more than
  Content-Length from the stream (LimitedStream), and a body sent without one
  (chunked) would be read as empty, so it is refused with 411 rather than
  silently dropped.
- ApiErrorEnvelopeMiddleware: under /api/v1/ every answer, also one Django
  makes before or around a view (a bad Host, a multipart Django cannot parse,
  too many files, a field over DATA_UPLOAD_MAX_MEMORY_SIZE), is the JSON error
  envelope, never an HTML page.
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from cfm.errors import STATUS_CODE, http_status

API_PREFIX = "/api/v1/"
#: The endpoints that take an upload (an archive, a folder's headers and small files), multipart only.
UPLOAD_PATHS = frozenset({"/models/new/", "/api/v1/registrations"})
#: Room for what travels beside the uploaded bytes: the folder manifest (a form field) and the part headers.
UPLOAD_OVERHEAD = 4 * 1024 * 1024


def envelope(status: int, code: str, message: str, **extra) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, **extra}}, status=status)


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _logged_in(request: HttpRequest) -> bool:
    if request.user.is_authenticated:
        return True
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if _is_api(request) and header[:7].lower() == "bearer ":
        from cfm.accounts.tokens import token_user

        return token_user(header[7:].strip()) is not None
    return False


def body_cap(request: HttpRequest) -> int:
    """The largest body this request may carry (bytes)."""
    if not _logged_in(request):
        return settings.CFM_ANON_BODY_MAX_BYTES
    if (request.method == "POST" and request.path_info in UPLOAD_PATHS
            and (request.content_type or "") == "multipart/form-data"):
        return settings.CFM_UPLOAD_MAX_BYTES + settings.DATA_UPLOAD_MAX_MEMORY_SIZE + UPLOAD_OVERHEAD
    return settings.CFM_BODY_MAX_BYTES


def _refuse(request: HttpRequest, code: str, message: str) -> HttpResponse:
    status = http_status(code)
    if _is_api(request):
        response: HttpResponse = envelope(status, code, message)
    else:
        response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    # The body was not read: the connection cannot carry another request after it.
    response["Connection"] = "close"
    return response


class BodyCapMiddleware:
    """After AuthenticationMiddleware (it needs request.user), before any
    view and before CsrfViewMiddleware.process_view reads request.POST."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # A NUL in the path or the query reaches PostgreSQL through a lookup or a search ("A string literal
        # cannot contain NUL"): a 500. No URL of cfm has a use for one: the API refuses it (400), the pages
        # read the query without it (a page number "\x00" is no number: the first page, as before).
        if "\x00" in request.path_info:
            return _refuse(request, "invalid", _("The address may not contain NUL characters."))
        if any("\x00" in k or any("\x00" in v for v in vs) for k, vs in request.GET.lists()):
            if _is_api(request):
                return _refuse(request, "invalid", _("The address may not contain NUL characters."))
            pairs = [(k.replace("\x00", ""), v.replace("\x00", "")) for k, vs in request.GET.lists() for v in vs]
            request.GET = QueryDict(urlencode(pairs))
        raw = request.META.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        if raw.strip() == "":
            if chunked:
                return _refuse(request, "length_required",
                               _("Send the body with a Content-Length header (chunked bodies are not accepted)."))
            return self.get_response(request)
        try:
            length = int(raw)
        except ValueError:
            return _refuse(request, "invalid", _("The Content-Length header is not a number."))
        if length > settings.CFM_ANON_BODY_MAX_BYTES:
            cap = body_cap(request)
            if length > cap:
                message = _("The request body is %(size)s bytes, over the limit of %(cap)s bytes here.") % {
                    "size": length, "cap": cap}
                return _refuse(request, "too_large", message)
        return self.get_response(request)


class ApiErrorEnvelopeMiddleware:
    """First in MIDDLEWARE: sees every answer under /api/v1/ last."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not _is_api(request):
            return self.get_response(request)
        try:
            request.get_host()
        except DisallowedHost:
            return envelope(http_status("bad_host"), "bad_host", _("This server does not answer for that host name."))
        response = self.get_response(request)
        if response.status_code < 400 or response.get("Content-Type", "").startswith("application/"):
            return response
        status = response.status_code
        if status >= 500:
            message = _("Something went wrong on the server; the error was logged.")
            out = envelope(status, "internal", message)
        elif status == 400:
            out = envelope(400, "invalid", _("The request could not be read: a malformed multipart body, too many "
                                             "files or a field over the size limit."))
        else:
            out = envelope(status, STATUS_CODE.get(status, "error"), response.reason_phrase)
        for header in ("Allow", "Retry-After", "Connection"):
            if header in response:
                out[header] = response[header]
        return out


#: Scripts only from our own static files (htmx and ours are vendored: no CDN, no inline script, no on*
#: attribute, no eval). Style attributes stay allowed: the progress bars and charts set their width in
#: the markup, and a style attribute cannot run code; <style> elements and other origins do not.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "style-src-attr 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


class ContentSecurityPolicyMiddleware:
    """Django 5.2 has no CSP of its own: one header on every answer."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
