"""The lists at scale (issue 12): verdict and configuration are columns
written with the report, per-account counts are kept by the database's
triggers, and the dashboard, the API list and the admin list cost the same
number of queries whatever the number of registrations, reading no report
JSON. Runs on SQLite, and on PostgreSQL when DATABASE_URL is set."""
from __future__ import annotations

import re

import pytest
from actors import make_actor
from django.db import connection
from django.db.models import Count, Q
from django.test.utils import CaptureQueriesContext

from cfm.accounts.models import Account
from cfm.registry.models import Registration, RegistrationCounts, SourceKind, Status

READY = {"deployable": True, "configuration": "small", "preparation": [], "checks": [], "verdict": "ready"}
PREPARE = {"deployable": True, "configuration": "medium", "preparation": ["fix_rope_scaling"], "checks": []}
REFUSED = {"deployable": False, "configuration": None, "checks": []}
UNCERTIFIED_OLD = {"deployable": True, "configuration": "large", "preparation": [],
                   "checks": [{"id": "architecture", "status": "warn"}]}


def make(account, user, n: int = 1, **fields) -> list[Registration]:
    return [Registration.objects.create(account=account, created_by=user, source_kind=SourceKind.HUB,
                                        source=f"org/m{Registration.objects.count()}-{i}", **fields)
            for i in range(n)]


def counted(account) -> dict:
    """What the triggers must have kept, counted from the rows themselves."""
    got = Registration.objects.filter(account_id=account.pk).aggregate(
        total=Count("id"),
        deployable=Count("id", filter=Q(status=Status.DONE, verdict__in=["ready", "prepare", "uncertified"])),
        active=Count("id", filter=Q(status__in=["queued", "fetching", "inspecting"])))
    return got


def kept(account) -> dict:
    row = RegistrationCounts.objects.filter(account_id=account.pk).values("total", "deployable", "active").first()
    return row or {"total": 0, "deployable": 0, "active": 0}


# --- the columns ----------------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_columns_follow_every_way_a_report_is_written():
    alice = make_actor("alice")
    (reg,) = make(alice.account, alice.user, status=Status.DONE, report=READY)
    assert (reg.verdict, reg.configuration) == ("ready", "small")
    Registration.objects.filter(pk=reg.pk).update(report=PREPARE)
    reg.refresh_from_db()
    assert (reg.verdict, reg.configuration, reg.deployable) == ("prepare", "medium", True)
    # A report written before the verdict field: the same rule, applied to its fields.
    Registration.objects.filter(pk=reg.pk).update(report=UNCERTIFIED_OLD)
    reg.refresh_from_db()
    assert (reg.verdict, reg.configuration) == ("uncertified", "large")
    reg.report = REFUSED
    reg.save(update_fields=["report"])
    reg.refresh_from_db()
    assert (reg.verdict, reg.configuration, reg.deployable) == ("refused", "", False)
    Registration.objects.filter(pk=reg.pk).update(report=None)
    reg.refresh_from_db()
    assert (reg.verdict, reg.configuration, reg.deployable) == ("", "", False)
    (bulk,) = Registration.objects.bulk_create([Registration(account=alice.account, created_by=alice.user,
                                                             source_kind=SourceKind.HUB, source="org/bulk",
                                                             status=Status.DONE, report=READY)])
    bulk = Registration.objects.get(source="org/bulk")
    assert (bulk.verdict, bulk.configuration) == ("ready", "small")


# --- the counts -----------------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_kept_counts_equal_the_rows_through_every_change():
    alice, bob = make_actor("alice"), make_actor("bob")
    assert kept(alice.account) == counted(alice.account) == {"total": 0, "deployable": 0, "active": 0}
    queued = make(alice.account, alice.user, 3)
    assert kept(alice.account) == counted(alice.account) == {"total": 3, "deployable": 0, "active": 3}
    done = make(alice.account, alice.user, 2, status=Status.DONE, report=READY)
    refused = make(alice.account, alice.user, 1, status=Status.DONE, report=REFUSED)
    make(bob.account, bob.user, 4, status=Status.DONE, report=PREPARE)
    assert kept(alice.account) == counted(alice.account) == {"total": 6, "deployable": 2, "active": 3}
    assert kept(bob.account) == counted(bob.account) == {"total": 4, "deployable": 4, "active": 0}
    # a job runs and ends with a report; a heartbeat changes nothing counted
    Registration.objects.filter(pk=queued[0].pk).update(status=Status.INSPECTING, progress_done=5)
    Registration.objects.filter(pk=queued[0].pk).update(progress_done=9)
    Registration.objects.filter(pk=queued[0].pk).update(status=Status.DONE, report=PREPARE)
    # a re-run of a done registration keeps its report, is active again, then fails
    Registration.objects.filter(pk=done[0].pk).update(status=Status.QUEUED)
    Registration.objects.filter(pk=done[0].pk).update(status=Status.FAILED, error_code="timeout")
    # a new report turns a refused model deployable
    Registration.objects.filter(pk=refused[0].pk).update(report=READY)
    # many rows at once (the admin's cancel), a save(), a delete
    Registration.objects.filter(account=alice.account, status=Status.QUEUED).update(status=Status.FAILED)
    done[1].status = Status.QUEUED
    done[1].save()
    queued[2].delete()
    assert kept(alice.account) == counted(alice.account)
    assert kept(bob.account) == counted(bob.account) == {"total": 4, "deployable": 4, "active": 0}
    # deleting an account takes its registrations and its counts
    Account.objects.filter(pk=alice.account.pk).delete()
    assert not RegistrationCounts.objects.filter(account_id=alice.account.pk).exists()
    assert kept(bob.account) == counted(bob.account)


@pytest.mark.django_db
def test_the_dashboard_shows_the_kept_counts_and_total(client):
    alice = make_actor("alice")
    make(alice.account, alice.user, 3)
    make(alice.account, alice.user, 2, status=Status.DONE, report=READY)
    make(alice.account, alice.user, 1, status=Status.DONE, report=REFUSED)
    client.force_login(alice.user)
    html = client.get("/dashboard/").content.decode()
    stats = [int(v) for v in re.findall(r'<span class="value">(\d+)</span>', html)]
    assert stats[:3] == [6, 2, 3]


# --- constant query counts ------------------------------------------------------------------------------------------
def _queries(client, url: str, headers: dict) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, **headers)
    assert response.status_code == 200, response.content[:300]
    return [q["sql"] for q in ctx.captured_queries]


@pytest.mark.django_db
def test_the_three_lists_cost_the_same_queries_at_any_size_and_read_no_report(client):
    alice = make_actor("alice")
    alice.user.is_staff = alice.user.is_superuser = True
    alice.user.save()
    client.force_login(alice.user)
    lists = {"dashboard": ("/dashboard/", {}),
             "api": (f"/api/v1/registrations?account={alice.account.id}", alice.auth),
             "admin": ("/admin/registry/registration/", {})}
    make(alice.account, alice.user, 2, status=Status.DONE, report=READY)
    small = {name: _queries(client, url, h) for name, (url, h) in lists.items()}
    Registration.objects.bulk_create(
        Registration(account=alice.account, created_by=alice.user, source_kind=SourceKind.HUB, source=f"org/b{i}",
                     status=Status.DONE if i % 3 else Status.QUEUED, report=READY if i % 2 else PREPARE)
        for i in range(250))
    large = {name: _queries(client, url, h) for name, (url, h) in lists.items()}
    for name in lists:
        assert len(large[name]) == len(small[name]), (name, large[name])
        # The list queries name the columns, never the report JSON (nor the token).
        for sql in large[name]:
            if "registry_registration" in sql and "SELECT" in sql:
                assert '"registry_registration"."report"' not in sql, (name, sql)
                # (only whether there is a token: `NOT (token_encrypted = '') AS has_token`)
                assert not re.search(r'"registry_registration"\."token_encrypted"(?! = \'\')', sql), (name, sql)
    # and they show what the columns hold: the API gives verdict and configuration
    items = client.get(lists["api"][0], **alice.auth).json()["items"]
    done = {(i["verdict"], i["configuration"]) for i in items if i["status"] == "done"}
    assert done == {("ready", "small"), ("prepare", "medium")}
    # null until the inspection is done (a queued re-run does not show the previous verdict)
    assert {(i["verdict"], i["configuration"]) for i in items if i["status"] != "done"} == {(None, None)}
    assert len(items) == 50


# --- the migration --------------------------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_the_migration_backfills_the_columns_and_the_counts_of_stored_reports():
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("registry", "0004_registration_job")], [("registry", "0005_list_columns")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps
        user = old.get_model("auth", "User").objects.create(username="old")
        account = old.get_model("accounts", "Account").objects.create(name="old team", plan="standard")
        OldRegistration = old.get_model("registry", "Registration")
        for i, (status, report) in enumerate([(Status.DONE, READY), (Status.DONE, PREPARE), (Status.DONE, REFUSED),
                                              (Status.DONE, UNCERTIFIED_OLD), (Status.QUEUED, None),
                                              (Status.FAILED, READY)]):
            OldRegistration.objects.create(account_id=account.pk, created_by_id=user.pk, source_kind="hub",
                                           source=f"org/old{i}", status=status, report=report)
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        rows = {r.source: (r.verdict, r.configuration) for r in Registration.objects.filter(account_id=account.pk)}
        assert rows == {"org/old0": ("ready", "small"), "org/old1": ("prepare", "medium"), "org/old2": ("refused", ""),
                        "org/old3": ("uncertified", "large"), "org/old4": ("", ""), "org/old5": ("ready", "small")}
        assert kept(account) == counted(account) == {"total": 6, "deployable": 3, "active": 1}
        # and the triggers run from here on
        Registration.objects.filter(source="org/old4").update(status=Status.DONE, report=READY)
        assert kept(account) == counted(account) == {"total": 6, "deployable": 4, "active": 0}
    finally:
        MigrationExecutor(connection).loader.build_graph()
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
