"""Prepare jobs travel on a queue of their own (cfm-prepare), inspections and
the sweepers on the default one: a worker started with `-Q celery` is never
blocked by hours of downloads and conversions. Checked on the real Redis, in
a database number of this test's own (no worker listens there)."""
from __future__ import annotations

import json
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


def test_prepare_jobs_and_inspections_are_sent_to_separate_queues(quiet_redis, db, settings):
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
    # each message carries its kind's time limits: [hard, soft]
    prepare_limits = json.loads(client.lindex("cfm-prepare", 0))["headers"]["timelimit"]
    soft = settings.CFM_PREPARE_TIME_LIMIT * 4
    assert prepare_limits == [soft + 120, soft]
    messages = [json.loads(raw)["headers"] for raw in client.lrange("celery", 0, -1)]
    inspection_limits = next(h["timelimit"] for h in messages if h["task"] == "cfm.jobs.run")
    assert inspection_limits == [settings.CELERY_TASK_TIME_LIMIT, settings.CELERY_TASK_SOFT_TIME_LIMIT]
