"""Session-wide parts of the registry tests. A session-scoped fixture must be
defined here, not imported into several test modules (each import would be
a fixture of its own: a second worker, a second Hub)."""
from worker_support import celery_worker, committed_db, session_hub, session_test_db  # noqa: F401
