"""Allowed hosts: cfm calls a user-given URL only when it starts with one
of the configured prefixes (CFM_PLATFORM_URLS, CFM_STORAGE_URLS), so a
connection can never aim cfm's requests at an address of the user's choice."""
from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings


def _clean(url: str) -> str | None:
    """The URL without a trailing slash, or None when it is not a plain
    http(s) URL (credentials, a query, a fragment or spaces are refused:
    each could make a prefix match mean something else)."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    if not url or any(c.isspace() for c in url) or "\\" in url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    if parts.query or parts.fragment:
        return None
    return url.rstrip("/")


def _allowed(url: str, prefixes: list[str]) -> bool:
    for prefix in prefixes:
        prefix = prefix.rstrip("/")
        # "https://eu-de.ml.cloud.ibm.com" must not admit "https://eu-de.ml.cloud.ibm.com.evil.example"
        if url == prefix or url.startswith(prefix + "/"):
            return True
    return False


def platform_url(url: str) -> str | None:
    """The cleaned URL when CFM_PLATFORM_URLS allows it, else None."""
    clean = _clean(url)
    return clean if clean and _allowed(clean, settings.CFM_PLATFORM_URLS) else None


def storage_url(url: str) -> str | None:
    clean = _clean(url)
    return clean if clean and _allowed(clean, settings.CFM_STORAGE_URLS) else None
