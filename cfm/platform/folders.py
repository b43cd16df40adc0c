"""Which folder a deployment uploads: the registration's latest successful
Prepare output when there is one, else the registration's own files
(fetched as Prepare fetches them, with no step to run). Both come with
their SHA256SUMS manifest, which names the folder in the bucket."""
from __future__ import annotations

import shutil
from pathlib import Path

from cfm.preparation.models import PrepareJob
from cfm.preparation.selectors import latest_prepared
from cfm.quota.models import Deployment
from cfm.registry.models import Registration, SourceKind

from .bucket import MANIFEST_NAME
from .tracking import FolderUnavailable, staging_root


def files_not_held(registration: Registration) -> bool:
    """A folder upload sent the headers of its large files only: cfm cannot
    deploy it for real (unless a Prepare made a whole copy, which it cannot
    for such an upload either)."""
    from cfm.preparation.services import prepare_partial_file

    if latest_prepared(registration) is not None:
        return False
    return registration.source_kind == SourceKind.FOLDER and prepare_partial_file(registration=registration) is not None


def deployment_folder(dep: Deployment) -> Path:
    registration = dep.registration
    if registration is None:
        raise FolderUnavailable("the registration was deleted")
    prepared = latest_prepared(registration)  # the copy the model's page shows and Deploy validated
    if prepared is not None:
        job = prepared.job
        if job.storage_backend == "s3":
            return _from_own_bucket(dep, job)
        folder = Path(job.storage_location)
        if not (folder / MANIFEST_NAME).is_file():
            raise FolderUnavailable("the prepared folder is no longer stored; prepare the model again")
        return folder
    return _fetch(dep, registration)


def _fetch(dep: Deployment, registration: Registration) -> Path:
    """The registration's own files in a folder with its SHA256SUMS: an
    archive's every file (what the user gave is what the platform gets), a
    Hub repo's or an uploaded folder's model files (as Prepare fetches them:
    not a repo's READMEs, `original/` copies or other formats)."""
    from django.conf import settings

    from cfm.preparation import download as dl
    from cfm.preparation.jobs import source_spec
    from cfm.preparation.pipeline import PrepareError, PrepareOptions, prepare
    from cfm.preparation.storage import LocalStorage, write_manifest
    from cfm.registry.limits import inspect_limits

    root = staging_root() / f"dep-{dep.pk}"
    folder = root / "folder"
    if (folder / MANIFEST_NAME).is_file():
        return folder  # fetched by an earlier attempt
    try:
        source = source_spec(registration)
        if source.kind == "archive":
            limits = inspect_limits()
            listing, prefix = dl.archive_listing(Path(source.path), limits)
            partial = root / "folder.partial"
            dl.archive_extract(Path(source.path), prefix, listing, partial, dl.DownloadProgress(), limits)
            write_manifest(partial)
            partial.rename(folder)
            return folder
        options = PrepareOptions(steps=[], max_memory=settings.CFM_PREPARE_MAX_MEMORY,
                                 time_limit=settings.CFM_PREPARE_TIME_LIMIT, limits=inspect_limits())
        result = prepare(source, options, work_dir=root / "work", storage=LocalStorage(root), key="folder")
    except PrepareError as exc:
        raise FolderUnavailable(exc.message) from None
    return Path(result.stored.location)


def _from_own_bucket(dep: Deployment, job: PrepareJob) -> Path:
    """A prepared folder kept in cfm's own bucket (CFM_S3_*): copied down
    first, then up to the space's bucket (the two are different stores)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from cfm.preparation.jobs import storage_backend

    storage = storage_backend()
    folder = staging_root() / f"dep-{dep.pk}" / "folder"
    if (folder / MANIFEST_NAME).is_file():
        return folder
    key = job.storage_location.split("/", 3)[3] if job.storage_location.startswith("s3://") else ""
    partial = folder.with_name("folder.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        s3 = storage.client()  # type: ignore[union-attr]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=storage.bucket, Prefix=key):  # type: ignore[union-attr]
            for obj in page.get("Contents", []):
                dest = partial / obj["Key"][len(key):]
                dest.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(storage.bucket, obj["Key"], str(dest))  # type: ignore[union-attr]
    except (BotoCoreError, ClientError, OSError, AttributeError) as exc:
        raise FolderUnavailable(f"the prepared folder cannot be read from storage ({type(exc).__name__})") from None
    if not (partial / MANIFEST_NAME).is_file():
        raise FolderUnavailable("the prepared folder is no longer stored; prepare the model again")
    partial.rename(folder)
    return folder
