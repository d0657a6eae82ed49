"""The audit trail in the admin: entries read-only, the last verification above them, and "Verify now"."""

import json
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from audit.chain import entry_payload
from audit.models import ENTRY_COLUMNS, AuditEntry, AuditVerification, VerificationTrigger
from audit.selectors import audit_last_verification
from audit.services import audit_trail_verify
from portal.admin_mixins import ReadOnlyAdminMixin

# The body is shown parsed, as "sealed event".
ENTRY_ADMIN_FIELDS: tuple[str, ...] = (
    *[column for column in ENTRY_COLUMNS if column != "body"],
    "sealed_event",
)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    change_list_template = "admin/audit/auditentry/change_list.html"
    list_display = (
        "seq",
        "recorded_at",
        "event",
        "case_id",
        "object_type",
        "object_id",
        "actor_id",
        "short_hash",
    )
    list_filter = ("event",)
    search_fields = ("=case_id", "=object_id", "=entry_hash")
    show_full_result_count = False
    fields = ENTRY_ADMIN_FIELDS
    readonly_fields = ENTRY_ADMIN_FIELDS

    @admin.display(description="hash")
    def short_hash(self, entry: AuditEntry) -> str:
        return entry.entry_hash[:16] + "…"

    @admin.display(description="sealed event")
    def sealed_event(self, entry: AuditEntry) -> str:
        payload = json.dumps(entry_payload(entry.body), indent=2, sort_keys=True, ensure_ascii=False)
        return format_html("<pre>{}</pre>", payload)

    def get_urls(self) -> list[URLPattern]:
        verify = path(
            "verify/",
            self.admin_site.admin_view(self.verify_view),
            name="audit_auditentry_verify",
        )
        return [verify, *super().get_urls()]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra = {"last_verification": audit_last_verification(), **(extra_context or {})}
        return super().changelist_view(request, extra)

    def verify_view(self, request: HttpRequest) -> HttpResponse:
        # admin_view lets in any active staff member; the trail is for those who may read it.
        if not self.has_view_permission(request):
            raise PermissionDenied("You may not verify the audit trail.")
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:audit_auditentry_changelist"))
        try:
            verification = audit_trail_verify(trigger=VerificationTrigger.ADMIN, actor=request.user)
        except PermissionDenied as error:
            self.message_user(request, str(error), messages.ERROR)
        else:
            if verification.ok:
                self.message_user(
                    request,
                    f"Audit trail intact: {verification.entries_checked} entries checked.",
                    messages.SUCCESS,
                )
            else:
                self.message_user(request, f"Audit trail NOT intact: {verification.message}", messages.ERROR)
        return HttpResponseRedirect(reverse("admin:audit_auditentry_changelist"))


@admin.register(AuditVerification)
class AuditVerificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "started_at",
        "trigger",
        "requested_by",
        "ok",
        "entries_checked",
        "last_seq",
        "problem_kind",
    )
    list_filter = ("ok", "trigger")
    list_select_related = ("requested_by",)
    fields = (
        "started_at",
        "finished_at",
        "trigger",
        "requested_by",
        "ok",
        "entries_checked",
        "last_seq",
        "last_hash",
        "problem_kind",
        "problem_seq",
        "message",
    )
    readonly_fields = fields
