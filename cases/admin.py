import re
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from audit.models import EXPORT_PERMISSION, AuditEntry
from cases import services
from cases.errors import CaseWorkflowError
from cases.forms import DecisionForm, RouteStepForm
from cases.mapping import mapping_rule_create, mapping_rule_update
from cases.models import (
    ActionItem,
    ActionStatus,
    Approval,
    AttackPathStep,
    Case,
    CaseControlMapping,
    CaseIdentity,
    CaseKind,
    CaseState,
    CaseTransition,
    Comment,
    Evidence,
    MappingRule,
    SlaPolicy,
)
from cases.reports.admin import ReportSnapshotAdmin  # noqa: F401 - registers the snapshot admin
from cases.selectors import action_item_list, approval_list, case_list, evidence_list
from cases.sla import MAX_HOURS_TO_RESOLVE, sla_policy_update
from cases.workflow import ACTIONS_BY_NAME, available_actions, decidable_approvals
from portal.admin_mixins import HistoryAdmin, ReadOnlyAdminMixin, ReadOnlyTabularInline

CASE_REFERENCE = re.compile(r"^\s*CASE-0*(\d+)\s*$", re.IGNORECASE)
STATE_COLOURS = {
    CaseState.IDENTIFIED: "#6b7280",
    CaseState.CONFIRMED: "#2563eb",
    CaseState.ASSIGNED: "#7c3aed",
    CaseState.IN_PROGRESS: "#d97706",
    CaseState.VERIFIED: "#0d9488",
    CaseState.CLOSED: "#15803d",
    CaseState.DISMISSED: "#9ca3af",
    CaseState.RISK_ACCEPTED: "#b91c1c",
}


def _autocomplete(model: type, field_name: str) -> AutocompleteSelect:
    return AutocompleteSelect(model._meta.get_field(field_name), admin.site)  # type: ignore[attr-defined]


# --- Inlines: what happened on the case, read-only; additions go through the case actions -----------------


class TransitionInline(ReadOnlyTabularInline):
    model = CaseTransition
    verbose_name = "lifecycle step"
    verbose_name_plural = "Lifecycle (who, when, from, to, why)"
    fields = ("at", "name", "source_state", "target_state", "actor", "reason")
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[CaseTransition]:
        return super().get_queryset(request).select_related("actor")


class IdentityInline(ReadOnlyTabularInline):
    model = CaseIdentity
    verbose_name_plural = "Linked identities"
    fields = ("nhi", "linked_at")
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[CaseIdentity]:
        return super().get_queryset(request).select_related("nhi")


class ActionItemInline(ReadOnlyTabularInline):
    model = ActionItem
    fields = (
        "kind",
        "title",
        "owning_team",
        "status",
        "external_reference",
        "completed_at",
        "requires_approval",
        "approved_by",
        "approved_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[ActionItem]:
        return super().get_queryset(request).select_related("owning_team", "approved_by")


class EvidenceInline(ReadOnlyTabularInline):
    model = Evidence
    fields = ("kind", "title", "file", "url", "sha256", "captured_by", "captured_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Evidence]:
        return super().get_queryset(request).select_related("captured_by")


class ApprovalInline(ReadOnlyTabularInline):
    model = Approval
    fields = (
        "kind",
        "status",
        "reason",
        "risk_expires_on",
        "requested_by",
        "decided_by",
        "decided_at",
        "decision_note",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Approval]:
        return super().get_queryset(request).select_related("requested_by", "decided_by")


class AttackPathStepInline(ReadOnlyTabularInline):
    model = AttackPathStep
    verbose_name_plural = "Attack path"
    fields = (
        "position",
        "source_node",
        "target_node",
        "technique",
        "nhi",
        "failed_control",
        "remediation_team",
        "remediation_action",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[AttackPathStep]:
        return (
            super()
            .get_queryset(request)
            .select_related("nhi", "failed_control", "remediation_team", "remediation_action")
        )


class ControlMappingInline(ReadOnlyTabularInline):
    model = CaseControlMapping
    verbose_name = "framework control"
    verbose_name_plural = "Framework controls"
    fields = ("control", "is_active", "source", "rationale", "removed_by_hand", "changed_by", "changed_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[CaseControlMapping]:
        return super().get_queryset(request).select_related("control", "changed_by")


class CommentInline(ReadOnlyTabularInline):
    model = Comment
    fields = ("created_at", "author", "body")
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Comment]:
        return super().get_queryset(request).select_related("author")


# --- Case --------------------------------------------------------------------------------------------------


class EscalatedFilter(admin.SimpleListFilter):
    title = "escalated (overdue)"
    parameter_name = "escalated"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Case]) -> QuerySet[Case]:
        if self.value() == "yes":
            return queryset.filter(escalated_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(escalated_at__isnull=True)
        return queryset


class CaseForm(forms.ModelForm):
    class Meta:
        model = Case
        fields = ("title", "summary", "kind", "severity", "origin", "owning_team", "due_at")


@admin.register(Case)
class CaseAdmin(HistoryAdmin):
    form = CaseForm
    change_form_template = "admin/cases/case/change_form.html"
    list_display = (
        "reference",
        "title",
        "state_badge",
        "severity",
        "priority",
        "kind",
        "owning_team",
        "assignee",
        "due_at",
        "escalated",
        "created_at",
    )
    list_display_links = ("reference", "title")
    list_select_related = ("owning_team", "assignee")
    list_filter = (
        "state",
        "kind",
        "severity",
        "priority",
        "origin",
        "owning_team",
        EscalatedFilter,
    )
    search_fields = ("title",)
    autocomplete_fields = ("owning_team",)
    show_full_result_count = False
    list_per_page = 50
    readonly_fields = (
        "reference",
        "state_badge",
        "priority",
        "assignee",
        "opened_by",
        "created_at",
        "dismissal_reason",
        "risk_accepted_until",
        "verified_at",
        "closed_at",
        "due_at_set_by_hand",
        "escalated_at",
        "escalation_notified_at",
        "audit_trail",
    )
    actions = ("export_evidence_bundle",)
    inlines = (
        TransitionInline,
        IdentityInline,
        ActionItemInline,
        EvidenceInline,
        ApprovalInline,
        AttackPathStepInline,
        ControlMappingInline,
        CommentInline,
    )

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        if obj.kind != CaseKind.ATTACK_PATH_REVIEW:
            return tuple(inline for inline in self.inlines if inline is not AttackPathStepInline)
        return self.inlines

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        editable = ("title", "summary", "kind", "severity", "origin", "owning_team", "due_at")
        if obj is None:
            return ((None, {"fields": editable}),)
        return (
            (None, {"fields": ("reference", "state_badge", "priority", "assignee", *editable)}),
            (
                "Record",
                {
                    "fields": (
                        "opened_by",
                        "created_at",
                        "dismissal_reason",
                        "risk_accepted_until",
                        "verified_at",
                        "closed_at",
                        *(("audit_trail",) if request.user.has_perm("audit.view_auditentry") else ()),
                    )
                },
            ),
            ("Service level", {"fields": ("due_at_set_by_hand", "escalated_at", "escalation_notified_at")}),
        )

    @admin.display(description="audit trail")
    def audit_trail(self, case: Case) -> str:
        """Where the chain's entries about this case are (shown to those who may read the chain)."""
        return format_html(
            '<a href="{}?case_id={}">{} entries in the audit chain</a>; its latest transition is entry {}.',
            reverse("admin:audit_auditentry_changelist"),
            case.pk,
            AuditEntry.objects.filter(case_id=case.pk).count(),
            f"#{case.chain_seq}" if case.chain_seq is not None else "– (not in the chain)",
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and obj.pk:
            # Ownership changes through the Assign transition, where it is logged with its reason.
            return (*self.readonly_fields, "owning_team", "origin")
        return self.readonly_fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Case]:
        return case_list(user=request.user)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Case], search_term: str
    ) -> tuple[QuerySet[Case], bool]:
        reference = CASE_REFERENCE.match(search_term)
        if reference:
            return queryset.filter(pk=int(reference.group(1))), False
        return super().get_search_results(request, queryset, search_term)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A case is a record: it is dismissed or closed, never deleted.
        return False

    def has_export_evidence_bundle_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(EXPORT_PERMISSION)

    @admin.action(description="Export evidence bundle", permissions=["export_evidence_bundle"])
    def export_evidence_bundle(
        self, request: HttpRequest, queryset: QuerySet[Case]
    ) -> HttpResponseBase | None:
        """The selected case's signed evidence bundle as a download (one case per bundle)."""
        selected = list(queryset[:2])
        if len(selected) != 1:
            self.message_user(
                request, "Select exactly one case: an evidence bundle holds one case.", messages.WARNING
            )
            return None
        return HttpResponseRedirect(reverse("cases_evidence_bundle", args=(selected[0].pk,)))

    @admin.display(description="Reference", ordering="id")
    def reference(self, case: Case) -> str:
        return case.reference

    @admin.display(description="Escalated", boolean=True, ordering="escalated_at")
    def escalated(self, case: Case) -> bool:
        return case.escalated_at is not None

    @admin.display(description="State", ordering="state")
    def state_badge(self, case: Case) -> str:
        return format_html(
            '<span style="background:{};color:#fff;padding:1px 6px;border-radius:8px;'
            'white-space:nowrap">{}</span>',
            STATE_COLOURS.get(case.state, "#444"),
            case.get_state_display(),
        )

    def save_model(self, request: HttpRequest, obj: Case, form: forms.ModelForm, change: bool) -> None:
        actor = request.user
        if change:
            services.case_update(
                actor=actor,
                case_id=obj.pk,
                changes={name: form.cleaned_data[name] for name in form.changed_data},
            )
            return
        created = services.case_open(actor=actor, **form.cleaned_data)
        obj.pk = created.pk

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Inlines are read-only; nothing related is written from the change form.
        pass

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        if obj is not None and obj.pk:
            context["case_actions"] = available_actions(case=obj, user=request.user)
            context["decidable_approvals"] = decidable_approvals(case=obj, user=request.user)
            context["routable_steps"] = (
                list(
                    obj.attack_path_steps.filter(
                        remediation_action__isnull=True, remediation_team__isnull=False
                    )
                )
                if request.user.has_perm("cases.add_actionitem") and obj.is_open
                else []
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- Case actions (transitions, approvals, work) ------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        custom = [
            path(
                "<path:object_id>/act/decide/<int:approval_id>/",
                self.admin_site.admin_view(self.decide_view),
                name=f"{prefix}_decide",
            ),
            path(
                "<path:object_id>/act/route/<int:step_id>/",
                self.admin_site.admin_view(self.route_view),
                name=f"{prefix}_route",
            ),
            path(
                "<path:object_id>/act/<str:action_name>/",
                self.admin_site.admin_view(self.action_view),
                name=f"{prefix}_action",
            ),
        ]
        return custom + super().get_urls()

    def _case_for(self, request: HttpRequest, object_id: str) -> Case:
        try:
            pk = int(object_id)
        except ValueError:
            raise Http404("No such case.") from None
        return get_object_or_404(self.get_queryset(request), pk=pk)

    def _change_url(self, case: Case) -> str:
        return reverse("admin:cases_case_change", args=(case.pk,))

    def _run(
        self, request: HttpRequest, case: Case, form: forms.Form, perform: Any, done: str
    ) -> HttpResponse | None:
        """Call the service; on refusal, put its message on the form and return None to show it again."""
        try:
            perform()
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                for field, field_errors in error.error_dict.items():
                    form.add_error(field if field in form.fields else None, field_errors)
            else:
                form.add_error(None, error)
            return None
        except CaseWorkflowError as error:
            form.add_error(None, str(error))
            return None
        self.message_user(request, done, messages.SUCCESS)
        return HttpResponseRedirect(self._change_url(case))

    def _render(
        self,
        request: HttpRequest,
        case: Case,
        form: forms.Form,
        title: str,
        blocked_by: tuple[str, ...] = (),
        multipart: bool = False,
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "case": case,
            "form": form,
            "title": f"{title}: {case.reference}",
            "action_title": title,
            "blocked_by": blocked_by,
            "multipart": multipart,
            "media": self.media + form.media,
            "change_url": self._change_url(case),
        }
        return TemplateResponse(request, "admin/cases/case/action_form.html", context)

    def action_view(self, request: HttpRequest, object_id: str, action_name: str) -> HttpResponse:
        case = self._case_for(request, object_id)
        action = ACTIONS_BY_NAME.get(action_name)
        if action is None:
            raise Http404(f"No case action called {action_name!r}.")
        offered = {item.action.name: item for item in available_actions(case=case, user=request.user)}
        availability = offered.get(action_name)
        if availability is None:
            raise PermissionDenied(
                f"{action.label} is not available to you on {case.reference} in its current state."
            )
        form = action.form_class(request.POST or None, request.FILES or None)
        self._wire_autocomplete(form)
        if request.method == "POST" and form.is_valid():
            data = dict(form.cleaned_data)
            response = self._run(
                request,
                case,
                form,
                lambda: action.perform(case, request.user, data),
                f"{action.label}: done on {case.reference}.",
            )
            if response is not None:
                return response
        return self._render(request, case, form, action.label, availability.blocked_by, action.multipart)

    def decide_view(self, request: HttpRequest, object_id: str, approval_id: int) -> HttpResponse:
        case = self._case_for(request, object_id)
        approval = next(
            (a for a in decidable_approvals(case=case, user=request.user) if a.pk == approval_id), None
        )
        if approval is None:
            raise PermissionDenied(
                "This request is not pending, is your own, or you may not decide approvals."
            )
        form = DecisionForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            response = self._run(
                request,
                case,
                form,
                lambda: services.approval_decide(
                    actor=request.user,
                    approval_id=approval.pk,
                    approve=data["approve"],
                    note=data["note"],
                ),
                f"{approval.get_kind_display()}: decision recorded on {case.reference}.",
            )
            if response is not None:
                return response
        title = f"Decide {approval.get_kind_display().lower()} requested by {approval.requested_by}"
        context_note: tuple[str, ...] = (f"Reason given: {approval.reason}",)
        if approval.risk_expires_on:
            context_note += (f"Risk accepted until {approval.risk_expires_on}.",)
        return self._render(request, case, form, title, context_note)

    def route_view(self, request: HttpRequest, object_id: str, step_id: int) -> HttpResponse:
        case = self._case_for(request, object_id)
        if not request.user.has_perm("cases.add_actionitem"):
            raise PermissionDenied("You may not add action items.")
        step = get_object_or_404(case.attack_path_steps.select_related("remediation_team"), pk=step_id)
        form = RouteStepForm(request.POST or None, initial={"step": step.pk})
        if request.method == "POST" and form.is_valid():
            kind = form.cleaned_data["kind"]
            response = self._run(
                request,
                case,
                form,
                lambda: services.attack_path_step_route(actor=request.user, step_id=step.pk, kind=kind),
                f"Step {step.position} routed to {step.remediation_team}.",
            )
            if response is not None:
                return response
        return self._render(request, case, form, f"Route step {step.position} to {step.remediation_team}")

    def _wire_autocomplete(self, form: forms.Form) -> None:
        # Search-as-you-type instead of a <select> of every user, team, identity or control.
        sources = {
            "nhi": AttackPathStep,
            "failed_control": AttackPathStep,
            "remediation_team": AttackPathStep,
            "owning_team": Case,
            "assignee": Case,
            "control": CaseControlMapping,
        }
        for field_name, model in sources.items():
            field = form.fields.get(field_name)
            if field is not None:
                field.widget = _autocomplete(model, field_name)
                # The widget renders the chosen value from the field's choices (a form shown again).
                field.widget.choices = field.choices  # type: ignore[attr-defined]


# --- Rows that hang off a case: listed for search and history; written through the case page -------------


class CaseChildAdmin(ReadOnlyAdminMixin, HistoryAdmin):
    list_select_related: Any = ("case",)
    show_full_result_count = False

    @admin.display(description="Case", ordering="case_id")
    def case_link(self, row: Any) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:cases_case_change", args=(row.case_id,)), row.case.reference
        )


@admin.register(Evidence)
class EvidenceAdmin(CaseChildAdmin):
    list_display = ("title", "kind", "case_link", "sha256", "captured_by", "captured_at")
    list_select_related = ("case", "captured_by")
    list_filter = ("kind",)
    search_fields = ("title", "=sha256")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Evidence]:
        return evidence_list(user=request.user)


class ActionItemStatusForm(forms.ModelForm):
    class Meta:
        model = ActionItem
        fields = ("status", "external_reference")

    def clean_status(self) -> str:
        # The service refuses this too; saying it here keeps the refusal on the form instead of an error page.
        status: str = self.cleaned_data["status"]
        if self.instance.awaiting_approval and status in (ActionStatus.IN_PROGRESS, ActionStatus.DONE):
            raise ValidationError(
                "This proposal has not been approved yet: an approver other than its proposer must approve "
                "it (action 'Approve the selected proposals') before it is started or completed."
            )
        return status


@admin.register(ActionItem)
class ActionItemAdmin(HistoryAdmin):
    form = ActionItemStatusForm
    list_display = (
        "title",
        "kind",
        "case_link",
        "owning_team",
        "status",
        "approval",
        "external_reference",
        "created_at",
    )
    list_select_related = ("case", "owning_team", "approved_by")
    list_filter = ("status", "kind", "requires_approval", "owning_team")
    actions = ("approve_proposals",)
    search_fields = ("title", "external_reference")
    readonly_fields = (
        "case_link",
        "kind",
        "title",
        "owning_team",
        "created_by",
        "created_at",
        "completed_at",
        "requires_approval",
        "approved_by",
        "approved_at",
    )
    fields = (
        "case_link",
        "kind",
        "title",
        "owning_team",
        "status",
        "external_reference",
        "created_by",
        "created_at",
        "completed_at",
        "requires_approval",
        "approved_by",
        "approved_at",
    )
    show_full_result_count = False

    case_link = CaseChildAdmin.case_link

    @admin.display(description="Approval")
    def approval(self, item: ActionItem) -> str:
        if not item.requires_approval:
            return "—"
        if item.approved_by is None:
            return "Proposed: awaiting approval"
        return f"Approved by {item.approved_by}"

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("cases.approve_actionitem")

    @admin.action(description="Approve the selected proposals (four-eyes)", permissions=["approve"])
    def approve_proposals(self, request: HttpRequest, queryset: QuerySet[ActionItem]) -> None:
        approved = 0
        for item in queryset.order_by("pk"):
            try:
                services.action_item_approve(actor=request.user, action_item_id=item.pk)
            except (ValidationError, PermissionDenied, CaseWorkflowError) as error:
                reason = " ".join(error.messages) if isinstance(error, ValidationError) else str(error)
                self.message_user(request, f"{item.title}: {reason}", messages.ERROR)
            else:
                approved += 1
        if approved:
            self.message_user(request, f"{approved} proposal(s) approved.", messages.SUCCESS)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ActionItem]:
        return action_item_list(user=request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ActionItem, form: forms.ModelForm, change: bool) -> None:
        services.action_item_set_status(
            actor=request.user,
            action_item_id=obj.pk,
            status=form.cleaned_data["status"],
            external_reference=form.cleaned_data["external_reference"],
        )


@admin.register(Approval)
class ApprovalAdmin(CaseChildAdmin):
    list_display = ("case_link", "kind", "status", "requested_by", "requested_at", "decided_by", "decided_at")
    list_select_related = ("case", "requested_by", "decided_by")
    list_filter = ("kind", "status")
    search_fields = ("reason", "decision_note")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Approval]:
        return approval_list(user=request.user)


@admin.register(Comment)
class CommentAdmin(CaseChildAdmin):
    list_display = ("case_link", "author", "created_at", "body")
    list_select_related = ("case", "author")
    search_fields = ("body",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Comment]:
        return super().get_queryset(request).filter(case__in=case_list(user=request.user))


@admin.register(AttackPathStep)
class AttackPathStepAdmin(CaseChildAdmin):
    list_display = (
        "case_link",
        "position",
        "source_node",
        "target_node",
        "technique",
        "nhi",
        "failed_control",
        "remediation_team",
    )
    list_select_related = ("case", "nhi", "failed_control", "remediation_team")
    search_fields = ("source_node", "target_node", "technique")

    def get_queryset(self, request: HttpRequest) -> QuerySet[AttackPathStep]:
        return super().get_queryset(request).filter(case__in=case_list(user=request.user))


@admin.register(CaseIdentity)
class CaseIdentityAdmin(CaseChildAdmin):
    list_display = ("case_link", "nhi", "linked_at")
    list_select_related = ("case", "nhi")
    search_fields = ("nhi__name",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[CaseIdentity]:
        return super().get_queryset(request).filter(case__in=case_list(user=request.user))


@admin.register(CaseControlMapping)
class CaseControlMappingAdmin(CaseChildAdmin):
    list_display = (
        "case_link",
        "control",
        "is_active",
        "source",
        "removed_by_hand",
        "changed_by",
        "changed_at",
    )
    list_select_related = ("case", "control", "changed_by")
    list_filter = ("is_active", "source", "removed_by_hand", "control__framework")
    search_fields = ("control__ref_id", "control__title", "rationale")

    def get_queryset(self, request: HttpRequest) -> QuerySet[CaseControlMapping]:
        return super().get_queryset(request).filter(case__in=case_list(user=request.user))


@admin.register(CaseTransition)
class CaseTransitionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("at", "case_link", "name", "source_state", "target_state", "actor", "reason")
    list_select_related = ("case", "actor")
    list_filter = ("name", "target_state")
    search_fields = ("reason",)
    show_full_result_count = False

    case_link = CaseChildAdmin.case_link

    def get_queryset(self, request: HttpRequest) -> QuerySet[CaseTransition]:
        return super().get_queryset(request).filter(case__in=case_list(user=request.user))


# --- Mapping rules: data, edited here through the services; retired, never deleted ------------------------


class MappingRuleForm(forms.ModelForm):
    class Meta:
        model = MappingRule
        fields = ("case_kind", "condition", "control", "rationale", "is_active")


@admin.register(MappingRule)
class MappingRuleAdmin(HistoryAdmin):
    form = MappingRuleForm
    list_display = ("applies_to", "condition", "control", "is_active")
    list_select_related = ("control",)
    list_filter = ("is_active", "case_kind", "condition", "control__framework")
    search_fields = ("control__ref_id", "control__title", "rationale")
    autocomplete_fields = ("control",)
    show_full_result_count = False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Mappings and their history name the rule: untick "active" to retire it.
        return False

    @admin.display(description="Case kind", ordering="case_kind")
    def applies_to(self, rule: MappingRule) -> str:
        return rule.get_case_kind_display() if rule.case_kind else "Any kind"

    def save_model(self, request: HttpRequest, obj: MappingRule, form: forms.ModelForm, change: bool) -> None:
        if change:
            mapping_rule_update(
                actor=request.user,
                rule_id=obj.pk,
                changes={name: form.cleaned_data[name] for name in form.changed_data},
            )
            return
        created = mapping_rule_create(actor=request.user, **form.cleaned_data)
        obj.pk = created.pk


# --- SLA policies: one per severity, created by a migration; edited here through the service ---------------


class SlaPolicyForm(forms.ModelForm):
    hours_to_resolve = forms.IntegerField(
        min_value=1,
        max_value=MAX_HOURS_TO_RESOLVE,
        help_text="Hours from opening (or reopening) until a case of this severity is due, e.g. 24, 72, 168.",
    )

    class Meta:
        model = SlaPolicy
        fields = ("hours_to_resolve", "is_active")


@admin.register(SlaPolicy)
class SlaPolicyAdmin(HistoryAdmin):
    form = SlaPolicyForm
    list_display = ("severity", "hours_to_resolve", "duration", "is_active")
    list_filter = ("is_active",)
    readonly_fields = ("severity",)
    fields = ("severity", "hours_to_resolve", "is_active")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # One row per severity exists from the migrations; there is nothing else to add.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Due after")
    def duration(self, policy: SlaPolicy) -> str:
        days, hours = divmod(policy.hours_to_resolve, 24)
        if days and not hours:
            return f"{days} day{'s' if days != 1 else ''}"
        return f"{policy.hours_to_resolve} hours"

    def save_model(self, request: HttpRequest, obj: SlaPolicy, form: forms.ModelForm, change: bool) -> None:
        sla_policy_update(
            actor=request.user,
            policy_id=obj.pk,
            hours_to_resolve=form.cleaned_data["hours_to_resolve"],
            is_active=form.cleaned_data["is_active"],
        )
