"""cfm_account create NAME --plan standard|essentials|lite --owner USERNAME
   cfm_account add-member ACCOUNT_ID USERNAME [--role owner|member]"""
from __future__ import annotations

from cfm.accounts import services
from cfm.accounts.models import Account, Membership, Plan, Role

from ._base import OperatorCommand


class Command(OperatorCommand):
    help = "Create an account (prints its id), or add a member to one (prints the membership's id)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create an account owned by a user")
        create.add_argument("name")
        create.add_argument("--plan", required=True, choices=Plan.values)
        create.add_argument("--owner", required=True, help="username of the owner")
        add = sub.add_parser("add-member", help="add a user to an account (or change their role)")
        add.add_argument("account_id")
        add.add_argument("username")
        add.add_argument("--role", default=Role.MEMBER, choices=Role.values)

    def handle(self, *args, **opts):
        created: Account | Membership
        try:
            if opts["action"] == "create":
                created = services.account_create(name=opts["name"], plan=opts["plan"],
                                                  owner=self.user(opts["owner"]))
            else:
                account = self.account(opts["account_id"])
                created = services.membership_add(account=account, user=self.user(opts["username"]),
                                                  role=opts["role"])
        except services.AccountError as exc:
            self.fail(exc.message)
        self.stdout.write(str(created.pk))
