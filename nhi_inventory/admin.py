from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.templatetags.static import static
from django.utils.html import format_html_join

from nhi_inventory import services
from nhi_inventory.fingerprints import fingerprint_secret
from nhi_inventory.models import Credential, NonHumanIdentity, Team, TeamMembership
from nhi_inventory.selectors import credential_list, nhi_list, sees_all_identities, team_list
from portal.admin_mixins import HistoryAdmin, ReadOnlyAdminMixin, ReadOnlyTabularInline


class TeamMembershipInline(admin.TabularInline):
    model = TeamMembership
    extra = 0
    autocomplete_fields = ("user",)
    fields = ("user", "joined_at")
    readonly_fields = ("joined_at",)


@admin.register(Team)
class TeamAdmin(HistoryAdmin):
    list_display = ("name", "slug", "lead", "member_count", "identity_count")
    list_select_related = ("lead",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    autocomplete_fields = ("lead",)
    fields = ("name", "slug", "lead", "contact_email")
    inlines = (TeamMembershipInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        # Meta.ordering is dropped from GROUP BY queries: order explicitly (the team autocomplete uses this).
        return (
            team_list(user=request.user)
            .annotate(
                member_total=Count("memberships", distinct=True),
                identity_total=Count("identities", distinct=True),
            )
            .order_by("name")
        )

    @admin.display(description="Members", ordering="member_total")
    def member_count(self, team: Any) -> int:
        return int(team.member_total)

    @admin.display(description="Identities", ordering="identity_total")
    def identity_count(self, team: Any) -> int:
        return int(team.identity_total)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Team, form: forms.ModelForm, change: bool) -> None:
        if change:
            services.team_update(
                actor=request.user,
                team_id=obj.pk,
                changes={name: form.cleaned_data[name] for name in form.changed_data},
            )
        else:
            created = services.team_create(actor=request.user, **form.cleaned_data)
            obj.pk = created.pk

    def save_formset(self, request: HttpRequest, form: Any, formset: BaseInlineFormSet, change: bool) -> None:
        team = form.instance
        for inline_form in formset.forms:
            user = inline_form.cleaned_data.get("user")
            if user is None:
                continue
            if inline_form in formset.deleted_forms:
                services.team_member_remove(actor=request.user, team_id=team.pk, user=user)
            elif inline_form.instance.pk is None or inline_form.has_changed():
                if inline_form.instance.pk is not None:
                    services.team_member_remove(
                        actor=request.user, team_id=team.pk, user=inline_form.instance.user
                    )
                services.team_member_add(actor=request.user, team_id=team.pk, user=user)


class VisibilityFilter(admin.SimpleListFilter):
    title = "visibility"
    parameter_name = "visibility"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("full", "Fully visible"),
            ("no_owner", "Owner unknown"),
            ("no_last_use", "Last use unknown"),
            ("no_rotation", "Rotation unknown"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == "full":
            return queryset.filter(NonHumanIdentity.fully_visible_q())
        if value == "no_owner":
            return queryset.filter(owner_team__isnull=True, owner__isnull=True)
        if value == "no_last_use":
            return queryset.filter(last_used_at__isnull=True)
        if value == "no_rotation":
            return queryset.filter(last_rotated_at__isnull=True)
        return queryset


class CredentialInline(ReadOnlyTabularInline):
    model = Credential
    fields = ("credential_type", "label", "preview", "fingerprint_key_id", "status", "expires_at")


class NonHumanIdentityForm(forms.ModelForm):
    class Meta:
        model = NonHumanIdentity
        fields = tuple(sorted(services.NHI_EDITABLE_FIELDS))

    def clean_lifecycle_state(self) -> str:
        new = self.cleaned_data["lifecycle_state"]
        if self.instance.pk and self.instance.lifecycle_state == "decommissioned" and new != "decommissioned":
            raise forms.ValidationError("A decommissioned identity cannot be brought back.")
        return str(new)


@admin.register(NonHumanIdentity)
class NonHumanIdentityAdmin(HistoryAdmin):
    form = NonHumanIdentityForm
    list_display = (
        "name",
        "visibility_icons",
        "kind",
        "provider",
        "environment",
        "owner_team",
        "criticality",
        "privilege_level",
        "exposure",
        "lifecycle_state",
    )
    list_select_related = ("owner_team", "owner")
    list_filter = (
        VisibilityFilter,
        "kind",
        "environment",
        "lifecycle_state",
        "criticality",
        "privilege_level",
        "internet_facing",
        "third_party",
        "owner_team",
    )
    search_fields = ("name", "provider", "external_id")
    autocomplete_fields = ("owner_team", "owner")
    show_full_result_count = False
    list_per_page = 50
    readonly_fields = ("visibility", "created_at", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and not sees_all_identities(request.user):
            return (*self.readonly_fields, *sorted(services.OWNERSHIP_FIELDS))
        return self.readonly_fields

    fieldsets = (
        (None, {"fields": ("name", "kind", "provider", "external_id", "environment", "description")}),
        ("Ownership", {"fields": ("owner_team", "owner")}),
        ("Risk", {"fields": ("criticality", "privilege_level", "internet_facing", "third_party")}),
        (
            "Lifecycle",
            {
                "fields": (
                    "lifecycle_state",
                    "provisioned_at",
                    "last_used_at",
                    "last_rotated_at",
                    "expires_at",
                    "visibility",
                    "created_at",
                    "updated_at",
                )
            },
        ),
    )
    inlines = (CredentialInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[NonHumanIdentity]:
        return nhi_list(user=request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Identities are decommissioned, never deleted: their cases and history must stay readable.
        return False

    @admin.display(description="Exposure")
    def exposure(self, identity: NonHumanIdentity) -> str:
        flags = [
            label
            for flag, label in ((identity.internet_facing, "internet"), (identity.third_party, "third party"))
            if flag
        ]
        return ", ".join(flags) or "internal"

    @admin.display(description="Visible: owner · use · rotation")
    def visibility_icons(self, identity: NonHumanIdentity) -> str:
        facts = (
            ("owner", identity.owner_known),
            ("last use", identity.last_use_known),
            ("rotation", identity.rotation_known),
        )
        return format_html_join(
            " ",
            '<img src="{}" alt="{}" title="{}" data-visibility="{}">',
            (
                (
                    static(f"admin/img/icon-{'yes' if known else 'no'}.svg"),
                    known,
                    f"{name} {'known' if known else 'unknown'}",
                    f"{name}={'known' if known else 'unknown'}",
                )
                for name, known in facts
            ),
        )

    @admin.display(description="Visibility")
    def visibility(self, identity: NonHumanIdentity) -> str:
        return f"{identity.visibility_score} of 3 known (owner, last use, rotation)"

    def save_model(
        self, request: HttpRequest, obj: NonHumanIdentity, form: forms.ModelForm, change: bool
    ) -> None:
        if change:
            services.nhi_update(
                actor=request.user,
                nhi_id=obj.pk,
                changes={name: form.cleaned_data[name] for name in form.changed_data},
            )
        else:
            data = {
                name: value
                for name, value in form.cleaned_data.items()
                if name in services.NHI_EDITABLE_FIELDS
            }
            created = services.nhi_create(actor=request.user, **data)
            obj.pk = created.pk


class CredentialRegisterForm(forms.ModelForm):
    secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        strip=False,
        help_text="Used once to compute the fingerprint and preview, then discarded: it is never stored.",
    )

    class Meta:
        model = Credential
        fields = ("nhi", "credential_type", "label", "issued_at", "expires_at")

    def clean_secret(self) -> str:
        secret = str(self.cleaned_data["secret"])
        fingerprint = fingerprint_secret(secret)
        duplicate = Credential.objects.filter(
            fingerprint=fingerprint.value, fingerprint_key_id=fingerprint.key_id
        ).first()
        if duplicate is not None:
            raise forms.ValidationError(
                f"This secret is already registered as credential #{duplicate.pk} ({duplicate.preview})."
            )
        return secret


@admin.register(Credential)
class CredentialAdmin(HistoryAdmin):
    list_display = (
        "preview",
        "credential_type",
        "nhi",
        "status",
        "short_fingerprint",
        "fingerprint_key_id",
        "expires_at",
    )
    list_select_related = ("nhi",)
    list_filter = ("credential_type", "status", "fingerprint_key_id")
    search_fields = ("=fingerprint", "label", "nhi__name")
    autocomplete_fields = ("nhi",)
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Credential]:
        return credential_list(user=request.user)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = CredentialRegisterForm
        return super().get_form(request, obj, change=change, **kwargs)

    register_fields = ("nhi", "credential_type", "label", "secret", "issued_at", "expires_at")
    record_fields = (
        "nhi",
        "credential_type",
        "label",
        "preview",
        "fingerprint",
        "fingerprint_key_id",
        "status",
        "issued_at",
        "last_rotated_at",
        "expires_at",
        "created_at",
    )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.register_fields if obj is None else self.record_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A registered credential changes only its status; the fingerprint is what it is.
        return () if obj is None else tuple(name for name in self.record_fields if name != "status")

    @admin.display(description="Fingerprint")
    def short_fingerprint(self, credential: Credential) -> str:
        return f"{credential.fingerprint[:12]}…"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Credential, form: forms.ModelForm, change: bool) -> None:
        if change:
            if "status" in form.changed_data:
                services.credential_set_status(
                    actor=request.user, credential_id=obj.pk, status=form.cleaned_data["status"]
                )
            return
        data = form.cleaned_data
        created = services.credential_register(
            actor=request.user,
            nhi_id=data["nhi"].pk,
            credential_type=data["credential_type"],
            secret=data["secret"],
            label=data.get("label", ""),
            issued_at=data.get("issued_at"),
            expires_at=data.get("expires_at"),
        )
        obj.pk = created.pk


@admin.register(TeamMembership)
class TeamMembershipAdmin(ReadOnlyAdminMixin, HistoryAdmin):
    list_display = ("team", "user", "joined_at")
    list_select_related = ("team", "user")
    list_filter = ("team",)
    search_fields = ("team__name", "user__username")

    def get_queryset(self, request: HttpRequest) -> QuerySet[TeamMembership]:
        memberships = super().get_queryset(request)
        if request.user.has_perm("nhi_inventory.view_all_identities"):
            return memberships
        return memberships.filter(Q(team__in=team_list(user=request.user)))
