from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from cfm.quota.models import Configuration

from .models import SurveyResponse


class SurveyForm(forms.ModelForm):
    # No blank choice: the radio group starts unselected and is required.
    configuration = forms.ChoiceField(choices=Configuration.choices, widget=forms.RadioSelect,
                                      label=_("Which configuration do you need?"))

    class Meta:
        model = SurveyResponse
        fields = ["configuration", "count", "model", "use_case", "timeline", "comments"]
        labels = {
            "configuration": _("Which configuration do you need?"),
            "count": _("How many deployments of it?"),
            "model": _("Which model?"),
            "use_case": _("What is it for?"),
            "timeline": _("When do you need it?"),
            "comments": _("Anything else we should know?"),
        }
        help_texts = {
            "model": _("A Hub id such as org/name, or a short description."),
            "count": _("At the same time, in this account."),
        }
        widgets = {
            "count": forms.NumberInput(attrs={"min": 1, "max": 1000}),
            "use_case": forms.Textarea(attrs={"rows": 3}),
            "comments": forms.Textarea(attrs={"rows": 3}),
            "timeline": forms.Select,
        }
