"""The engine's caps, from settings."""
from django.conf import settings

from cfm.inspection import InspectLimits

#: The largest file a folder's manifest may list (the manifest is the browser's word, not the disk's). 2^63
#: bytes used to reach the database's integer in the worker: "internal error". 16 TB is far beyond any model
#: file, and ten thousand of them still sum far below 2^63.
FOLDER_FILE_MAX_BYTES = 16 * 10**12


def inspect_limits() -> InspectLimits:
    return InspectLimits(
        max_header_bytes=settings.CFM_MAX_HEADER_BYTES,
        max_config_bytes=settings.CFM_MAX_CONFIG_BYTES,
        max_small_file_bytes=settings.CFM_MAX_SMALL_FILE_BYTES,
        max_json_depth=settings.CFM_MAX_JSON_DEPTH,
        max_tensors=settings.CFM_MAX_TENSORS,
        archive_max_bytes=settings.CFM_ARCHIVE_MAX_BYTES,
        archive_max_files=settings.CFM_ARCHIVE_MAX_FILES,
        archive_max_ratio=settings.CFM_ARCHIVE_MAX_RATIO,
    )
