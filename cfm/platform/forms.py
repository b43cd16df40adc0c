"""The connection form of a space's page: what docs/platform.md's PUT takes.
Secrets are write-only: their fields start empty, and left empty they keep
the stored value (the page shows a "set" badge instead of the value)."""
from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import DEFAULT_PREFIX, IAM_URL


class ConnectionForm(forms.Form):
    url = forms.CharField(label=_("Platform URL"), max_length=300,
                          help_text=_("The region's watsonx.ai address, e.g. https://us-south.ml.cloud.ibm.com."),
                          widget=forms.URLInput(attrs={"autocomplete": "url", "spellcheck": "false"}))
    iam_url = forms.CharField(label=_("IAM URL"), max_length=300, required=False, initial=IAM_URL,
                              help_text=_("Where API keys become tokens. Empty: %(url)s.") % {"url": IAM_URL},
                              widget=forms.URLInput(attrs={"spellcheck": "false"}))
    api_key = forms.CharField(label=_("API key"), max_length=300, required=False,
                              widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    space_id = forms.CharField(label=_("Platform space id"), max_length=100,
                               help_text=_("The deployment space's id on the platform (its Manage tab), not cfm's."),
                               widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}))
    endpoint = forms.CharField(label=_("Bucket endpoint"), max_length=300,
                               help_text=_("The object storage's S3 endpoint, e.g. "
                                           "https://s3.us-south.cloud-object-storage.appdomain.cloud."),
                               widget=forms.URLInput(attrs={"spellcheck": "false"}))
    bucket = forms.CharField(label=_("Bucket"), max_length=100,
                             widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}))
    access_key_id = forms.CharField(label=_("Access key id"), max_length=300, required=False,
                                    widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    secret_access_key = forms.CharField(label=_("Secret access key"), max_length=300, required=False,
                                        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    connection_id = forms.CharField(
        label=_("Platform connection id"), max_length=100,
        help_text=_("The connection asset in the platform space that points at this bucket."),
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}))
    folder_prefix = forms.CharField(label=_("Folder prefix"), max_length=200, required=False, initial=DEFAULT_PREFIX,
                             help_text=_("Models go to PREFIX/ACCOUNT/MODEL/DIGEST/ in the bucket."),
                             widget=forms.TextInput(attrs={"spellcheck": "false"}))

    #: form field → the name the service's errors use (docs/platform.md's JSON)
    ERROR_NAMES = {"url": "url", "iam_url": "iam_url", "api_key": "api_key", "space_id": "space_id",
                   "endpoint": "storage.endpoint", "bucket": "storage.bucket",
                   "access_key_id": "storage.access_key_id", "secret_access_key": "storage.secret_access_key",
                   "connection_id": "storage.connection_id", "folder_prefix": "storage.prefix"}
    SECRETS = ("api_key", "access_key_id", "secret_access_key")

    def __init__(self, *args, connection=None, **kwargs):
        self.connection = connection
        if connection is not None and not args and "initial" not in kwargs:
            kwargs["initial"] = {
                "url": connection.url, "iam_url": connection.iam_url, "space_id": connection.platform_space_id,
                "endpoint": connection.storage_endpoint, "bucket": connection.storage_bucket,
                "connection_id": connection.storage_connection_id, "folder_prefix": connection.storage_prefix}
        super().__init__(*args, **kwargs)
        stored = {"api_key": bool(connection and connection.api_key_encrypted),
                  "access_key_id": bool(connection and connection.storage_access_key_encrypted),
                  "secret_access_key": bool(connection and connection.storage_secret_encrypted)}
        for name in self.SECRETS:
            field = self.fields[name]
            field.is_set = stored[name]  # type: ignore[attr-defined]  # the "set" badge
            field.help_text = (_("Stored, encrypted, never shown. Leave empty to keep it; type a new one to replace "
                                 "it.") if stored[name] else _("Stored encrypted and never shown again."))
            field.conditional = True  # type: ignore[attr-defined]  # required only the first time
            if not stored[name]:
                field.widget.attrs["required"] = "required"

    def body(self) -> dict:
        """The PUT body: secrets left empty are left out, so the stored ones are kept."""
        d = self.cleaned_data
        body = {"url": d["url"], "iam_url": d["iam_url"] or None, "space_id": d["space_id"],
                "storage": {"endpoint": d["endpoint"], "bucket": d["bucket"], "connection_id": d["connection_id"],
                            "prefix": d["folder_prefix"] or None}}
        if d["api_key"]:
            body["api_key"] = d["api_key"]
        for name in ("access_key_id", "secret_access_key"):
            if d[name]:
                body["storage"][name] = d[name]
        return body

    def add_service_errors(self, fields: dict) -> None:
        by_service = {v: k for k, v in self.ERROR_NAMES.items()}
        for name, message in fields.items():
            self.add_error(by_service.get(name), message)
