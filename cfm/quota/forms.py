"""Forms of the quota pages (Django itself sets aria-invalid and
aria-describedby for help and errors). They only shape input; the rules live in
cfm.catalog and are applied by services.deployment_validate."""
from __future__ import annotations

import uuid
from typing import cast

from django import forms
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from cfm import catalog
from cfm.textcaps import FREE_TEXT_MAX

from .models import LIMIT_REQUEST_MAX_UNITS, LIMIT_REQUEST_REASON_MAX, QUOTA_MAX_UNITS, Configuration
from .services import parameter_defaults, suggested_dtype


def _param_label(name: str):
    return {
        "dtype": _("Data type (dtype)"),
        "max_batch_size": _("Maximum batch size"),
        "max_concurrent_requests": _("Maximum concurrent requests"),
        "max_new_tokens": _("Maximum new tokens"),
        "max_sequence_length": _("Maximum sequence length"),
    }.get(name, name)


def _serving_name_help() -> str:
    # Formatted when a page renders it, in the reader's language: a lazy string
    # %-formatted here, at import, would be frozen in the language of that moment.
    return _("Only a-z, 0-9 and _, at most %(max)s characters; unique in this account.") % {
        "max": catalog.SERVING_NAME_MAX}


class DeploymentForm(forms.Form):
    space = forms.ChoiceField(label=_("Space"))
    configuration = forms.ChoiceField(label=_("Configuration"))
    software_spec = forms.ChoiceField(label=_("Software specification"))
    serving_name = forms.CharField(
        label=_("Serving name"), max_length=catalog.SERVING_NAME_MAX,
        help_text=lazy(_serving_name_help, str)(),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false",
                                      "pattern": catalog.SERVING_NAME_PATTERN.strip("^$")}))
    idempotency_key = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, registration, spaces, unit_costs, report: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        # `report`: the one that decides (the prepared copy's when there is one); else the registration's own
        report = report if report is not None else (registration.report or {})
        self.family = report.get("family") or "general"
        self.recommended = report.get("configuration")
        allowed = catalog.allowed_configurations(report.get("model_type"), self.family)
        labels = dict(Configuration.choices)
        cast(forms.ChoiceField, self.fields["space"]).choices = [
            (str(s.id), s.name if s.runtime_instance else _("%(name)s — no watsonx.ai Runtime") % {"name": s.name})
            for s in spaces]
        cast(forms.ChoiceField, self.fields["configuration"]).choices = [
            (c, ngettext_lazy("%(label)s (%(units)s unit)", "%(label)s (%(units)s units)", unit_costs[c])
             % {"label": labels[c], "units": unit_costs[c]}) for c in allowed]
        if self.family == "time_series":
            self.fields["configuration"].help_text = _(
                "Recommended from the report: %(rec)s. Time-series sizes follow the expected concurrent users: "
                "a larger one serves more.") % {"rec": labels.get(self.recommended or "", "—")}
        else:
            self.fields["configuration"].help_text = _(
                "Recommended from the report: %(rec)s. A larger one is possible only for tensor-parallel "
                "architectures.") % {"rec": labels.get(self.recommended or "", "—")}
        specs = report.get("software_specs") or []
        cast(forms.ChoiceField, self.fields["software_spec"]).choices = [
            (s, f"{s} ({_(catalog.SOFTWARE_SPECS[s][1])})" if s in catalog.SOFTWARE_SPECS else s) for s in specs]
        self.initial.setdefault("configuration", self.recommended)
        self.initial.setdefault("software_spec", report.get("recommended_software_spec"))
        self.initial.setdefault("idempotency_key", uuid.uuid4().hex)
        self.parameter_names = []
        # This model's defaults (max_sequence_length within its context length) and its bounds.
        defaults = parameter_defaults(report)
        context = report.get("context_length")
        if self.family != "time_series":
            for p in catalog.DEPLOYMENT_PARAMETERS:
                name = f"param_{p.name}"
                self.parameter_names.append(name)
                default = defaults[p.name]
                hint = _("Default %(default)s.") % {"default": default}
                field: forms.Field
                if p.minimum is not None:
                    hint = _("Default %(default)s; at least %(min)s.") % {"default": default, "min": p.minimum}
                if p.at_least:
                    hint = _("Default %(default)s; at least %(min)s and at least %(other)s.") % {
                        "default": default, "min": p.minimum, "other": p.at_least}
                if p.name == "max_sequence_length" and isinstance(context, int):
                    hint = str(hint) + " " + str(_("At most %(limit)s, the model's context length.")
                                                 % {"limit": context})
                if p.unused_with:
                    hint = str(hint) + " " + str(_("Not used with %(specs)s.") % {"specs": ", ".join(p.unused_with)})
                if p.choices:
                    # The model's own 16-bit type is proposed (a BF16 model in float16 may overflow).
                    field = forms.ChoiceField(choices=[(c, c) for c in p.choices], required=False,
                                              initial=suggested_dtype(report) if p.name == "dtype" else p.default)
                else:
                    # No min_value/max_value: services.validate_parameters checks the
                    # catalog's ranges for the form and the API alike; the attributes only help the browser.
                    high = context if p.name == "max_sequence_length" and isinstance(context, int) else p.maximum
                    field = forms.IntegerField(required=False, widget=forms.NumberInput(
                        attrs={"placeholder": str(default), "inputmode": "numeric", "min": p.minimum,
                               "max": high}))
                field.label = _param_label(p.name)
                field.help_text = hint
                self.fields[name] = field

    def parameter_fields(self):
        return [self[n] for n in self.parameter_names]

    def main_fields(self):
        return [self[n] for n in ("space", "configuration", "software_spec", "serving_name")]

    def parameters(self) -> dict:
        """Only what the user set: blanks take the platform's defaults, and an
        unchanged dtype is not 'given' (so no spurious warnings)."""
        out = {}
        for p in catalog.DEPLOYMENT_PARAMETERS:
            value = self.cleaned_data.get(f"param_{p.name}")
            if value in (None, ""):
                continue
            if p.choices and value == p.default:
                continue
            out[p.name] = value
        return out


class LimitRequestForm(forms.Form):
    units = forms.IntegerField(label=_("New total limit (units)"), min_value=1, max_value=LIMIT_REQUEST_MAX_UNITS)
    reason = forms.CharField(label=_("Why does the account need more capacity?"),
                             widget=forms.Textarea(attrs={"rows": 4}), max_length=LIMIT_REQUEST_REASON_MAX)

    def __init__(self, *args, current_limit: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["units"].widget.attrs["min"] = current_limit + 1
        self.fields["units"].help_text = _("The account's limit is %(limit)s units now; ask for a higher total.") % {
            "limit": current_limit}
        self.current_limit = current_limit
        self.initial.setdefault("units", current_limit * 2 or 1)

    def clean_units(self):
        units = self.cleaned_data["units"]
        if units <= self.current_limit:
            raise forms.ValidationError(_("Ask for more than the current %(limit)s units.")
                                        % {"limit": self.current_limit})
        return units


class AnswerForm(forms.Form):
    """Admin intermediate page: the answer the account will read."""

    answer = forms.CharField(label=_("Answer shown to the account"), required=False, max_length=FREE_TEXT_MAX,
                             widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


class AdjustForm(forms.Form):
    units = forms.IntegerField(label=_("Change to the limit (units, may be negative)"),
                               min_value=-QUOTA_MAX_UNITS, max_value=QUOTA_MAX_UNITS)
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                             max_length=FREE_TEXT_MAX)

    def clean_units(self):
        if self.cleaned_data["units"] == 0:
            raise forms.ValidationError(_("Move the limit by at least one unit."))
        return self.cleaned_data["units"]


class AdjustAccountForm(AdjustForm):
    """The ledger's own adjustment page: the account is chosen here."""

    field_order = ["account", "units", "reason"]

    def __init__(self, *args, **kwargs):
        from .models import AccountQuota

        super().__init__(*args, **kwargs)
        self.fields["account"] = forms.ModelChoiceField(queryset=AccountQuota.objects.all(), label=_("Account"))
        self.order_fields(self.field_order)
