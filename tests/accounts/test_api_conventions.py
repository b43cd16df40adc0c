# ruff: noqa: F811  (pytest fixtures imported from quotafactory are redefined as arguments)
"""What every endpoint under /api/v1/ shares (cfm/api.py and the helpers in
cfm/accounts/api.py): the error envelope for anything the endpoints never see
(a body that is not JSON, a method a path does not take, a path that does not
exist), one pagination with the same bounds on every list, and integers far
beyond any database column answered as input errors or missing ids, never
as a 500. Run on SQLite and on PostgreSQL: their integer limits differ."""
from __future__ import annotations

import json

import pytest
from quotafactory import _fast_passwords, llama, owner, staff, stranger  # noqa: F401

from cfm.accounts.services import space_create
from cfm.apitools import MAX_OFFSET, MAX_PAGE_SIZE
from cfm.quota import services
from cfm.quota.models import Deployment, LimitRequest
from cfm.registry.models import Registration

API = "/api/v1"
HUGE = 99999999999999999999  # beyond a signed 64-bit integer (and SQLite's INTEGER)


def post(client, actor, path, body):
    return client.post(API + path, data=json.dumps(body), content_type="application/json", **actor.auth)


def error_of(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    return response.json()["error"]


# --- huge integers ----------------------------------------------------------------------------------------------

LISTS = ["/registrations", "/deployments", "/limit-requests", "/accounts", "/accounts/{account}/spaces",
         "/registrations/{registration}/prepare-jobs"]


@pytest.fixture
def ids(owner, llama):
    return {"account": owner.account.id, "registration": llama.id, "space": owner.space.id}


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("param", ["offset", "limit"])
def test_a_huge_offset_or_limit_on_any_list_answers_400_naming_it(client, owner, ids, path, param):
    r = client.get(API + path.format(**ids) + f"?{param}={HUGE}", **owner.auth)
    assert r.status_code == 400, r.content[:300]
    err = error_of(r)
    assert err["code"] == "invalid" and set(err["fields"]) == {param}


@pytest.mark.parametrize("path", [
    "/registrations?account={huge}", "/deployments?account={huge}", "/limit-requests?account={huge}",
    "/accounts/{huge}/spaces", "/accounts/{huge}/usage", "/registrations/{huge}", "/registrations/{huge}/report",
    "/registrations/{huge}/prepare-jobs", "/deployments/{huge}", "/prepare-jobs/{huge}",
])
def test_a_huge_id_in_a_path_or_query_is_an_id_that_does_not_exist(client, owner, path):
    r = client.get(API + path.format(huge=HUGE), **owner.auth)
    assert r.status_code == 404, r.content[:300]
    assert error_of(r)["code"] == "not_found"


@pytest.mark.parametrize("method, path", [
    ("delete", "/deployments/{huge}"), ("post", "/registrations/{huge}/rerun"),
    ("post", "/registrations/{huge}/cancel"), ("delete", "/registrations/{huge}"),
    ("delete", "/registrations/{huge}/token"), ("post", "/registrations/{huge}/prepare"),
    ("post", "/prepare-jobs/{huge}/cancel"),
])
def test_a_huge_id_in_a_write_path_is_an_id_that_does_not_exist(client, owner, method, path):
    r = getattr(client, method)(API + path.format(huge=HUGE), **owner.auth)
    assert r.status_code == 404, r.content[:300]
    assert error_of(r)["code"] == "not_found"


@pytest.mark.parametrize("path, body, status, field", [
    ("/limit-requests", {"account": "{account}", "units": HUGE, "reason": "x"}, 400, "units"),
    ("/limit-requests", {"account": HUGE, "units": 8, "reason": "x"}, 404, None),
    ("/deployments", {"registration": HUGE, "space": "{space}", "serving_name": "n1"}, 404, None),
    ("/deployments", {"registration": "{registration}", "space": HUGE, "serving_name": "n1"}, 404, None),
    ("/deployments", {"registration": "{registration}", "space": "{space}", "serving_name": "n1",
                      "parameters": {"max_batch_size": HUGE}}, 422, "parameters.max_batch_size"),
    ("/surveys", {"account": "{account}", "configuration": "small", "count": HUGE}, 400, "count"),
    ("/surveys", {"account": HUGE, "configuration": "small"}, 404, None),
    ("/surveys", {"account": "{account}", "refusal": HUGE, "configuration": "small"}, 404, None),
    ("/registrations", {"account": HUGE, "source": "org/x"}, 404, None),
])
def test_a_huge_integer_in_a_body_is_refused_without_reaching_the_database(client, owner, ids, path, body, status,
                                                                            field):
    body = {k: ids[v[1:-1]] if isinstance(v, str) and v.startswith("{") else v for k, v in body.items()}
    r = post(client, owner, path, body)
    assert r.status_code == status, r.content[:300]
    err = error_of(r)
    if field:
        assert field in err["fields"], err
    assert not LimitRequest.objects.exists() and not Deployment.objects.exists()


def test_a_huge_account_in_a_multipart_registration_is_an_account_that_does_not_exist(client, owner):
    r = client.post(f"{API}/registrations", {"account": str(HUGE), "source": "org/x"}, **owner.auth)
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"
    assert not Registration.objects.exists()


# --- one pagination ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("query, field", [
    ("offset=-1", "offset"), (f"offset={MAX_OFFSET + 1}", "offset"), ("offset=ten", "offset"),
    ("limit=0", "limit"), (f"limit={MAX_PAGE_SIZE + 1}", "limit"), ("limit=1.5", "limit"), ("limit=", "limit"),
])
def test_every_list_refuses_the_same_out_of_range_offsets_and_limits(client, owner, ids, path, query, field):
    r = client.get(API + path.format(**ids) + "?" + query, **owner.auth)
    assert r.status_code == 400, r.content[:300]
    assert set(error_of(r)["fields"]) == {field}


@pytest.mark.parametrize("path", LISTS)
def test_every_list_accepts_the_bounds_themselves(client, owner, ids, path):
    for query in ("offset=0&limit=1", f"offset={MAX_OFFSET}&limit={MAX_PAGE_SIZE}"):
        r = client.get(API + path.format(**ids) + "?" + query, **owner.auth)
        assert r.status_code == 200, (query, r.content[:300])


def test_deployments_and_limit_requests_page_by_limit_with_a_next_link(client, owner, staff, llama):
    for i in range(3):
        services.deployment_request(user=owner.user, registration=llama, space=owner.space, serving_name=f"d{i}")
    for units in (8, 9, 10):
        req = services.limit_request_create(user=owner.user, account=owner.account, units=units, reason="r")
        services.limit_request_deny(user=staff.user, request=req, answer="no")
    for path in ("/deployments", "/limit-requests"):
        first = client.get(f"{API}{path}?limit=2", **owner.auth).json()
        rest = client.get(first["next"], **owner.auth).json()
        assert (len(first["items"]), len(rest["items"]), rest["next"]) == (2, 1, None), path
        assert "limit=2" in first["next"] and "offset=2" in first["next"]


def test_spaces_page_up_to_the_maximum_page_size(client, owner):
    for i in range(MAX_PAGE_SIZE):
        space_create(account=owner.account, name=f"s{i:03}")
    r = client.get(f"{API}/accounts/{owner.account.id}/spaces?limit={MAX_PAGE_SIZE}", **owner.auth).json()
    assert len(r["items"]) == MAX_PAGE_SIZE and r["next"]


def test_an_unknown_registration_status_filter_answers_400_with_the_allowed_values(client, owner, llama):
    r = client.get(f"{API}/registrations?status=bogus", **owner.auth)
    assert r.status_code == 400
    message = error_of(r)["fields"]["status"]
    for status in ("queued", "fetching", "inspecting", "done", "failed"):
        assert status in message
    done = client.get(f"{API}/registrations?status=done", **owner.auth).json()
    assert [i["id"] for i in done["items"]] == [llama.id]


# --- the envelope where the endpoints are never reached ----------------------------------------------------------

@pytest.mark.parametrize("path", ["/deployments", "/limit-requests", "/surveys", "/registrations"])
@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe\x00", b'{"a": 1'])
def test_a_body_that_is_not_json_answers_the_same_400_everywhere(client, owner, path, raw):
    r = client.post(API + path, data=raw, content_type="application/json", **owner.auth)
    assert r.status_code == 400
    err = error_of(r)
    assert err["code"] == "invalid" and err["fields"] == {"body": "not JSON"} and err["message"]
    assert "Cannot parse" not in err["message"]


def test_a_method_a_path_does_not_take_answers_405_in_the_envelope(client, owner, llama):
    for method, path in (("put", "/accounts"), ("patch", f"/registrations/{llama.id}"), ("get", "/surveys")):
        r = getattr(client, method)(API + path, **owner.auth)
        assert r.status_code == 405, (method, path)
        err = error_of(r)
        assert err["code"] == "method_not_allowed" and method.upper() in err["message"]
        assert r["Allow"]
    assert set(client.put(f"{API}/accounts").headers["Allow"].replace(" ", "").split(",")) == {"GET"}


@pytest.mark.parametrize("path", ["/nonexistent", "/accounts/", "/registrations/1/nothing", "/v2/accounts"])
def test_a_path_that_does_not_exist_under_the_api_answers_404_in_the_envelope(client, owner, path, settings):
    settings.DEBUG = True  # Django's debug 404 page lists every URL pattern: never for the API
    for auth in (owner.auth, {}):
        r = client.get(API + path, **auth)
        assert r.status_code == 404
        assert error_of(r)["code"] == "not_found"
        assert b"urlpatterns" not in r.content.lower() and b"<html" not in r.content.lower()


def test_pages_outside_the_api_keep_their_html_404(client, db):
    assert not client.get("/no-such-page/")["Content-Type"].startswith("application/json")
