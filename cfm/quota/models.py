"""The quota: deployments, the append-only ledger that counts their units,
limit requests, and refusals (a request the ledger turned down).

The ledger is the truth about an account's capacity:
- used units  = sum of `reserve` entries - sum of `release` entries;
- limit units = the default limit + sum of `grant` and `adjust` entries.
Entries are never updated or deleted (see `LedgerEntry.save`); a mistake is
corrected by a new `adjust` entry with a reason. A deployment keeps the units
written in its `reserve` entry, even when the unit costs change later.
"""
from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cfm import catalog
from cfm.accounts.models import Account, Space
from cfm.textcaps import FREE_TEXT_MAX, free_text_validators

#: The catalog's configurations (cfm.catalog.CONFIGURATIONS), as model choices.
# (django-stubs types only the class form of TextChoices, not Enum's functional one)
Configuration = models.TextChoices(  # type: ignore[call-overload]
    "Configuration", [(key.upper(), (key, _(conf.label))) for key, conf in catalog.CONFIGURATIONS.items()])


#: The most units a limit, a unit cost or one adjustment may be: far beyond any account, far below the database's
#: integer (2^31 used to reach PostgreSQL: "integer out of range", a 500).
QUOTA_MAX_UNITS = 1_000_000


class UnitCost(models.Model):
    """Units one deployment of a configuration reserves (admin-editable;
    seeded from cfm.catalog.UNIT_COSTS)."""

    configuration = models.CharField(_("configuration"), max_length=12, choices=Configuration.choices, unique=True)
    # A deployment that costs nothing would escape the quota altogether.
    units = models.PositiveIntegerField(_("units"),
                                        validators=[MinValueValidator(1), MaxValueValidator(QUOTA_MAX_UNITS)])
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("unit cost")
        verbose_name_plural = _("unit costs")

    def __str__(self) -> str:
        return f"{self.get_configuration_display()}: {self.units}"


class QuotaSettings(models.Model):
    """One row: the default limit every account starts with (admin-editable;
    seeded from the CFM_DEFAULT_LIMIT_UNITS setting)."""

    default_limit_units = models.PositiveIntegerField(_("default limit (units)"),
                                                      validators=[MaxValueValidator(QUOTA_MAX_UNITS)])
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("quota settings")
        verbose_name_plural = _("quota settings")

    def __str__(self) -> str:
        return str(_("Default limit: %(units)s units") % {"units": self.default_limit_units})

    @classmethod
    def current(cls) -> QuotaSettings:
        row, _created = cls.objects.get_or_create(
            pk=1, defaults={"default_limit_units": settings.CFM_DEFAULT_LIMIT_UNITS})
        return row


class AccountQuota(Account):
    """The account seen from the quota (a proxy, so the accounts app keeps its own admin)."""

    class Meta:
        proxy = True
        verbose_name = _("account quota")
        verbose_name_plural = _("account quotas")


class DeploymentStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    RELEASED = "released", _("Released")


class DeploymentState(models.TextChoices):
    """Where a deployment is on the platform (shared/docs/platform-api.md).
    Units are held from `reserved` to `deleting`, released on `failed` and
    `deleted` (the ledger's `status` says which)."""

    RESERVED = "reserved", _("Reserved — not deployed")
    UPLOADING = "uploading", _("Uploading")
    CREATING = "creating", _("Creating")
    INITIALIZING = "initializing", _("Initializing")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Failed")
    DELETING = "deleting", _("Deleting")
    DELETED = "deleted", _("Deleted")


#: states a tracking job still moves on (the sweeper re-queues them)
TRACKED_STATES = (DeploymentState.UPLOADING, DeploymentState.CREATING, DeploymentState.INITIALIZING,
                  DeploymentState.DELETING)
#: states that run (or may run) on the platform
LIVE_STATES = (DeploymentState.RESERVED, DeploymentState.UPLOADING, DeploymentState.CREATING,
               DeploymentState.INITIALIZING, DeploymentState.READY, DeploymentState.DELETING)


class Origin(models.TextChoices):
    CFM = "cfm", _("cfm")
    #: found on the platform by the sync, made by someone outside cfm
    OUTSIDE = "outside", _("outside cfm")


class Deployment(models.Model):
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="deployments")
    #: SET_NULL: deleting a registration must not fail, nor touch the ledger; the
    #: deployment keeps its platform request and its units until it is deleted itself.
    registration = models.ForeignKey("registry.Registration", on_delete=models.SET_NULL, null=True,
                                     related_name="deployments")
    space = models.ForeignKey(Space, on_delete=models.PROTECT, related_name="deployments")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                   related_name="+")
    configuration = models.CharField(_("configuration"), max_length=12, choices=Configuration.choices)
    #: units reserved when the deployment was made; its release gives back exactly these
    units = models.PositiveIntegerField(_("units"))
    software_spec = models.CharField(_("software specification"), max_length=60)
    serving_name = models.CharField(_("serving name"), max_length=catalog.SERVING_NAME_MAX)
    parameters = models.JSONField(default=dict, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    platform_request = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=DeploymentStatus.choices, default=DeploymentStatus.ACTIVE,
                              db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")

    # --- on the platform (cfm.platform moves these) ---
    state = models.CharField(_("state"), max_length=12, choices=DeploymentState.choices,
                             default=DeploymentState.RESERVED, db_index=True)
    origin = models.CharField(_("origin"), max_length=8, choices=Origin.choices, default=Origin.CFM)
    #: the status message as a key of cfm.quota.lifecycle.MESSAGES and its
    #: parameters, rendered in the reader's language
    message_key = models.CharField(max_length=60, blank=True, default="")
    message_params = models.JSONField(default=dict, blank=True)
    #: a failure's code and, for the platform's own limit, the refusal's links
    error = models.JSONField(null=True, blank=True)
    #: {"asset_id", "deployment_id", "file_path", "inference_url"}
    platform = models.JSONField(null=True, blank=True)
    #: the state the platform reported last (the sync records changes)
    platform_state = models.CharField(max_length=30, blank=True, default="")
    #: {"bytes_done", "bytes_total", "files_done", "files_total"} while uploading
    progress = models.JSONField(default=dict, blank=True)
    #: the latest run of its tracking (kind "deployment" on the job runtime)
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    #: looks at an initializing deployment so far (the wait between them doubles)
    polls = models.PositiveIntegerField(default=0)
    tracking_started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("deployment")
        constraints = [
            # A released deployment's name may be used again; the service also
            # checks this under the account lock, the index is the last word.
            models.UniqueConstraint(fields=["account", "serving_name"], condition=Q(status="active"),
                                    name="unique_active_serving_name"),
        ]

    def __str__(self) -> str:
        return self.serving_name

    @property
    def is_active(self) -> bool:
        return self.status == DeploymentStatus.ACTIVE

    @property
    def short(self) -> str:
        """S, M, L or XL: the badge the pages show."""
        return catalog.CONFIGURATIONS[self.configuration].short


class DeploymentEvent(models.Model):
    """One step of a deployment's life, as its page and API list them."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=12, choices=DeploymentState.choices)
    message_key = models.CharField(max_length=60)
    message_params = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.deployment_id} {self.state} {self.message_key}"


class EntryKind(models.TextChoices):
    RESERVE = "reserve", _("Reserve")
    RELEASE = "release", _("Release")
    GRANT = "grant", _("Limit grant")
    ADJUST = "adjust", _("Limit adjustment")


class AppendOnlyError(Exception):
    pass


class LedgerEntry(models.Model):
    """One movement of capacity. `units` is positive for reserve, release and
    grant (the kind says which way it counts) and signed for adjust."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="ledger_entries")
    kind = models.CharField(_("kind"), max_length=10, choices=EntryKind.choices)
    units = models.IntegerField(_("units"))
    deployment = models.ForeignKey(Deployment, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="ledger_entries")
    # Who acted is kept twice: the reference, for the admin's links, and the username as it was when the entry
    # was written, which outlives the user. Deleting a user (the admin must be able to) empties the reference
    # only, so the ledger never forgets who reserved, released or granted; PROTECT would instead forbid
    # deleting anyone who ever deployed.
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+")
    actor_name = models.CharField(_("actor"), max_length=150, blank=True, default="")
    reason = models.TextField(_("reason"), blank=True, default="", max_length=FREE_TEXT_MAX,
                              validators=free_text_validators())
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        constraints = [
            # At most one reservation and one release per deployment: a retried
            # request can never count a deployment twice.
            models.UniqueConstraint(fields=["deployment", "kind"], condition=Q(kind__in=["reserve", "release"]),
                                    name="one_reserve_release_per_deployment"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.units} ({self.account})"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise AppendOnlyError("ledger entries are append-only; write an adjustment instead")
        if self.actor is not None and not self.actor_name:
            self.actor_name = self.actor.get_username()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("ledger entries are append-only; write an adjustment instead")


class RequestStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    APPROVED = "approved", _("Approved")
    DENIED = "denied", _("Denied")


#: A limit request asks for at most this total, with a reason of at most this
#: many characters: the API and the page both refuse more (services.limit_request_create).
LIMIT_REQUEST_MAX_UNITS = 10_000
LIMIT_REQUEST_REASON_MAX = FREE_TEXT_MAX


class LimitRequest(models.Model):
    """A request for a new total limit; approving it writes a ledger grant."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="limit_requests")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                     related_name="+")
    units = models.PositiveIntegerField(_("requested total limit (units)"))
    reason = models.TextField(_("reason"), max_length=FREE_TEXT_MAX, validators=free_text_validators())
    status = models.CharField(_("status"), max_length=10, choices=RequestStatus.choices,
                              default=RequestStatus.PENDING, db_index=True)
    answer = models.TextField(_("answer"), blank=True, default="", max_length=FREE_TEXT_MAX,
                              validators=free_text_validators())
    answered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    answered_at = models.DateTimeField(null=True, blank=True)
    grant = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("limit request")

    def __str__(self) -> str:
        return str(_("%(account)s asks for %(units)s units (%(status)s)") % {
            "account": self.account, "units": self.units, "status": self.get_status_display()})


class Refusal(models.Model):
    """A deployment the quota refused: the survey links to it and the staff
    capacity page counts it as unmet demand."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="refusals")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    registration = models.ForeignKey("registry.Registration", on_delete=models.SET_NULL, null=True,
                                     related_name="+")
    configuration = models.CharField(max_length=12, choices=Configuration.choices)
    needed_units = models.PositiveIntegerField()
    used_units = models.PositiveIntegerField()
    limit_units = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("refusal")

    def __str__(self) -> str:
        return f"{self.account}: {self.configuration} ({self.needed_units} > {self.limit_units - self.used_units})"


class IdempotencyRecord(models.Model):
    """The first answer to a deployment request made with an Idempotency-Key:
    the same key again (same user) gets this answer back, nothing is reserved twice."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    body = models.JSONField()
    deployment = models.ForeignKey(Deployment, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="unique_idempotency_key")]
