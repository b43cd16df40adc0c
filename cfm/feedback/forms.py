from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from cfm import catalog
from cfm.quota.models import Configuration

from .models import COUNT_MAX, COUNT_MIN, SurveyResponse


class SurveyForm(forms.ModelForm):
    # No blank choice: the radio group starts unselected and is required.
    configuration = forms.ChoiceField(choices=Configuration.choices, widget=forms.RadioSelect,
                                      label=_("Which configuration do you need?"))
    # Declared, not derived: a PositiveIntegerField's form field has a minimum of 0, so -1 and 0 were refused
    # with two different minimums. One range, the model's, and Django's messages for it.
    count = forms.IntegerField(label=_("How many deployments of it?"), min_value=COUNT_MIN, max_value=COUNT_MAX,
                               initial=COUNT_MIN, help_text=_("At the same time, in this account."))

    def __init__(self, *args, family: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        # Extra large is a time-series size: a survey about an LLM does not offer it; one about no model in
        # particular offers it, saying so.
        time_series_only = [c for c in catalog.TIME_SERIES_CONFIGURATIONS if c not in catalog.GENERAL_CONFIGURATIONS]
        field = self.fields["configuration"]
        assert isinstance(field, forms.ChoiceField)
        if family == "general":
            field.choices = [(k, v) for k, v in Configuration.choices if k not in time_series_only]
        elif family is None:
            field.choices = [(k, _("%(label)s (time-series models only)") % {"label": v} if k in time_series_only
                              else v) for k, v in Configuration.choices]

    class Meta:
        model = SurveyResponse
        fields = ["configuration", "count", "model", "use_case", "timeline", "comments"]
        labels = {
            "configuration": _("Which configuration do you need?"),
            "model": _("Which model?"),
            "use_case": _("What is it for?"),
            "timeline": _("When do you need it?"),
            "comments": _("Anything else we should know?"),
        }
        help_texts = {
            "model": _("A Hub id such as org/name, or a short description."),
        }
        widgets = {
            "use_case": forms.Textarea(attrs={"rows": 3}),
            "comments": forms.Textarea(attrs={"rows": 3}),
            "timeline": forms.Select,
        }
