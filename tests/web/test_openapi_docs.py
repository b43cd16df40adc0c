"""/api/v1/openapi.json documents more than each operation's success: the
error envelope with the codes each operation answers, the enumerations the
endpoints accept, examples, and the pages link to the docs."""
from __future__ import annotations

import pytest
from actors import member
from django.urls import reverse

from cfm import catalog
from cfm.errors import http_status
from cfm.feedback.models import Timeline
from cfm.registry import services as registry_services
from cfm.registry.models import Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client):
    return client.get("/api/v1/openapi.json").json()


def _codes(operation, status) -> list[str]:
    body = operation["responses"][str(status)]["content"]["application/json"]
    return body["schema"]["properties"]["error"]["properties"]["code"]["enum"]


def test_every_operation_documents_the_error_envelope_it_can_answer(schema):
    assert schema["components"]["schemas"]["Error"]["required"] == ["error"]
    operations = [(path, method, op) for path, ops in schema["paths"].items() for method, op in ops.items()]
    assert len(operations) > 20
    for path, method, op in operations:
        if path.endswith("/report-schema.json"):
            continue
        for status, code in ((400, "invalid"), (401, "unauthenticated"), (404, "not_found"),
                             (405, "method_not_allowed")):
            assert code in _codes(op, status), (method, path, status)
            ref = op["responses"][str(status)]["content"]["application/json"]["schema"]["allOf"][0]["$ref"]
            assert ref == "#/components/schemas/Error"


def test_the_deployment_operation_lists_the_contracts_refusals(schema):
    post = schema["paths"]["/api/v1/deployments"]["post"]
    assert set(_codes(post, 409)) == {"quota_exceeded", "serving_name_taken", "files_not_held"}
    assert {"not_deployable", "runtime_missing", "configuration_too_small", "configuration_not_allowed",
            "spec_not_allowed", "invalid_parameters"} <= set(_codes(post, 422))
    examples = post["responses"]["409"]["content"]["application/json"]["examples"]
    assert examples["quota_exceeded"]["value"]["error"]["limit_units"] == 4


#: The codes Prepare's and the registry's services answer with, and their statuses (cfm/errors.py gives them).
PREPARE_STATUS = {"not_found": 404, "not_inspected": 409, "nothing_to_do": 409, "not_in_review": 409,
                  "unsupported": 409, "missing_extras": 503, "disk_full": 409}
REGISTRATION_STATUS = {"plan_not_allowed": 403, "not_found": 404, "too_large": 413, "registration_in_use": 409,
                       "disk_full": 507}


def test_the_one_table_gives_each_code_its_status():
    assert {code: http_status(code, app="preparation") for code in PREPARE_STATUS} == PREPARE_STATUS
    assert {code: registry_services.RegistrationError(code, "x").status for code in REGISTRATION_STATUS} \
        == REGISTRATION_STATUS
    assert registry_services.RegistrationError("invalid_source", "x").status == 400  # a code not listed: an input
    assert http_status("disk_full") == 507 and http_status("quota_exceeded") == 409


def test_every_documented_code_has_its_status_in_the_one_table():
    from cfm.errors import HTTP_STATUS
    from cfm.openapi import COMMON_ERRORS, OPERATION_ERRORS

    documented = set(COMMON_ERRORS).union(*OPERATION_ERRORS.values())
    assert documented - set(HTTP_STATUS) == set()  # none left to the 400 a code not listed gets


def test_the_documented_codes_are_the_ones_the_services_answer(schema):
    prepare = schema["paths"]["/api/v1/registrations/{registration_id}/prepare"]["post"]
    for code, status in PREPARE_STATUS.items():
        if code != "not_in_review":
            assert code in _codes(prepare, status), code
    register = schema["paths"]["/api/v1/registrations"]["post"]
    delete = schema["paths"]["/api/v1/registrations/{registration_id}"]["delete"]
    for code, status in REGISTRATION_STATUS.items():
        # deleting is the one operation that answers registration_in_use
        assert code in _codes(delete if code == "registration_in_use" else register, status), code


def test_enumerations_and_examples(schema):
    components = schema["components"]["schemas"]
    assert components["SurveyIn"]["properties"]["timeline"]["enum"] == list(Timeline.values)
    assert components["SurveyIn"]["properties"]["configuration"]["enum"] == list(catalog.CONFIGURATIONS)
    assert components["SurveyIn"]["example"]["timeline"] in Timeline.values
    status = next(p for p in schema["paths"]["/api/v1/registrations"]["get"]["parameters"] if p["name"] == "status")
    assert status["schema"]["anyOf"][0]["enum"] == list(Status.values)
    verdict = components["RegistrationOut"]["properties"]["verdict"]["anyOf"][0]
    assert verdict["enum"] == list(catalog.VERDICTS)
    params = components["DeploymentIn"]["properties"]["parameters"]["anyOf"][0]["properties"]
    assert params["dtype"]["enum"] == ["float16", "bfloat16"] and params["max_new_tokens"]["minimum"] == 20
    assert components["DeploymentIn"]["example"]["software_spec"] in catalog.SOFTWARE_SPECS
    names = {p["name"] for p in schema["paths"]["/api/v1/deployments"]["get"]["parameters"]}
    assert {"offset", "limit", "account"} <= names


def test_the_navigation_and_the_token_page_link_to_the_api_docs(client):
    user, _account = member("dora")
    client.force_login(user)
    docs = reverse("api:openapi-view")
    assert f'href="{docs}" id="nav-api-docs"' in client.get(reverse("dashboard")).content.decode()
    settings_page = client.get(reverse("settings")).content.decode()
    assert f'<a href="{docs}">API documentation</a>' in settings_page and 'href="/api/v1/openapi.json"' in settings_page
    assert client.get(docs).status_code == 200
