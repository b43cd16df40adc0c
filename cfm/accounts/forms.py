"""Sign-up and API token forms. Errors are rendered by templates/partials/field.html,
which relies on Django's own aria-invalid / aria-describedby wiring."""
from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cfm.catalog import DEFAULT_PLAN

from .models import Account, Membership, Plan, Role


class SignUpForm(UserCreationForm):
    email = forms.EmailField(label=_("Email"), required=False,
                             help_text=_("Optional. Used only to tell you about your models."),
                             widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    create_account = forms.BooleanField(
        label=_("Create a new account that I own"), required=False, initial=True,
        help_text=_("An account holds your models, spaces and deployment quota. Leave this unticked if a "
                    "colleague will add you to an existing account."))
    account_name = forms.CharField(
        label=_("Account name"), max_length=120, required=False,
        help_text=_("Needed when you create a new account: for example your team or project."),
        widget=forms.TextInput(attrs={"autocomplete": "organization"}))
    plan = forms.ChoiceField(label=_("Plan"), choices=Plan.choices, initial=DEFAULT_PLAN, required=False,
                             help_text=_("Only the Standard plan may register and deploy custom foundation "
                                         "models."))

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "autofocus": True})
        # Required when "create an account" is ticked: not marked "(optional)".
        for name in ("account_name", "plan"):
            self.fields[name].conditional = True  # type: ignore[attr-defined]  # read by partials/field.html

    def clean(self):
        data = super().clean()
        assert data is not None  # ModelForm.clean returns cleaned_data
        if data.get("create_account"):
            if not (data.get("account_name") or "").strip():
                self.add_error("account_name", _("Name the new account, or untick “Create a new account”."))
            if not data.get("plan"):
                self.add_error("plan", _("Choose a plan for the new account."))
        return data

    @transaction.atomic
    def save(self, commit: bool = True):
        user = super().save(commit=True)
        if self.cleaned_data.get("create_account"):
            account = Account.objects.create(name=self.cleaned_data["account_name"].strip(),
                                             plan=self.cleaned_data["plan"])
            Membership.objects.create(account=account, user=user, role=Role.OWNER)
        return user


EXPIRY_CHOICES = [
    ("30", _("30 days")),
    ("90", _("90 days")),
    ("365", _("1 year")),
    ("", _("Never")),
]


class ApiTokenForm(forms.Form):
    name = forms.CharField(label=_("Token name"), max_length=80, required=True,
                           help_text=_("What the token is for, e.g. “CI pipeline”."),
                           widget=forms.TextInput(attrs={"autocomplete": "off"}))
    expires_in = forms.ChoiceField(label=_("Expires"), choices=EXPIRY_CHOICES, required=False, initial="90")

    def expires_at(self):
        days = self.cleaned_data.get("expires_in")
        return timezone.now() + timedelta(days=int(days)) if days else None


class SpaceForm(forms.Form):
    """A space's name and whether a watsonx.ai Runtime instance is associated with it."""

    name = forms.CharField(label=_("Space name"), max_length=120,
                           help_text=_("As in watsonx.ai, for example “production” or “team-lab”."),
                           widget=forms.TextInput(attrs={"autocomplete": "off"}))
    runtime_instance = forms.BooleanField(
        label=_("A watsonx.ai Runtime instance is associated"), required=False, initial=True,
        help_text=_("The platform deploys only into a space with a Runtime instance (the space's Manage tab)."))
