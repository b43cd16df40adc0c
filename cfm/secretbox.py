"""Secrets at rest (Hub tokens, platform API keys, bucket keys): Fernet
(AES-128-CBC + HMAC-SHA256) with a key derived from CFM_TOKEN_KEY, or
SECRET_KEY when that is unset, and a label per use, so that a value
encrypted for one purpose never decrypts as another.

One mechanism for every app: the registry's Hub tokens and the platform
connections both go through here. Rotating the key makes stored secrets
unreadable (`SecretUnreadable`); the user then gives them again.
"""
from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class SecretUnreadable(Exception):
    """The stored secret was encrypted with another key."""


def _fernet(label: str) -> Fernet:
    secret = settings.CFM_TOKEN_KEY or settings.SECRET_KEY
    # A fixed label per use keeps each key distinct from any other use of SECRET_KEY.
    digest = hashlib.sha256(label.encode() + b"\x00" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(value: str, *, label: str) -> str:
    return _fernet(label).encrypt(value.encode()).decode("ascii")


def decrypt(encrypted: str, *, label: str) -> str:
    try:
        return _fernet(label).decrypt(encrypted.encode("ascii")).decode()
    except (InvalidToken, ValueError) as exc:
        raise SecretUnreadable("the stored secret cannot be decrypted with the current key") from exc
