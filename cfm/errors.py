"""The one map between the API's error codes and HTTP statuses.

Every refusal in cfm carries a code (`ApiError`, the services' exceptions);
the status it answers with is read here, and so is what cfm/openapi.py
documents for each operation. It imports nothing: the engine's neighbours,
every app and the web layer may read it.
"""
from __future__ import annotations

#: The HTTP status of each error code the API answers (docs/api.md). A code
#: not listed is an input refused: 400.
HTTP_STATUS: dict[str, int] = {
    "invalid": 400,
    "bad_host": 400,
    "unauthenticated": 401,
    "plan_not_allowed": 403,
    "owner_only": 403,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    # Refused by the current state: the same request may pass once it changes.
    "registration_in_use": 409,
    "space_in_use": 409,
    "quota_exceeded": 409,
    "serving_name_taken": 409,
    "files_not_held": 409,
    "limit_request_pending": 409,
    "nothing_to_do": 409,
    "not_inspected": 409,
    "not_in_review": 409,
    "unsupported": 409,
    "length_required": 411,
    "too_large": 413,
    # Well-formed, but the model or the request cannot be deployed as asked.
    "not_deployable": 422,
    "runtime_missing": 422,
    "configuration_too_small": 422,
    "configuration_not_allowed": 422,
    "spec_not_allowed": 422,
    "invalid_parameters": 422,
    "idempotency_key_reused": 422,
    "rate_limited": 429,
    "internal": 500,
    "missing_extras": 503,
    "disk_full": 507,
}

#: Codes whose status depends on the app that answers. Prepare refuses to
#: start when the media folder's free disk is below what the run needs: a
#: state the user can change before asking again (409), where an upload that
#: found no room mid-write is the server's storage failing (507).
APP_STATUS: dict[tuple[str, str], int] = {
    ("preparation", "disk_full"): 409,
}

#: The code a bare HTTP status gets (an answer made by Django or ninja, not by cfm's code).
STATUS_CODE: dict[int, str] = {400: "invalid", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
                               405: "method_not_allowed", 411: "length_required", 413: "too_large",
                               429: "rate_limited"}


def http_status(code: str, *, app: str | None = None) -> int:
    """The HTTP status an error `code` answers with (`app`: the app answering,
    for the codes in APP_STATUS)."""
    if app is not None and (app, code) in APP_STATUS:
        return APP_STATUS[(app, code)]
    return HTTP_STATUS.get(code, 400)
