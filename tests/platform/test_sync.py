"""The periodic sync: the platform is the truth about what runs."""
from __future__ import annotations

from platformsupport import deploy, drive


def usage(client, actor) -> dict:
    return client.get(f"/api/v1/accounts/{actor.account.id}/usage", **actor.auth).json()


def test_a_deployment_deleted_behind_cfms_back_is_deleted_and_released_after_one_sync(client, connected,
                                                                                    tiny_archive, platform):
    from cfm.platform.sync import platform_sync

    dep = drive(deploy(client, connected, tiny_archive, "behind").json()["id"])
    assert usage(client, connected)["used_units"] == 1
    platform.delete_behind(dep.platform["deployment_id"])
    result = platform_sync()
    assert (result.spaces, result.gone, result.found) == (1, 1, 0)
    body = client.get(f"/api/v1/deployments/{dep.id}", **connected.auth).json()
    assert body["status"] == "deleted"
    assert "outside cfm" in body["events"][-1]["message"]
    assert usage(client, connected)["used_units"] == 0
    from cfm.quota.services import ledger_verify

    assert ledger_verify(account=connected.account).ok


def test_a_deployment_made_outside_cfm_counts_in_usage_after_one_sync(client, connected, platform):
    from cfm.platform.sync import platform_sync
    from cfm.quota.services import ledger_verify

    outside = platform.add_outside("made_elsewhere", size="gpu_m")
    assert platform_sync().found == 1
    u = usage(client, connected)
    assert u["used_units"] == 2
    [dep] = u["deployments"]
    assert dep["origin"] == "outside" and dep["configuration"] == "medium" and dep["units"] == 2
    assert dep["platform"]["deployment_id"] == outside and dep["serving_name"] == "made_elsewhere"
    assert "gpu_m" in dep["events"][0]["message"]
    client.force_login(connected.user)
    page = client.get(f"/quota/{connected.account.id}/usage/")
    assert page.status_code == 200 and b"made_elsewhere" in page.content and b"outside cfm" in page.content
    detail = client.get(f"/quota/deployments/{dep['id']}/")
    assert detail.status_code == 200 and b"Made outside cfm" in detail.content
    assert platform_sync().found == 0  # known now: not counted twice
    assert usage(client, connected)["used_units"] == 2
    assert ledger_verify(account=connected.account).ok
    # ... and when it goes, its units go with it
    platform.delete_behind(outside)
    assert platform_sync().gone == 1
    assert usage(client, connected)["used_units"] == 0


def test_outside_deployments_count_against_the_limit(client, connected, tiny_archive, platform):
    from cfm.platform.sync import platform_sync

    platform.add_outside("big_one", size="gpu_l")  # 4 units: the whole default limit
    platform_sync()
    r = deploy(client, connected, tiny_archive, "no_room")
    assert r.status_code == 409 and r.json()["error"]["code"] == "quota_exceeded"


def test_a_state_change_is_an_event(client, connected, tiny_archive, platform):
    from cfm.platform.sync import platform_sync

    dep = drive(deploy(client, connected, tiny_archive, "flaky").json()["id"])
    platform.deployments[dep.platform["deployment_id"]]["fixed_state"] = "failed"
    assert platform_sync().changed == 1
    body = client.get(f"/api/v1/deployments/{dep.id}", **connected.auth).json()
    assert body["status"] == "failed" and usage(client, connected)["used_units"] == 0
    assert body["events"][-1]["status"] == "failed"


def test_the_listing_follows_next_href(client, connected, platform):
    from cfm.platform.sync import platform_sync

    platform.page_size = 2
    for i in range(5):
        platform.add_outside(f"outside_{i}", size="gpu_s")
    assert platform_sync().found == 5
    lists = [q for q in platform.requests if q.method == "GET" and q.path == "/ml/v4/deployments"]
    assert len(lists) == 3 and [q.query.get("start") for q in lists] == [None, "2", "4"]
    assert usage(client, connected)["used_units"] == 5


def test_the_admin_sees_drift(admin_client, connected, platform):
    from cfm.platform.sync import platform_sync

    platform.add_outside("drifted", size="gpu_s")
    platform_sync()
    r = admin_client.get("/admin/quota/deployment/?origin__exact=outside")
    assert r.status_code == 200 and b"drifted" in r.content and b"outside cfm" in r.content
    r = admin_client.get("/admin/quota/deployment/?origin__exact=cfm")
    assert r.status_code == 200 and b"drifted" not in r.content


def test_deleting_a_deployment_made_outside_cfm_removes_it_but_keeps_its_asset(client, connected, platform):
    from platformsupport import drive

    from cfm.platform.sync import platform_sync

    outside = platform.add_outside("theirs", size="gpu_s")
    platform_sync()
    [dep] = usage(client, connected)["deployments"]
    assert client.delete(f"/api/v1/deployments/{dep['id']}", **connected.auth).status_code == 202
    assert drive(dep["id"]).state == "deleted"
    calls = [(q.method, q.path) for q in platform.requests if q.method == "DELETE"]
    assert calls == [("DELETE", f"/ml/v4/deployments/{outside}")]
    assert usage(client, connected)["used_units"] == 0


def test_the_operator_command_syncs_now(connected, platform):
    import json
    from io import StringIO

    from django.core.management import call_command

    platform.add_outside("cmd_found", size="gpu_s")
    out = StringIO()
    call_command("cfm_platform_sync", stdout=out)
    assert json.loads(out.getvalue()) == {"spaces": 1, "gone": 0, "found": 1, "changed": 0, "errors": []}
