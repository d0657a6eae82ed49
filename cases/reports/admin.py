"""The alignment report page in the admin, and the read-only admin of stored report snapshots."""

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from cases.alignment import alignment_report
from cases.models import ReportFormat, ReportSnapshot
from cases.reports.outputs import report_output
from cases.reports.render import report_context
from cases.reports.services import report_snapshot_create
from frameworks.models import Framework
from portal.admin_mixins import ReadOnlyAdminMixin

VIEW_PERMISSION = "cases.view_all_cases"
INLINE_FORMATS = (ReportFormat.HTML, ReportFormat.PDF)


class AlignmentReportForm(forms.Form):
    framework = forms.ModelChoiceField(
        queryset=Framework.objects.order_by("name"), to_field_name="key", empty_label=None
    )
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            raise forms.ValidationError("The period starts after it ends.")
        return data


def _download(request: HttpRequest, form: AlignmentReportForm, fmt: str) -> HttpResponse:
    if fmt not in ReportFormat.values:
        return HttpResponse(f"Unknown format {fmt!r}.", status=400, content_type="text/plain")
    output = report_output(
        framework_key=form.cleaned_data["framework"].key,
        fmt=fmt,
        since=form.cleaned_data["since"],
        until=form.cleaned_data["until"],
    )
    response = HttpResponse(output.content, content_type=output.content_type)
    disposition = "inline" if fmt in INLINE_FORMATS else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{output.filename}"'
    return response


def _save_snapshot(request: HttpRequest) -> HttpResponse:
    form = AlignmentReportForm(request.POST)
    fmt = request.POST.get("format", "")
    if not form.is_valid() or fmt not in ReportFormat.values:
        messages.error(request, "The snapshot was not saved: the report parameters are not valid.")
        return HttpResponseRedirect(request.path)
    snapshot = report_snapshot_create(
        actor=request.user,
        framework_key=form.cleaned_data["framework"].key,
        fmt=fmt,
        since=form.cleaned_data["since"],
        until=form.cleaned_data["until"],
    )
    messages.success(request, f"Snapshot saved: {snapshot.filename}, sha256 {snapshot.sha256}.")
    return HttpResponseRedirect(reverse("admin:cases_reportsnapshot_change", args=[snapshot.pk]))


def alignment_report_view(request: HttpRequest) -> HttpResponse:
    """/admin/cases/alignment-report/: the form, the report with its chart, downloads and 'Save snapshot'."""
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied("Viewing the alignment report needs the permission to view all cases.")
    if request.method == "POST":
        return _save_snapshot(request)
    first = Framework.objects.order_by("name").first()
    form = AlignmentReportForm(request.GET or ({"framework": first.key} if first else None))
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": "Framework alignment report",
        "form": form,
        "report": None,
    }
    if form.is_valid():
        fmt = request.GET.get("format")
        if fmt:
            return _download(request, form, fmt)
        framework = form.cleaned_data["framework"]
        report = alignment_report(
            framework_key=framework.key, since=form.cleaned_data["since"], until=form.cleaned_data["until"]
        )
        params = {"framework": framework.key}
        for name in ("since", "until"):
            if form.cleaned_data[name]:
                params[name] = form.cleaned_data[name].isoformat()
        context |= report_context(report, framework)
        context |= {
            "query": urlencode(params),
            "downloads": ReportFormat.choices,
            "can_snapshot": request.user.has_perm("cases.add_reportsnapshot"),
        }
    return TemplateResponse(request, "admin/cases/alignment_report.html", context)


@admin.register(ReportSnapshot)
class ReportSnapshotAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("filename", "framework_key", "format", "since", "until", "requested_by", "created_at")
    list_select_related = ("requested_by",)
    list_filter = ("framework_key", "format")
    fields = (
        "framework_key",
        "format",
        "since",
        "until",
        "requested_by",
        "created_at",
        "filename",
        "content_type",
        "size",
        "sha256",
        "download",
    )
    readonly_fields = fields
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> Any:
        # The list never loads the stored bytes.
        return super().get_queryset(request).defer("content")

    @admin.display(description="size (bytes)")
    def size(self, snapshot: ReportSnapshot) -> int:
        return len(snapshot.content)

    @admin.display(description="stored content")
    def download(self, snapshot: ReportSnapshot) -> str:
        url = reverse("admin:cases_reportsnapshot_download", args=[snapshot.pk])
        return format_html('<a href="{}">Download {}</a>', url, snapshot.filename)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:snapshot_id>/download/",
                self.admin_site.admin_view(self.download_view),
                name="cases_reportsnapshot_download",
            ),
            *super().get_urls(),
        ]

    def download_view(self, request: HttpRequest, snapshot_id: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied("Viewing report snapshots needs the permission to view them.")
        snapshot = get_object_or_404(ReportSnapshot, pk=snapshot_id)
        response = HttpResponse(bytes(snapshot.content), content_type=snapshot.content_type)
        response["Content-Disposition"] = f'attachment; filename="{snapshot.filename}"'
        response["X-Content-SHA256"] = snapshot.sha256
        return response
