"""API tokens in the admin: everyone on staff manages their own; administrators (holding the portal's token
permissions) everyone's. Created and revoked only through `portal.services`; the raw token is shown on the
page that answers the creation, once, and is in no message, session or log."""

from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from portal.models import ApiToken
from portal.services import api_token_create, api_token_revoke


class ApiTokenCreateForm(forms.ModelForm):
    """The shape of the input; `api_token_create` decides (the checks here only keep its refusals, which
    the admin could not show on the form, from happening)."""

    class Meta:
        model = ApiToken
        fields = ("user", "name", "expires_at")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        user_field = self.fields["user"]
        assert isinstance(user_field, forms.ModelChoiceField)
        assert user_field.queryset is not None
        # Narrows what get_form allowed (everyone, or only oneself) to active people.
        user_field.queryset = user_field.queryset.filter(is_active=True).order_by("username")

    def clean_expires_at(self) -> datetime | None:
        expires_at: datetime | None = self.cleaned_data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("The expiry must be in the future.")
        return expires_at


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "user", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_select_related = ("user",)
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = (
        "user",
        "name",
        "prefix",
        "created_at",
        "created_by",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    actions = ("revoke",)
    show_full_result_count = False

    # --- Who sees what: one's own tokens, or all with the portal's view permission -------------------------

    def _staff(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._staff(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.user_id != request.user.pk:
            return bool(request.user.has_perm("portal.view_apitoken"))
        return self._staff(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._staff(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A token is never edited: revoke it and create another.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Revoked, never deleted: the row says who had which token and when it stopped.
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiToken]:
        tokens = super().get_queryset(request)
        if request.user.has_perm("portal.view_apitoken"):
            return tokens
        return tokens.filter(user_id=request.user.pk)

    # --- Creation through the service, and the one page that shows the raw token ---------------------------

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is not None:
            return super().get_form(request, obj, change=change, **kwargs)
        form = super().get_form(request, obj, change=change, form=ApiTokenCreateForm, **kwargs)
        if not request.user.has_perm("portal.add_apitoken"):
            # Anyone else creates tokens for themselves only.
            user_field = form.base_fields["user"]
            assert isinstance(user_field, forms.ModelChoiceField)
            user_field.queryset = User.objects.filter(username=request.user.get_username())
            user_field.initial = request.user.pk
        return form

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        token, raw = api_token_create(
            actor=request.user, user_id=obj.user_id, name=obj.name, expires_at=obj.expires_at
        )
        obj.pk, obj.prefix, obj.key_hash, obj.created_at = (
            token.pk,
            token.prefix,
            token.key_hash,
            token.created_at,
        )
        obj.created_by_id = token.created_by_id
        # Kept on this request's object only, for response_add to show.
        obj._raw_token = raw  # type: ignore[attr-defined]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Nothing related to save (the service saved the token)."""

    def response_add(
        self, request: HttpRequest, obj: ApiToken, post_url_continue: str | None = None
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Your new API token",
            "token": obj,
            "raw_token": obj._raw_token,  # type: ignore[attr-defined]
        }
        response = TemplateResponse(request, "admin/portal/apitoken/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    # --- Revocation -----------------------------------------------------------------------------------------

    @admin.action(description="Revoke the selected API tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = 0
        for token_id in queryset.filter(revoked_at__isnull=True).values_list("pk", flat=True):
            try:
                api_token_revoke(actor=request.user, token_id=token_id)
            except (PermissionDenied, ValidationError) as error:
                self.message_user(request, str(error), messages.ERROR)
                continue
            revoked += 1
        self.message_user(request, f"{revoked} API token(s) revoked.", messages.SUCCESS)
