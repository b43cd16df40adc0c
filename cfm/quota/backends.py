"""Where a deployment goes once the ledger has reserved it. The quota app
alone makes plans (`reserved`: the request bodies to copy); the platform
app, above it, installs its own start and remove in its AppConfig.ready, so
that real deployments need no import of the platform from here (the import
rules in pyproject.toml forbid the cycle)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _plan_start(**kwargs: Any):
    from .services import deployment_request

    return deployment_request(**kwargs)


def _plan_remove(*, user, deployment) -> str:
    from .services import deployment_delete

    return "released" if deployment_delete(user=user, deployment=deployment) else "gone"


_start: Callable[..., Any] = _plan_start
_remove: Callable[..., str] = _plan_remove


def install(*, start: Callable[..., Any], remove: Callable[..., str]) -> None:
    global _start, _remove
    _start, _remove = start, remove


def deployment_start(**kwargs: Any):
    """The deployment_request arguments; returns its DeploymentOutcome."""
    return _start(**kwargs)


def deployment_remove(*, user, deployment) -> str:
    """"released" (a plan, at once), "deleting" (a real one, by its job) or "gone"."""
    return _remove(user=user, deployment=deployment)
