"""Structured outputs of AI assistants and chat tools: promoted into cases by rule, or kept as advisories.

An output is a record of what an assistant said and what the portal did with it. It is written once, by
`intake.services.assistant_output_submit`, and never changed or deleted: the admin shows it read-only.
Credentials are referenced by id and keyed fingerprint only; free text is masked before it is stored.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from cases.models import ActionItem, ActionKind, Case, CaseKind, Evidence
from nhi_inventory.models import Credential, NonHumanIdentity


class Outcome(models.TextChoices):
    CASE_OPENED = "case_opened", "Opened a case"
    CASE_JOINED = "case_joined", "Joined an open case"
    ADVISORY = "advisory", "Recorded as an advisory"


class WrittenOnce(models.Model):
    """Rows of the intake record: inserted once with their output, never rewritten or deleted."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError(f"{self._meta.verbose_name} is a record: it cannot be changed once stored.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError(f"{self._meta.verbose_name} is a record: it cannot be deleted.")


class AssistantOutput(WrittenOnce):
    uid = models.UUIDField(
        "reference", default=uuid.uuid4, unique=True, editable=False, help_text="Quoted in the case."
    )
    summary = models.TextField(help_text="As submitted, with anything shaped like a credential masked.")
    recommendation = models.TextField(help_text="Masked like the summary.")
    assistant = models.CharField("source assistant", max_length=100)
    conversation_ref = models.CharField(
        "conversation reference",
        max_length=300,
        blank=True,
        help_text="Where the conversation can be found; URLs are kept without user-info or query string.",
    )
    case_kind = models.CharField(
        max_length=24,
        choices=CaseKind.choices,
        default=CaseKind.AI_OUTPUT,
        help_text="The kind of case it opens, or must have to be joined.",
    )
    nhis: models.ManyToManyField[NonHumanIdentity, AssistantOutputIdentity] = models.ManyToManyField(
        NonHumanIdentity,
        through="AssistantOutputIdentity",
        related_name="assistant_outputs",
        blank=True,
        verbose_name="identities concerned",
        help_text="Those named, and those of the credentials named.",
    )
    credentials: models.ManyToManyField[Credential, AssistantOutputCredential] = models.ManyToManyField(
        Credential, through="AssistantOutputCredential", related_name="assistant_outputs", blank=True
    )
    # The four facts of the guidance, as the assistant states them.
    needs_multi_person_review = models.BooleanField("needs review by more than one person")
    triggers_downstream_work = models.BooleanField("triggers downstream work")
    must_be_retained_as_evidence = models.BooleanField("must be retained as evidence")
    depends_on_fresh_context = models.BooleanField("depends on fresh context")
    # What the rule (intake.rules.assess) derived from the facts and the proposed actions.
    changes_ownership = models.BooleanField()
    changes_state = models.BooleanField()
    changes_evidence_requirements = models.BooleanField()
    triggers = models.JSONField(
        default=list,
        blank=True,
        help_text="What made it change ownership, state or evidence requirements (names).",
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    reason = models.TextField(help_text="Why: the sentence returned to the assistant.")
    masked_fields = models.JSONField(
        default=list, blank=True, help_text="Fields in which something shaped like a credential was masked."
    )
    case = models.ForeignKey(
        Case, null=True, blank=True, on_delete=models.PROTECT, related_name="assistant_outputs"
    )
    recommendation_item = models.OneToOneField(
        ActionItem,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="recommended_by_output",
        help_text="The recommendation, as a proposed action item on the case.",
    )
    evidence = models.OneToOneField(
        Evidence,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="retained_output",
        help_text="The output, as canonical JSON, kept as evidence on the case.",
    )
    context_evidence = models.OneToOneField(
        Evidence,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="context_of_output",
        help_text="The identities' criticality, privilege and exposure when the output arrived.",
    )
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    submitted_at = models.DateTimeField(db_index=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = "assistant output"
        ordering = ("-submitted_at", "-id")
        permissions = (("submit_assistantoutput", "Can submit an AI assistant's output to the intake"),)
        constraints = (
            models.CheckConstraint(
                condition=(Q(outcome="advisory") & Q(case__isnull=True))
                | (Q(outcome__in=("case_opened", "case_joined")) & Q(case__isnull=False)),
                name="assistant_output_case_matches_outcome",
            ),
            models.CheckConstraint(
                condition=Q(outcome="advisory")
                ^ (Q(changes_ownership=True) | Q(changes_state=True) | Q(changes_evidence_requirements=True)),
                name="assistant_output_promoted_when_it_changes_something",
            ),
        )

    def __str__(self) -> str:
        return f"{self.assistant}: {self.summary[:60]}"


class AssistantOutputIdentity(WrittenOnce):
    output = models.ForeignKey(AssistantOutput, on_delete=models.CASCADE, related_name="identity_links")
    nhi = models.ForeignKey(NonHumanIdentity, on_delete=models.PROTECT, related_name="+")
    history = HistoricalRecords()

    class Meta:
        verbose_name = "identity concerned"
        verbose_name_plural = "identities concerned"
        constraints = (
            models.UniqueConstraint(fields=("output", "nhi"), name="assistant_output_identity_unique"),
        )

    def __str__(self) -> str:
        return f"{self.nhi} in output #{self.output_id}"


class AssistantOutputCredential(WrittenOnce):
    output = models.ForeignKey(AssistantOutput, on_delete=models.CASCADE, related_name="credential_links")
    credential = models.ForeignKey(Credential, on_delete=models.PROTECT, related_name="+")
    history = HistoricalRecords()

    class Meta:
        verbose_name = "credential concerned"
        verbose_name_plural = "credentials concerned"
        constraints = (
            models.UniqueConstraint(
                fields=("output", "credential"), name="assistant_output_credential_unique"
            ),
        )

    def __str__(self) -> str:
        return f"{self.credential} in output #{self.output_id}"


class ProposedAction(WrittenOnce):
    """One action the assistant proposed; on a promoted output, the action item that awaits approval."""

    output = models.ForeignKey(AssistantOutput, on_delete=models.CASCADE, related_name="proposed_actions")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=16, choices=ActionKind.choices)
    description = models.TextField(help_text="Masked like the summary.")
    action_item = models.OneToOneField(
        ActionItem, null=True, blank=True, on_delete=models.PROTECT, related_name="assistant_proposal"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ("output_id", "position")
        constraints = (
            models.UniqueConstraint(fields=("output", "position"), name="proposed_action_position"),
        )

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.description[:60]}"
