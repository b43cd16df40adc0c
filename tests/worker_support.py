"""A REAL Celery worker (with beat: the sweeper) against the real Redis and
the test database, and a local Hub it reaches over HTTP, both started once
per session (tests/conftest.py holds the session fixtures). Import the
per-test fixtures in a test module:

    from worker_support import alice, worker  # noqa: F401
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from needs import need, test_database_url

ROOT = Path(__file__).resolve().parents[1]


WORKER_ENV = {
    # short enough for the tests to watch leases expire and the sweeper act
    "CFM_SWEEP_INTERVAL": "1",
    "CFM_JOB_LEASE_SECONDS": "5",
    "CFM_JOB_MAX_ATTEMPTS": "3",
    "CFM_JOB_RETRY_BACKOFF": "1",
    "CFM_HUB_TIMEOUT": "20",
    # one request per attempt: the job's own retry (backoff, attempts) is under test
    "CFM_HUB_MAX_RETRIES": "0",
}


def _ensure_test_database(request, blocker) -> None:
    """pytest-django creates the test database only when some collected test
    asks for `db`; the worker tests do not (their rows must be committed), so
    a run of them alone creates it here — never the development database."""
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    test_name = connection.creation._get_test_db_name()
    if connection.settings_dict["NAME"] == test_name:
        return
    config = setup_databases(verbosity=0, interactive=False, aliases={"default"})

    def teardown():
        with blocker.unblock():
            teardown_databases(config, verbosity=0)

    request.addfinalizer(teardown)
    assert connection.settings_dict["NAME"] == test_name


@pytest.fixture(scope="session")
def session_hub():
    from hubserver import HubServer

    server = HubServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def session_s3():
    """A real S3-compatible server (moto) on loopback, for the session."""
    import socket

    pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def session_platform():
    """The platform imitation (tests/platformserver.py) the session's worker may reach."""
    from platformserver import PlatformServer

    server = PlatformServer(api_key="test-api-key-123", ready_after=0.3).start()
    yield server
    server.stop()


@dataclass
class Worker:
    proc: subprocess.Popen
    log: Path
    media: Path
    hub: object
    args: list[str]
    env: dict[str, str]
    platform: object = None
    s3: str = ""

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """kill -9 of the whole worker: the main process, its pool and beat."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def restart(self) -> None:
        """A new worker process, as a supervisor would start after a crash."""
        self.proc = _spawn(self.args, self.env, self.log)

    @contextmanager
    def killed(self):
        """kill -9 of the worker now; a new worker when the block ends (also when it fails)."""
        self.kill()
        try:
            yield
        finally:
            self.restart()


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    ready_before = log.read_text(errors="replace").count(" ready.") if log.exists() else 0
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while log.read_text(errors="replace").count(" ready.") <= ready_before:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the Celery worker did not start:\n" + log.read_text(errors="replace")[-3000:])
        time.sleep(0.1)
    return proc


@pytest.fixture(scope="session")
def celery_worker(session_test_db, django_db_blocker, tmp_path_factory, session_hub, session_platform, session_s3):
    """`celery -A cfm worker -B` in a subprocess: the real broker (REDIS_URL),
    the test database, the session's Hub, a shared media folder."""
    redis_url = os.environ.get("REDIS_URL", "")
    need(bool(redis_url), "REDIS_URL is not set: the worker tests need the real Redis")
    import redis

    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=1).flushdb()  # this run's database number only
    except redis.exceptions.RedisError as exc:
        need(False, f"Redis at {redis_url} is not reachable: {exc}")
    from django.conf import settings

    with django_db_blocker.unblock():
        db_url = test_database_url()
    base = tmp_path_factory.mktemp("worker")
    log = base / "worker.log"
    env = {**os.environ, **WORKER_ENV, "DATABASE_URL": db_url, "CFM_MEDIA_DIR": str(base / "media"),
           # its own work folders (Prepare), the test process's keys (stored Hub tokens)
           "CFM_VAR_DIR": str(base / "var"), "SECRET_KEY": settings.SECRET_KEY,
           "HF_ENDPOINT": session_hub.url, "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(base / "hf-home"),
           # the platform imitation and the bucket server are the only platform hosts it may call
           "CFM_PLATFORM_URLS": session_platform.url, "CFM_STORAGE_URLS": session_s3}
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        env.pop(name, None)
    celery = Path(sys.executable).parent / "celery"
    args = [str(celery), "-A", "cfm", "worker", "-B", "--loglevel=INFO", "--pool=prefork", "--concurrency=2",
            "--without-mingle", "--without-gossip", "--without-heartbeat", "-n", f"tests-{os.getpid()}@%h",
            f"--schedule={base / 'beat-schedule'}"]
    worker = Worker(_spawn(args, env, log), log, base / "media", session_hub, args, env, session_platform, session_s3)
    yield worker
    # Nothing left to finish, and the job rows are the truth anyway.
    if worker.proc.poll() is None:
        worker.kill()


@pytest.fixture(scope="session")
def session_test_db(request, django_db_setup, django_db_blocker):
    """The test database, even in a run where no test asks for `db`."""
    with django_db_blocker.unblock():
        _ensure_test_database(request, django_db_blocker)


@pytest.fixture
def committed_db(session_test_db, django_db_blocker):
    """Database access without a test transaction, for code whose other
    threads or processes must see the rows; they are deleted afterwards,
    which is much cheaper than the full flush of a transactional test."""
    with django_db_blocker.unblock():
        yield
        _delete_all()


@pytest.fixture
def worker(celery_worker, committed_db, settings):
    """The session's worker, for a test whose rows it must see."""
    settings.MEDIA_ROOT = celery_worker.media
    hub = celery_worker.hub
    hub.latency = 0.0
    hub.fail_always = None
    yield celery_worker
    hub.latency = 0.0
    hub.fail_always = None


def _delete_all() -> None:
    from django.contrib.auth import get_user_model

    from cfm.accounts.models import Account
    from cfm.jobs.models import Job
    from cfm.quota.models import Deployment, LedgerEntry, LimitRequest
    from cfm.registry.models import Registration

    # The ledger and deployments protect their account: they go first (in bulk, as a test's teardown may).
    LimitRequest.objects.all().delete()
    LedgerEntry.objects.all().delete()
    Deployment.objects.all().delete()
    Registration.objects.all().delete()
    Job.objects.all().delete()
    Account.objects.all().delete()
    get_user_model().objects.all().delete()


@pytest.fixture
def alice(worker):
    """The owner of the objects under test (committed: the worker sees her)."""
    from actors import make_actor

    return make_actor("alice")


@pytest.fixture
def bob(worker):
    """A member of another account (committed)."""
    from actors import make_actor

    return make_actor("bob")


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def wait_status(registration, statuses=("done", "failed"), timeout: float = 20.0):
    from cfm.registry.models import Registration

    def check():
        row = Registration.objects.filter(pk=registration.pk).first()
        return row if row is not None and row.status in statuses else None

    return wait_for(check, timeout, what=f"registration {registration.pk} to be {'/'.join(statuses)}")


@pytest.fixture
def own_broker():
    """A broker of this process's own (kombu's in-memory transport), for
    tests that run jobs in this process on committed rows: the messages they
    send reach no worker of the session, which would otherwise run the job
    first."""
    with broker_at("memory://"):
        yield


@contextmanager
def broker_at(url: str):
    """Points this process's Celery app (the web side) at another broker."""
    from cfm.celery import app

    def reset():
        app._pool = None
        app.amqp._producer_pool = None

    old = app.conf.broker_url
    app.conf.broker_url = url
    reset()
    try:
        yield
    finally:
        app.conf.broker_url = old
        reset()
