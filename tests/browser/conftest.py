"""A Celery worker of the browser tests' own: a real `celery worker`
subprocess on the real Redis and the test database, fed through a queue of
its own, so that it never takes a job of the registry tests' session worker
(which reaches another local Hub and another media folder), and gone when
the module ends."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from needs import need, test_database_url

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "cfm-browser-tests"
# Playwright's sync API runs an event loop in the test thread; the ORM calls
# the tests make from it are plain synchronous ones.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
# Not CFM_SHOTS_DIR: the settings refuse CFM_ names they do not know.
SHOTS = Path(os.environ.get("SHOTS_DIR", "/tmp/shots"))


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def shot():
    """shot(page, name): a full-page screenshot in SHOTS_DIR, to look at."""

    def take(page, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    return take


@pytest.fixture(scope="module")
def browser_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    redis_url = os.environ.get("REDIS_URL", "")
    need(bool(redis_url), "REDIS_URL is not set: the browser tests need the real Redis and a worker")
    import redis

    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
    except redis.exceptions.RedisError as exc:
        need(False, f"Redis at {redis_url} is not reachable: {exc}")
    from hubserver import HubServer

    hub = HubServer().start()
    with django_db_blocker.unblock():
        db_url = test_database_url()
    base = tmp_path_factory.mktemp("browser-worker")
    log = base / "worker.log"
    env = {**os.environ, "DATABASE_URL": db_url, "CFM_MEDIA_DIR": str(base / "media"), "HF_ENDPOINT": hub.url,
           "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(base / "hf-home")}
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        env.pop(name, None)
    celery = Path(sys.executable).parent / "celery"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(celery), "-A", "cfm", "worker", "-Q", QUEUE, "--pool=solo", "--loglevel=INFO", "--without-mingle",
             "--without-gossip", "--without-heartbeat", "-n", f"browser-{os.getpid()}@%h"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while " ready." not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the Celery worker did not start:\n" + log.read_text(errors="replace")[-3000:])
            time.sleep(0.1)
        yield SimpleNamespace(hub=hub, media=base / "media", log=log)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the job rows are the truth; nothing to finish
        proc.wait(timeout=10)
        hub.stop()


@pytest.fixture
def worker(browser_worker, settings):
    """Jobs queued by the live server go to this module's worker."""
    from cfm.celery import app

    before = app.conf.task_default_queue
    app.conf.task_default_queue = QUEUE  # read by Celery's router on every send
    settings.MEDIA_ROOT = browser_worker.media
    yield browser_worker
    app.conf.task_default_queue = before


@pytest.fixture(autouse=True)
def _no_content_security_policy_violation(request):
    """Every browser test also fails on a Content-Security-Policy violation
    (Chromium reports each one on the page's console)."""
    if "page" not in request.fixturenames:
        yield
        return
    page = request.getfixturevalue("page")
    seen: list[str] = []
    request.node.csp_violations = seen
    page.on("console", lambda msg: seen.append(msg.text) if "Content Security Policy" in msg.text else None)
    yield
    assert not seen, f"Content-Security-Policy violations: {seen}"
