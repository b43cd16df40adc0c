"""Accounts (the cloud account: the tenant), their members and spaces."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from cfm.catalog import DEFAULT_PLAN, PLANS, PLANS_ALLOWED_TO_DEPLOY

#: The plans of the catalog (cfm.catalog.PLANS), as model choices.
# (django-stubs types only the class form of TextChoices, not Enum's functional one)
Plan = models.TextChoices(  # type: ignore[call-overload]
    "Plan", [(key.upper(), (key, _(label))) for key, label in PLANS.items()])


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    MEMBER = "member", _("Member")


class Account(models.Model):
    name = models.CharField(_("name"), max_length=120)
    plan = models.CharField(_("plan"), max_length=20, choices=Plan.choices, default=DEFAULT_PLAN)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="accounts")

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("account")

    def __str__(self) -> str:
        return self.name

    @property
    def may_use_custom_models(self) -> bool:
        return self.plan in PLANS_ALLOWED_TO_DEPLOY


class Membership(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "user"], name="unique_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.account} ({self.role})"


class LiveSpaceManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(deleted_at__isnull=True)


class Space(models.Model):
    """A deployment space or project; deployable only with a runtime instance.

    Deleting a space only marks it (`deleted_at`): the deployments it once
    held keep their history and their ledger entries, which point at it.
    `objects` (and so `account.spaces`) sees live spaces only; a
    deployment's `dep.space` still reaches a deleted one (Django follows a
    foreign key with the base manager)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="spaces")
    name = models.CharField(_("name"), max_length=120)
    runtime_instance = models.BooleanField(_("watsonx.ai Runtime associated"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = LiveSpaceManager()
    all_objects = models.Manager()

    class Meta:
        ordering = ["name", "id"]
        base_manager_name = "all_objects"

    def __str__(self) -> str:
        return self.name


class ApiToken(models.Model):
    """A bearer token for the API: shown once, stored as a SHA-256 hash."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=80, blank=True, default="")
    prefix = models.CharField(max_length=12, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"
