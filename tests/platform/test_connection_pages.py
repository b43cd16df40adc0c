# ruff: noqa: F811  (pytest fixtures imported from conftest are redefined as arguments)
"""The page of a space's platform connection: owners connect, test and
disconnect a space; secrets are write-only (never on the page, a "set"
badge instead, empty keeps the stored one); a member reads it without
secrets and cannot change it; a stranger gets 404, the anonymous the login
page. Against the platform imitation and moto's S3."""
from __future__ import annotations

import pytest
from django.urls import reverse
from platformsupport import ACCESS_KEY, API_KEY, SECRET_KEY

from cfm.accounts.services import membership_add
from cfm.platform.models import Connection

pytestmark = pytest.mark.django_db


def form_data(platform, s3_url, bucket, **over) -> dict:
    data = {"url": platform.url, "iam_url": platform.url, "api_key": API_KEY, "space_id": "space-1",
            "endpoint": s3_url, "bucket": bucket.name, "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY, "connection_id": "conn-77", "folder_prefix": "cfm"}
    data.update(over)
    return data


def test_an_owner_connects_a_space_and_tests_each_check(client, owner, platform, s3_url, bucket):
    client.force_login(owner.user)
    url = reverse("space_platform", args=[owner.space.pk])
    page = client.get(url).content.decode()
    assert "Plan only" in page and 'name="api_key"' in page
    r = client.post(url, form_data(platform, s3_url, bucket))
    assert r.status_code == 302, r.content.decode()[:2000]
    conn = Connection.objects.get(space=owner.space)
    assert (conn.url, conn.platform_space_id, conn.storage_bucket) == (platform.url, "space-1", bucket.name)
    assert conn.api_key == API_KEY and API_KEY not in conn.api_key_encrypted  # encrypted at rest

    page = client.get(url).content.decode()
    for secret in (API_KEY, ACCESS_KEY, SECRET_KEY):
        assert secret not in page
    assert page.count("secret-set") == 3 and "Connected, not tested" in page

    r = client.post(reverse("space_platform_check", args=[owner.space.pk]), follow=True)
    page = r.content.decode()
    assert 'id="connection-checks"' in page and "The connection works" in page
    for name in ("iam", "deployments", "storage"):
        assert f'data-check="{name}" data-ok="true"' in page
    assert "Connected, tested" in page
    spaces = client.get(reverse("spaces", args=[owner.account.pk])).content.decode()
    assert "Connected" in spaces and "Edit connection" in spaces


def test_saving_with_empty_secrets_keeps_the_stored_ones(client, owner, platform, s3_url, bucket):
    client.force_login(owner.user)
    url = reverse("space_platform", args=[owner.space.pk])
    client.post(url, form_data(platform, s3_url, bucket))
    r = client.post(url, form_data(platform, s3_url, bucket, api_key="", access_key_id="", secret_access_key="",
                                   connection_id="conn-78", folder_prefix="models/team"))
    assert r.status_code == 302
    conn = Connection.objects.get(space=owner.space)
    assert (conn.storage_connection_id, conn.storage_prefix) == ("conn-78", "models/team")
    assert (conn.api_key, conn.access_key_id, conn.secret_access_key) == (API_KEY, ACCESS_KEY, SECRET_KEY)


def test_a_failing_check_says_which_one_and_why(client, owner, platform, s3_url, bucket):
    client.force_login(owner.user)
    url = reverse("space_platform", args=[owner.space.pk])
    client.post(url, form_data(platform, s3_url, bucket, api_key="not-the-key"))
    page = client.post(reverse("space_platform_check", args=[owner.space.pk]), follow=True).content.decode()
    assert 'data-check="iam" data-ok="false"' in page and "The API key was refused." in page
    assert "The connection does not work yet" in page and "Connected, test failed" in page


def test_an_address_outside_the_allowed_prefixes_is_refused_on_its_field(client, owner, platform, s3_url, bucket):
    client.force_login(owner.user)
    url = reverse("space_platform", args=[owner.space.pk])
    r = client.post(url, form_data(platform, s3_url, bucket, url="http://169.254.169.254/latest"))
    assert r.status_code == 400
    html = r.content.decode()
    tag = html.split('name="url"')[1].split(">")[0]
    assert 'aria-invalid="true"' in tag and "CFM_PLATFORM_URLS" in html
    assert not Connection.objects.exists()


def test_the_first_connection_needs_its_secrets(client, owner, platform, s3_url, bucket):
    client.force_login(owner.user)
    r = client.post(reverse("space_platform", args=[owner.space.pk]),
                    form_data(platform, s3_url, bucket, api_key="", secret_access_key=""))
    assert r.status_code == 400 and not Connection.objects.exists()
    html = r.content.decode()
    for name in ("api_key", "secret_access_key"):
        assert 'aria-invalid="true"' in html.split(f'name="{name}"')[1].split(">")[0]


def test_disconnecting_makes_the_space_plan_only_again(client, owner, platform, s3_url, bucket):
    client.force_login(owner.user)
    client.post(reverse("space_platform", args=[owner.space.pk]), form_data(platform, s3_url, bucket))
    r = client.post(reverse("space_platform_delete", args=[owner.space.pk]), follow=True)
    assert "plan-only again" in r.content.decode() and not Connection.objects.exists()


def test_a_member_reads_without_secrets_and_cannot_change_it(client, owner, stranger, platform, s3_url, bucket):
    client.force_login(owner.user)
    url = reverse("space_platform", args=[owner.space.pk])
    client.post(url, form_data(platform, s3_url, bucket))
    membership_add(account=owner.account, user=stranger.user, role="member")
    client.force_login(stranger.user)
    page = client.get(url).content.decode()
    assert platform.url in page and 'name="api_key"' not in page and API_KEY not in page
    r = client.post(url, form_data(platform, s3_url, bucket, connection_id="hijack"))
    assert r.status_code == 403
    client.post(reverse("space_platform_delete", args=[owner.space.pk]))
    assert Connection.objects.get(space=owner.space).storage_connection_id == "conn-77"


def test_a_stranger_gets_404_and_the_anonymous_the_login_page(client, owner, stranger, platform, s3_url, bucket):
    client.force_login(stranger.user)
    for name in ("space_platform", "space_platform_check", "space_platform_delete"):
        assert client.post(reverse(name, args=[owner.space.pk]), form_data(platform, s3_url, bucket)).status_code \
            == 404
    assert client.get(reverse("space_platform", args=[owner.space.pk])).status_code == 404
    client.logout()
    assert client.get(reverse("space_platform", args=[owner.space.pk]))["Location"].startswith(reverse("login"))
    assert not Connection.objects.exists()
