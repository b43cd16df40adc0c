"""`manage.py cfm_inspect SOURCE [--json]`: the report of docs/report.md.

The same command as the Django-free `cfm-inspect` (cfm/inspection/cli.py:
arguments, output, JSON, exit codes), with the caps and Hub settings taken
from Django's settings. Exit status: 0 deployable, 1 not deployable, 2 the
source could not be read (one line on stderr, nothing on stdout, never a
traceback)."""
from __future__ import annotations

import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from cfm.inspection import cli
from cfm.registry.limits import inspect_limits


class Command(BaseCommand):
    help = "Inspect a model folder, archive or Hub repo and report what the platform will make of it."
    requires_system_checks: list = []

    def add_arguments(self, parser):
        cli.add_arguments(parser)

    def handle(self, *args, **opts):
        engine = cli.CliSettings(limits=inspect_limits(), hub_timeout=settings.CFM_HUB_TIMEOUT,
                                 hub_attempts=settings.CFM_HUB_MAX_RETRIES + 1)
        sys.exit(cli.run(opts, engine, prog="cfm_inspect"))
