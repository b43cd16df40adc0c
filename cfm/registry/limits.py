"""The engine's caps, from settings."""
from django.conf import settings

from cfm.inspection import InspectLimits


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
