"""The most characters each kind of free text may have: one number per kind,
shared by the models (a validator, so `full_clean` in the services refuses
more, which is what the API calls), the forms (max_length, from the model
field or given here) and the API schemas. A 40 MB survey answer used to be
stored whole."""
from __future__ import annotations

from django.core.validators import MaxLengthValidator

#: Survey use case and comments, limit-request reasons and answers, ledger reasons.
FREE_TEXT_MAX = 2000


def free_text_validators() -> list:
    return [MaxLengthValidator(FREE_TEXT_MAX)]
