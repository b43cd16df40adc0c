"""A space's connection to the platform: where to deploy and which bucket
the platform reads the model from. Secrets are encrypted at rest
(cfm.secretbox) and never leave the server."""
from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from cfm.accounts.models import Space
from cfm.secretbox import decrypt, encrypt

IAM_URL = "https://iam.cloud.ibm.com"
DEFAULT_PREFIX = "cfm"
_LABEL = "cfm.platform.connection"


class Connection(models.Model):
    space = models.OneToOneField(Space, on_delete=models.CASCADE, related_name="platform_connection")
    url = models.CharField(_("platform URL"), max_length=300)
    iam_url = models.CharField(_("IAM URL"), max_length=300, default=IAM_URL)
    api_key_encrypted = models.TextField()
    #: the platform's deployment space id (not cfm's Space id)
    platform_space_id = models.CharField(_("platform space id"), max_length=100)
    storage_endpoint = models.CharField(_("bucket endpoint"), max_length=300)
    storage_bucket = models.CharField(_("bucket"), max_length=100)
    storage_access_key_encrypted = models.TextField()
    storage_secret_encrypted = models.TextField()
    #: the platform's connection asset for the bucket
    storage_connection_id = models.CharField(_("connection id"), max_length=100)
    storage_prefix = models.CharField(_("prefix"), max_length=200, default=DEFAULT_PREFIX, blank=True)
    check_ok = models.BooleanField(null=True, blank=True)
    check_message = models.TextField(blank=True, default="")
    checked_at = models.DateTimeField(null=True, blank=True)
    #: when the sync last listed this space's deployments
    synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("platform connection")

    def __str__(self) -> str:
        return f"{self.space} → {self.url} ({self.platform_space_id})"

    # Secrets: set in clear, stored encrypted; reading raises SecretUnreadable after a key change.
    @property
    def api_key(self) -> str:
        return decrypt(self.api_key_encrypted, label=_LABEL)

    @api_key.setter
    def api_key(self, value: str) -> None:
        self.api_key_encrypted = encrypt(value, label=_LABEL)

    @property
    def access_key_id(self) -> str:
        return decrypt(self.storage_access_key_encrypted, label=_LABEL)

    @access_key_id.setter
    def access_key_id(self, value: str) -> None:
        self.storage_access_key_encrypted = encrypt(value, label=_LABEL)

    @property
    def secret_access_key(self) -> str:
        return decrypt(self.storage_secret_encrypted, label=_LABEL)

    @secret_access_key.setter
    def secret_access_key(self, value: str) -> None:
        self.storage_secret_encrypted = encrypt(value, label=_LABEL)
