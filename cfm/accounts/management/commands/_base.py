"""Operator commands print only the new object's id (or token) on stdout, so
scripts can capture it; any error is one line on stderr and exit status 1."""
from __future__ import annotations

import sys
from typing import NoReturn

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from cfm.accounts.models import Account


class OperatorCommand(BaseCommand):
    requires_system_checks: list = []

    def fail(self, message: str) -> NoReturn:
        raise CommandError(message, returncode=1)

    def execute(self, *args, **options):
        # A database that is missing or not migrated (say, another CFM_VAR_DIR
        # than the running instance's) is one line, not a traceback.
        try:
            return super().execute(*args, **options)
        except DatabaseError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.fail(f"the database is not ready ({first}): run `make run` or `manage.py migrate` with the same "
                      "DATABASE_URL / CFM_VAR_DIR as the instance you mean")

    def run_from_argv(self, argv):
        # CommandError already goes to stderr with status 1; argparse errors
        # (a missing argument) exit 2 by default: the contract says 1.
        try:
            super().run_from_argv(argv)
        except SystemExit as exc:
            if exc.code not in (0, None, 1):
                sys.exit(1)
            raise

    def user(self, username: str):
        User = get_user_model()
        try:
            return User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            self.fail(f"no user named {username!r}")

    def account(self, account_id: str) -> Account:
        try:
            return Account.objects.get(pk=int(account_id))
        except (ValueError, OverflowError, Account.DoesNotExist):
            self.fail(f"no account with id {account_id!r}")
