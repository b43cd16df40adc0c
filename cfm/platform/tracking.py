"""A real deployment's steps, as plain functions the job runs one at a time:

    uploading → creating → initializing → ready       (or failed at any step)
    deleting → deleted

`step(deployment)` does what its state needs next and returns the seconds
until it should run again (None: nothing more to do); the job runtime's
`deployment` kind (jobs.py) runs it, with the runtime's claim and lease.
Every step is safe to repeat: the upload skips what the bucket already
holds, the ids the platform gave are stored the moment they are known.

The failures map to the contract's messages (cfm.quota.lifecycle): a
failed deployment releases its units at once, then cfm deletes what it
created on the platform.
"""
from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cfm import catalog
from cfm.quota import services as quota
from cfm.quota.models import TRACKED_STATES, Deployment, DeploymentState, DeploymentStatus, Origin
from cfm.secretbox import SecretUnreadable

from . import bucket as bk
from . import hosts
from .client import PlatformClient, PlatformError, state_of
from .models import Connection

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]

#: first wait between two looks at an initializing deployment; doubles up to POLL_MAX, which bounds how
#: late `ready` is seen (a look costs one small GET: 6 a minute for a start of several minutes is cheap)
POLL_FIRST = 1.0
POLL_MAX = 10.0


def staging_root() -> Path:
    return Path(settings.VAR_DIR) / "platform"


def client_for(conn: Connection, **kwargs) -> PlatformClient:
    # Checked again at each use: the allowed prefixes may have changed since the connection was saved.
    if hosts.platform_url(conn.url) is None or hosts.platform_url(conn.iam_url) is None:
        raise PlatformError("rejected", "the connection's platform URL is no longer allowed (CFM_PLATFORM_URLS)")
    return PlatformClient(url=conn.url, iam_url=conn.iam_url, api_key=conn.api_key, space_id=conn.platform_space_id,
                          **kwargs)


def s3_for(conn: Connection):
    if hosts.storage_url(conn.storage_endpoint) is None:
        raise bk.BucketError("the bucket endpoint is no longer allowed (CFM_STORAGE_URLS)")
    return bk.client(endpoint=conn.storage_endpoint, access_key_id=conn.access_key_id,
                     secret_access_key=conn.secret_access_key)


def bucket_base(conn: Connection, dep: Deployment, digest: str) -> str:
    prefix = conn.storage_prefix.strip("/")
    parts = [prefix] if prefix else []
    return "/".join([*parts, str(dep.account_id), str(dep.registration_id), digest])


def _move(dep: Deployment, expected: str, state: str, key: str, params: dict | None = None,
          **fields) -> bool:
    """Move from `expected` to `state` with an event, unless someone moved it
    meanwhile (a delete while uploading): then False and nothing changes."""
    with transaction.atomic():
        row = Deployment.objects.select_for_update().get(pk=dep.pk)
        if row.state != expected:
            return False
        for name, value in fields.items():
            setattr(row, name, value)
        if fields:
            row.save(update_fields=list(fields))
        quota.deployment_event(deployment=row, key=key, params=params, state=state)
    dep.refresh_from_db()
    return True


# --- the steps -----------------------------------------------------------------------------------------------


def step(dep: Deployment, *, progress: ProgressFn | None = None) -> float | None:
    """Do what the deployment needs next; the seconds until the next look,
    or None when nothing more is to be done. Run by the job runtime's
    `deployment` kind (cfm/platform/jobs.py), which claims and leases it."""
    conn = Connection.objects.filter(space_id=dep.space_id).first()
    if conn is None:
        if dep.state == DeploymentState.DELETING:
            quota.deployment_release(deployment=dep, state=DeploymentState.DELETED, key="deleted")
        elif dep.state in TRACKED_STATES:
            _fail(dep, None, "connection_missing", "connection_missing", {})
        return None
    try:
        if dep.tracking_started_at is None:
            Deployment.objects.filter(pk=dep.pk).update(tracking_started_at=timezone.now())
        # One phase after the other; a delete asked meanwhile is seen between two phases.
        for _phase in range(4):
            dep.refresh_from_db()
            if dep.state == DeploymentState.DELETING:
                _delete(dep, conn)
                return None
            if dep.state == DeploymentState.UPLOADING:
                _upload(dep, conn, progress)
            elif dep.state == DeploymentState.CREATING:
                _create(dep, conn)
            elif dep.state == DeploymentState.INITIALIZING:
                return _poll(dep, conn)
            else:
                return None
    except SecretUnreadable:
        _fail(dep, conn, "secret_unreadable", "secret_unreadable", {})
    except PlatformError as exc:
        _platform_failure(dep, conn, exc)
    except bk.BucketError as exc:
        _fail(dep, conn, "storage_failed", "storage_failed", {"bucket": conn.storage_bucket, "detail": str(exc)})
    except FolderUnavailable as exc:
        _fail(dep, conn, "files_unavailable", "files_unavailable", {"detail": str(exc)})
    return None


def job_lost(dep: Deployment, *, code: str, message: str) -> None:
    """The tracking job ended without finishing (its worker was lost too
    often, an internal error, a time limit): the deployment fails, its
    units go back, and what cfm created on the platform is deleted."""
    conn = Connection.objects.filter(space_id=dep.space_id).first()
    if dep.state == DeploymentState.DELETING:
        return  # retried by the next sweep's housekeeping
    _fail(dep, conn, code or "internal", "deploy_failed", {"message": message})


class FolderUnavailable(Exception):
    pass


def _upload(dep: Deployment, conn: Connection, report: ProgressFn | None) -> None:
    from .folders import deployment_folder

    folder = deployment_folder(dep)
    digest = bk.manifest_digest(folder)
    base = bucket_base(conn, dep, digest)
    names = bk.manifest_entries(folder)
    total = sum((folder / n).stat().st_size for _d, n in names) + (folder / bk.MANIFEST_NAME).stat().st_size
    quota.deployment_event(deployment=dep, key="upload_started",
                           params={"files": len(names) + 1, "bytes": total, "bucket": conn.storage_bucket,
                                   "path": base})

    result = bk.upload_folder(s3_for(conn), bucket=conn.storage_bucket, base=base, folder=folder, progress=report)
    platform = dict(dep.platform or {}, file_path=result.file_path, digest=digest)
    key = "upload_skipped" if result.skipped else "uploaded"
    if _move(dep, DeploymentState.UPLOADING, DeploymentState.CREATING, key,
             {"bytes": result.bytes_sent, "bucket": conn.storage_bucket, "path": result.file_path},
             platform=platform, progress={"bytes_done": result.bytes_total, "bytes_total": result.bytes_total}):
        shutil.rmtree(staging_root() / f"dep-{dep.pk}", ignore_errors=True)


def _family(dep: Deployment) -> str:
    report = (dep.registration.report if dep.registration else None) or {}
    if dep.configuration == "extra_large" or "hardware_spec" in (dep.platform_request or {}).get("deployment", {}):
        return "time_series"
    return report.get("family") or "general"


def _create(dep: Deployment, conn: Connection) -> None:
    client = client_for(conn)
    platform = dict(dep.platform or {})
    if not platform.get("asset_id"):
        asset = quota.asset_body(registration=dep.registration, software_spec=dep.software_spec,
                                 space_id=conn.platform_space_id, connection_id=conn.storage_connection_id,
                                 bucket=conn.storage_bucket, file_path=platform["file_path"])
        platform["asset_id"] = client.create_model(asset)
        Deployment.objects.filter(pk=dep.pk).update(platform=platform)
        quota.deployment_event(deployment=dep, key="asset_created", params={"asset_id": platform["asset_id"]})
    dep.refresh_from_db()
    if dep.state != DeploymentState.CREATING:
        return  # deleted meanwhile: the delete step removes the asset
    body = quota.online_deployment_body(asset_id=platform["asset_id"], serving_name=dep.serving_name,
                                        space_id=conn.platform_space_id, configuration=dep.configuration,
                                        family=_family(dep), parameters=dep.parameters)
    platform["deployment_id"] = client.create_deployment(body)
    _move(dep, DeploymentState.CREATING, DeploymentState.INITIALIZING, "deployment_created",
          {"deployment_id": platform["deployment_id"]}, platform=platform, platform_state="initializing", polls=0)


def _poll(dep: Deployment, conn: Connection) -> float | None:
    platform = dict(dep.platform or {})
    client = client_for(conn)
    try:
        resource = client.get_deployment(platform["deployment_id"])
    except PlatformError as exc:
        if exc.kind == "not_found":
            quota.deployment_release(deployment=dep, state=DeploymentState.DELETED, key="removed_outside")
            _cleanup(dep, conn, deployment=False)
            return None
        raise
    state = state_of(resource)
    if state == "ready":
        inference = (((resource.get("entity") or {}).get("status") or {}).get("inference") or [])
        url = inference[0].get("url") if inference and isinstance(inference[0], dict) else None
        platform["inference_url"] = url or f"{conn.url}/ml/v1/deployments/{platform['deployment_id']}/text/generation"
        _move(dep, DeploymentState.INITIALIZING, DeploymentState.READY, "ready", {"url": platform["inference_url"]},
              platform=platform, platform_state="ready", progress=dep.progress)
        return None
    if state == "failed":
        from .client import first_error

        code, message = first_error(resource)
        _platform_failure(dep, conn, PlatformError(_kind_of(message, code), message or "failed", code=code),
                          failed_state=True)
        return None
    started = dep.tracking_started_at or dep.created_at
    if timezone.now() - started > timedelta(seconds=settings.CFM_PLATFORM_DEPLOY_TIMEOUT):
        _fail(dep, conn, "timeout", "timeout", {"seconds": settings.CFM_PLATFORM_DEPLOY_TIMEOUT})
        return None
    Deployment.objects.filter(pk=dep.pk).update(polls=dep.polls + 1, platform_state=state[:30])
    return min(POLL_FIRST * 2 ** dep.polls, POLL_MAX)


def _kind_of(message: str, code: str) -> str:
    from .client import classify

    kind = classify(message, code)
    return "deploy_failed" if kind == "rejected" else kind


def _delete(dep: Deployment, conn: Connection) -> None:
    client = client_for(conn)
    platform = dep.platform or {}
    try:
        if platform.get("deployment_id"):
            client.delete_deployment(platform["deployment_id"])
        # A deployment made outside cfm keeps its model asset: someone else's, maybe used elsewhere.
        if platform.get("asset_id") and dep.origin == Origin.CFM:
            client.delete_model(platform["asset_id"])
    except PlatformError as exc:
        # Stays `deleting`: the sweeper tries again (a refusal is logged for the operators).
        if exc.kind != "unavailable":
            log.warning("deleting deployment %s on the platform: %s", dep.pk, exc.kind)
        return
    quota.deployment_release(deployment=dep, state=DeploymentState.DELETED, key="deleted")


def _platform_failure(dep: Deployment, conn: Connection, exc: PlatformError, *, failed_state: bool = False) -> None:
    kind = exc.kind
    if kind == "api_key_refused":
        _fail(dep, conn, "api_key_refused", "api_key_refused", {"status": exc.status})
    elif kind == "forbidden":
        _fail(dep, conn, "space_forbidden", "space_forbidden",
              {"space_id": conn.platform_space_id, "status": exc.status})
    elif kind == "insufficient_resources":
        label = str(catalog.CONFIGURATIONS[dep.configuration].label)
        nxt = _next_up(dep)
        if nxt:
            _fail(dep, conn, "insufficient_resources", "insufficient_resources",
                  {"configuration": label, "message": exc.message, "next": catalog.CONFIGURATIONS[nxt].label},
                  extra={"next_configuration": nxt})
        else:
            _fail(dep, conn, "insufficient_resources", "insufficient_resources_largest",
                  {"configuration": label, "message": exc.message})
    elif kind == "limit":
        _fail(dep, conn, "quota_exceeded", "platform_limit", {"message": exc.message}, limit=True)
    elif kind == "unavailable":
        _fail(dep, conn, "platform_unavailable", "platform_unavailable", {"detail": exc.message})
    elif failed_state or kind == "deploy_failed":
        _fail(dep, conn, "deploy_failed", "deploy_failed", {"message": exc.message})
    else:
        _fail(dep, conn, "platform_rejected", "platform_rejected", {"message": exc.message})


def _next_up(dep: Deployment) -> str | None:
    """The next configuration up that the model may use (Small → Medium → Large)."""
    report = (dep.registration.report if dep.registration else None) or {}
    family = _family(dep)
    allowed = catalog.allowed_configurations(report.get("model_type"), family)
    order = list(catalog.CONFIGURATION_ORDER)
    for conf in order[order.index(dep.configuration) + 1:]:
        if conf in allowed:
            return conf
    return None


def _fail(dep: Deployment, conn: Connection | None, code: str, key: str, params: dict, *, limit: bool = False,
          extra: dict | None = None) -> None:
    """`failed`: units released at once, then what cfm created on the platform goes."""
    error = quota.platform_limit_refusal(deployment=dep) if limit else {"code": code}
    error.update(extra or {})
    if not quota.deployment_release(deployment=dep, state=DeploymentState.FAILED, key=key, params=params,
                                    error=error):
        return
    shutil.rmtree(staging_root() / f"dep-{dep.pk}", ignore_errors=True)
    if conn is not None:
        _cleanup(dep, conn, deployment=True)


def _cleanup(dep: Deployment, conn: Connection, *, deployment: bool) -> None:
    platform = dep.platform or {}
    try:
        client = client_for(conn, attempts=2)
        if deployment and platform.get("deployment_id"):
            client.delete_deployment(platform["deployment_id"])
        if platform.get("asset_id"):
            client.delete_model(platform["asset_id"])
            quota.deployment_event(deployment=dep, key="asset_deleted", params={"asset_id": platform["asset_id"]},
                                   aside=True)
    except (PlatformError, SecretUnreadable) as exc:
        log.warning("cleaning up deployment %s on the platform: %s", dep.pk, getattr(exc, "kind", "secret"))


__all__ = ["step", "job_lost", "FolderUnavailable", "client_for", "s3_for", "bucket_base", "staging_root",
           "DeploymentStatus"]
