"""A deleted registration's Prepare files go with it: the work folder
(downloads, steps' output) and every prepared folder, locally or in the
bucket. The registry refuses the deletion while a deployment is live, so
nothing here is still needed."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

from django.conf import settings

from .jobs import storage_backend, work_dir_for
from .storage import LocalStorage, S3Storage, Stored

log = logging.getLogger(__name__)


def registration_files_delete(sender, *, registration_id: int, prepared: list[dict], **_kwargs) -> None:
    shutil.rmtree(work_dir_for(registration_id), ignore_errors=True)
    media = Path(settings.MEDIA_ROOT).resolve()
    for item in prepared:
        location = item.get("location") or ""
        if item.get("backend") == "local":
            path = Path(location).resolve()
            if media in path.parents:  # never a folder outside cfm's own media
                LocalStorage(media).delete(Stored("local", str(path)))
        elif item.get("backend") == "s3" and location.startswith("s3://"):
            storage = storage_backend()
            if isinstance(storage, S3Storage):
                bucket, _sep, key = location[5:].partition("/")
                try:
                    storage.delete(Stored("s3", location, bucket=bucket, key=key))
                except Exception as exc:  # noqa: BLE001 - a bucket fault must not undo the deletion
                    log.warning("prepared folder %s not deleted: %s", location, type(exc).__name__)
