"""Races on the real PostgreSQL: many requests at once, each thread on its
own connection, all released together by a barrier. The account row lock
must let exactly as many through as the limit allows."""
from __future__ import annotations

import json
import threading

import pytest
from quotafactory import make_actor, make_registration, need

from cfm.quota import services
from cfm.quota.models import Deployment, IdempotencyRecord, Refusal

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def _race(n, work):
    from django.db import connection

    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i):
        try:
            barrier.wait(timeout=10)
            results[i] = ("ok", work(i))
        except services.DeploymentRefused as exc:
            results[i] = (exc.code, exc)
        except Exception as exc:  # noqa: BLE001 - the test reports any other failure
            results[i] = ("crash", repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def _need_postgres():
    from django.db import connection

    need(connection.vendor == "postgresql", "the concurrency tests need PostgreSQL (set DATABASE_URL)")


def test_twenty_four_concurrent_small_requests_reserve_exactly_four_and_the_ledger_balances():
    _need_postgres()
    actor = make_actor("racer")
    reg = make_registration(actor.account)
    results = _race(24, lambda i: services.deployment_request(
        user=actor.user, registration=reg, space=actor.space, configuration="small", serving_name=f"race_{i}"))
    codes = [r[0] for r in results]
    assert codes.count("ok") == 4, codes
    assert codes.count("quota_exceeded") == 20, codes
    usage = services.quota_usage(account=actor.account)
    assert (usage.used_units, len(usage.deployments)) == (4, 4)
    assert Refusal.objects.filter(account=actor.account).count() == 20
    check = services.ledger_verify(account=actor.account)
    assert check.ok, check.problems


def test_the_same_idempotency_key_sent_concurrently_reserves_once():
    _need_postgres()
    actor = make_actor("retrier")
    reg = make_registration(actor.account)
    results = _race(8, lambda i: services.deployment_request(
        user=actor.user, registration=reg, space=actor.space, serving_name="once", idempotency_key="k-1"))
    assert [r[0] for r in results].count("ok") == 8, results
    assert len({r[1].deployment.pk for r in results}) == 1
    assert len({json.dumps(r[1].body, sort_keys=True) for r in results}) == 1
    assert Deployment.objects.filter(account=actor.account).count() == 1
    assert IdempotencyRecord.objects.filter(user=actor.user).count() == 1
    assert services.quota_usage(account=actor.account).used_units == 1


def test_the_same_limit_request_sent_concurrently_is_filed_once():
    _need_postgres()
    actor = make_actor("asker")

    def ask(i):
        try:
            return services.limit_request_create(user=actor.user, account=actor.account, units=8, reason=f"r{i}").pk
        except services.LimitRequestPending as exc:
            return ("pending", exc.extra["limit_request"])

    results = _race(8, ask)
    filed = [r[1] for r in results if not isinstance(r[1], tuple)]
    pending = [r[1][1] for r in results if isinstance(r[1], tuple)]
    assert len(filed) == 1 and len(pending) == 7, results
    assert set(pending) == set(filed)
    assert actor.account.limit_requests.count() == 1
