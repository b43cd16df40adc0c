"""What /api/v1/openapi.json says beyond each operation's success: the error
envelope with the codes each operation answers, the enumerations the
endpoints accept (the survey's timeline, statuses, configurations,
specifications, dtypes) and examples. ninja documents only what an endpoint
returns on success; `document()` adds the rest to the schema it generates, so
every operation (also ones added later) gets at least the errors every
operation can answer."""
from __future__ import annotations

from typing import Any

from cfm import catalog
from cfm.errors import http_status

ERROR_SCHEMA = "Error"

#: Every operation behind a bearer token can answer these (statuses from cfm/errors.py).
COMMON_ERRORS: tuple[str, ...] = ("invalid", "unauthenticated", "not_found", "method_not_allowed", "rate_limited")

#: The codes particular operations add, by (method, path after /api/v1); the
#: status of each comes from cfm/errors.py, for the app the operation's tag names.
OPERATION_ERRORS: dict[tuple[str, str], tuple[str, ...]] = {
    ("post", "/registrations"): ("plan_not_allowed", "owner_only", "too_large", "disk_full"),
    ("post", "/registrations/{registration_id}/rerun"): ("plan_not_allowed", "owner_only"),
    # What another member made is its maker's or an owner's to change (cfm.accounts.permissions).
    ("post", "/registrations/{registration_id}/cancel"): ("owner_only",),
    ("delete", "/registrations/{registration_id}"): ("owner_only", "registration_in_use"),
    ("delete", "/registrations/{registration_id}/token"): ("owner_only",),
    ("delete", "/deployments/{deployment_id}"): ("owner_only",),
    ("post", "/prepare-jobs/{job_id}/cancel"): ("owner_only",),
    ("post", "/deployments"): (
        "plan_not_allowed", "quota_exceeded", "serving_name_taken", "files_not_held", "not_deployable",
        "runtime_missing", "configuration_too_small", "configuration_not_allowed", "spec_not_allowed",
        "invalid_parameters", "idempotency_key_reused"),
    ("post", "/limit-requests"): ("plan_not_allowed", "limit_request_pending"),
    ("post", "/registrations/{registration_id}/prepare"): (
        "nothing_to_do", "not_inspected", "unsupported", "disk_full", "missing_extras"),
    ("post", "/prepare-jobs/{job_id}/review"): ("owner_only", "not_in_review"),
    ("post", "/accounts/{account_id}/spaces"): ("owner_only",),
    ("patch", "/spaces/{space_id}"): ("owner_only",),
    ("delete", "/spaces/{space_id}"): ("owner_only", "space_in_use"),
    ("put", "/spaces/{space_id}/platform"): ("owner_only",),
    ("delete", "/spaces/{space_id}/platform"): ("owner_only",),
    ("post", "/spaces/{space_id}/platform/check"): ("owner_only",),
}


def operation_errors(method: str, short: str, *, app: str | None = None) -> dict[int, list[str]]:
    """{status: codes} an operation answers: the common ones and its own."""
    errors: dict[int, list[str]] = {}
    for code in COMMON_ERRORS + OPERATION_ERRORS.get((method, short), ()):
        listed = errors.setdefault(http_status(code, app=app), [])
        if code not in listed:
            listed.append(code)
    return errors

_DESCRIPTIONS = {
    400: "The input is not valid: `fields` names each field at fault.",
    401: "No valid bearer token.",
    403: ("Not allowed: the account's plan (plan_not_allowed) or the user's role (owner_only: spaces and connections "
          "are the owners'; what a member made is its maker's and the owners' to change or remove)."),
    404: "No such object among your accounts' (another account's id answers the same).",
    405: "This path does not take the method: `allowed` and the Allow header list the ones it takes.",
    409: "Refused by the current state.",
    413: "The upload is too large.",
    422: "Refused by the platform's rules.",
    429: "Too many requests.",
    503: "A part of cfm this needs is not installed.",
    507: "The server ran out of disk space; nothing was kept.",
}

_ERROR_EXAMPLES = {
    "invalid": {"code": "invalid", "message": "The request is not valid.",
                "fields": {"source": "Give a Hub repo id such as org/name."}},
    "unauthenticated": {"code": "unauthenticated", "message": "A valid Bearer token is required."},
    "not_found": {"code": "not_found", "message": "No such registration."},
    "quota_exceeded": {"code": "quota_exceeded", "message": "The account holds 4 of 4 units; Small needs 1.",
                       "limit_units": 4, "used_units": 4, "needed_units": 1, "refusal": 7,
                       "survey_url": "https://cfm.example/feedback/1/survey/?refusal=7",
                       "increase_request_url": "https://cfm.example/quota/1/limit-request/"},
    "invalid_parameters": {"code": "invalid_parameters",
                           "message": "Some parameters are outside the platform's ranges: max_new_tokens.",
                           "fields": {"parameters.max_new_tokens": "Must be a whole number from 20 to 2147483647."}},
}

#: Enumerations the endpoints accept or return, by component and property.
def _enumerations() -> dict[tuple[str, str], list]:
    from cfm.feedback.models import Timeline
    from cfm.registry.models import Status

    specs = list(catalog.SOFTWARE_SPECS)
    return {
        ("SurveyIn", "timeline"): list(Timeline.values),
        ("SurveyIn", "configuration"): list(catalog.CONFIGURATIONS),
        ("ListFilter", "status"): list(Status.values),
        ("DeploymentIn", "software_spec"): specs,
    }


#: Lists page with `offset` and `limit` (cfm.api.paginate), read from the query by hand.
LIST_PATHS = ("/accounts", "/accounts/{account_id}/spaces", "/registrations", "/deployments", "/limit-requests",
              "/registrations/{registration_id}/prepare-jobs")


def _page_parameters() -> list[dict]:
    from cfm.apitools import MAX_OFFSET, MAX_PAGE_SIZE, PAGE_SIZE

    return [
        {"in": "query", "name": "offset", "required": False,
         "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}},
        {"in": "query", "name": "limit", "required": False,
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": PAGE_SIZE}},
    ]


def _parameters_schema() -> dict[str, Any]:
    """The deployment parameters of the catalog, with their ranges and defaults."""
    props: dict[str, Any] = {}
    for p in catalog.DEPLOYMENT_PARAMETERS:
        if p.choices:
            props[p.name] = {"type": "string", "enum": list(p.choices), "default": p.default}
        else:
            props[p.name] = {"type": "integer", "minimum": p.minimum, "maximum": p.maximum, "default": p.default}
        if p.at_least:
            props[p.name]["description"] = f"At least {p.at_least}."
        if p.unused_with:
            props[p.name]["description"] = (props[p.name].get("description", "") + " Not used with "
                                            + ", ".join(p.unused_with) + ".").strip()
    return {"type": "object", "additionalProperties": False, "properties": props,
            "description": "General-purpose models only; time-series deployments take none (a warning)."}


_REQUEST_EXAMPLES = {
    "SurveyIn": {"account": 1, "refusal": 7, "configuration": "medium", "count": 2,
                 "model": "ibm-granite/granite-3.0-8b-instruct", "use_case": "support chat", "timeline": "quarter",
                 "comments": ""},
    "DeploymentIn": {"registration": 12, "space": 3, "configuration": "small",
                     "software_spec": catalog.SPEC_VLLM, "serving_name": "granite_chat",
                     "parameters": {"max_sequence_length": 4096, "max_new_tokens": 1024}},
    "LimitRequestIn": {"account": 1, "units": 8, "reason": "Two Medium deployments for the Q3 pilot."},
}


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object", "required": ["error"],
        "description": "Every error answers with this envelope; some codes add fields (e.g. quota_exceeded's "
                       "limit_units, used_units, needed_units, refusal, survey_url, increase_request_url).",
        "properties": {"error": {
            "type": "object", "required": ["code", "message"], "additionalProperties": True,
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string", "description": "In the language the request asks for."},
                "fields": {"type": "object", "additionalProperties": {"type": "string"},
                           "description": "Each input at fault and what is wrong with it."},
            },
        }},
        "example": {"error": _ERROR_EXAMPLES["invalid"]},
    }


def _error_response(status: int, codes: tuple[str, ...]) -> dict[str, Any]:
    listed = ", ".join(f"`{c}`" for c in codes)
    response: dict[str, Any] = {
        "description": f"{_DESCRIPTIONS.get(status, 'An error.')} Codes: {listed}.",
        "content": {"application/json": {"schema": {
            "allOf": [{"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}],
            "properties": {"error": {"properties": {"code": {"type": "string", "enum": list(codes)}}}},
        }}},
    }
    examples = {c: {"value": {"error": _ERROR_EXAMPLES.get(c, {"code": c, "message": "…"})}} for c in codes}
    response["content"]["application/json"]["examples"] = examples
    return response


def _set_enum(components: dict, name: str, prop: str, values: list) -> None:
    component, _, nested = name.partition(".")
    target = components.get(component, {}).get("properties", {})
    if nested:
        target = target.get(nested, {}).get("properties", {})
    if prop not in target:
        return
    field = target[prop]
    # A nullable field is an anyOf of its type and null: the enum goes on the string branch.
    for branch in field.get("anyOf", [field]):
        if branch.get("type") == "string":
            branch["enum"] = values


def document(schema: dict[str, Any], *, prefix: str = "/api/v1") -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components[ERROR_SCHEMA] = _error_schema()
    for (name, prop), values in _enumerations().items():
        _set_enum(components, name, prop, values)
    for name, example in _REQUEST_EXAMPLES.items():
        if name in components:
            components[name]["example"] = example
    deployment_in = components.get("DeploymentIn", {}).get("properties", {})
    if "parameters" in deployment_in:
        deployment_in["parameters"] = {"anyOf": [_parameters_schema(), {"type": "null"}], "title": "Parameters"}
    if "configuration" in deployment_in:
        deployment_in["configuration"]["description"] = (
            "One of " + ", ".join(catalog.CONFIGURATIONS) + " (in any case); the report's recommendation when "
            "left out.")
    for path, operations in schema.get("paths", {}).items():
        short = path.removeprefix(prefix)
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            errors = operation_errors(method, short, app=(operation.get("tags") or [None])[0])
            if short == "/report-schema.json":  # public, and takes no input
                errors = {405: errors[405]}
            if method == "get" and short in LIST_PATHS:
                names = {p.get("name") for p in operation.setdefault("parameters", [])}
                operation["parameters"] += [p for p in _page_parameters() if p["name"] not in names]
            for status, listed in sorted(errors.items()):
                operation["responses"].setdefault(str(status), _error_response(status, tuple(listed)))
    return schema
