"""Secrets findings: leaked secrets (exposures) and where each was seen (findings), from scanner reports.

An exposure is one secret, known only by its keyed fingerprint (HMAC-SHA256 under FINGERPRINT_KEY) and a
redacted preview: the same secret found by two scanners, or in many places, is one exposure. A finding is
that secret at one location (repository, path, line); seeing it again adds to its occurrences and moves
last-seen, nothing else. The owner of the identity the exposure belongs to answers for it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django_fsm import ConcurrentTransitionMixin, FSMField, transition
from simple_history.models import HistoricalRecords

from cases.models import Case
from nhi_inventory.models import Credential, NonHumanIdentity

HEX_SHA256 = r"^[0-9a-f]{64}$"


class ReportFormat(models.TextChoices):
    GITLEAKS = "gitleaks", "gitleaks JSON (v7 or v8)"
    TRUFFLEHOG = "trufflehog", "TruffleHog v3 JSON lines"
    DETECT_SECRETS = "detect-secrets", "detect-secrets baseline"
    SARIF = "sarif", "SARIF 2.1.0 (gitleaks, secretlint, ...)"
    SECRETLINT = "secretlint", "secretlint JSON"
    GITHUB = "github", "GitHub secret scanning alerts (REST API JSON)"


class Validity(models.TextChoices):
    VALID = "valid", "Valid (live)"
    INVALID = "invalid", "Invalid"
    UNKNOWN = "unknown", "Unknown"


class FingerprintScheme(models.TextChoices):
    SECRET = "secret", "HMAC of the secret"
    # detect-secrets baselines carry only SHA-1(secret); the HMAC of that hash still groups identical secrets.
    DETECT_SECRETS_SHA1 = "detect-secrets-sha1", "HMAC of detect-secrets' SHA-1"


class ExposureState(models.TextChoices):
    PENDING = "pending", "Awaiting the owner's answer"
    CONFIRMED = "confirmed", "Confirmed by the owner"
    NOT_OURS = "not_ours", "Disputed: not ours"
    FALSE_POSITIVE = "false_positive", "False positive"
    REMEDIATED = "remediated", "Rotated or revoked"
    REGRESSED = "regressed", "Seen again after remediation"


AWAITING_ANSWER = (ExposureState.PENDING, ExposureState.REGRESSED)


class Attribution(models.TextChoices):
    NONE = "", "Unattributed"
    FINGERPRINT = "fingerprint", "Matches a registered credential"
    RULE = "rule", "Attribution rule"
    ANALYST = "analyst", "Set by an analyst"


class ImportRun(models.Model):
    """One scanner report imported, with its summary. A failed import leaves no row (nor anything else)."""

    report_format = models.CharField(max_length=20, choices=ReportFormat.choices)
    source = models.CharField(max_length=200, help_text="Where the report comes from, e.g. a repository.")
    file_name = models.CharField(max_length=255, blank=True)
    file_sha256 = models.CharField(max_length=64)
    file_size = models.PositiveBigIntegerField()
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="finding_imports"
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    summary = models.JSONField(default=dict)

    class Meta:
        ordering = ("-started_at", "-id")
        permissions = (("import_findings", "Can import scanner reports"),)

    def __str__(self) -> str:
        return f"Import #{self.pk} ({self.report_format}, {self.source})"


class AttributionRule(models.Model):
    """Findings whose repository, path and detector match these patterns belong to this identity."""

    position = models.PositiveIntegerField(default=100, help_text="Lower positions are tried first.")
    repository_pattern = models.CharField(
        max_length=255, blank=True, help_text="Glob on the repository, e.g. github.com/acme/payments*."
    )
    path_pattern = models.CharField(max_length=255, blank=True, help_text="Glob on the path, e.g. deploy/*.")
    detector_pattern = models.CharField(max_length=120, blank=True, help_text="Glob on the detector name.")
    nhi = models.ForeignKey(NonHumanIdentity, on_delete=models.CASCADE, related_name="attribution_rules")
    is_active = models.BooleanField(default=True)
    note = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ("position", "id")
        constraints = (
            models.CheckConstraint(
                condition=~Q(repository_pattern="", path_pattern="", detector_pattern=""),
                name="attribution_rule_has_a_pattern",
            ),
        )

    def __str__(self) -> str:
        patterns = [p for p in (self.repository_pattern, self.path_pattern, self.detector_pattern) if p]
        return f"{' · '.join(patterns)} → {self.nhi}"


class PromotionCondition(models.TextChoices):
    VALID = "valid", "The secret is valid (live)"
    UNKNOWN_VALIDITY = "unknown_validity", "The secret's validity is unknown"
    SERVICE_ACCOUNT = "service_account", "It belongs to a service account"
    RECURRING = "recurring", "It recurs (seen again after remediation, or in many places)"


class PromotionRule(models.Model):
    """When an exposure opens or joins a case. The first active matching rule says why."""

    position = models.PositiveIntegerField(default=100)
    condition = models.CharField(max_length=24, choices=PromotionCondition.choices)
    requires_attribution = models.BooleanField(
        default=False,
        help_text="Wait until the exposure belongs to an identity (unattributed ones wait in triage).",
    )
    min_locations = models.PositiveIntegerField(
        default=3, help_text="For 'recurs': the number of places that counts as recurring."
    )
    severity = models.PositiveSmallIntegerField(
        choices=[(1, "Low"), (2, "Medium"), (3, "High"), (4, "Critical")], default=3
    )
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ("position", "id")

    def __str__(self) -> str:
        return self.get_condition_display()


class Exposure(ConcurrentTransitionMixin, models.Model):
    """One leaked secret, however many times and places it was found."""

    fingerprint = models.CharField(max_length=64)
    fingerprint_key_id = models.CharField(max_length=40)
    fingerprint_scheme = models.CharField(max_length=24, choices=FingerprintScheme.choices)
    # HMAC of "sha1:" + SHA-1(secret): lets a detect-secrets baseline find the exposure other scanners made.
    sha1_fingerprint = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001 (NULL: none known)
    detector = models.CharField(max_length=120)
    preview = models.CharField(max_length=160, help_text="Detector, at most 4 leading characters, length.")
    validity = models.CharField(max_length=8, choices=Validity.choices, default=Validity.UNKNOWN)
    state = FSMField(max_length=16, choices=ExposureState.choices, default=ExposureState.PENDING)

    nhi = models.ForeignKey(
        NonHumanIdentity, null=True, blank=True, on_delete=models.SET_NULL, related_name="exposures"
    )
    # Unindexed foreign keys below: rarely looked up from the other side, and every index slows imports.
    credential = models.ForeignKey(
        Credential, null=True, blank=True, on_delete=models.SET_NULL, related_name="exposures", db_index=False
    )
    attribution = models.CharField(max_length=12, choices=Attribution.choices, blank=True, default="")
    attribution_rule = models.ForeignKey(
        AttributionRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )

    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="exposures")
    promotion_reason = models.CharField(max_length=255, blank=True)

    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    occurrences = models.PositiveIntegerField(default=1)
    locations = models.PositiveIntegerField(default=1)
    regressions = models.PositiveIntegerField(default=0)
    remediated_at = models.DateTimeField(null=True, blank=True)

    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    answer_note = models.TextField(blank=True)
    suggested_owner = models.CharField(max_length=200, blank=True)

    # Sightings are counted per import (ImportRun), not as history rows of their own. History rows are
    # looked up by exposure id and date only: their foreign keys need no index (each one slows imports).
    history = HistoricalRecords(
        excluded_fields=["last_seen_at", "occurrences", "locations"],
        no_db_index=["nhi", "credential", "attribution_rule", "case", "answered_by"],
    )

    class Meta:
        ordering = ("-last_seen_at", "-id")
        permissions = (
            ("answer_exposure", "Can answer for exposures of own identities"),
            ("attribute_exposure", "Can attribute exposures to identities"),
        )
        constraints = (
            models.UniqueConstraint(
                fields=("fingerprint_key_id", "fingerprint"), name="exposure_fingerprint_unique"
            ),
            models.CheckConstraint(
                condition=Q(fingerprint__regex=HEX_SHA256), name="exposure_fingerprint_hex"
            ),
        )
        indexes = (
            models.Index(fields=("fingerprint_key_id", "sha1_fingerprint"), name="exposure_sha1_idx"),
            models.Index(fields=("state", "nhi"), name="exposure_state_nhi_idx"),
        )

    def __str__(self) -> str:
        return f"Exposure #{self.pk} {self.preview}"

    @property
    def awaits_answer(self) -> bool:
        return self.state in AWAITING_ANSWER

    @property
    def in_triage(self) -> bool:
        return self.nhi_id is None or self.state == ExposureState.NOT_OURS

    # The owner's answers. Each is reachable while the exposure awaits an answer; the service records who.
    @transition(field=state, source=list(AWAITING_ANSWER), target=ExposureState.CONFIRMED)
    def confirm(self) -> None:
        pass

    @transition(field=state, source=list(AWAITING_ANSWER), target=ExposureState.NOT_OURS)
    def dispute(self) -> None:
        pass

    @transition(field=state, source=list(AWAITING_ANSWER), target=ExposureState.FALSE_POSITIVE)
    def mark_false_positive(self) -> None:
        pass

    @transition(
        field=state,
        source=[*AWAITING_ANSWER, ExposureState.CONFIRMED],
        target=ExposureState.REMEDIATED,
    )
    def mark_remediated(self) -> None:
        pass

    @transition(field=state, source=ExposureState.REMEDIATED, target=ExposureState.REGRESSED)
    def regress(self) -> None:
        pass

    # An analyst who gives an exposure to another identity hands it to that identity's owner to answer:
    # the previous owner's word (disputed, confirmed, false positive) was about their identity.
    @transition(
        field=state,
        source=[ExposureState.NOT_OURS, ExposureState.CONFIRMED, ExposureState.FALSE_POSITIVE],
        target=ExposureState.PENDING,
    )
    def reassign(self) -> None:
        pass


class Finding(models.Model):
    """A secret at one location. Re-imports only add occurrences and move last-seen."""

    # No index of its own: the (exposure, location_key) unique constraint's index starts with it.
    exposure = models.ForeignKey(Exposure, on_delete=models.CASCADE, related_name="findings", db_index=False)
    # SHA-256 of the normalised (repository, path, line) or, without a path, the URL.
    location_key = models.CharField(max_length=64)
    source = models.CharField(max_length=200)
    scanner = models.CharField(max_length=40)
    detector = models.CharField(max_length=120)
    repository = models.CharField(max_length=255, blank=True)
    path = models.CharField(max_length=1024, blank=True)
    line = models.PositiveIntegerField(null=True, blank=True)
    commit = models.CharField(max_length=64, blank=True)
    url = models.URLField(max_length=1024, blank=True)
    context = models.CharField(max_length=300, blank=True, help_text="Scrubbed: the secret replaced.")
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    occurrences = models.PositiveIntegerField(default=1)
    resolved_at_source = models.BooleanField(default=False)
    resolved_at = models.DateTimeField(null=True, blank=True)
    source_state = models.CharField(max_length=80, blank=True)
    # No index and no database-level constraint: every re-import rewrites last_import on every finding it
    # sees, and PostgreSQL would queue a foreign-key check for each (seconds per 100,000). Import rows are
    # never deleted (PROTECT in the ORM, no delete in the admin), so the reference cannot dangle.
    first_import = models.ForeignKey(
        ImportRun, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    last_import = models.ForeignKey(
        ImportRun, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )

    history = HistoricalRecords(
        excluded_fields=["last_seen_at", "occurrences", "last_import"],
        no_db_index=["exposure", "first_import"],
    )

    class Meta:
        ordering = ("exposure_id", "id")
        constraints = (
            models.UniqueConstraint(fields=("exposure", "location_key"), name="finding_location_unique"),
            models.CheckConstraint(condition=Q(location_key__regex=HEX_SHA256), name="finding_location_hex"),
        )

    def __str__(self) -> str:
        where = f"{self.repository}:{self.path}" if self.path else self.url or self.repository
        return f"{where}:{self.line}" if self.line else where


class AnswerLink(models.Model):
    """A signed, expiring, single-use link to one exposure's answer form, sent to one owner by email.

    Only the SHA-256 of the token's nonce is kept, so the table alone does not let anyone answer.
    """

    exposure = models.ForeignKey(Exposure, on_delete=models.CASCADE, related_name="answer_links")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    nonce_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"Answer link #{self.pk} for exposure #{self.exposure_id} to {self.user}"


class IngestJobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


FINISHED_JOB_STATES = (IngestJobStatus.SUCCEEDED, IngestJobStatus.FAILED)


class IngestJob(models.Model):
    """A scanner report too large to import during its upload, imported in the background.

    The report waits in the default storage encrypted (`findings/pending_files.py`) and is deleted when the
    job ends, either way. The row keeps its name, size and SHA-256, the progress and the outcome: the
    import run and its summary, or the error (which names a line or field, never quotes the report).
    """

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    report_format = models.CharField(max_length=20, choices=ReportFormat.choices)
    source = models.CharField(max_length=200)
    file_name = models.CharField(max_length=255, blank=True)
    file_size = models.PositiveBigIntegerField()
    file_sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=IngestJobStatus.choices, default=IngestJobStatus.QUEUED)
    progress = models.PositiveBigIntegerField(
        default=0, help_text="Entries read when the job ended (while it runs, the cache has the count)."
    )
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    import_run = models.ForeignKey(
        ImportRun, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # The encrypted report's name in the default storage while it waits; emptied once it is deleted.
    pending_file = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = (
            models.CheckConstraint(condition=Q(file_sha256__regex=HEX_SHA256), name="ingest_job_sha256_hex"),
        )

    def __str__(self) -> str:
        return f"Ingest job #{self.pk} ({self.report_format}, {self.source}): {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_JOB_STATES


class OwnerReminder(models.Model):
    """Where one exposure stands in its owners' reminder cadence (`findings/reminders.py`), for one wait.

    A wait starts when the exposure comes to await the answer of an identity's owners: found, attributed,
    handed to another identity, or seen again after remediation. `waiting_since` names the wait this row
    counts; once the exposure's history shows it stopped waiting after that (answered, handed on), the row
    counts nothing and the next wait starts from zero. Written only by `owner_reminders_send`, which also
    records each reminder and escalation in the exposure's history.
    """

    exposure = models.OneToOneField(
        Exposure, on_delete=models.CASCADE, primary_key=True, related_name="owner_reminder"
    )
    waiting_since = models.DateTimeField(help_text="When the wait these reminders are about started.")
    reminders_sent = models.PositiveSmallIntegerField(default=0)
    last_reminded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalated_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        help_text="The team lead told that the owners left it unanswered.",
    )

    class Meta:
        ordering = ("-waiting_since",)

    def __str__(self) -> str:
        return f"Reminders for exposure #{self.exposure_id}: {self.reminders_sent} sent"
