"""The shape of an assistant's output over the API, and of the record the portal keeps of it.

The input serializers check shape only (types, lengths, known fields and choices) and never quote a value
back in an error: an assistant may have pasted a secret anywhere. The service decides the rest (which
identities exist and may be seen, the rule, masking).
"""

from collections.abc import Mapping
from typing import Any

from django.urls import reverse
from rest_framework import serializers

from cases.api.serializers import UserRefSerializer
from cases.models import ActionItem, ActionKind, Case, CaseKind
from intake.models import AssistantOutput, Outcome, ProposedAction
from intake.redaction import masked
from intake.rules import PROPOSED_ACTIONS, PROPOSED_STATE_CHANGE
from intake.services import (
    MAX_DESCRIPTION,
    MAX_PROPOSED_ACTIONS,
    MAX_RECOMMENDATION,
    MAX_REFERENCES,
    MAX_SUMMARY,
)
from nhi_inventory.models import Credential, NonHumanIdentity

FINGERPRINT = r"^[0-9a-f]{64}$"
MAX_ID = 2**63 - 1  # BigAutoField's largest; a larger number would overflow the query, not miss a row


def _choice_error(choices: Any) -> dict[str, Any]:
    # DRF's default message quotes the value sent.
    return {"invalid_choice": f"Choose one of: {', '.join(value for value, _ in choices)}."}


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only: "yes", 1 or "false" are refused rather than guessed."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictSerializer(serializers.Serializer[Any]):
    """Refuses fields it does not know, so a misspelt key is an error instead of a silently missing fact."""

    def to_internal_value(self, data: Any) -> Any:
        errors: dict[str, Any] = {}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as error:
            if not isinstance(error.detail, Mapping):
                raise
            errors.update(error.detail)
        if isinstance(data, Mapping):
            for key in sorted(set(data) - set(self.fields), key=str):
                errors[masked(str(key))[:100]] = ["Unknown field."]
        if errors:
            raise serializers.ValidationError(errors)
        return value


class IntakeSourceSerializer(StrictSerializer):
    assistant = serializers.CharField(max_length=100, help_text="The assistant's name and version.")
    conversation_ref = serializers.CharField(
        max_length=300,
        required=False,
        allow_blank=True,
        default="",
        help_text="Where the conversation is: an id, or a URL (kept without user-info or query string).",
    )


class IntakeFactsSerializer(StrictSerializer):
    """The guidance's four facts, each required, each JSON true or false."""

    needs_multi_person_review = StrictBooleanField(
        help_text="The output needs review by more than one person before action is taken."
    )
    triggers_downstream_work = StrictBooleanField(
        help_text="The response must trigger downstream work, such as ticketing, containment or revocation."
    )
    must_be_retained_as_evidence = StrictBooleanField(
        help_text="The result must be retained as evidence for audit, incident response or compliance."
    )
    depends_on_fresh_context = StrictBooleanField(
        help_text="The decision depends on fresh context: criticality, privilege level or active exposure."
    )


class IntakeProposedActionInputSerializer(StrictSerializer):
    kind = serializers.ChoiceField(
        choices=ActionKind.choices, error_messages=_choice_error(ActionKind.choices)
    )
    description = serializers.CharField(max_length=MAX_DESCRIPTION)


class AssistantOutputInputSerializer(StrictSerializer):
    summary = serializers.CharField(
        max_length=MAX_SUMMARY, help_text="What the assistant found. Credential-shaped text is masked."
    )
    recommendation = serializers.CharField(
        max_length=MAX_RECOMMENDATION,
        help_text="What it recommends; on a case, a proposed action item awaiting a person's approval.",
    )
    nhis = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        default=list,
        max_length=MAX_REFERENCES,
        help_text="Ids of the identities it concerns.",
    )
    credentials = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        default=list,
        max_length=MAX_REFERENCES,
        help_text="Ids of the credentials it concerns (their identities are concerned too).",
    )
    credential_fingerprints = serializers.ListField(
        child=serializers.RegexField(
            FINGERPRINT,
            error_messages={
                "invalid": "A fingerprint is 64 lowercase hex characters (the portal's HMAC-SHA256); never "
                "send the secret itself."
            },
        ),
        required=False,
        default=list,
        max_length=MAX_REFERENCES,
        help_text="Credentials it concerns, by the fingerprint the portal shows for them.",
    )
    proposed_actions = serializers.ListField(
        child=IntakeProposedActionInputSerializer(),
        required=False,
        default=list,
        max_length=MAX_PROPOSED_ACTIONS,
        help_text="Each becomes, on a case, an action item awaiting a person's approval.",
    )
    # The field shadows Field.source in the stubs only: DRF takes declared fields off the class.
    source = IntakeSourceSerializer()  # type: ignore[assignment]
    facts = IntakeFactsSerializer()
    case_kind = serializers.ChoiceField(
        choices=CaseKind.choices,
        required=False,
        default=CaseKind.AI_OUTPUT,
        error_messages=_choice_error(CaseKind.choices),
        help_text="The kind of case to open, and the kind an open case must have to be joined.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not (attrs["nhis"] or attrs["credentials"] or attrs["credential_fingerprints"]):
            raise serializers.ValidationError(
                {
                    "nhis": "Name at least one identity (nhis) or credential (credentials, "
                    "credential_fingerprints) that the output concerns."
                }
            )
        return attrs


# --- The record --------------------------------------------------------------------------------------------


class IntakeIdentityRefSerializer(serializers.Serializer[NonHumanIdentity]):
    id = serializers.IntegerField()
    name = serializers.CharField()


class IntakeCredentialRefSerializer(serializers.Serializer[Credential]):
    id = serializers.IntegerField()
    nhi = serializers.IntegerField(source="nhi_id")
    fingerprint = serializers.CharField()
    preview = serializers.CharField()


class IntakeActionItemRefSerializer(serializers.Serializer[ActionItem]):
    id = serializers.IntegerField()
    status = serializers.CharField()
    approved = serializers.SerializerMethodField(help_text="A person other than the submitter approved it.")
    approved_at = serializers.DateTimeField(allow_null=True)

    def get_approved(self, item: ActionItem) -> bool:
        return item.approved_at is not None


class IntakeProposedActionSerializer(serializers.Serializer[ProposedAction]):
    position = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ActionKind.choices)
    description = serializers.CharField()
    action_item = IntakeActionItemRefSerializer(
        allow_null=True, help_text="On a case: the action item awaiting (or given) a person's approval."
    )


class IntakeCaseRefSerializer(serializers.Serializer[Case]):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    url = serializers.SerializerMethodField()

    def get_url(self, case: Case) -> str:
        path = reverse("api-case-detail", args=(case.pk,))
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class IntakeChangesSerializer(serializers.Serializer[AssistantOutput]):
    ownership = serializers.BooleanField(source="changes_ownership")
    state = serializers.BooleanField(source="changes_state")
    evidence_requirements = serializers.BooleanField(source="changes_evidence_requirements")


TRIGGER_NAMES = (
    "needs_multi_person_review",
    "triggers_downstream_work",
    "must_be_retained_as_evidence",
    "depends_on_fresh_context",
    PROPOSED_ACTIONS,
    PROPOSED_STATE_CHANGE,
)


class AssistantOutputSerializer(serializers.ModelSerializer[AssistantOutput]):
    reference = serializers.UUIDField(source="uid")
    source = IntakeSourceSerializer(source="*")  # type: ignore[assignment]
    facts = IntakeFactsSerializer(source="*")
    changes = IntakeChangesSerializer(source="*")
    triggers = serializers.ListField(
        child=serializers.ChoiceField(choices=TRIGGER_NAMES),
        help_text="What made it change ownership, state or evidence requirements (empty for an advisory).",
    )
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    reason = serializers.CharField(help_text="Why this outcome, naming the facts that led to it.")
    masked_fields = serializers.ListField(
        child=serializers.CharField(), help_text="Fields in which credential-shaped text was masked."
    )
    nhis = IntakeIdentityRefSerializer(
        many=True, help_text="Those named, and those of the credentials named."
    )
    credentials = IntakeCredentialRefSerializer(many=True)
    proposed_actions = IntakeProposedActionSerializer(many=True)
    case = IntakeCaseRefSerializer(allow_null=True)
    recommendation_item = IntakeActionItemRefSerializer(
        allow_null=True, help_text="On a case: the recommendation, as a proposed action item."
    )
    evidence = serializers.IntegerField(
        source="evidence_id", allow_null=True, help_text="Evidence id of the output kept on the case."
    )
    context_evidence = serializers.IntegerField(
        source="context_evidence_id",
        allow_null=True,
        help_text="Evidence id of the identities' context captured with it.",
    )
    submitted_by = UserRefSerializer()

    class Meta:
        model = AssistantOutput
        fields = (
            "id",
            "reference",
            "summary",
            "recommendation",
            "source",
            "case_kind",
            "nhis",
            "credentials",
            "proposed_actions",
            "facts",
            "changes",
            "triggers",
            "outcome",
            "reason",
            "masked_fields",
            "case",
            "recommendation_item",
            "evidence",
            "context_evidence",
            "submitted_by",
            "submitted_at",
        )
        read_only_fields = fields
