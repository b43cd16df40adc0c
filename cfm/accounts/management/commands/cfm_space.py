"""cfm_space create ACCOUNT_ID NAME [--no-runtime]"""
from __future__ import annotations

from cfm.accounts import services

from ._base import OperatorCommand


class Command(OperatorCommand):
    help = "Create a deployment space in an account. Prints only the space's id."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a space")
        create.add_argument("account_id")
        create.add_argument("name")
        create.add_argument("--no-runtime", action="store_true",
                            help="the space has no watsonx.ai Runtime instance associated (deployments refused)")

    def handle(self, *args, **opts):
        account = self.account(opts["account_id"])
        try:
            space = services.space_create(account=account, name=opts["name"],
                                          runtime_instance=not opts["no_runtime"])
        except services.AccountError as exc:
            self.fail(exc.message)
        self.stdout.write(str(space.pk))
