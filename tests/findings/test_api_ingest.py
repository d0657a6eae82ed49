"""`POST /api/v1/ingest/`: small reports imported at once (201), large ones by a background job (202).

A report is full of raw secrets: it is encrypted as it arrives, waits encrypted in the storage, is deleted
when its job ends, and no secret of it reaches a table, the storage, a log line or a response.
"""

import hashlib
import io
import json
import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from findings import jobs
from findings.jobs import expire_ingest_jobs, ingest_job_create, run_ingest_job
from findings.models import Exposure, Finding, ImportRun, IngestJob, IngestJobStatus
from findings.pending_files import STORAGE_DIRECTORY, EncryptedUpload, decrypted
from portal import roles
from portal.celery import app as celery_app
from tests.findings.leaks import tables_containing
from tests.findings.reports import AWS_SECRET, GITHUB_TOKEN, SLACK_TOKEN, gitleaks_v8, trufflehog_v3
from tests.findings.test_import_samples import SAMPLE_FORMATS, SAMPLES, planted

pytestmark = pytest.mark.django_db

INGEST = "/api/v1/ingest/"
JOBS = "/api/v1/ingest/jobs/"
SOURCE = "github.com/acme/payments"


def report(*secrets: str) -> bytes:
    return gitleaks_v8(*({"Secret": secret, "File": f"deploy/{n}.env"} for n, secret in enumerate(secrets)))


MALFORMED = trufflehog_v3({"Raw": AWS_SECRET, "file": "a.env", "line": 1}) + b'{"SourceMetadata": \n'


def post(
    client: Any, content: bytes, *, fmt: str = "gitleaks", source: str = SOURCE, name: str = "r.json"
) -> Any:
    upload = io.BytesIO(content)
    upload.name = name
    return client.post(INGEST, {"format": fmt, "source": source, "file": upload}, format="multipart")


def encrypted(content: bytes) -> EncryptedUpload:
    """An upload as the API's handler leaves it: encrypted in an unnamed temporary file."""
    return EncryptedUpload.from_bytes(content, name="report.json")


def pending_files() -> list[str]:
    try:
        return [f"{STORAGE_DIRECTORY}/{name}" for name in default_storage.listdir(STORAGE_DIRECTORY)[1]]
    except FileNotFoundError:
        return []


def stored_files(path: str = "") -> Iterator[str]:
    """Every file in the default storage (in-memory in the tests)."""
    try:
        directories, files = default_storage.listdir(path)
    except FileNotFoundError:
        return
    for name in files:
        yield f"{path}/{name}" if path else name
    for directory in directories:
        yield from stored_files(f"{path}/{directory}" if path else directory)


def storage_containing(secrets: set[str]) -> list[str]:
    hits: list[str] = []
    for name in stored_files():
        with default_storage.open(name, "rb") as stored:
            content = stored.read().decode("latin-1")
        hits.extend(f"{name}: {secret[:6]}…" for secret in secrets if secret in content)
    return hits


def written() -> tuple[int, int, int]:
    return ImportRun.objects.count(), Exposure.objects.count(), Finding.objects.count()


@pytest.fixture(autouse=True)
def clean_storage() -> Iterator[None]:
    # The in-memory storage outlives each test: start and end every test without pending reports.
    for name in pending_files():
        default_storage.delete(name)
    yield
    for name in pending_files():
        default_storage.delete(name)


@pytest.fixture
def background(settings: Any) -> None:
    """Every report, however small, goes to a background job."""
    settings.FINDINGS_INGEST_SYNC_MAX_BYTES = 0


# --- Imported during the request (201) ----------------------------------------------------------------------


def test_a_small_report_is_imported_at_once_with_the_commands_summary(
    api: Any, analyst: Any, tmp_path: Any, capsys: Any
) -> None:
    content = report(AWS_SECRET, GITHUB_TOKEN)

    response = post(api(analyst), content)

    assert response.status_code == 201
    run = ImportRun.objects.get()
    assert response.json()["id"] == run.pk
    assert response.json()["summary"] == run.summary
    assert response.json()["summary"]["created"] == 2
    assert response["Location"].endswith(f"/api/v1/imports/{run.pk}/")
    assert run.imported_by == analyst
    assert run.file_name == "r.json"
    # The command prints the same summary, under the same keys, for the same report.
    (tmp_path / "r.json").write_bytes(content)
    call_command("ingest_findings", "--format", "gitleaks", "--source", SOURCE, str(tmp_path / "r.json"))
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) - {"import"} == set(response.json()["summary"])
    assert printed["unchanged"] == response.json()["summary"]["created"]


def test_a_report_of_exactly_the_threshold_is_still_imported_at_once(
    api: Any, analyst: Any, settings: Any
) -> None:
    content = report(AWS_SECRET)
    settings.FINDINGS_INGEST_SYNC_MAX_BYTES = len(content)

    assert post(api(analyst), content).status_code == 201
    assert IngestJob.objects.count() == 0


def test_a_malformed_report_is_refused_naming_the_line_and_nothing_is_written(api: Any, analyst: Any) -> None:
    response = post(api(analyst), MALFORMED, fmt="trufflehog")

    assert response.status_code == 400
    assert "line 2" in " ".join(response.json()["file"])
    assert AWS_SECRET not in response.content.decode()
    assert written() == (0, 0, 0)
    assert pending_files() == []


def test_a_report_of_another_format_is_refused_and_nothing_is_written(api: Any, analyst: Any) -> None:
    response = post(api(analyst), trufflehog_v3({"Raw": AWS_SECRET, "file": "a.env", "line": 1}))

    assert response.status_code == 400
    assert "not a valid gitleaks report" in " ".join(response.json()["file"])
    assert written() == (0, 0, 0)


def test_an_unknown_format_is_refused_by_name(api: Any, analyst: Any) -> None:
    response = post(api(analyst), report(AWS_SECRET), fmt="nessus")

    assert response.status_code == 400
    assert list(response.json()) == ["format"]
    assert written() == (0, 0, 0)


def test_missing_fields_are_each_named(api: Any, analyst: Any) -> None:
    response = api(analyst).post(INGEST, {}, format="multipart")

    assert response.status_code == 400
    assert set(response.json()) == {"format", "source", "file"}


def test_a_blank_source_is_refused_by_name(api: Any, analyst: Any) -> None:
    response = post(api(analyst), report(AWS_SECRET), source="   ")

    assert response.status_code == 400
    assert list(response.json()) == ["source"]
    assert written() == (0, 0, 0)


def test_a_json_body_is_not_an_upload(api: Any, analyst: Any) -> None:
    response = api(analyst).post(INGEST, {"format": "gitleaks", "source": SOURCE}, format="json")

    assert response.status_code == 415


@pytest.mark.parametrize("persona", ["approver", "auditor", "owner", "outsider"])
def test_only_analysts_may_ingest(
    api: Any, persona: str, request: pytest.FixtureRequest, background: None
) -> None:
    response = post(api(request.getfixturevalue(persona)), report(AWS_SECRET))

    assert response.status_code == 403
    assert "findings.import_findings" in response.json()["detail"]
    assert written() == (0, 0, 0)
    assert IngestJob.objects.count() == 0
    assert pending_files() == []


def test_an_anonymous_caller_must_sign_in(api: Any, role_groups: None) -> None:
    response = post(api(None), report(AWS_SECRET))

    assert response.status_code == 401
    assert written() == (0, 0, 0)


# --- Imported by a background job (202) ---------------------------------------------------------------------


def test_a_large_report_is_queued_and_its_job_url_reports_the_summary(
    api: Any, analyst: Any, background: None, django_capture_on_commit_callbacks: Any
) -> None:
    client = api(analyst)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, report(AWS_SECRET, GITHUB_TOKEN), name="big.json")

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == IngestJobStatus.QUEUED
    assert response["Location"] == body["url"]
    assert body["url"].endswith(f"{JOBS}{body['id']}/")
    followed = client.get(body["url"]).json()
    run = ImportRun.objects.get()
    assert followed["status"] == IngestJobStatus.SUCCEEDED
    assert followed["summary"] == run.summary
    assert followed["summary"]["created"] == 2
    assert followed["progress"] == 2
    assert followed["import_run"] == run.pk
    assert followed["error"] == ""
    assert run.imported_by == analyst
    assert run.file_name == "big.json"
    assert IngestJob.objects.get().pending_file == ""
    assert pending_files() == []


def test_the_queued_report_waits_encrypted_in_the_storage(
    api: Any, analyst: Any, background: None, django_capture_on_commit_callbacks: Any
) -> None:
    content = report(AWS_SECRET, GITHUB_TOKEN)
    with django_capture_on_commit_callbacks(execute=False):
        response = post(api(analyst), content)

    job = IngestJob.objects.get(pk=response.json()["id"])
    assert pending_files() == [job.pending_file]
    with default_storage.open(job.pending_file, "rb") as stored:
        ciphertext = stored.read()
    assert AWS_SECRET.encode() not in ciphertext
    assert GITHUB_TOKEN.encode() not in ciphertext
    assert b"deploy/" not in ciphertext
    assert decrypted(io.BytesIO(ciphertext)).read() == content
    assert job.file_size == len(content)
    assert job.file_sha256 == hashlib.sha256(content).hexdigest()


def test_the_task_is_sent_on_commit_with_the_job_id_only(
    api: Any, analyst: Any, background: None, django_capture_on_commit_callbacks: Any
) -> None:
    with mock.patch.object(run_ingest_job, "delay") as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = post(api(analyst), report(AWS_SECRET))
        delay.assert_not_called()  # not before the job row is committed
        for callback in callbacks:
            callback()

    delay.assert_called_once_with(response.json()["id"])


def test_a_malformed_large_report_fails_its_job_naming_the_line_and_writes_nothing(
    api: Any, analyst: Any, background: None, django_capture_on_commit_callbacks: Any
) -> None:
    client = api(analyst)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, MALFORMED, fmt="trufflehog")

    assert response.status_code == 202
    followed = client.get(response.json()["url"]).json()
    assert followed["status"] == IngestJobStatus.FAILED
    assert "line 2" in followed["error"]
    assert AWS_SECRET not in followed["error"]
    assert followed["summary"] is None
    assert written() == (0, 0, 0)
    assert pending_files() == []


def test_an_unknown_format_is_refused_before_anything_is_queued(
    api: Any, analyst: Any, background: None
) -> None:
    response = post(api(analyst), report(AWS_SECRET), fmt="nessus")

    assert response.status_code == 400
    assert IngestJob.objects.count() == 0
    assert pending_files() == []


# --- The job, run by its task -------------------------------------------------------------------------------


@pytest.fixture
def queued(analyst: Any, django_capture_on_commit_callbacks: Any) -> Any:
    """Queue a job (its task not sent) for a report."""

    def make(content: bytes, *, report_format: str = "gitleaks") -> IngestJob:
        with django_capture_on_commit_callbacks(execute=False):
            return ingest_job_create(
                actor=analyst, report_format=report_format, source=SOURCE, upload=encrypted(content)
            )

    return make


def test_the_task_imports_a_queued_job_and_deletes_its_report(queued: Any) -> None:
    job = queued(report(AWS_SECRET))

    assert run_ingest_job(job.pk) == IngestJobStatus.SUCCEEDED

    job.refresh_from_db()
    assert job.status == IngestJobStatus.SUCCEEDED
    assert job.import_run == ImportRun.objects.get()
    assert job.summary == job.import_run.summary
    assert job.started_at is not None
    assert job.finished_at is not None
    assert job.finished_at >= job.started_at
    assert job.pending_file == ""
    assert pending_files() == []


def test_a_finished_job_is_not_run_again(queued: Any) -> None:
    job = queued(report(AWS_SECRET))
    run_ingest_job(job.pk)

    assert run_ingest_job(job.pk) == IngestJobStatus.SUCCEEDED

    assert ImportRun.objects.count() == 1


def test_a_failed_job_is_not_run_again(queued: Any) -> None:
    job = queued(MALFORMED, report_format="trufflehog")
    run_ingest_job(job.pk)

    assert run_ingest_job(job.pk) == IngestJobStatus.FAILED

    assert IngestJob.objects.get().error.count("line 2") == 1


def test_a_job_another_worker_is_running_is_left_to_it(queued: Any) -> None:
    job = queued(report(AWS_SECRET))
    IngestJob.objects.filter(pk=job.pk).update(status=IngestJobStatus.RUNNING)

    assert run_ingest_job(job.pk) == IngestJobStatus.RUNNING

    assert ImportRun.objects.count() == 0
    assert pending_files() == [job.pending_file]  # still that worker's to read


postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks")


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_job_delivered_twice_at_once_is_imported_once(analyst: Any) -> None:
    with mock.patch.object(run_ingest_job, "delay"):  # committed at once here: deliver it by hand below
        job = ingest_job_create(
            actor=analyst, report_format="gitleaks", source=SOURCE, upload=encrypted(report(AWS_SECRET))
        )
    both_ready = threading.Barrier(2, timeout=10)
    outcomes: list[Any] = []

    def deliver() -> None:
        try:
            both_ready.wait()
            outcomes.append(run_ingest_job(job.pk))
        except Exception as error:
            outcomes.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert IngestJobStatus.SUCCEEDED in outcomes
    assert all(outcome in (IngestJobStatus.SUCCEEDED, IngestJobStatus.RUNNING) for outcome in outcomes), (
        outcomes
    )
    assert ImportRun.objects.count() == 1
    assert Exposure.objects.count() == 1
    assert pending_files() == []


def test_a_job_that_is_gone_is_nothing_to_run(role_groups: None) -> None:
    assert run_ingest_job(999_999) is None


def test_the_job_runs_as_the_person_who_uploaded_it_and_fails_if_they_lost_the_permission(
    queued: Any, analyst: Any
) -> None:
    job = queued(report(AWS_SECRET))
    analyst.groups.remove(Group.objects.get(name=roles.ANALYST))

    run_ingest_job(job.pk)

    job.refresh_from_db()
    assert job.status == IngestJobStatus.FAILED
    assert "findings.import_findings" in job.error
    assert written() == (0, 0, 0)
    assert pending_files() == []


def test_an_altered_pending_report_fails_its_job_and_is_deleted(queued: Any) -> None:
    job = queued(report(AWS_SECRET))
    with default_storage.open(job.pending_file, "rb") as stored:
        ciphertext = bytearray(stored.read())
    ciphertext[-20] ^= 0x01
    default_storage.delete(job.pending_file)
    default_storage.save(job.pending_file, io.BytesIO(bytes(ciphertext)))

    run_ingest_job(job.pk)

    job.refresh_from_db()
    assert job.status == IngestJobStatus.FAILED
    assert "cannot be decrypted" in job.error
    assert written() == (0, 0, 0)
    assert pending_files() == []


def test_a_changed_key_fails_the_waiting_jobs_with_a_clear_reason(queued: Any, settings: Any) -> None:
    job = queued(report(AWS_SECRET))
    settings.FINDINGS_INGEST_KEY = "another-key-" + "x" * 40

    run_ingest_job(job.pk)

    job.refresh_from_db()
    assert job.status == IngestJobStatus.FAILED
    assert "the key changed" in job.error
    assert pending_files() == []


def test_a_missing_pending_report_fails_its_job(queued: Any) -> None:
    job = queued(report(AWS_SECRET))
    default_storage.delete(job.pending_file)

    run_ingest_job(job.pk)

    job.refresh_from_db()
    assert job.status == IngestJobStatus.FAILED
    assert "missing" in job.error


def test_an_unexpected_failure_is_recorded_by_its_type_only(
    queued: Any, caplog: pytest.LogCaptureFixture
) -> None:
    job = queued(report(AWS_SECRET))
    with (
        caplog.at_level(logging.DEBUG),
        mock.patch.object(jobs, "findings_import", side_effect=RuntimeError(f"boom near {AWS_SECRET}")),
    ):
        run_ingest_job(job.pk)

    job.refresh_from_db()
    assert job.status == IngestJobStatus.FAILED
    assert job.error == "The import failed (RuntimeError); nothing was imported."
    assert AWS_SECRET not in caplog.text
    assert pending_files() == []


def test_the_job_reports_its_progress_through_the_cache_after_each_batch(queued: Any) -> None:
    secrets = [f"planted-progress-secret-{n:05d}-abcdefgh" for n in range(4100)]
    job = queued(report(*secrets))
    seen: list[int] = []
    real_set = cache.set

    def spy(key: str, value: Any, *args: Any, **kwargs: Any) -> None:
        if key == f"findings:ingest-job:{job.pk}:progress":
            seen.append(value)
        real_set(key, value, *args, **kwargs)

    with mock.patch.object(jobs.cache, "set", side_effect=spy):
        run_ingest_job(job.pk)

    assert seen == [2000, 4000, 4100]
    job.refresh_from_db()
    assert job.progress == 4100
    assert cache.get(f"findings:ingest-job:{job.pk}:progress") is None


def test_a_running_job_shows_the_progress_from_the_cache(api: Any, analyst: Any, queued: Any) -> None:
    job = queued(report(AWS_SECRET))
    IngestJob.objects.filter(pk=job.pk).update(status=IngestJobStatus.RUNNING)
    cache.set(f"findings:ingest-job:{job.pk}:progress", 1234)
    try:
        body = api(analyst).get(f"{JOBS}{job.pk}/").json()
    finally:
        cache.delete(f"findings:ingest-job:{job.pk}:progress")

    assert (body["status"], body["progress"], body["summary"]) == ("running", 1234, None)


def test_the_sweep_fails_lost_jobs_and_deletes_their_reports(queued: Any) -> None:
    lost_queued, lost_running, fresh = (
        queued(report(AWS_SECRET)),
        queued(report(GITHUB_TOKEN)),
        queued(report(SLACK_TOKEN)),
    )
    IngestJob.objects.filter(pk=lost_running.pk).update(status=IngestJobStatus.RUNNING)
    long_ago = timezone.now() - timedelta(hours=7)
    IngestJob.objects.filter(pk__in=[lost_queued.pk, lost_running.pk]).update(created_at=long_ago)

    assert expire_ingest_jobs() == 2

    lost = IngestJob.objects.filter(pk__in=[lost_queued.pk, lost_running.pk])
    assert {job.status for job in lost} == {IngestJobStatus.FAILED}
    assert {job.pending_file for job in lost} == {""}
    assert "did not finish within 6 hours" in lost[0].error
    assert pending_files() == [fresh.pending_file]
    assert IngestJob.objects.get(pk=fresh.pk).status == IngestJobStatus.QUEUED


def test_the_sweep_leaves_finished_jobs_alone(queued: Any) -> None:
    job = queued(report(AWS_SECRET))
    run_ingest_job(job.pk)
    IngestJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(days=2))

    assert expire_ingest_jobs() == 0
    assert IngestJob.objects.get(pk=job.pk).status == IngestJobStatus.SUCCEEDED


def test_the_admin_lists_jobs_read_only_and_never_shows_the_pending_file(
    client: Any, analyst: Any, queued: Any
) -> None:
    job = queued(report(AWS_SECRET))
    client.force_login(analyst)

    listed = client.get("/admin/findings/ingestjob/")
    page = client.get(f"/admin/findings/ingestjob/{job.pk}/change/")

    assert listed.status_code == page.status_code == 200
    assert job.pending_file not in page.content.decode()
    assert b'name="_save"' not in page.content


def test_the_task_is_registered_for_workers() -> None:
    celery_app.loader.import_default_modules()  # what a worker imports when it starts

    assert {"findings.jobs.run_ingest_job", "findings.jobs.expire_ingest_jobs"} <= set(celery_app.tasks)


# --- Reading jobs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["analyst", "approver", "auditor"])
def test_staff_see_every_job(api: Any, persona: str, request: pytest.FixtureRequest, queued: Any) -> None:
    job = queued(report(AWS_SECRET))

    response = api(request.getfixturevalue(persona)).get(JOBS)

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [job.pk]
    assert api(request.getfixturevalue(persona)).get(f"{JOBS}{job.pk}/").status_code == 200


@pytest.mark.parametrize("persona", ["owner", "outsider"])
def test_others_may_not_read_jobs(
    api: Any, persona: str, request: pytest.FixtureRequest, queued: Any
) -> None:
    job = queued(report(AWS_SECRET))
    client = api(request.getfixturevalue(persona))

    assert client.get(JOBS).status_code == 403
    assert client.get(f"{JOBS}{job.pk}/").status_code == 403


def test_an_anonymous_caller_may_not_read_jobs(api: Any, queued: Any) -> None:
    job = queued(report(AWS_SECRET))

    assert api(None).get(JOBS).status_code == 401
    assert api(None).get(f"{JOBS}{job.pk}/").status_code == 401


def test_jobs_filter_by_status(api: Any, analyst: Any, queued: Any) -> None:
    done = queued(report(AWS_SECRET))
    run_ingest_job(done.pk)
    waiting = queued(report(GITHUB_TOKEN))
    client = api(analyst)

    assert [row["id"] for row in client.get(JOBS, {"status": "queued"}).json()["results"]] == [waiting.pk]
    assert [row["id"] for row in client.get(JOBS, {"status": "succeeded"}).json()["results"]] == [done.pk]


@pytest.mark.parametrize("count", [2, 12])
def test_the_job_list_costs_the_same_whatever_its_length(
    api: Any, analyst: Any, queued: Any, count: int, django_assert_num_queries: Any
) -> None:
    for n in range(count):
        queued(report(f"planted-list-secret-{n:04d}-abcdefghij"))
    client = api(analyst)
    client.get(JOBS)  # the session and permission caches are warm from here on

    # Session, user, their permissions (user and groups), the page of jobs with who started each.
    with django_assert_num_queries(5):
        response = client.get(JOBS)
    assert len(response.json()["results"]) == count


# --- No secret anywhere -------------------------------------------------------------------------------------

PLANTED = (AWS_SECRET, GITHUB_TOKEN, SLACK_TOKEN)
LEAK_REPORTS = [
    "planted",  # this file's own report, with the made-up secrets of tests/findings/reports.py
    "gitleaks__gitleaks8_many.json",
    "trufflehog__v3_git.json",
    "github_secrets_detection_report__github_secrets_detection_report_many_vul.json",
]


@pytest.mark.parametrize("name", LEAK_REPORTS)
@pytest.mark.parametrize("path", ["sync", "background"])
def test_a_report_ingested_over_the_api_leaves_no_secret_anywhere(
    api: Any,
    analyst: Any,
    name: str,
    path: str,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    if path == "background":
        settings.FINDINGS_INGEST_SYNC_MAX_BYTES = 0
    if name == "planted":
        secrets, content, fmt = set(PLANTED), report(*PLANTED), "gitleaks"
    else:
        secrets, content, fmt = planted(name), (SAMPLES / name).read_bytes(), SAMPLE_FORMATS[name]
    client = api(analyst)

    with caplog.at_level(logging.DEBUG), django_capture_on_commit_callbacks(execute=True):
        response = post(client, content, fmt=fmt, name=f"{name}.json")
    with caplog.at_level(logging.DEBUG):
        responses = [response, client.get("/api/v1/exposures/"), client.get("/api/v1/findings/")]
        if path == "background":
            assert response.status_code == 202
            responses.append(client.get(response.json()["url"]))
            assert responses[-1].json()["status"] == IngestJobStatus.SUCCEEDED
        else:
            assert response.status_code == 201

    assert ImportRun.objects.get().summary["entries"] > 0
    assert len(secrets) >= 3  # the check below has something to look for
    assert tables_containing(secrets) == []
    assert storage_containing(secrets) == []
    assert pending_files() == []
    assert [secret[:6] for secret in secrets if secret in caplog.text] == []
    for each in responses:
        assert [secret[:6] for secret in secrets if secret in each.content.decode()] == []
