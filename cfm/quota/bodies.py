"""The request bodies the platform takes (platform-api.md): the model asset
and the online deployment, and the pair stored with each deployment."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from django.conf import settings

from cfm import catalog

if TYPE_CHECKING:
    from .deployments import DeploymentPlan

#: placeholders the user replaces with the platform's ids before sending
CONNECTION_PLACEHOLDER = "<CONNECTION_ID>"
SPACE_PLACEHOLDER = "<SPACE_ID>"
ASSET_PLACEHOLDER = "<ASSET_ID>"
BUCKET_PLACEHOLDER = "<BUCKET>"


def asset_body(*, registration, software_spec: str, space_id: str, connection_id: str, bucket: str,
               file_path: str) -> dict:
    """The model asset request of the contract (platform-api.md), exactly:
    the storage goes in `foundation_model.model_location`."""
    return {
        "name": registration.source,
        "type": "custom_foundation_model_1.0",
        "software_spec": {"name": software_spec},
        "space_id": space_id,
        "foundation_model": {
            "model_id": registration.source,
            "model_location": {"type": "connection_asset", "connection": {"id": connection_id},
                               "location": {"bucket": bucket, "file_path": file_path}},
        },
    }


def online_deployment_body(*, asset_id: str, serving_name: str, space_id: str, configuration: str, family: str,
                           parameters: dict) -> dict:
    """The deployment request of the contract: `hardware_request` with the
    model's parameters, or for a time-series model `hardware_spec` and no
    `foundation_model` parameters."""
    online: dict = {"serving_name": serving_name}
    body: dict = {"asset": {"id": asset_id}, "name": serving_name, "space_id": space_id,
                  "online": {"parameters": online}}
    if family == "time_series":
        body["hardware_spec"] = dict(catalog.TS_HARDWARE_SPEC[configuration])
    else:
        online["foundation_model"] = dict(parameters)
        body["hardware_request"] = dict(catalog.CONFIGURATIONS[configuration].hardware_request)
    return body


def platform_request(*, registration, plan: DeploymentPlan) -> dict:
    """The two request bodies the platform takes: the model asset and the
    online deployment, with placeholders for the platform's own ids."""
    file_path = "models/" + re.sub(r"[^A-Za-z0-9._/-]+", "_", registration.source).strip("/")
    asset = asset_body(registration=registration, software_spec=plan.software_spec, space_id=SPACE_PLACEHOLDER,
                       connection_id=CONNECTION_PLACEHOLDER, bucket=settings.CFM_S3_BUCKET or BUCKET_PLACEHOLDER,
                       file_path=file_path)
    deployment = online_deployment_body(asset_id=ASSET_PLACEHOLDER, serving_name=plan.serving_name,
                                        space_id=SPACE_PLACEHOLDER, configuration=plan.configuration,
                                        family=plan.family, parameters=plan.parameters)
    return {"asset": asset, "deployment": deployment}
