"""Writes (and the reads the pages share) for the platform: a space's
connection, starting and removing real deployments.

    connection_get(*, user, space) -> Connection | None
    connection_put(*, user, space, data: dict) -> Connection
    connection_delete(*, user, space) -> bool
    connection_check(*, user, space) -> ConnectionCheck
    connection_body(connection) -> dict          (the contract's Connection)
    deployment_start(*, user, registration, space, ..., idempotency_key) -> DeploymentOutcome
    deployment_remove(*, user, deployment) -> str ("released" | "deleting" | "gone")

Owners edit a connection (ConnectionError 403 owner_only otherwise);
members see it and deploy through it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from cfm.accounts.models import Space
from cfm.accounts.permissions import require_may_change
from cfm.accounts.selectors import is_owner, role_in
from cfm.errors import http_status
from cfm.quota import services as quota
from cfm.quota.models import Deployment, DeploymentState
from cfm.secretbox import SecretUnreadable

from . import bucket as bk
from . import hosts
from .client import PlatformClient, PlatformError
from .jobs import hurry, track
from .models import DEFAULT_PREFIX, IAM_URL, Connection

log = logging.getLogger(__name__)

_MAX = {"url": 300, "iam_url": 300, "space_id": 100, "api_key": 1000, "storage.endpoint": 300,
        "storage.bucket": 100, "storage.access_key_id": 200, "storage.secret_access_key": 400,
        "storage.connection_id": 100, "storage.prefix": 200}


class ConnectionRuleError(Exception):
    """A connection request that cannot be done: `code` (its HTTP status in
    cfm/errors.py), the message and, for a 400, `fields` naming each input at
    fault."""

    def __init__(self, code: str, message: str, fields: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.fields = code, message, fields or {}

    @property
    def status(self) -> int:
        return http_status(self.code)


def _owner_only(user, space: Space) -> None:
    if not is_owner(user=user, account=space.account):
        raise ConnectionRuleError("owner_only", _("Only an owner of the account can change its spaces' platform "
                                                    "connections."))


def connection_get(*, user, space: Space) -> Connection | None:
    """The space's connection (any member may read it; secrets are never in it)."""
    if role_in(user=user, account=space.account) is None:
        return None
    return Connection.objects.filter(space=space).first()


def connection_body(conn: Connection | None) -> dict | None:
    if conn is None:
        return None
    return {
        "url": conn.url, "iam_url": conn.iam_url, "space_id": conn.platform_space_id,
        "storage": {"endpoint": conn.storage_endpoint, "bucket": conn.storage_bucket,
                    "connection_id": conn.storage_connection_id, "prefix": conn.storage_prefix},
        "api_key_set": bool(conn.api_key_encrypted), "secret_set": bool(conn.storage_secret_encrypted),
        "check": {"ok": conn.check_ok, "message": conn.check_message or None,
                  "checked_at": conn.checked_at.isoformat().replace("+00:00", "Z") if conn.checked_at else None},
    }


def _text(data: dict, name: str, errors: dict, *, required: bool, default: str | None = None) -> str | None:
    value = data.get(name.split(".")[-1])
    if value is None or (isinstance(value, str) and not value.strip()):
        if default is not None:
            return default
        if required:
            errors[name] = _("This field is required.")
        return None
    if not isinstance(value, str):
        errors[name] = _("Must be a string.")
        return None
    value = value.strip()
    # A lone surrogate cannot be encoded as UTF-8 (to encrypt or store it), a NUL cannot be stored in
    # PostgreSQL's text: both used to reach the database or the cipher as a 500.
    if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value):
        errors[name] = _("Contains a character that is not allowed.")
        return None
    if len(value) > _MAX[name]:
        errors[name] = _("At most %(max)s characters.") % {"max": _MAX[name]}
        return None
    return value


def connection_put(*, user, space: Space, data: Any) -> Connection:
    """Create or replace the space's connection. A PUT without `api_key`,
    `access_key_id` or `secret_access_key` keeps the stored one (they are
    write-only). Every URL must start with an allowed prefix
    (CFM_PLATFORM_URLS, CFM_STORAGE_URLS); else a 400 naming the field."""
    _owner_only(user, space)
    if not isinstance(data, dict):
        raise ConnectionRuleError("invalid", _("The body must be a JSON object."), {"body": "not an object"})
    existing = Connection.objects.filter(space=space).first()
    storage = data.get("storage")
    errors: dict[str, str] = {}
    if not isinstance(storage, dict):
        errors["storage"] = _("Give the bucket: endpoint, bucket, access_key_id, secret_access_key, "
                              "connection_id.")
        storage = {}
    url = _text(data, "url", errors, required=True)
    iam_url = _text(data, "iam_url", errors, required=False, default=IAM_URL)
    space_id = _text(data, "space_id", errors, required=True)
    api_key = _text(data, "api_key", errors, required=existing is None)
    s_data = {k: v for k, v in storage.items()}
    endpoint = _text(s_data, "storage.endpoint", errors, required=True)
    bucket_name = _text(s_data, "storage.bucket", errors, required=True)
    access_key_id = _text(s_data, "storage.access_key_id", errors, required=existing is None)
    secret = _text(s_data, "storage.secret_access_key", errors, required=existing is None)
    connection_id = _text(s_data, "storage.connection_id", errors, required=True)
    prefix = _text(s_data, "storage.prefix", errors, required=False, default=DEFAULT_PREFIX)
    allowed_hint = _("cfm may call only the platform's own addresses; an operator allows others with %(setting)s.")
    for name, value, allow, setting in (("url", url, hosts.platform_url, "CFM_PLATFORM_URLS"),
                                        ("iam_url", iam_url, hosts.platform_url, "CFM_PLATFORM_URLS"),
                                        ("storage.endpoint", endpoint, hosts.storage_url, "CFM_STORAGE_URLS")):
        if value is not None and allow(value) is None:
            errors[name] = allowed_hint % {"setting": setting}
    url, iam_url, endpoint = (hosts.platform_url(url or ""), hosts.platform_url(iam_url or ""),
                              hosts.storage_url(endpoint or ""))
    if prefix is not None:
        prefix = prefix.strip("/")
        if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
            errors["storage.prefix"] = _("A prefix is folder names separated by /.")
    if errors:
        raise ConnectionRuleError("invalid", _("The connection is not valid: %(fields)s.")
                               % {"fields": ", ".join(sorted(errors))}, errors)
    # Every required value is there once no field is in error.
    assert url and iam_url and space_id and endpoint and bucket_name and connection_id and prefix is not None
    with transaction.atomic():
        conn = Connection.objects.select_for_update().filter(space=space).first() or Connection(space=space)
        conn.url, conn.iam_url, conn.platform_space_id = url, iam_url, space_id
        conn.storage_endpoint, conn.storage_bucket = endpoint, bucket_name
        conn.storage_connection_id, conn.storage_prefix = connection_id, prefix
        if api_key:
            conn.api_key = api_key
        if access_key_id:
            conn.access_key_id = access_key_id
        if secret:
            conn.secret_access_key = secret
        # A changed connection has not been checked yet.
        conn.check_ok, conn.check_message, conn.checked_at = None, "", None
        conn.save()
    return conn


def connection_delete(*, user, space: Space) -> bool:
    """The space goes back to plan-only. Deployments already on the platform
    stay there (and in the ledger) until they are deleted."""
    _owner_only(user, space)
    deleted, _rows = Connection.objects.filter(space=space).delete()
    return bool(deleted)


@dataclass
class ConnectionCheck:
    ok: bool
    checks: list[dict] = field(default_factory=list)

    def body(self) -> dict:
        return {"ok": self.ok, "checks": self.checks}


def connection_check(*, user, space: Space) -> ConnectionCheck:
    """A token from IAM, a deployment listing of the space, a write and
    delete of a small object in the bucket: each with its own verdict."""
    _owner_only(user, space)
    conn = Connection.objects.filter(space=space).first()
    if conn is None:
        raise ConnectionRuleError("not_found", _("This space has no platform connection."))
    checks: list[dict] = []
    try:
        client = PlatformClient(url=conn.url, iam_url=conn.iam_url, api_key=conn.api_key,
                                space_id=conn.platform_space_id, timeout=15, attempts=2, backoff=0.5, max_wait=2)
        s3 = bk.client(endpoint=conn.storage_endpoint, access_key_id=conn.access_key_id,
                       secret_access_key=conn.secret_access_key, timeout=15)
    except SecretUnreadable:
        checks.append({"name": "secrets", "ok": False, "message": _(
            "The stored keys can no longer be read (the server's key changed): give them again.")})
        return _record(conn, checks)
    try:
        client.token()
        checks.append({"name": "iam", "ok": True, "message": _("IAM gave a token for the API key.")})
    except PlatformError as exc:
        checks.append({"name": "iam", "ok": False, "message": _check_message(exc)})
    if checks[-1]["ok"]:
        try:
            items = client.list_deployments()
            checks.append({"name": "deployments", "ok": True, "message": _(
                "The space %(space)s lists %(count)s deployment(s).") % {"space": conn.platform_space_id,
                                                                         "count": len(items)}})
        except PlatformError as exc:
            checks.append({"name": "deployments", "ok": False, "message": _check_message(exc, conn)})
    try:
        bk.check_write(s3, bucket=conn.storage_bucket, base=conn.storage_prefix or DEFAULT_PREFIX)
        checks.append({"name": "storage", "ok": True, "message": _(
            "A small object was written to and deleted from bucket %(bucket)s.") % {"bucket": conn.storage_bucket}})
    except bk.BucketError as exc:
        checks.append({"name": "storage", "ok": False, "message": _(
            "Bucket %(bucket)s refused a write: %(detail)s.") % {"bucket": conn.storage_bucket, "detail": exc}})
    return _record(conn, checks)


def _check_message(exc: PlatformError, conn: Connection | None = None) -> str:
    if exc.kind == "api_key_refused":
        return _("The API key was refused.")
    if exc.kind == "forbidden" and conn is not None:
        return _("The key cannot deploy into space %(space)s.") % {"space": conn.platform_space_id}
    if exc.kind == "unavailable":
        return _("The platform is unavailable.")
    return _("The platform refused: %(message)s") % {"message": exc.message}


def _record(conn: Connection, checks: list[dict]) -> ConnectionCheck:
    ok = all(c["ok"] for c in checks) and len(checks) == 3
    failed = [c["message"] for c in checks if not c["ok"]]
    Connection.objects.filter(pk=conn.pk).update(check_ok=ok, check_message=" ".join(failed)[:2000],
                                                 checked_at=timezone.now())
    return ConnectionCheck(ok=ok, checks=checks)


# --- deployments ----------------------------------------------------------------------------------------------


def space_connected(space: Space | None) -> Connection | None:
    return Connection.objects.filter(space=space).first() if space is not None else None


def deployment_start(*, user, registration, space: Space | None, configuration: str | None = None,
                     software_spec: str | None = None, serving_name: str, parameters: dict | None = None,
                     idempotency_key: str | None = None) -> quota.DeploymentOutcome:
    """Deploy: in a space with a connection for real (the tracking job takes
    it from `uploading`), otherwise a plan (`reserved`). Raises
    quota.DeploymentRefused, also 409 `files_not_held` for a folder upload
    whose weights cfm never received."""
    from .folders import files_not_held

    conn = space_connected(space) if space is not None and space.account_id == registration.account_id else None
    if conn is not None and files_not_held(registration):
        raise quota.DeploymentRefused("files_not_held", _(
            "cfm holds only the headers of this model's large files (it was registered as a folder), so it cannot "
            "upload the model to the platform. Register it as an archive or from the Hub to deploy it, or deploy "
            "into a space without a connection to get the request bodies."))
    outcome = quota.deployment_request(
        user=user, registration=registration, space=space, configuration=configuration, software_spec=software_spec,
        serving_name=serving_name, parameters=parameters, idempotency_key=idempotency_key,
        deploy=None if conn is None else {"space_id": conn.platform_space_id})
    if conn is not None and not outcome.replayed:
        track(outcome.deployment, owner=user)
    return outcome


def deployment_remove(*, user, deployment: Deployment) -> str:
    """DELETE: a plan is released at once ("released"); a real deployment
    goes `deleting` and the job removes it from the platform ("deleting");
    one that already ended is "gone". The member who made it, an owner or
    staff may (else OwnerOnly, cfm.accounts.permissions)."""
    require_may_change(user=user, account_id=deployment.account_id, created_by_id=deployment.created_by_id)
    if deployment.state == DeploymentState.RESERVED:
        return "released" if quota.deployment_delete(user=user, deployment=deployment) else "gone"
    with transaction.atomic():
        dep = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if not dep.is_active:
            return "gone"
        if dep.state != DeploymentState.DELETING:
            quota.deployment_event(deployment=dep, key="deleting", state=DeploymentState.DELETING)
        hurry(dep, owner=user)
    deployment.refresh_from_db()
    return "deleting"
