"""API tokens: `cfm_<random>`, shown once, stored hashed."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.utils import timezone

from .models import ApiToken


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


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
