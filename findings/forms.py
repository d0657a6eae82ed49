"""The owner's answer form. It checks the shape of what was typed; `exposure_answer` judges the answer.

Which fields an answer needs (a suggested owner, a reason, a date) is decided by the service alone, so the
owner page, the emailed link and any future API cannot disagree; its ValidationError is put back on the
fields here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict

from django import forms
from django.core.exceptions import ValidationError

from findings.services import Answer
from nhi_inventory.models import CredentialStatus


class AnswerArguments(TypedDict):
    answer: str
    note: str
    suggested_owner: str
    remediation: str
    remediated_at: datetime | None


class AnswerForm(forms.Form):
    answer = forms.ChoiceField(choices=Answer.CHOICES, widget=forms.RadioSelect, label="Your answer")
    suggested_owner = forms.CharField(
        required=False,
        max_length=200,
        label="Whose is it?",
        help_text="For “Not ours”: the team or person it belongs to.",
    )
    note = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        label="Reason or note",
        help_text="Required for “False positive”: why it is not a real secret.",
    )
    remediation = forms.ChoiceField(
        required=False,
        choices=[("", "—"), (CredentialStatus.ROTATED, "Rotated"), (CredentialStatus.REVOKED, "Revoked")],
        label="Rotated or revoked?",
        help_text="For “Already rotated or revoked”.",
    )
    remediated_at = forms.DateTimeField(
        required=False,
        label="When (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        help_text="For “Already rotated or revoked”: when it was done; not in the future.",
    )

    def __init__(self, *args: Any, answers: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if answers is not None:
            # A confirmed exposure can still be reported rotated or revoked, and nothing else.
            field = self.fields["answer"]
            assert isinstance(field, forms.ChoiceField)
            field.choices = [(value, label) for value, label in Answer.CHOICES if value in answers]

    def arguments(self) -> AnswerArguments:
        """The cleaned fields as `exposure_answer`'s keyword arguments."""
        data = self.cleaned_data
        return AnswerArguments(
            answer=data["answer"],
            note=data["note"],
            suggested_owner=data["suggested_owner"],
            remediation=data["remediation"],
            remediated_at=data["remediated_at"],
        )

    def add_service_errors(self, error: ValidationError) -> None:
        """Show the service's refusal next to the field it names, or above the form."""
        if hasattr(error, "error_dict"):
            for name, messages in error.error_dict.items():
                self.add_error(name if name in self.fields else None, messages)
        else:
            self.add_error(None, error)
