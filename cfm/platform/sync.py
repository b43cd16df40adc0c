"""Keeping the ledger true: the platform is the truth about what runs.

Every CFM_PLATFORM_SYNC_INTERVAL seconds each connected space's
deployments are listed and compared with cfm's:
- a cfm deployment the platform no longer has → `deleted`, units released,
  an event saying it was removed outside cfm;
- a platform deployment cfm does not know → recorded as made "outside cfm"
  with its hardware size, counted in the account's usage;
- a state the platform reports that differs from the last one → an event
  (a ready deployment that failed is released as failed).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.utils import timezone

from cfm import catalog
from cfm.quota import services as quota
from cfm.quota.models import TRACKED_STATES, Deployment, DeploymentState, DeploymentStatus, Origin
from cfm.secretbox import SecretUnreadable

from .client import PlatformError, first_error, state_of
from .models import Connection
from .tracking import client_for

log = logging.getLogger(__name__)

#: the platform's sizes, as the ledger counts them: a hardware request's size
#: or a time-series hardware spec's name, both from the catalog
SIZES = {
    **{c.hardware_request["size"]: k for k, c in catalog.CONFIGURATIONS.items() if "size" in c.hardware_request},
    **{c.short.lower(): k for k, c in catalog.CONFIGURATIONS.items()},
}


@dataclass
class SyncResult:
    spaces: int = 0
    gone: int = 0
    found: int = 0
    changed: int = 0
    errors: list[str] = field(default_factory=list)


def size_of(resource: dict) -> tuple[str, str]:
    """(configuration, the platform's size as it says it)."""
    entity = resource.get("entity") or {}
    request = entity.get("hardware_request") or {}
    spec = entity.get("hardware_spec") or {}
    size = str((request.get("size") if isinstance(request, dict) else None)
               or (spec.get("name") if isinstance(spec, dict) else None) or "")
    return SIZES.get(size.lower(), "small"), size or "?"


def platform_sync(*, connection_ids: list[int] | None = None) -> SyncResult:
    result = SyncResult()
    qs = Connection.objects.select_related("space", "space__account")
    if connection_ids is not None:
        qs = qs.filter(pk__in=connection_ids)
    for conn in qs:
        result.spaces += 1
        try:
            sync_space(conn, result)
        except (PlatformError, SecretUnreadable) as exc:
            log.warning("sync of space %s: %s", conn.platform_space_id, getattr(exc, "kind", "secret_unreadable"))
            result.errors.append(f"{conn.platform_space_id}: {getattr(exc, 'kind', 'secret_unreadable')}")
    return result


def sync_space(conn: Connection, result: SyncResult) -> None:
    started = timezone.now()
    resources = client_for(conn, attempts=3).list_deployments()
    listed = {str((r.get("metadata") or {}).get("id")): r for r in resources if (r.get("metadata") or {}).get("id")}
    known: dict[str, Deployment] = {}
    pending_names: set[str] = set()
    for dep in Deployment.objects.filter(space=conn.space).exclude(platform=None).select_related("account"):
        dep_id = (dep.platform or {}).get("deployment_id")
        if dep_id:
            known[str(dep_id)] = dep
    # cfm's own deployments whose id is not stored yet (between the request and its answer)
    for dep in Deployment.objects.filter(space=conn.space, status=DeploymentStatus.ACTIVE,
                                         state__in=[DeploymentState.UPLOADING, DeploymentState.CREATING]):
        pending_names.add(dep.serving_name)
    for dep_id, dep in known.items():
        if not dep.is_active or dep.created_at > started:
            continue
        if dep_id not in listed:
            if dep.state == DeploymentState.CREATING:
                continue
            key = "deleted" if dep.state == DeploymentState.DELETING else "removed_outside"
            if quota.deployment_release(deployment=dep, state=DeploymentState.DELETED, key=key):
                result.gone += 1
            continue
        state = state_of(listed[dep_id])
        if dep.origin == Origin.CFM and dep.state in TRACKED_STATES:
            continue  # its tracking job follows it closely
        if state and state != dep.platform_state:
            result.changed += 1
            _state_changed(dep, state, listed[dep_id])
    for dep_id, resource in listed.items():
        if dep_id in known:
            continue
        entity = resource.get("entity") or {}
        online = ((entity.get("online") or {}).get("parameters") or {}) if isinstance(entity.get("online"),
                                                                                      dict) else {}
        name = str(online.get("serving_name") or entity.get("name") or "")
        if name in pending_names:
            continue  # cfm's own, its id about to be stored
        state = state_of(resource)
        if state == "failed":
            continue  # runs nothing, holds nothing
        configuration, size = size_of(resource)
        quota.outside_deployment_record(
            space=conn.space, deployment_id=dep_id, serving_name=name, configuration=configuration,
            state=DeploymentState.READY if state == "ready" else DeploymentState.INITIALIZING, size=size,
            asset_id=str((entity.get("asset") or {}).get("id") or ""))
        result.found += 1
    Connection.objects.filter(pk=conn.pk).update(synced_at=timezone.now())


def _state_changed(dep: Deployment, state: str, resource: dict) -> None:
    old = dep.platform_state or dep.state
    Deployment.objects.filter(pk=dep.pk).update(platform_state=state[:30])
    if state == "failed" and dep.state in (DeploymentState.READY, DeploymentState.INITIALIZING) and (
            dep.origin == Origin.OUTSIDE or dep.state == DeploymentState.READY):
        _code, message = first_error(resource)
        quota.deployment_release(deployment=dep, state=DeploymentState.FAILED, key="platform_failed",
                                 params={"message": message or state}, error={"code": "deploy_failed"})
        return
    new_state = None
    if dep.origin == Origin.OUTSIDE and state == "ready" and dep.state == DeploymentState.INITIALIZING:
        new_state = DeploymentState.READY
    quota.deployment_event(deployment=dep, key="state_changed", params={"old": old, "new": state}, state=new_state)
