"""Secrets findings in the admin: the triage queue, imports (with an upload form) and the rules.

Exposures and findings are written only by the import and the answer/attribution services, so their
admin is read-only apart from the "Attribute" view; rules are saved through their services.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from findings.models import (
    AttributionRule,
    Exposure,
    ExposureState,
    Finding,
    ImportRun,
    IngestJob,
    OwnerReminder,
    PromotionRule,
    ReportFormat,
)
from findings.selectors import exposure_list, finding_list, import_run_list, ingest_job_list
from findings.services import (
    attribution_rule_create,
    attribution_rule_update,
    exposure_attribute,
    findings_import,
    promotion_rule_create,
    promotion_rule_update,
)
from nhi_inventory.models import NonHumanIdentity
from portal.admin_mixins import HistoryAdmin, ReadOnlyAdminMixin, ReadOnlyTabularInline


def _put_errors(form: forms.Form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, field_errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, field_errors)
    else:
        form.add_error(None, error)


class TriageQueueFilter(admin.SimpleListFilter):
    title = "triage"
    parameter_name = "triage"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("waiting", "Waiting in triage (nobody's, or disputed)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Exposure]) -> QuerySet[Exposure]:
        if self.value() == "waiting":
            return queryset.filter(nhi__isnull=True) | queryset.filter(state=ExposureState.NOT_OURS)
        return queryset


class OwnerReminderFilter(admin.SimpleListFilter):
    """Where the exposure's latest wait for an answer stands in its owners' reminders (reminders.py)."""

    title = "owner reminders"
    parameter_name = "reminders"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("none", "Never reminded"),
            ("reminded", "Reminded, lead not told"),
            ("escalated", "Escalated to the team lead"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Exposure]) -> QuerySet[Exposure]:
        if self.value() == "none":
            return queryset.filter(owner_reminder__isnull=True)
        if self.value() == "reminded":
            return queryset.filter(
                owner_reminder__reminders_sent__gt=0, owner_reminder__escalated_at__isnull=True
            )
        if self.value() == "escalated":
            return queryset.filter(owner_reminder__escalated_at__isnull=False)
        return queryset


def _reminder_of(exposure: Exposure) -> OwnerReminder | None:
    return getattr(exposure, "owner_reminder", None)


class FindingInline(ReadOnlyTabularInline):
    model = Finding
    fields = ("repository", "path", "line", "commit", "scanner", "context", "occurrences", "last_seen_at")
    readonly_fields = fields
    show_change_link = True


class AttributeForm(forms.Form):
    nhi = forms.ModelChoiceField(
        queryset=NonHumanIdentity.objects.order_by("name"),
        label="Identity",
        help_text="Whose secret this is.",
    )
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


@admin.register(Exposure)
class ExposureAdmin(ReadOnlyAdminMixin, HistoryAdmin):
    list_display = (
        "id",
        "preview",
        "validity",
        "state",
        "nhi",
        "case",
        "locations",
        "occurrences",
        "last_seen_at",
        "reminders",
        "escalated",
    )
    list_select_related = ("nhi", "case", "owner_reminder__escalated_to")
    list_filter = (
        TriageQueueFilter,
        "state",
        "validity",
        "attribution",
        "fingerprint_scheme",
        OwnerReminderFilter,
    )
    search_fields = ("preview", "detector", "nhi__name")
    show_full_result_count = False
    inlines = (FindingInline,)
    readonly_fields = (
        "preview",
        "detector",
        "validity",
        "state",
        "fingerprint_scheme",
        "fingerprint_key_id",
        "nhi",
        "credential",
        "attribution",
        "attribution_rule",
        "case",
        "promotion_reason",
        "first_seen_at",
        "last_seen_at",
        "occurrences",
        "locations",
        "regressions",
        "remediated_at",
        "answered_by",
        "answered_at",
        "answer_note",
        "suggested_owner",
        "reminders",
        "escalated",
    )
    # The fingerprint itself is shown to nobody: it is a lookup key, not something to copy around.
    exclude = ("fingerprint", "sha1_fingerprint")
    change_form_template = "admin/findings/exposure/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Exposure]:
        return exposure_list(user=request.user).select_related("nhi", "case", "owner_reminder__escalated_to")

    @admin.display(description="Owner reminders")
    def reminders(self, exposure: Exposure) -> str:
        """Of its latest wait for an answer; each reminder is also in the exposure's history."""
        reminder = _reminder_of(exposure)
        if reminder is None or not reminder.reminders_sent:
            return "—"
        return f"{reminder.reminders_sent}, last {reminder.last_reminded_at:%Y-%m-%d}"

    @admin.display(description="Lead told")
    def escalated(self, exposure: Exposure) -> str:
        reminder = _reminder_of(exposure)
        if reminder is None or reminder.escalated_at is None:
            return "—"
        return f"{reminder.escalated_at:%Y-%m-%d}, {reminder.escalated_to or 'a former lead'}"

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/attribute/",
                self.admin_site.admin_view(self.attribute_view),
                name="findings_exposure_attribute",
            ),
            *super().get_urls(),
        ]

    def attribute_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        exposure = self.get_object(request, object_id)
        if exposure is None:
            raise Http404("No such exposure.")
        if not request.user.has_perm("findings.attribute_exposure"):
            raise PermissionDenied("You may not attribute exposures.")
        form = AttributeForm(request.POST or None, initial={"nhi": exposure.nhi_id})
        if request.method == "POST" and form.is_valid():
            try:
                exposure_attribute(
                    actor=request.user,
                    exposure_id=exposure.pk,
                    nhi_id=form.cleaned_data["nhi"].pk,
                    note=form.cleaned_data["note"],
                )
            except ValidationError as error:
                _put_errors(form, error)
            else:
                self.message_user(request, f"{exposure} attributed.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:findings_exposure_change", args=[exposure.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": exposure,
            "form": form,
            "title": f"Attribute {exposure}",
        }
        return TemplateResponse(request, "admin/findings/exposure/attribute.html", context)


@admin.register(Finding)
class FindingAdmin(ReadOnlyAdminMixin, HistoryAdmin):
    list_display = ("id", "exposure", "repository", "path", "line", "scanner", "occurrences", "last_seen_at")
    list_select_related = ("exposure",)
    list_filter = ("scanner", "resolved_at_source")
    search_fields = ("repository", "path", "detector")
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Finding]:
        return finding_list(user=request.user).select_related("exposure")


class UploadForm(forms.Form):
    report_format = forms.ChoiceField(choices=ReportFormat.choices, label="Format")
    source = forms.CharField(max_length=200, help_text="Where the report comes from, e.g. the repository.")
    report = forms.FileField()


@admin.register(ImportRun)
class ImportRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "report_format", "source", "file_name", "imported_by", "started_at", "outcome")
    list_select_related = ("imported_by",)
    list_filter = ("report_format",)
    search_fields = ("source", "file_name")
    readonly_fields = (
        "report_format",
        "source",
        "file_name",
        "file_sha256",
        "file_size",
        "imported_by",
        "started_at",
        "finished_at",
        "summary",
    )
    change_list_template = "admin/findings/importrun/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ImportRun]:
        return import_run_list(user=request.user)

    @admin.display(description="Created / unchanged / cases opened")
    def outcome(self, run: ImportRun) -> str:
        summary = run.summary or {}
        return (
            f"{summary.get('created', 0)} / {summary.get('unchanged', 0)} / {summary.get('cases_opened', 0)}"
        )

    def get_urls(self) -> list[URLPattern]:
        return [
            path("upload/", self.admin_site.admin_view(self.upload_view), name="findings_importrun_upload"),
            *super().get_urls(),
        ]

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("findings.import_findings"):
            raise PermissionDenied("You may not import scanner reports.")
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["report"]
            try:
                run = findings_import(
                    actor=request.user,
                    report_format=form.cleaned_data["report_format"],
                    source=form.cleaned_data["source"],
                    stream=upload,
                    file_name=upload.name,
                )
            except ValidationError as error:
                _put_errors(form, error)
            else:
                summary = ", ".join(
                    f"{key} {value}" for key, value in run.summary.items() if key != "skipped_reasons"
                )
                self.message_user(request, f"{run} imported: {summary}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:findings_importrun_change", args=[run.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "form": form,
            "title": "Import a scanner report",
        }
        return TemplateResponse(request, "admin/findings/importrun/upload.html", context)


class RuleAdmin(HistoryAdmin):
    """Rules are saved through their services (permission checks, history, re-applying the rules)."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # exposures name the rule that placed them: untick "active" instead

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: Any = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


@admin.register(AttributionRule)
class AttributionRuleAdmin(RuleAdmin):
    list_display = ("position", "repository_pattern", "path_pattern", "detector_pattern", "nhi", "is_active")
    list_select_related = ("nhi",)
    list_filter = ("is_active",)
    search_fields = ("repository_pattern", "path_pattern", "detector_pattern", "nhi__name")
    autocomplete_fields = ("nhi",)

    def save_model(
        self, request: HttpRequest, obj: AttributionRule, form: forms.ModelForm, change: bool
    ) -> None:
        if change:
            attribution_rule_update(
                actor=request.user,
                rule_id=obj.pk,
                changes={name: form.cleaned_data[name] for name in form.changed_data},
            )
            return
        obj.pk = attribution_rule_create(actor=request.user, fields=form.cleaned_data).pk


@admin.register(PromotionRule)
class PromotionRuleAdmin(RuleAdmin):
    list_display = ("position", "condition", "requires_attribution", "min_locations", "severity", "is_active")
    list_filter = ("is_active", "condition")

    def save_model(
        self, request: HttpRequest, obj: PromotionRule, form: forms.ModelForm, change: bool
    ) -> None:
        if change:
            promotion_rule_update(
                actor=request.user,
                rule_id=obj.pk,
                changes={name: form.cleaned_data[name] for name in form.changed_data},
            )
            return
        obj.pk = promotion_rule_create(actor=request.user, fields=form.cleaned_data).pk


@admin.register(IngestJob)
class IngestJobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Reports uploaded through the API and imported in the background (`findings/jobs.py`)."""

    list_display = ("id", "report_format", "source", "file_name", "status", "created_by", "created_at")
    list_select_related = ("created_by",)
    list_filter = ("status", "report_format")
    search_fields = ("source", "file_name")
    show_full_result_count = False
    readonly_fields = (
        "report_format",
        "source",
        "file_name",
        "file_size",
        "file_sha256",
        "status",
        "progress",
        "import_run",
        "summary",
        "error",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    )
    # The storage name of a waiting report is nobody's business here: it is encrypted and soon deleted.
    exclude = ("pending_file",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[IngestJob]:
        return ingest_job_list(user=request.user)
