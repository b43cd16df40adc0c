"""PUT/GET/DELETE /spaces/{id}/platform and the check, against the imitation and moto."""
from __future__ import annotations

import json

from platformsupport import ACCESS_KEY, API_KEY, SECRET_KEY, connection_body


def put(client, actor, space_id, body):
    return client.put(f"/api/v1/spaces/{space_id}/platform", data=json.dumps(body),
                      content_type="application/json", **actor.auth)


def test_put_answers_the_connection_without_its_secrets(client, owner, platform, s3_url, bucket):
    r = put(client, owner, owner.space.id, connection_body(platform, s3_url, bucket))
    assert r.status_code == 200, r.content
    body = r.json()
    assert body == {"url": platform.url, "iam_url": platform.url, "space_id": "space-1",
                    "storage": {"endpoint": s3_url, "bucket": bucket.name, "connection_id": "conn-77",
                                "prefix": "cfm"},
                    "api_key_set": True, "secret_set": True,
                    "check": {"ok": None, "message": None, "checked_at": None}}
    assert API_KEY not in r.content.decode() and SECRET_KEY not in r.content.decode()
    got = client.get(f"/api/v1/spaces/{owner.space.id}/platform", **owner.auth)
    assert got.status_code == 200 and got.json() == body


def test_secrets_are_encrypted_at_rest_and_kept_by_a_put_without_them(client, owner, platform, s3_url, bucket):
    from cfm.platform.models import Connection

    assert put(client, owner, owner.space.id, connection_body(platform, s3_url, bucket)).status_code == 200
    row = Connection.objects.get(space=owner.space)
    stored = " ".join([row.api_key_encrypted, row.storage_secret_encrypted, row.storage_access_key_encrypted])
    assert API_KEY not in stored and SECRET_KEY not in stored and ACCESS_KEY not in stored
    body = connection_body(platform, s3_url, bucket, space_id="space-2")
    del body["api_key"]
    del body["storage"]["secret_access_key"], body["storage"]["access_key_id"]
    r = put(client, owner, owner.space.id, body)
    assert r.status_code == 200, r.content
    row.refresh_from_db()
    assert (row.api_key, row.secret_access_key, row.access_key_id, row.platform_space_id) == (
        API_KEY, SECRET_KEY, ACCESS_KEY, "space-2")


def test_defaults_for_iam_url_and_prefix(client, owner, platform, s3_url, bucket, settings):
    settings.CFM_PLATFORM_URLS = [platform.url, "https://iam.cloud.ibm.com"]
    body = connection_body(platform, s3_url, bucket)
    del body["iam_url"], body["storage"]["prefix"]
    r = put(client, owner, owner.space.id, body)
    assert r.status_code == 200, r.content
    assert r.json()["iam_url"] == "https://iam.cloud.ibm.com" and r.json()["storage"]["prefix"] == "cfm"


def test_a_url_outside_the_allowed_prefixes_is_a_400_naming_the_field(client, owner, platform, s3_url, bucket):
    for field, body in (
            ("url", connection_body(platform, s3_url, bucket, url="http://169.254.169.254/latest")),
            ("iam_url", connection_body(platform, s3_url, bucket, iam_url=platform.url + ".evil.example")),
            ("url", connection_body(platform, s3_url, bucket, url=platform.url.replace("http://", "http://x@")))):
        r = put(client, owner, owner.space.id, body)
        assert r.status_code == 400, r.content
        assert r.json()["error"]["code"] == "invalid" and field in r.json()["error"]["fields"]
    body = connection_body(platform, s3_url, bucket)
    body["storage"]["endpoint"] = "http://127.0.0.1:1"
    r = put(client, owner, owner.space.id, body)
    assert r.status_code == 400 and set(r.json()["error"]["fields"]) == {"storage.endpoint"}


def test_the_default_prefixes_are_the_platform_regions(settings):
    from cfm.platform import hosts

    settings.CFM_PLATFORM_URLS = __import__("cfm.settings", fromlist=["x"]).CFM_PLATFORM_URLS
    assert hosts.platform_url("https://jp-tok.ml.cloud.ibm.com/") == "https://jp-tok.ml.cloud.ibm.com"
    assert hosts.platform_url("https://jp-tok.ml.cloud.ibm.com.evil.example") is None
    assert hosts.platform_url("https://iam.cloud.ibm.com") == "https://iam.cloud.ibm.com"


def test_missing_fields_are_named(client, owner, platform):
    r = put(client, owner, owner.space.id, {"url": platform.url})
    assert r.status_code == 400
    assert {"space_id", "api_key", "storage"} <= set(r.json()["error"]["fields"])
    r = client.put(f"/api/v1/spaces/{owner.space.id}/platform", data="{nope", content_type="application/json",
                   **owner.auth)
    assert r.status_code == 400 and r.json()["error"]["fields"] == {"body": "not JSON"}


def test_members_read_owners_write_strangers_get_404(client, owner, stranger, platform, s3_url, bucket):
    from actors import member

    from cfm.accounts.models import Membership
    from cfm.accounts.tokens import token_create

    assert put(client, owner, owner.space.id, connection_body(platform, s3_url, bucket)).status_code == 200
    user, _acc = member("mia")
    Membership.objects.create(account=owner.account, user=user, role="member")
    _t, raw = token_create(user=user, name="t")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    base = f"/api/v1/spaces/{owner.space.id}/platform"
    assert client.get(base, **auth).status_code == 200
    r = client.put(base, data=json.dumps(connection_body(platform, s3_url, bucket)), content_type="application/json",
                   **auth)
    assert r.status_code == 403 and r.json()["error"]["code"] == "owner_only"
    assert client.delete(base, **auth).json()["error"]["code"] == "owner_only"
    assert client.post(base + "/check", **auth).json()["error"]["code"] == "owner_only"
    for method in ("get", "delete"):
        assert getattr(client, method)(base, **stranger.auth).status_code == 404
    assert client.post(base + "/check", **stranger.auth).status_code == 404
    assert client.get(base).status_code == 401


def test_delete_makes_the_space_plan_only(client, owner, platform, s3_url, bucket):
    base = f"/api/v1/spaces/{owner.space.id}/platform"
    assert put(client, owner, owner.space.id, connection_body(platform, s3_url, bucket)).status_code == 200
    assert client.delete(base, **owner.auth).status_code == 204
    assert client.get(base, **owner.auth).status_code == 404
    assert client.delete(base, **owner.auth).status_code == 404


def test_check_gets_a_token_lists_deployments_and_writes_then_deletes_an_object(client, connected, platform,
                                                                                 bucket):
    from platformsupport import bucket_objects

    r = client.post(f"/api/v1/spaces/{connected.space.id}/platform/check", **connected.auth)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["ok"] is True and [c["name"] for c in body["checks"]] == ["iam", "deployments", "storage"]
    assert all(c["ok"] for c in body["checks"])
    assert [(q.method, q.path) for q in platform.requests] == [("POST", "/identity/token"),
                                                             ("GET", "/ml/v4/deployments")]
    assert platform.requests[1].query == {"space_id": "space-1", "version": platform.requests[1].query["version"]}
    assert bucket_objects(bucket) == {}  # written, then deleted
    conn = client.get(f"/api/v1/spaces/{connected.space.id}/platform", **connected.auth).json()
    assert conn["check"]["ok"] is True and conn["check"]["checked_at"].endswith("Z")


def test_check_says_which_part_fails(client, connected, platform, bucket):
    from cfm.platform.models import Connection

    platform.api_keys = {"another-key"}
    body = client.post(f"/api/v1/spaces/{connected.space.id}/platform/check", **connected.auth).json()
    assert body["ok"] is False
    assert body["checks"][0] == {"name": "iam", "ok": False, "message": "The API key was refused."}
    assert body["checks"][-1]["name"] == "storage" and body["checks"][-1]["ok"] is True
    Connection.objects.filter(space=connected.space).update(storage_bucket="no-such-bucket")
    platform.api_keys = {API_KEY}
    platform.forbidden_spaces = {"space-1"}
    body = client.post(f"/api/v1/spaces/{connected.space.id}/platform/check", **connected.auth).json()
    assert [c["ok"] for c in body["checks"]] == [True, False, False]
    assert "space-1" in body["checks"][1]["message"] and "no-such-bucket" in body["checks"][2]["message"]
