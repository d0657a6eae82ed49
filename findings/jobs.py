"""Scanner reports uploaded through the API: imported at once when small, by a background job when large.

A large report waits encrypted in the default storage (`findings/pending_files.py`); the job row holds its
storage name, and the Celery message only the job's id. The worker claims the job in a short transaction of
its own (row locked, queued -> running), so a message delivered twice imports once; then it imports the
report in `findings_import`'s single transaction, reporting progress through the cache (a count written to
the job row inside that transaction would be seen by nobody until the end), deletes the pending report
whatever happened, and records the outcome: the import run and its summary, or the error.

The task lives here, not in `findings/tasks.py`: it runs `findings_import`, and `findings.services` imports
`findings.tasks`. Workers import this module through the `CELERY_IMPORTS` setting.
"""

from __future__ import annotations

import logging
from contextlib import closing
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from findings.models import ImportRun, IngestJob, IngestJobStatus, ReportFormat
from findings.parsers import PARSERS
from findings.pending_files import (
    EncryptedUpload,
    PendingFileError,
    decrypted,
    pending_file_check,
    pending_file_delete,
    pending_file_open,
    pending_file_save,
)
from findings.services import findings_import
from portal.permissions import Actor, require_permission

logger = logging.getLogger(__name__)

# Long enough for any import; the key is deleted when the job ends anyway.
PROGRESS_TIMEOUT = 24 * 3600


def ingest_submit(
    *, actor: Actor, report_format: str, source: str, upload: EncryptedUpload
) -> ImportRun | IngestJob:
    """Import a report now if it is at most FINDINGS_INGEST_SYNC_MAX_BYTES, else queue a job for it.

    Raises findings_import's ValidationError (naming the line or field) or PermissionDenied.
    """
    if upload.size is not None and upload.size <= settings.FINDINGS_INGEST_SYNC_MAX_BYTES:
        with closing(upload.plaintext()) as stream:
            return findings_import(
                actor=actor,
                report_format=report_format,
                source=source,
                stream=stream,
                file_name=upload.name or "",
            )
    job = ingest_job_create(actor=actor, report_format=report_format, source=source, upload=upload)
    # When tasks run in-process, the job ran when the creation committed: show how it ended.
    job.refresh_from_db()
    return job


def _check_report(report_format: str, source: str) -> None:
    """findings_import's own checks, made before a job is queued rather than when it runs."""
    if report_format not in PARSERS:
        raise ValidationError(
            {
                "report_format": f"Unknown format {report_format!r}; "
                f"use one of {', '.join(ReportFormat.values)}."
            }
        )
    if not source.strip():
        raise ValidationError({"source": "Name the source of the report (e.g. the repository it scanned)."})


@transaction.atomic
def ingest_job_create(*, actor: Actor, report_format: str, source: str, upload: EncryptedUpload) -> IngestJob:
    """Store the report encrypted and queue its import; the task is sent once this has committed."""
    user = require_permission(actor, "findings.import_findings", to="import scanner reports")
    _check_report(report_format, source)
    name = pending_file_save(upload)
    try:
        job = IngestJob.objects.create(
            created_by=user,
            report_format=report_format,
            source=source.strip()[:200],
            file_name=(upload.name or "")[:255],
            file_size=upload.size or 0,
            file_sha256=upload.sha256,
            pending_file=name,
            created_at=timezone.now(),
        )
    except BaseException:
        pending_file_delete(name)
        raise
    job_id = job.pk
    transaction.on_commit(lambda: run_ingest_job.delay(job_id))
    logger.info("%s by %s (%s bytes)", job, user, job.file_size)
    return job


def _progress_key(job_id: int) -> str:
    return f"findings:ingest-job:{job_id}:progress"


def ingest_job_progress(job: IngestJob) -> int:
    """Entries read so far: from the cache while the job runs, from the row once it has ended."""
    if job.status == IngestJobStatus.RUNNING:
        value = cache.get(_progress_key(job.pk))
        return value if isinstance(value, int) else job.progress
    return job.progress


@transaction.atomic
def _ingest_job_claim(job_id: int) -> IngestJob | None:
    """Move a queued job to running, in a transaction of its own; None if it is not queued (any more)."""
    job = IngestJob.objects.select_for_update().filter(pk=job_id).first()
    if job is None or job.status != IngestJobStatus.QUEUED:
        return None
    now = timezone.now()
    # Conditional as well: SQLite has no row locks, and of two deliveries only one may update the row.
    claimed = IngestJob.objects.filter(pk=job_id, status=IngestJobStatus.QUEUED).update(
        status=IngestJobStatus.RUNNING, started_at=now
    )
    if not claimed:
        return None
    job.status, job.started_at = IngestJobStatus.RUNNING, now
    return job


def _error_sentence(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
    return " ".join(error.messages)


def _import(job: IngestJob) -> ImportRun:
    key = _progress_key(job.pk)

    def on_progress(entries: int) -> None:
        cache.set(key, entries, timeout=PROGRESS_TIMEOUT)

    pending_file_check(job.pending_file, sha256=job.file_sha256)
    with closing(pending_file_open(job.pending_file)) as stored, closing(decrypted(stored)) as stream:
        return findings_import(
            actor=job.created_by,
            report_format=job.report_format,
            source=job.source,
            stream=stream,
            file_name=job.file_name,
            on_progress=on_progress,
        )


def _discard_pending_file(job: IngestJob) -> bool:
    try:
        pending_file_delete(job.pending_file)
    except Exception as error:  # the outcome is still recorded; the file name stays for a later clean-up
        logger.error("%s: the pending report could not be deleted (%s)", job, type(error).__name__)
        return False
    return True


def ingest_job_run(*, job_id: int) -> IngestJob | None:
    """Run a queued job to its end; a job that is running or has ended is left as it is.

    Not atomic as a whole, on purpose: the claim, the import and the outcome are three transactions, so
    that the job shows as running while it imports, and a failed import still records why it failed.
    """
    job = _ingest_job_claim(job_id)
    if job is None:
        return IngestJob.objects.filter(pk=job_id).first()
    run: ImportRun | None = None
    error = ""
    try:
        run = _import(job)
    except ValidationError as refusal:  # findings_import's messages name the line or field, quote nothing
        error = _error_sentence(refusal)
    except (PermissionDenied, PendingFileError) as refusal:
        error = str(refusal)
    except Exception as failure:  # its message could quote the report: the type only
        error = f"The import failed ({type(failure).__name__}); nothing was imported."
    finally:
        deleted = _discard_pending_file(job)
    progress = cache.get(_progress_key(job.pk))
    cache.delete(_progress_key(job.pk))
    with transaction.atomic():
        job = IngestJob.objects.select_for_update().get(pk=job_id)
        job.finished_at = timezone.now()
        if deleted:
            job.pending_file = ""
        if run is not None:
            job.status, job.import_run, job.summary = IngestJobStatus.SUCCEEDED, run, run.summary
            job.progress = int(run.summary.get("entries", 0))
        else:
            job.status, job.error = IngestJobStatus.FAILED, error
            job.progress = progress if isinstance(progress, int) else 0
        job.save()
    if run is None:
        logger.warning("%s: %s", job, error)
    else:
        logger.info("%s: %s", job, run)
    return job


@shared_task(acks_late=True)
def run_ingest_job(job_id: int) -> str | None:
    """Import the report of one queued ingest job. Takes only the job's id; safe to deliver twice."""
    job = ingest_job_run(job_id=job_id)
    return None if job is None else job.status


# A report that waits longer than this was lost on the way (a message never delivered, a worker that died
# mid-import, whose redelivery finds the job running): the sweep fails the job and deletes its report.
STALE_AFTER = timedelta(hours=6)


def ingest_jobs_expire(*, older_than: timedelta = STALE_AFTER) -> int:
    """Fail the jobs queued or running for longer than `older_than` and delete their reports; count them."""
    cutoff = timezone.now() - older_than
    stale = IngestJob.objects.filter(
        status__in=(IngestJobStatus.QUEUED, IngestJobStatus.RUNNING), created_at__lt=cutoff
    ).values_list("pk", flat=True)
    expired = 0
    for job_id in list(stale):
        with transaction.atomic():
            job = IngestJob.objects.select_for_update().filter(pk=job_id).first()
            if job is None or job.is_finished or job.created_at >= cutoff:
                continue
            if job.pending_file and _discard_pending_file(job):
                job.pending_file = ""
            job.status, job.finished_at = IngestJobStatus.FAILED, timezone.now()
            job.error = (
                f"The job did not finish within {older_than.total_seconds() / 3600:g} hours; nothing was "
                "imported. Upload the report again."
            )
            job.save()
            expired += 1
        logger.warning("%s: expired", job)
    return expired


@shared_task(acks_late=True)
def expire_ingest_jobs() -> int:
    """The sweep for lost jobs: schedule it (e.g. hourly with celery beat)."""
    return ingest_jobs_expire()
