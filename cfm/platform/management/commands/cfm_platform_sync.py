"""`manage.py cfm_platform_sync`: compare every connected space's deployments
with the ledger now (the worker's beat does it every
CFM_PLATFORM_SYNC_INTERVAL seconds). Prints what it found as JSON."""
from __future__ import annotations

import json

from cfm.accounts.management.commands._base import OperatorCommand
from cfm.platform.sync import platform_sync


class Command(OperatorCommand):
    help = "Compare each connected space's platform deployments with the ledger now."

    def handle(self, *args, **options):
        result = platform_sync()
        self.stdout.write(json.dumps({"spaces": result.spaces, "gone": result.gone, "found": result.found,
                                      "changed": result.changed, "errors": result.errors}))
