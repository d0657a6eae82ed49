"""The fields each case action asks a person for; the services re-check everything they receive."""

from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from cases.models import ActionKind, ActionStatus, DismissalReason, EvidenceKind
from frameworks.models import Control
from nhi_inventory.models import NonHumanIdentity, Team


class ReasonForm(forms.Form):
    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why; recorded in the case history.",
    )


class RequiredReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), help_text="Required; recorded in the history."
    )


class AssignForm(ReasonForm):
    assignee = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username")
    )
    owning_team = forms.ModelChoiceField(queryset=Team.objects.all())

    field_order = ("assignee", "owning_team", "reason")


class DismissForm(RequiredReasonForm):
    dismissal_reason = forms.ChoiceField(choices=DismissalReason.choices)

    field_order = ("dismissal_reason", "reason")


class RiskAcceptanceRequestForm(RequiredReasonForm):
    risk_expires_on = forms.DateField(
        label="Accepted until",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="At most one year ahead.",
    )

    field_order = ("risk_expires_on", "reason")


class DecisionForm(forms.Form):
    approve = forms.TypedChoiceField(
        label="Decision",
        choices=(("yes", "Approve"), ("no", "Reject")),
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect,
    )
    note = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="Required to reject."
    )


class EvidenceForm(forms.Form):
    kind = forms.ChoiceField(choices=EvidenceKind.choices)
    title = forms.CharField(max_length=200)
    file = forms.FileField(required=False)
    url = forms.URLField(required=False, max_length=1000, assume_scheme="https")
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}))


class ActionItemForm(forms.Form):
    kind = forms.ChoiceField(choices=ActionKind.choices)
    title = forms.CharField(max_length=200)
    owning_team = forms.ModelChoiceField(queryset=Team.objects.all())
    external_reference = forms.CharField(max_length=200, required=False)


class ActionItemStatusForm(forms.Form):
    status = forms.ChoiceField(choices=ActionStatus.choices)
    external_reference = forms.CharField(max_length=200, required=False)


class CommentForm(forms.Form):
    body = forms.CharField(label="Comment", widget=forms.Textarea(attrs={"rows": 4}))


class LinkIdentityForm(forms.Form):
    nhi = forms.ModelChoiceField(label="Identity", queryset=NonHumanIdentity.objects.all())


class AttackPathStepForm(forms.Form):
    source_node = forms.CharField(label="From", max_length=200)
    target_node = forms.CharField(label="To", max_length=200)
    technique = forms.CharField(max_length=200)
    nhi = forms.ModelChoiceField(
        label="Identity involved", queryset=NonHumanIdentity.objects.all(), required=False
    )
    failed_control = forms.ModelChoiceField(
        queryset=Control.objects.select_related("framework").exclude(kind="function"), required=False
    )
    failed_control_note = forms.CharField(max_length=300, required=False)
    remediation_team = forms.ModelChoiceField(queryset=Team.objects.all(), required=False)


class MapControlForm(forms.Form):
    control = forms.ModelChoiceField(queryset=Control.objects.select_related("framework"))
    rationale = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why this case falls under the control; recorded in the history and shown in reports.",
    )


class UnmapControlForm(MapControlForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[
            "rationale"
        ].help_text = "Why this case does not fall under the control; the rules will not map it again."


class RouteStepForm(forms.Form):
    step = forms.IntegerField(widget=forms.HiddenInput)
    kind = forms.ChoiceField(choices=ActionKind.choices, initial=ActionKind.OTHER)
