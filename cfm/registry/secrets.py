"""Hub tokens at rest: Fernet (AES-128-CBC + HMAC-SHA256) with a key derived
from CFM_TOKEN_KEY, or SECRET_KEY when that is unset.

A token is kept only for the jobs of its registration (runs, re-runs, the
sweeper's re-queues, Prepare); it is read by the worker from the row, never
passed in task arguments, never logged, and goes with the row when the
registration is deleted. Rotating the key makes stored tokens unreadable:
those jobs then fail with `access_denied` and ask for the token again.
"""
from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class TokenUnreadable(Exception):
    """The stored token was encrypted with another key."""


def _fernet() -> Fernet:
    secret = settings.CFM_TOKEN_KEY or settings.SECRET_KEY
    # A fixed label keeps this key distinct from any other use of SECRET_KEY.
    digest = hashlib.sha256(b"cfm.registry.hub-token\x00" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def token_encrypt(token: str) -> str:
    return _fernet().encrypt(token.encode()).decode("ascii")


def token_decrypt(encrypted: str) -> str:
    try:
        return _fernet().decrypt(encrypted.encode("ascii")).decode()
    except (InvalidToken, ValueError) as exc:
        raise TokenUnreadable("the stored Hub token cannot be decrypted with the current key") from exc


TOKEN_UNREADABLE_MESSAGE = ("The stored access token can no longer be read (the server's key changed); give the "
                            "token again and re-run.")


def registration_token(registration) -> str | None:
    """The Hub token stored with a registration, in clear for one job's use;
    None when there is none. Raises TokenUnreadable."""
    if not registration.token_encrypted:
        return None
    return token_decrypt(registration.token_encrypted)
