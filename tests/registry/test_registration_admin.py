# ruff: noqa: F811  (pytest fixtures imported from actors are redefined as arguments)
"""The admin: registrations and tokens are listed without their secrets, and
its actions go through the services."""
from __future__ import annotations

import pytest
from actors import alice  # noqa: F401
from django.contrib.auth import get_user_model

from cfm.registry.models import Registration, Status
from cfm.registry.services import registration_create


@pytest.fixture
def operator(client, db):
    user = get_user_model().objects.create_superuser("operator", "op@example.com", None)
    client.force_login(user)
    return user


def test_admin_lists_registrations_without_the_token(client, operator, alice):
    registration, _ = registration_create(account=alice.account, user=alice.user, source_kind="hub",
                                          source="org/m", token="hf_admin_must_not_show")
    for url in ("/admin/registry/registration/", f"/admin/registry/registration/{registration.pk}/change/",
                "/admin/accounts/apitoken/", "/admin/accounts/account/", f"/admin/accounts/account/"
                f"{alice.account.pk}/change/", "/admin/accounts/space/"):
        r = client.get(url)
        assert r.status_code == 200, url
        html = r.content.decode()
        assert "hf_admin_must_not_show" not in html
        assert registration.token_encrypted not in html
        assert alice.token not in html


def test_admin_actions_cancel_and_rerun(client, operator, alice):
    registration, _ = registration_create(account=alice.account, user=alice.user, source_kind="hub", source="org/m")
    url = "/admin/registry/registration/"
    client.post(url, {"action": "cancel", "_selected_action": [registration.pk]})
    registration.refresh_from_db()
    assert (registration.status, registration.error_code) == (Status.FAILED, "cancelled")
    client.post(url, {"action": "rerun", "_selected_action": [registration.pk]})
    assert Registration.objects.get(pk=registration.pk).status == Status.QUEUED
