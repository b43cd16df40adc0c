"""Prepare jobs travel on a queue of their own (cfm-prepare), inspections and
the sweepers on the default one: a worker started with `-Q celery` is never
blocked by hours of downloads and conversions. Checked on the real Redis, in
a database number of this test's own (no worker listens there)."""
from __future__ import annotations

import os

import pytest
from needs import need
from worker_support import broker_at

pytestmark = pytest.mark.services


@pytest.fixture
def quiet_redis():
    url = os.environ.get("REDIS_URL", "")
    need(bool(url), "REDIS_URL is not set: the queue test needs the real Redis")
    import redis

    base, _, db = url.rpartition("/")
    other = f"{base}/{15 if db != '15' else 14}"
    client = redis.Redis.from_url(other, socket_connect_timeout=1)
    client.flushdb()
    yield other, client
    client.flushdb()


def test_prepare_jobs_and_inspections_are_sent_to_separate_queues(quiet_redis, db):
    from cfm.jobs import runtime
    from cfm.jobs.models import Job
    from cfm.jobs.tasks import sweep

    prepare = Job.objects.create(kind="prepare", subject_id=1)
    inspection = Job.objects.create(kind="inspection", subject_id=2)
    url, client = quiet_redis
    with broker_at(url):
        assert runtime.enqueue(prepare.pk) and runtime.enqueue(inspection.pk)
        sweep.apply_async()
    assert client.llen("cfm-prepare") == 1
    assert client.llen("celery") == 2
