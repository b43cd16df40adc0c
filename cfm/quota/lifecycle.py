"""The words of a deployment's life: every status message and event is a
key here with its parameters, stored as such and rendered in the reader's
language (English or Japanese) when a page or the API shows it."""
from __future__ import annotations

from django.utils.translation import gettext_lazy as _

MESSAGES = {
    "reserved": _("Reserved — not deployed: the space has no platform connection. The request bodies below are "
                  "ready to copy."),
    "queued": _("Deploying into the platform space %(space_id)s."),
    "upload_started": _("Uploading %(files)s files (%(bytes)s bytes) to bucket %(bucket)s at %(path)s."),
    "upload_skipped": _("The same folder is already in bucket %(bucket)s at %(path)s: not uploaded again."),
    "uploaded": _("Uploaded %(bytes)s bytes to bucket %(bucket)s at %(path)s."),
    "asset_created": _("Model asset %(asset_id)s created."),
    "deployment_created": _("Deployment %(deployment_id)s requested: the platform is starting the runtime."),
    "ready": _("Ready: the model serves at %(url)s."),
    "api_key_refused": _("The API key was refused (IAM answered %(status)s). Put a valid API key in the space's "
                         "platform connection and deploy again."),
    "space_forbidden": _("The key cannot deploy into space %(space_id)s (the platform answered %(status)s). Give "
                         "the key's user the Editor or Admin role in that space, or use another key."),
    "platform_rejected": _("The platform refused the request: %(message)s"),
    "insufficient_resources": _("The platform has insufficient resources for %(configuration)s (%(message)s). "
                                "Deploy again with %(next)s."),
    "insufficient_resources_largest": _("The platform has insufficient resources for %(configuration)s "
                                        "(%(message)s). No larger configuration exists: try again later."),
    "platform_limit": _("The platform refused: the account's own deployment limit is reached (%(message)s). "
                        "Delete a deployment or request a limit increase (not guaranteed: it depends on "
                        "capacity)."),
    "platform_unavailable": _("The platform is unavailable (%(detail)s). Try again later."),
    "storage_failed": _("Uploading to bucket %(bucket)s failed: %(detail)s. Check the bucket and its keys in the "
                        "space's platform connection."),
    "files_unavailable": _("The model's files are not available: %(detail)s"),
    "deploy_failed": _("The deployment failed on the platform: %(message)s"),
    "timeout": _("The deployment was not ready after %(seconds)s seconds: cfm gave up."),
    "connection_missing": _("The space's platform connection was removed before the deployment finished."),
    "secret_unreadable": _("The connection's stored keys can no longer be read (the server's key changed): give "
                           "them again in the space's platform connection."),
    "asset_deleted": _("Model asset %(asset_id)s deleted."),
    "deleting": _("Deletion requested."),
    "deleted": _("Deleted from the platform; its units are released."),
    "released": _("Deleted; its units are released."),
    "removed_outside": _("The deployment was removed from the platform outside cfm; its units are released."),
    "found_outside": _("Found on the platform, made outside cfm (hardware %(size)s); counted in the account's "
                       "usage."),
    "state_changed": _("The platform reports %(old)s → %(new)s."),
    "platform_failed": _("The platform reports the deployment failed: %(message)s"),
}


def render(key: str, params: dict | None = None) -> str:
    """The message in the active language; an unknown key (a message of a
    later version, read by an older one) shows as itself rather than failing."""
    template = MESSAGES.get(key)
    if template is None:
        return key
    text = str(template)  # a lazy string: translated in the active language now
    try:
        return text % (params or {})
    except (KeyError, TypeError, ValueError):
        return text
