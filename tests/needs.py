"""What a test needs from the machine: `need()` skips locally when a real
service is missing and fails in CI (CFM_TEST_REQUIRE_SERVICES=1), and the
test database's URL for the worker subprocesses."""
from __future__ import annotations

import os

import pytest

REQUIRE_SERVICES = os.environ.get("CFM_TEST_REQUIRE_SERVICES") == "1"


def need(condition: bool, reason: str) -> None:
    """Skip locally when a real service is missing; in CI, fail instead."""
    if condition:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def test_database_url() -> str:
    """The test database as a DATABASE_URL, for a worker subprocess."""
    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


test_database_url.__test__ = False  # a helper, not a test
