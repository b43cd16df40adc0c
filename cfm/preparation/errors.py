"""The one exception the preparation code raises for an expected failure."""
from __future__ import annotations


class PrepareError(Exception):
    """An expected failure, with a stable `code` (the job row's error_code,
    rendered into words by the page) and a one-line English `message` for
    logs and the command line.

    Codes: missing_extras, unsafe_pickle, unreadable_weights, out_of_memory,
    time_limit, worker_crashed, tokenizer_failed, disk_full, download_failed,
    access_denied, source_unavailable, cancelled, verify_failed, storage_failed,
    bad_config, unsupported.
    """

    def __init__(self, code: str, message: str, **params):
        super().__init__(message)
        self.code = code
        self.message = message
        self.params = params


class Cancelled(PrepareError):
    def __init__(self) -> None:
        super().__init__("cancelled", "the job was cancelled")
