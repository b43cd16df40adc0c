"""The API's (and the pages') bodies of the quota's objects."""
from __future__ import annotations

from datetime import UTC

from . import lifecycle
from .models import Deployment


def _iso(dt) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def deployment_body(deployment: Deployment) -> dict:
    """The API's Deployment object."""
    return {
        "id": deployment.id, "account": deployment.account_id, "registration": deployment.registration_id,
        "space": deployment.space_id, "configuration": deployment.configuration, "units": deployment.units,
        "software_spec": deployment.software_spec, "serving_name": deployment.serving_name,
        "parameters": deployment.parameters, "warnings": deployment.warnings,
        "created_at": _iso(deployment.created_at), "platform_request": deployment.platform_request,
        "status": deployment.state, "status_message": lifecycle.render(deployment.message_key,
                                                                         deployment.message_params),
        "platform": _platform_out(deployment.platform), "origin": deployment.origin,
        "progress": deployment.progress or None, "error": deployment.error,
        "events": [{"at": _iso(e.at), "status": e.state, "message": lifecycle.render(e.message_key, e.message_params)}
                   for e in deployment.events.all()],
    }


def _platform_out(platform: dict | None) -> dict | None:
    if not platform:
        return None
    return {k: platform.get(k) for k in ("asset_id", "deployment_id", "file_path", "inference_url")}
