"""API tokens: `cfm_<random>`, shown once, stored hashed."""
from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.utils import timezone

from .models import ApiToken

#: How long a sealed new token stays readable: the redirect to the page that shows it takes a moment.
SEAL_SECONDS = 300


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _fernet() -> Fernet:
    # A label of its own: this key is not the Hub tokens' (cfm.registry.secrets) nor any other use of SECRET_KEY.
    digest = hashlib.sha256(b"cfm.accounts.new-api-token\x00" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def token_seal(raw: str) -> str:
    """A new raw token, encrypted, to cross the redirect after its creation in
    the session: sessions are database rows, and a raw token is never stored
    readable. token_unseal gives it back for SEAL_SECONDS."""
    return _fernet().encrypt(raw.encode()).decode("ascii")


def token_unseal(sealed: str) -> str | None:
    """The raw token, or None when the seal is older than SEAL_SECONDS, made
    with another key or altered."""
    try:
        return _fernet().decrypt(sealed.encode("ascii"), ttl=SEAL_SECONDS).decode()
    except (InvalidToken, ValueError):
        return None


def token_matches(*, token: ApiToken, raw: str) -> bool:
    return secrets.compare_digest(token.key_hash, _hash(raw))


def token_create(*, user, name: str = "", expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    raw = "cfm_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, prefix=raw[:12], key_hash=_hash(raw), expires_at=expires_at)
    return token, raw


def token_user(raw: str):
    """The active user a raw token belongs to, or None."""
    if not raw or not raw.startswith("cfm_") or len(raw) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(key_hash=_hash(raw), revoked_at__isnull=True).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.expires_at and token.expires_at <= now:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def token_revoke(*, token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
