"""cfm: plan the deployment of custom foundation models.

The engine (`cfm.inspection`) and the rules (`cfm.catalog`) are pure Python
and import neither Django nor Celery: `pip install .` and `cfm-inspect` need
neither. The Celery app lives in `cfm.celery`: `celery -A cfm` finds it there,
and the web process loads it when Django starts (cfm.web's AppConfig), so
that `.delay()` uses cfm's broker. `cfm.celery_app` still works, lazily.
"""
from typing import Any


def __getattr__(name: str) -> Any:
    if name == "celery_app":
        from .celery import app

        return app
    raise AttributeError(f"module 'cfm' has no attribute {name!r}")


__all__ = ("celery_app",)
