"""Assistant outputs in the admin: records, read-only, scoped like the API (`assistant_output_list`)."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from intake.models import AssistantOutput, AssistantOutputCredential, AssistantOutputIdentity, ProposedAction
from intake.selectors import assistant_output_list
from portal.admin_mixins import HistoryAdmin, ReadOnlyAdminMixin, ReadOnlyTabularInline


class OutputInline(ReadOnlyTabularInline):
    """Parts of an output: whoever may see the output (it is scoped already) sees its parts."""

    show_change_link = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("intake.view_assistantoutput")


class IdentityInline(OutputInline):
    model = AssistantOutputIdentity
    verbose_name_plural = "Identities concerned"
    fields = ("nhi",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[AssistantOutputIdentity]:
        return super().get_queryset(request).select_related("nhi")


class CredentialInline(OutputInline):
    model = AssistantOutputCredential
    verbose_name_plural = "Credentials concerned (fingerprint and preview only)"
    fields = ("credential",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[AssistantOutputCredential]:
        return super().get_queryset(request).select_related("credential")


class ProposedActionInline(OutputInline):
    model = ProposedAction
    verbose_name_plural = "Proposed actions (each awaits a person's approval on the case)"
    fields = ("position", "kind", "description", "action_item", "approval")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ProposedAction]:
        return super().get_queryset(request).select_related("action_item__approved_by")

    @admin.display(description="Approval")
    def approval(self, proposal: ProposedAction) -> str:
        item = proposal.action_item
        if item is None:
            return "— (advisory: no case)"
        if item.approved_by is None:
            return "Awaiting approval"
        return f"Approved by {item.approved_by}"


@admin.register(AssistantOutput)
class AssistantOutputAdmin(ReadOnlyAdminMixin, HistoryAdmin):
    list_display = ("submitted_at", "assistant", "summary_start", "outcome", "case_link", "submitted_by")
    list_select_related = ("case", "submitted_by")
    list_filter = (
        "outcome",
        "case_kind",
        "needs_multi_person_review",
        "triggers_downstream_work",
        "must_be_retained_as_evidence",
        "depends_on_fresh_context",
    )
    search_fields = ("summary", "recommendation", "assistant", "=conversation_ref")
    show_full_result_count = False
    list_per_page = 50
    inlines = (IdentityInline, CredentialInline, ProposedActionInline)
    fieldsets = (
        (None, {"fields": ("uid", "outcome", "reason", "case_link", "summary", "recommendation")}),
        (
            "Source",
            {"fields": ("assistant", "conversation_ref", "case_kind", "submitted_by", "submitted_at")},
        ),
        (
            "The four facts, as the assistant states them",
            {
                "fields": (
                    "needs_multi_person_review",
                    "triggers_downstream_work",
                    "must_be_retained_as_evidence",
                    "depends_on_fresh_context",
                )
            },
        ),
        (
            "What the rule derived",
            {
                "fields": (
                    "changes_ownership",
                    "changes_state",
                    "changes_evidence_requirements",
                    "triggers",
                    "masked_fields",
                    "recommendation_item",
                    "evidence",
                    "context_evidence",
                )
            },
        ),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [field for _, options in self.fieldsets for field in options["fields"]]

    def get_queryset(self, request: HttpRequest) -> QuerySet[AssistantOutput]:
        return assistant_output_list(user=request.user)

    @admin.display(description="Summary")
    def summary_start(self, output: AssistantOutput) -> str:
        return output.summary[:80]

    @admin.display(description="Case", ordering="case_id")
    def case_link(self, output: AssistantOutput) -> str:
        if output.case is None:
            return "— (advisory)"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:cases_case_change", args=(output.case_id,)),
            output.case.reference,
        )
