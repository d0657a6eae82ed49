"""Hand-offs in the admin: webhook endpoints (created, changed and their keys rotated through the services;
the signing key shown once, on the page that answers), deliveries read-only with their attempt log, and the
action "Hand the selected action items off" on the action items."""

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from cases.admin import ActionItemAdmin as CaseActionItemAdmin
from cases.errors import CaseWorkflowError
from cases.models import ActionItem
from handoffs.models import Delivery, DeliveryAttempt, WebhookEndpoint
from handoffs.selectors import delivery_list, webhook_endpoint_list
from handoffs.services import (
    handoff_dispatch,
    webhook_endpoint_create,
    webhook_endpoint_rotate_key,
    webhook_endpoint_update,
    webhook_endpoint_validate,
)
from portal.admin_mixins import HistoryAdmin, ReadOnlyAdminMixin, ReadOnlyTabularInline

KEY_TEMPLATE = "admin/handoffs/webhookendpoint/keys.html"


def _refusal(error: Exception) -> str:
    return " ".join(error.messages) if isinstance(error, ValidationError) else str(error)


# --- Webhook endpoints --------------------------------------------------------------------------------------


class WebhookEndpointForm(forms.ModelForm):
    """The shape of the input; the services' own check runs in clean() so a refusal shows on its field."""

    url = forms.URLField(
        label="URL",
        max_length=500,
        assume_scheme="https",
        help_text=WebhookEndpoint._meta.get_field("url").help_text,
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("name", "team", "action_kind", "url", "is_active")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        candidate = WebhookEndpoint(
            pk=self.instance.pk, **{name: cleaned.get(name) for name in self.Meta.fields}
        )
        candidate.action_kind = candidate.action_kind or ""
        try:
            webhook_endpoint_validate(candidate)
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                self.add_error(field if field in self.fields else None, problems)
        return cleaned


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(HistoryAdmin):
    form = WebhookEndpointForm
    list_display = ("name", "team", "kind", "url", "is_active", "key_version", "key_rotated_at")
    list_select_related = ("team",)
    list_filter = ("is_active", "action_kind", "team")
    search_fields = ("name", "url")
    autocomplete_fields = ("team",)
    readonly_fields = ("key_version", "key_rotated_at", "created_by", "created_at")
    actions = ("rotate_keys",)
    show_full_result_count = False

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = ("name", "team", "action_kind", "url", "is_active")
        return fields if obj is None else (*fields, *self.readonly_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else ()

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookEndpoint]:
        return webhook_endpoint_list(user=request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deliveries point at it: deactivate instead.
        return False

    @admin.display(description="Action kind", ordering="action_kind")
    def kind(self, endpoint: WebhookEndpoint) -> str:
        return endpoint.get_action_kind_display() if endpoint.action_kind else "Any kind"

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool) -> None:
        if change:
            webhook_endpoint_update(
                actor=request.user,
                endpoint_id=obj.pk,
                changes={name: form.cleaned_data[name] for name in form.changed_data},
            )
            return
        endpoint, key = webhook_endpoint_create(
            actor=request.user,
            name=obj.name,
            url=obj.url,
            team=obj.team,
            action_kind=obj.action_kind,
            is_active=obj.is_active,
        )
        obj.pk = endpoint.pk
        # Kept on this request's object only, for response_add to show.
        obj._signing_key = key  # type: ignore[attr-defined]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Nothing related to save (the service saved the endpoint)."""

    def _show_keys(
        self, request: HttpRequest, shown: list[tuple[WebhookEndpoint, str]], *, title: str
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "shown": shown,
        }
        response = TemplateResponse(request, KEY_TEMPLATE, context)
        # The page holds keys: no cache may keep it.
        response["Cache-Control"] = "no-store"
        return response

    def response_add(
        self, request: HttpRequest, obj: WebhookEndpoint, post_url_continue: str | None = None
    ) -> HttpResponse:
        endpoint = WebhookEndpoint.objects.get(pk=obj.pk)
        key: str = obj._signing_key  # type: ignore[attr-defined]
        return self._show_keys(request, [(endpoint, key)], title="The new endpoint's signing key")

    def has_rotate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("handoffs.change_webhookendpoint")

    @admin.action(description="Rotate the signing keys of the selected endpoints", permissions=["rotate"])
    def rotate_keys(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> HttpResponse | None:
        shown = []
        for endpoint_id in queryset.order_by("name").values_list("pk", flat=True):
            try:
                shown.append(webhook_endpoint_rotate_key(actor=request.user, endpoint_id=endpoint_id))
            except (PermissionDenied, ValidationError) as error:
                self.message_user(request, _refusal(error), messages.ERROR)
        if not shown:
            return None
        return self._show_keys(request, shown, title="New signing keys")


# --- Deliveries ---------------------------------------------------------------------------------------------


class DeliveryAttemptInline(ReadOnlyTabularInline):
    model = DeliveryAttempt
    verbose_name_plural = "Attempts (status and error only; response bodies are not kept)"
    fields = (
        "number",
        "started_at",
        "duration_ms",
        "status_code",
        "succeeded",
        "error_class",
        "error_message",
        "retry_in_seconds",
    )
    show_change_link = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("handoffs.view_delivery")


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, HistoryAdmin):
    list_display = (
        "created_at",
        "short_key",
        "action_item",
        "case_link",
        "endpoint",
        "status",
        "attempts",
        "outcome",
        "external_reference",
    )
    list_select_related = ("action_item__case", "endpoint")
    list_filter = ("status", "outcome", "endpoint")
    search_fields = ("=idempotency_key", "external_reference", "action_item__title")
    show_full_result_count = False
    list_per_page = 50
    inlines = (DeliveryAttemptInline,)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "idempotency_key",
                    "action_item",
                    "case_link",
                    "endpoint",
                    "dispatched_by",
                    "created_at",
                )
            },
        ),
        (
            "Sending",
            {
                "fields": (
                    "status",
                    "attempts",
                    "next_attempt_at",
                    "delivered_at",
                    "failed_at",
                    "failure_notified_at",
                )
            },
        ),
        (
            "What the receiver reported",
            {"fields": ("outcome", "outcome_at", "external_reference", "outcome_note")},
        ),
        ("Payload as sent (no secret: names, references, previews)", {"fields": ("payload_json",)}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [field for _, options in self.fieldsets for field in options["fields"]]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        return delivery_list(user=request.user)

    @admin.display(description="Key")
    def short_key(self, delivery: Delivery) -> str:
        return str(delivery.idempotency_key)[:8]

    @admin.display(description="Case", ordering="action_item__case_id")
    def case_link(self, delivery: Delivery) -> str:
        case = delivery.action_item.case
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:cases_case_change", args=(case.pk,)), case.reference
        )

    @admin.display(description="Payload")
    def payload_json(self, delivery: Delivery) -> str:
        return format_html("<pre>{}</pre>", json.dumps(delivery.payload, indent=2, sort_keys=True))


# --- The dispatch action on action items --------------------------------------------------------------------
# The cases app's ActionItemAdmin with one more action; registered in its place so that the cases app does
# not depend on this one.


class ActionItemAdmin(CaseActionItemAdmin):
    # The base class's tuple is typed by its length; this one is one longer.
    actions = (*CaseActionItemAdmin.actions, "dispatch_handoffs")  # type: ignore[assignment]

    def has_dispatch_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("handoffs.dispatch_handoff")

    @admin.action(description="Hand the selected action items off (signed webhook)", permissions=["dispatch"])
    def dispatch_handoffs(self, request: HttpRequest, queryset: QuerySet[ActionItem]) -> None:
        for item in queryset.order_by("pk"):
            try:
                delivery = handoff_dispatch(actor=request.user, action_item_id=item.pk)
            except (ValidationError, PermissionDenied, CaseWorkflowError) as error:
                self.message_user(request, f"{item.title}: {_refusal(error)}", messages.ERROR)
            else:
                self.message_user(
                    request, f"{item.title}: handed off to {delivery.endpoint.name}.", messages.SUCCESS
                )


admin.site.unregister(ActionItem)
admin.site.register(ActionItem, ActionItemAdmin)
