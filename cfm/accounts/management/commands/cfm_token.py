"""cfm_token USERNAME [--name NAME] [--days N]: prints a new API token, nothing else."""
from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from cfm.accounts.tokens import token_create

from ._base import OperatorCommand


class Command(OperatorCommand):
    help = "Create an API token for a user and print it (shown once; stored hashed)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cfm_token", help="a label shown on the settings page")
        parser.add_argument("--days", type=int, default=None, help="expires after this many days (default: never)")

    def handle(self, *args, **opts):
        user = self.user(opts["username"])
        if not user.is_active:
            self.fail(f"user {opts['username']!r} is inactive")
        days = opts["days"]
        if days is not None and days < 1:
            self.fail("--days must be at least 1")
        expires = timezone.now() + timedelta(days=days) if days else None
        _token, raw = token_create(user=user, name=opts["name"][:80], expires_at=expires)
        self.stdout.write(raw)
