# ruff: noqa: F811  (pytest fixtures imported from conftest are redefined as arguments)
"""The deployment's page, against the imitation and moto: the state badge,
the upload's bytes, every step an event, the inference URL once ready,
failures explained with what to do (the platform's own limit with the same
notice, survey and increase request as a cfm refusal), "Reserved — not
deployed" with the request bodies in a plan-only space, polling that stops
once nothing moves; and the usage page with a deployment made outside
cfm. The owner, a stranger (404) and the anonymous visitor."""
from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation
from platformsupport import drive

from cfm.quota.models import Deployment

pytestmark = pytest.mark.django_db


def deploy_page(client, actor, registration, name: str) -> Deployment:
    """Deploy through the form, as a user does; returns the new deployment."""
    client.force_login(actor.user)
    page = client.get(reverse("quota:deploy", args=[registration.pk])).content.decode()
    key = page.split('name="idempotency_key"')[1].split('value="')[1].split('"')[0]
    r = client.post(reverse("quota:deploy", args=[registration.pk]),
                    {"space": actor.space.pk, "configuration": "small", "serving_name": name,
                     "idempotency_key": key,
                     "software_spec": registration.report["recommended_software_spec"]})
    assert r.status_code == 302, r.content.decode()[:3000]
    dep = Deployment.objects.get(serving_name=name)
    assert r["Location"] == reverse("quota:deployment", args=[dep.pk])
    return dep


def test_a_real_deployment_page_follows_it_to_ready_with_every_step(client, connected, tiny_archive, platform):
    dep = deploy_page(client, connected, tiny_archive, "tiny_page")
    url = reverse("quota:deployment", args=[dep.pk])
    page = client.get(url).content.decode()
    assert 'data-state="uploading"' in page and "hx-trigger" in page  # it polls while it moves
    assert "Reserved — not deployed" not in page

    dep = drive(dep.pk)
    assert dep.state == "ready"
    live = client.get(reverse("quota:deployment_live", args=[dep.pk])).content.decode()
    assert "hx-trigger" not in live  # ready: polling stops
    page = client.get(url).content.decode()
    assert 'class="badge badge-dep badge-dep-ready"' in page
    assert f'value="{dep.platform["inference_url"]}"' in page
    assert dep.platform["deployment_id"] in page and dep.platform["asset_id"] in page
    events = page.split('id="events"')[1]
    for state in ("uploading", "creating", "initializing", "ready"):
        assert f'<li data-state="{state}"' in events, state
    assert "Uploaded" in events and "Model asset" in events

    usage = client.get(reverse("quota:usage", args=[connected.account.pk])).content.decode()
    assert 'badge-dep-ready' in usage and "tiny_page" in usage


def test_the_upload_shows_its_progress_in_bytes(client, connected, tiny_archive, platform):
    dep = deploy_page(client, connected, tiny_archive, "tiny_bytes")
    Deployment.objects.filter(pk=dep.pk).update(progress={"bytes_done": 1_234_567, "bytes_total": 5_000_000,
                                                          "files_done": 1, "files_total": 4})
    page = client.get(reverse("quota:deployment", args=[dep.pk])).content.decode()
    assert 'id="upload-progress"' in page and "1,234,567 of 5,000,000 bytes" in page
    assert 'aria-valuenow="1234567"' in page


def test_a_failure_says_why_and_what_to_do(client, connected, tiny_archive, platform):
    platform.fail_deployment("Deployment failed: insufficient resources for gpu_s", on="initializing")
    dep = drive(deploy_page(client, connected, tiny_archive, "too_small").pk)
    assert dep.state == "failed"
    page = client.get(reverse("quota:deployment", args=[dep.pk])).content.decode()
    assert "badge-dep-failed" in page and "The deployment failed." in page
    assert "insufficient resources" in page and "Medium" in page and "units were released" in page
    with translation.override("ja"):
        client.cookies["django_language"] = "ja"
        ja = client.get(reverse("quota:deployment", args=[dep.pk]), HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert 'lang="ja"' in ja and "デプロイメントは失敗しました" in ja


def test_the_platforms_own_limit_shows_the_limit_notice_with_the_survey(client, connected, tiny_archive, platform):
    platform.fail_deployment("The number of deployments exceeds the account limit", code="deployment_limit_reached",
                             on="create")
    dep = drive(deploy_page(client, connected, tiny_archive, "at_limit").pk)
    page = client.get(reverse("quota:deployment", args=[dep.pk])).content.decode()
    assert 'id="limit-notice"' in page
    assert dep.error["survey_url"].replace("&", "&amp;") in page or dep.error["survey_url"] in page
    assert dep.error["increase_request_url"] in page


def test_a_plan_only_deployment_is_reserved_not_deployed_with_the_request_bodies(client, owner, llama):
    dep = deploy_page(client, owner, llama, "plan_only")
    page = client.get(reverse("quota:deployment", args=[dep.pk])).content.decode()
    assert "Reserved — not deployed" in page and 'id="request-bodies"' in page and "hx-trigger" not in page
    assert "model_location" in page and "&lt;CONNECTION_ID&gt;" in page
    assert reverse("space_platform", args=[owner.space.pk]) in page  # the owner may connect the space


def test_deleting_a_real_deployment_shows_it_deleting_then_deleted(client, connected, tiny_archive, platform):
    dep = drive(deploy_page(client, connected, tiny_archive, "to_delete").pk)
    r = client.post(reverse("quota:deployment_delete", args=[dep.pk]), follow=True)
    assert "is being deleted" in r.content.decode()
    page = client.get(reverse("quota:deployment", args=[dep.pk])).content.decode()
    assert "badge-dep-deleting" in page and "hx-trigger" in page and "Delete deployment" not in page
    dep = drive(dep.pk)
    assert dep.state == "deleted"
    page = client.get(reverse("quota:deployment", args=[dep.pk])).content.decode()
    assert "badge-dep-deleted" in page and "hx-trigger" not in page


def test_usage_shows_a_deployment_made_outside_cfm(client, connected, platform):
    from cfm.platform.sync import platform_sync

    platform.add_outside("made_elsewhere", size="gpu_m")
    platform_sync()
    client.force_login(connected.user)
    page = client.get(reverse("quota:usage", args=[connected.account.pk])).content.decode()
    row = page.split("<code>made_elsewhere</code>")[1].split("</tr>")[0]
    assert "tag-outside" in row and "outside cfm" in row


def test_a_stranger_gets_404_and_the_anonymous_the_login_page(client, owner, stranger, llama):
    dep = deploy_page(client, owner, llama, "mine_only")
    client.force_login(stranger.user)
    for name in ("quota:deployment", "quota:deployment_live"):
        assert client.get(reverse(name, args=[dep.pk])).status_code == 404
    client.logout()
    assert client.get(reverse("quota:deployment_live", args=[dep.pk]))["Location"].startswith(reverse("login"))
