"""The one validator of Hub repo ids and revisions (pure Python): the
registration form, the API (through registry.services) and the engine
(hub.parse_repo_spec, so `cfm_inspect` too) all ask these two functions.

Repo ids follow the Hub's own rule: `name` (legacy) or `org/name`, each part
1 to 96 of letters, digits, `-`, `_`, `.`, neither starting nor ending with
`-` or `.`, without `--` or `..`, not ending in `.git`.

Revisions are a branch, a tag or a commit: git's ref-name rules, narrowed to
what the Hub serves. Each `/`-separated segment is non-empty, is not `.` or
`..` and does not start with `.`; no `..` anywhere, no `.lock` ending. So
`refs/pr/1` and `v1.0` pass and `main/../../x` (which made the page's Hub
link point elsewhere) does not."""
from __future__ import annotations

import re

REPO_PART_MAX = 96
REVISION_MAX = 200

_REPO_PART = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?$")
_REVISION_CHARS = re.compile(r"^[A-Za-z0-9._/+-]+$")


def is_repo_id(value: object) -> bool:
    """`org/name` or `name`, without a `hf://` prefix or an `@revision`."""
    if not isinstance(value, str) or not value or len(value) > 2 * REPO_PART_MAX + 1:
        return False
    parts = value.split("/")
    if len(parts) > 2:
        return False
    return all(_REPO_PART.match(p) and "--" not in p and ".." not in p and not p.endswith(".git") for p in parts)


def is_revision(value: object) -> bool:
    if not isinstance(value, str) or not value or len(value) > REVISION_MAX:
        return False
    if not _REVISION_CHARS.match(value) or ".." in value or value.endswith(".lock"):
        return False
    return all(seg and not seg.startswith(".") for seg in value.split("/"))
