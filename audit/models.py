"""The audit chain: append-only entries, each sealed by a hash over its content and its predecessor's hash,
and an HMAC under the chain key; the head records where the chain ends; verifications record each check.

Nothing here may change once written: the ORM refuses updates and deletes of entries (and a trigger does on
PostgreSQL), so the only way to alter the trail is behind the portal's back, which verification exposes.
"""

from typing import Any, ClassVar, NoReturn

from django.conf import settings
from django.db import models

GENESIS_HASH = "0" * 64
# Declared on AuditEntry (Meta.permissions); held by analysts, approvers and auditors (portal/roles.py).
EXPORT_PERMISSION = "audit.export_evidence_bundle"


class AuditTrailImmutable(Exception):
    """Raised for any attempt to update or delete audit entries through the ORM."""


def _refuse(what: str) -> NoReturn:
    raise AuditTrailImmutable(f"Audit entries are append-only: {what} is refused.")


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: Any) -> int:
        _refuse("update()")

    def delete(self) -> tuple[int, dict[str, int]]:
        _refuse("delete()")

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> int:
        _refuse("bulk_update()")

    def update_or_create(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("update_or_create()")

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list["AuditEntry"]:
        # An upsert is an UPDATE of the rows it collides with.
        if kwargs.get("update_conflicts") or (len(args) > 2 and args[2]):
            _refuse("bulk_create(update_conflicts=True)")
        return super().bulk_create(objs, *args, **kwargs)

    def _update(self, values: Any) -> NoReturn:
        # What update() and Model.save() run underneath.
        _refuse("update()")

    def _raw_delete(self, using: Any) -> int:
        _refuse("delete()")


class AuditEntry(models.Model):
    """One recorded event. `body` is the sealed text; the other columns are copies for lookups.

    body = {"seq":N,"prev":"<hash>","case":<id or null>,"event":"<name>","entry":{canonical JSON}}, its
    top-level keys in that order so a verifier can check the columns against it without parsing;
    entry_hash = SHA-256(body); mac = HMAC-SHA256(key[key_id], entry_hash).
    Verification checks every copy against the body (actor first and object last in the sorted entry, so
    also without parsing) except recorded_at, whose place in the body is not fixed: the API shows the
    sealed time instead.
    """

    seq = models.BigIntegerField(primary_key=True)
    recorded_at = models.DateTimeField()
    event = models.CharField(max_length=64, db_index=True)
    case_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    actor_id = models.IntegerField(null=True, blank=True)
    body = models.TextField()
    # Unique: two entries naming the same predecessor would be a fork.
    prev_hash = models.CharField(max_length=64, unique=True)
    entry_hash = models.CharField(max_length=64, unique=True)
    key_id = models.CharField(max_length=64)
    mac = models.CharField(max_length=64)

    objects: ClassVar[models.Manager["AuditEntry"]] = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ("seq",)
        # Django's internal paths (related access, refresh_from_db) use the base manager: make it this one.
        base_manager_name = "objects"
        verbose_name_plural = "audit entries"
        permissions = (("export_evidence_bundle", "Can export a case's evidence bundle"),)
        indexes = (models.Index(fields=("object_type", "object_id"), name="audit_entry_object"),)

    def __str__(self) -> str:
        return f"#{self.seq} {self.event}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            _refuse("saving an existing entry")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("delete()")


# Every stored column of an entry, in table order: what exports and raw reads of the chain carry.
ENTRY_COLUMNS: tuple[str, ...] = tuple(field.attname for field in AuditEntry._meta.concrete_fields)


class AuditHead(models.Model):
    """The one row that says where the chain ends; appenders lock it, so the chain stays one line.

    Its mac (HMAC under the chain key over seq and hash) lets verification tell entries deleted from the
    end from a chain that simply ends there.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    key_id = models.CharField(max_length=64, blank=True)
    mac = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = (models.CheckConstraint(condition=models.Q(id=1), name="audit_head_single_row"),)

    def __str__(self) -> str:
        return f"audit chain head at #{self.seq}"


class VerificationTrigger(models.TextChoices):
    COMMAND = "command", "verify_audit_trail command"
    SCHEDULE = "schedule", "Scheduled task"
    ADMIN = "admin", "Admin"
    BUNDLE = "bundle", "Evidence bundle export"
    API = "api", "API"


class AuditVerification(models.Model):
    """One walk over the chain and what it found; the admin shows the latest."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    trigger = models.CharField(max_length=16, choices=VerificationTrigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ok = models.BooleanField()
    entries_checked = models.BigIntegerField()
    last_seq = models.BigIntegerField(help_text="The last entry found intact, in order (0 if none).")
    last_hash = models.CharField(max_length=64)
    problem_kind = models.CharField(max_length=16, blank=True)
    problem_seq = models.BigIntegerField(null=True, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ("-started_at", "-pk")
        get_latest_by = ("started_at", "pk")

    def __str__(self) -> str:
        outcome = "intact" if self.ok else f"{self.problem_kind} at #{self.problem_seq}"
        return f"verification of {self.started_at:%Y-%m-%d %H:%M} UTC: {outcome}"
