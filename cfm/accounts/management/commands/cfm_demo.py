"""Creates (once) the demo login that `make run` prints."""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from cfm.accounts.models import Account, Membership, Role, Space

USERNAME = "demo"
PASSWORD = "demo-password-cfm"


class Command(BaseCommand):
    help = "Create the demo user, account and spaces used by `make run` (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        user, created = User.objects.get_or_create(username=USERNAME, defaults={"is_staff": True,
                                                                                "is_superuser": True})
        if created:
            user.set_password(PASSWORD)
            user.save()
        if not Membership.objects.filter(user=user).exists():
            account = Account.objects.create(name="Demo team", plan="standard")
            Membership.objects.create(account=account, user=user, role=Role.OWNER)
            Space.objects.create(account=account, name="demo-space", runtime_instance=True)
            Space.objects.create(account=account, name="sandbox (no runtime)", runtime_instance=False)
