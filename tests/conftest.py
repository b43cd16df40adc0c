import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

# The tests speak plain http (the test client, the live server, subprocesses), as `make run` does with DEBUG=1:
# the HTTPS defaults that hold whenever DEBUG is off are turned off for them. pytest-django has loaded the
# settings before this file runs, so they are set on both the environment (subprocesses) and the settings.
_PLAIN_HTTP = {"CFM_SSL_REDIRECT": "0", "CFM_HSTS_SECONDS": "0", "CFM_SECURE_COOKIES": "0", "CFM_PROXY_SSL_HEADER": ""}
for _name, _value in _PLAIN_HTTP.items():
    os.environ.setdefault(_name, _value)


def _plain_http_settings() -> None:
    from django.conf import settings

    settings.SECURE_SSL_REDIRECT = settings.CFM_SSL_REDIRECT = False
    settings.SECURE_HSTS_SECONDS = settings.CFM_HSTS_SECONDS = 0
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = settings.SECURE_HSTS_PRELOAD = False
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = settings.CFM_SECURE_COOKIES = False
    settings.SECURE_PROXY_SSL_HEADER = None
    settings.CFM_PROXY_SSL_HEADER = ""


_plain_http_settings()

# The session's real Celery worker and its Hub are defined once, here, so that every
# folder's tests share one worker (a second one would take the first one's jobs).
from needs import REQUIRE_SERVICES, need  # noqa: E402,F401
from worker_support import (  # noqa: E402,F401
    celery_worker,
    committed_db,
    session_hub,
    session_platform,
    session_s3,
    session_test_db,
)


@pytest.fixture
def run_inspect(tmp_path):
    """Runs `manage.py cfm_inspect` as a user would: a subprocess."""
    import json
    import subprocess

    def run(*args, env=None):
        proc = subprocess.run([sys.executable, str(ROOT / "manage.py"), "cfm_inspect", *map(str, args)],
                              capture_output=True, text=True, timeout=120, cwd=ROOT,
                              env={**os.environ, **(env or {})})
        data = None
        if "--json" in args and proc.stdout.strip():
            data = json.loads(proc.stdout)
        return proc, data

    return run


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args():
    """Debian's Chromium, never a downloaded browser."""
    need(os.path.exists(CHROMIUM), f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    return {
        "executable_path": CHROMIUM,
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"],
    }


@pytest.fixture
def hub_server(monkeypatch, tmp_path):
    """A local Hugging Face Hub (tests/hubserver.py) that `huggingface_hub`
    and cfm reach through HF_ENDPOINT, for this test and its subprocesses.
    Publish folders with `hub_server.add_repo("org/name", folder)`."""
    from hubserver import HubServer

    server = HubServer().start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no stored token, no shared cache
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    yield server
    server.stop()


_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    """In CI (CFM_TEST_REQUIRE_SERVICES=1) a skip is a failure: nothing may
    quietly not run."""
    if REQUIRE_SERVICES and _skipped and session.exitstatus == 0:
        session.exitstatus = 1
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter:
            reporter.write_line(f"CI: {len(_skipped)} skipped test(s) count as failures: {', '.join(_skipped[:10])}",
                                red=True)


@pytest.fixture(autouse=True)
def seeded_unit_costs(request):
    """The administrators' cost table as its data migration seeds it. A
    transactional test elsewhere flushes every table when it ends, seeds
    included, so a test that edits a cost would otherwise depend on the order
    the suite runs in."""
    # the db fixtures, or pytest-django's helper behind the django_db mark
    enabling = [f for f in ("transactional_db", "db", "_django_db_helper") if f in request.fixturenames]
    if not enabling:
        yield
        return
    request.getfixturevalue(enabling[0])
    from cfm import catalog
    from cfm.quota.models import UnitCost

    for configuration, units in catalog.UNIT_COSTS.items():
        UnitCost.objects.get_or_create(configuration=configuration, defaults={"units": units})
    yield
