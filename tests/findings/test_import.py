"""Importing scanner reports: dedup, grouping, regressions, source state, atomicity, linking, promotion."""

import hashlib
import io
import json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest.mock import patch

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cases.models import Case, CaseKind, CaseOrigin
from findings.ingest import BatchWriter
from findings.models import (
    Attribution,
    AttributionRule,
    Exposure,
    ExposureState,
    Finding,
    ImportRun,
    PromotionCondition,
    PromotionRule,
)
from findings.parsers import PARSERS, gitleaks
from findings.services import (
    Answer,
    attribution_rule_create,
    exposure_answer,
    exposure_attribute,
    findings_import,
)
from nhi_inventory.models import NHIKind
from nhi_inventory.services import credential_register
from tests.factories import NonHumanIdentityFactory
from tests.findings.leaks import tables_containing
from tests.findings.reports import (
    AWS_SECRET,
    GITHUB_TOKEN,
    SLACK_TOKEN,
    github_alerts,
    gitleaks_v8,
    trufflehog_v3,
)

pytestmark = pytest.mark.django_db


def run_import(
    actor: Any, report: bytes, *, report_format: str = "gitleaks", source: str = "acme/payments"
) -> ImportRun:
    return findings_import(
        actor=actor,
        report_format=report_format,
        source=source,
        stream=io.BytesIO(report),
        file_name="report.json",
    )


def NOW_ISO() -> str:
    return timezone.now().isoformat()


THREE_PLACES = gitleaks_v8(
    {"Secret": AWS_SECRET, "File": "deploy/prod.env", "StartLine": 3},
    {"Secret": AWS_SECRET, "File": "deploy/staging.env", "StartLine": 7},
    {"Secret": GITHUB_TOKEN, "File": "ci/release.sh", "StartLine": 12},
)


def test_it_creates_one_finding_per_secret_and_location(analyst: Any) -> None:
    run = run_import(analyst, THREE_PLACES)
    assert run.summary["created"] == 3
    assert Finding.objects.count() == 3
    assert Exposure.objects.count() == 2


def test_it_groups_the_same_secret_in_many_places_into_one_exposure(analyst: Any) -> None:
    run_import(analyst, THREE_PLACES)
    aws = Exposure.objects.get(locations=2)
    assert sorted(aws.findings.values_list("path", flat=True)) == ["deploy/prod.env", "deploy/staging.env"]


def test_it_stores_no_planted_secret_in_any_table(analyst: Any) -> None:
    run_import(analyst, THREE_PLACES)
    assert tables_containing([AWS_SECRET, GITHUB_TOKEN]) == []


def test_it_keeps_a_scrubbed_context_with_the_preview(analyst: Any) -> None:
    run_import(analyst, THREE_PLACES)
    finding = Finding.objects.get(path="ci/release.sh")
    assert finding.context.startswith("token = [")
    assert "ghp_" in finding.context
    assert "(40 chars)" in finding.context


def test_it_logs_no_planted_secret(analyst: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        run_import(analyst, THREE_PLACES)
    assert caplog.records, "nothing captured: the check would prove nothing"
    assert not [record for record in caplog.records if AWS_SECRET in record.getMessage()]
    assert AWS_SECRET not in caplog.text
    assert GITHUB_TOKEN not in caplog.text


def test_reimporting_the_same_report_changes_only_counts_and_last_seen(analyst: Any) -> None:
    run_import(analyst, THREE_PLACES)
    before = {f.pk: (f.occurrences, f.context, f.commit) for f in Finding.objects.all()}
    history_rows = Finding.history.count() + Exposure.history.count()

    again = run_import(analyst, THREE_PLACES)

    assert (again.summary["created"], again.summary["updated"], again.summary["unchanged"]) == (0, 0, 3)
    after = {f.pk: (f.occurrences, f.context, f.commit) for f in Finding.objects.all()}
    assert after.keys() == before.keys()
    assert all(after[pk] == (count + 1, context, commit) for pk, (count, context, commit) in before.items())
    assert Finding.history.count() + Exposure.history.count() == history_rows
    assert set(Finding.objects.values_list("last_import_id", flat=True)) == {again.pk}


def test_reimport_bumps_the_exposure_occurrences(analyst: Any) -> None:
    run_import(analyst, THREE_PLACES)
    run_import(analyst, THREE_PLACES)
    assert Exposure.objects.get(locations=2).occurrences == 4


def test_a_secret_found_by_two_scanners_is_one_exposure(analyst: Any) -> None:
    run_import(analyst, gitleaks_v8({"Secret": AWS_SECRET, "File": "deploy/prod.env", "StartLine": 3}))
    run_import(
        analyst,
        trufflehog_v3({"Raw": AWS_SECRET, "file": "config/aws.ini", "line": 2}),
        report_format="trufflehog",
    )
    exposure = Exposure.objects.get()
    assert exposure.locations == 2
    assert sorted(exposure.findings.values_list("scanner", flat=True)) == ["gitleaks", "trufflehog"]


def test_a_verified_sighting_makes_the_exposure_valid(analyst: Any) -> None:
    run_import(analyst, gitleaks_v8({"Secret": AWS_SECRET, "File": "deploy/prod.env", "StartLine": 3}))
    run_import(
        analyst,
        trufflehog_v3({"Raw": AWS_SECRET, "file": "deploy/prod.env", "line": 3, "Verified": True}),
        report_format="trufflehog",
    )
    assert Exposure.objects.get().validity == "valid"


@pytest.fixture
def remediated_exposure(analyst: Any, owner: Any, payments_identity: Any) -> Exposure:
    AttributionRule.objects.create(repository_pattern="acme/payments", nhi=payments_identity)
    run_import(analyst, gitleaks_v8({"Secret": AWS_SECRET, "File": "deploy/prod.env", "Commit": "c" * 40}))
    exposure = Exposure.objects.get()
    return exposure_answer(
        actor=owner,
        exposure_id=exposure.pk,
        answer=Answer.REMEDIATED,
        remediation="rotated",
        remediated_at=timezone.now() - timedelta(minutes=1),
    )


def test_a_remediated_secret_committed_again_is_a_regression(
    analyst: Any, remediated_exposure: Exposure
) -> None:
    recommitted = {"Secret": AWS_SECRET, "File": "deploy/prod.env", "Commit": "d" * 40, "Date": NOW_ISO()}
    run = run_import(analyst, gitleaks_v8(recommitted))
    remediated_exposure.refresh_from_db()
    assert run.summary["regressions"] == 1
    assert remediated_exposure.state == ExposureState.REGRESSED
    assert remediated_exposure.regressions == 1


def test_a_remediated_secret_in_a_new_place_is_a_regression(
    analyst: Any, remediated_exposure: Exposure
) -> None:
    run_import(analyst, gitleaks_v8({"Secret": AWS_SECRET, "File": "app/settings.py", "Commit": "c" * 40}))
    remediated_exposure.refresh_from_db()
    assert remediated_exposure.state == ExposureState.REGRESSED


def test_the_old_leak_reported_again_is_not_a_regression(analyst: Any, remediated_exposure: Exposure) -> None:
    run = run_import(
        analyst, gitleaks_v8({"Secret": AWS_SECRET, "File": "deploy/prod.env", "Commit": "c" * 40})
    )
    remediated_exposure.refresh_from_db()
    assert run.summary["regressions"] == 0
    assert remediated_exposure.state == ExposureState.REMEDIATED


def test_a_regression_is_promoted_into_a_case_saying_why(analyst: Any, remediated_exposure: Exposure) -> None:
    recommitted = {"Secret": AWS_SECRET, "File": "deploy/prod.env", "Commit": "d" * 40, "Date": NOW_ISO()}
    run_import(analyst, gitleaks_v8(recommitted))
    remediated_exposure.refresh_from_db()
    assert remediated_exposure.case is not None
    assert "seen again after remediation" in remediated_exposure.promotion_reason


def test_an_alert_resolved_at_the_source_is_reflected(analyst: Any) -> None:
    run_import(analyst, github_alerts({"secret": GITHUB_TOKEN}), report_format="github")
    run = run_import(
        analyst,
        github_alerts({"secret": GITHUB_TOKEN, "state": "resolved", "resolution": "revoked"}),
        report_format="github",
    )
    finding = Finding.objects.get()
    assert run.summary["updated"] == 1
    assert finding.resolved_at_source is True
    assert "revoked" in finding.source_state
    assert finding.history.count() == 2


def test_malformed_input_writes_nothing(analyst: Any) -> None:
    report = THREE_PLACES[:-20]  # truncated mid-finding
    with pytest.raises(ValidationError) as caught:
        run_import(analyst, report)
    assert "report" in caught.value.message_dict
    assert (ImportRun.objects.count(), Exposure.objects.count(), Finding.objects.count()) == (0, 0, 0)
    assert Exposure.history.count() == 0


def test_an_error_after_many_batches_writes_nothing(analyst: Any) -> None:
    findings = [{"Secret": f"{AWS_SECRET}{n:05d}", "File": f"f{n}.env"} for n in range(4500)]
    report = gitleaks_v8(*findings)[:-30]
    with pytest.raises(ValidationError):
        run_import(analyst, report)
    assert (ImportRun.objects.count(), Exposure.objects.count(), Finding.objects.count()) == (0, 0, 0)


@pytest.fixture
def forked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of the sealing processes the imports fork (recorded in the parent)."""
    pids: list[int] = []
    real_fork = os.fork

    def recording_fork() -> int:
        pid = real_fork()
        if pid:
            pids.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", recording_fork)
    return pids


def assert_reaped(pids: list[int]) -> None:
    assert pids
    for pid in pids:
        with pytest.raises(ChildProcessError):  # ended and waited for: no such child any more
            os.waitpid(pid, os.WNOHANG)


def test_a_parse_error_in_the_sealing_process_names_the_line_and_writes_nothing(
    analyst: Any, forked: list[int]
) -> None:
    # Parsing and sealing run in a child process; its error must still fail the whole import, by name.
    findings = [{"Secret": f"{AWS_SECRET}{n:05d}", "File": f"f{n}.env"} for n in range(4500)]
    report = gitleaks_v8(*findings)
    cut = report.rindex(b'"Secret"')
    broken = report[:cut] + b"@@" + report[cut:]
    line = broken[:cut].count(b"\n") + 1
    with pytest.raises(ValidationError) as caught:
        run_import(analyst, broken)
    message = caught.value.message_dict["report"][0]
    assert "not a valid gitleaks report" in message
    assert f"line {line}" in message or f"and {line}" in message
    assert AWS_SECRET not in message
    assert (ImportRun.objects.count(), Exposure.objects.count(), Finding.objects.count()) == (0, 0, 0)
    assert Exposure.history.count() == 0
    assert_reaped(forked)


def test_an_unexpected_failure_in_the_sealing_process_fails_the_import_without_quoting_it(
    analyst: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(stream: Any) -> Iterator[Any]:
        yield from gitleaks.parse(stream)
        raise KeyError(AWS_SECRET)  # an exception whose message would quote the input

    monkeypatch.setitem(PARSERS, "gitleaks", failing)
    with pytest.raises(RuntimeError) as caught:
        run_import(analyst, THREE_PLACES)
    assert "KeyError" in str(caught.value)
    assert AWS_SECRET not in str(caught.value)
    assert (ImportRun.objects.count(), Exposure.objects.count(), Finding.objects.count()) == (0, 0, 0)


def test_a_failure_while_writing_stops_the_sealing_process(
    analyst: Any, monkeypatch: pytest.MonkeyPatch, forked: list[int]
) -> None:
    def failing(self: Any, batch: Any) -> None:
        raise RuntimeError("database gone")

    monkeypatch.setattr(BatchWriter, "write", failing)
    findings = [{"Secret": f"{AWS_SECRET}{n:05d}", "File": f"f{n}.env"} for n in range(6000)]
    with pytest.raises(RuntimeError, match="database gone"):
        run_import(analyst, gitleaks_v8(*findings))
    assert_reaped(forked)
    assert ImportRun.objects.count() == 0


def test_it_reads_standard_input(analyst: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # `ingest_findings -`: the stream is sys.stdin's, which the sealing process must not lose.
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(THREE_PLACES)))
    run = findings_import(
        actor=analyst, report_format="gitleaks", source="acme/payments", stream=sys.stdin.buffer
    )
    assert (run.summary["created"], run.file_size) == (3, len(THREE_PLACES))


def test_the_import_keeps_the_reports_digest_and_size(analyst: Any) -> None:
    run = run_import(analyst, THREE_PLACES)
    assert (run.file_sha256, run.file_size) == (hashlib.sha256(THREE_PLACES).hexdigest(), len(THREE_PLACES))


def test_a_report_of_another_format_is_refused_and_nothing_written(analyst: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        run_import(analyst, trufflehog_v3({"Raw": AWS_SECRET, "file": "a", "line": 1}))
    assert AWS_SECRET not in str(caught.value)
    assert ImportRun.objects.count() == 0


def test_an_unknown_format_is_refused_by_name(analyst: Any) -> None:
    with pytest.raises(ValidationError, match="nessus"):
        run_import(analyst, THREE_PLACES, report_format="nessus")


def test_an_owner_may_not_import(owner: Any) -> None:
    with pytest.raises(PermissionDenied):
        run_import(owner, THREE_PLACES)


def test_it_links_a_secret_to_its_registered_credential(analyst: Any, payments_identity: Any) -> None:
    credential = credential_register(
        actor=analyst, nhi_id=payments_identity.pk, credential_type="access_key", secret=AWS_SECRET
    )
    run_import(analyst, THREE_PLACES)
    exposure = Exposure.objects.get(credential__isnull=False)
    assert (exposure.credential_id, exposure.nhi_id) == (credential.pk, payments_identity.pk)
    assert exposure.attribution == Attribution.FINGERPRINT


def test_an_owners_rotated_answer_marks_the_registered_credential_rotated(
    analyst: Any, owner: Any, payments_identity: Any
) -> None:
    credential = credential_register(
        actor=analyst, nhi_id=payments_identity.pk, credential_type="access_key", secret=AWS_SECRET
    )
    run_import(analyst, gitleaks_v8({"Secret": AWS_SECRET, "File": "deploy/prod.env"}))
    exposure = Exposure.objects.get(credential=credential)

    exposure_answer(
        actor=owner,
        exposure_id=exposure.pk,
        answer=Answer.REMEDIATED,
        remediation="rotated",
        remediated_at=timezone.now() - timedelta(minutes=1),
    )

    credential.refresh_from_db()
    assert credential.status == "rotated"


def test_an_attribution_rule_links_findings_by_repository_and_path(
    analyst: Any, payments_identity: Any
) -> None:
    attribution_rule_create(
        actor=analyst,
        fields={"repository_pattern": "acme/*", "path_pattern": "ci/*", "nhi": payments_identity},
    )
    run_import(analyst, THREE_PLACES)
    assert Exposure.objects.get(attribution=Attribution.RULE).preview.startswith("generic-api-key:ghp_")
    assert Exposure.objects.filter(nhi__isnull=True).count() == 1


def test_a_new_rule_attributes_exposures_already_waiting_in_triage(
    analyst: Any, payments_identity: Any
) -> None:
    run_import(analyst, THREE_PLACES)
    attribution_rule_create(actor=analyst, fields={"path_pattern": "deploy/*", "nhi": payments_identity})
    assert Exposure.objects.get(locations=2).nhi == payments_identity


def test_unattributed_secrets_of_unknown_validity_wait_in_triage_without_a_case(analyst: Any) -> None:
    run = run_import(analyst, THREE_PLACES)
    assert run.summary["cases_opened"] == 0
    assert run.summary["awaiting_triage"] == 2
    assert Case.objects.count() == 0


def test_a_valid_secret_opens_a_case_even_unattributed(analyst: Any) -> None:
    run = run_import(
        analyst,
        trufflehog_v3({"Raw": AWS_SECRET, "file": "a.env", "line": 1, "Verified": True}),
        report_format="trufflehog",
    )
    case = Case.objects.get()
    assert run.summary["cases_opened"] == 1
    assert (case.kind, case.origin) == (CaseKind.SECRET_EXPOSURE, CaseOrigin.SCANNER)
    assert Exposure.objects.get().promotion_reason == "The secret is valid (live)."


def test_exposures_of_one_identity_share_one_case(analyst: Any, payments_identity: Any) -> None:
    AttributionRule.objects.create(repository_pattern="acme/payments", nhi=payments_identity)
    run_import(analyst, THREE_PLACES)
    run_import(analyst, gitleaks_v8({"Secret": SLACK_TOKEN, "File": "bot.env"}))
    case = Case.objects.get()
    assert case.exposures.count() == 3
    assert list(case.identities.all()) == [payments_identity]


def test_a_low_risk_finding_stays_tracked_without_a_case(analyst: Any) -> None:
    app = NonHumanIdentityFactory.create(kind=NHIKind.OAUTH_APP)
    AttributionRule.objects.create(repository_pattern="github.com/acme/payments", nhi=app)
    run_import(
        analyst, github_alerts({"secret": GITHUB_TOKEN, "validity": "inactive"}), report_format="github"
    )
    exposure = Exposure.objects.get()
    assert (exposure.nhi, exposure.case) == (app, None)


def test_a_secret_found_in_many_places_recurs(analyst: Any) -> None:
    app = NonHumanIdentityFactory.create(kind=NHIKind.OAUTH_APP)
    AttributionRule.objects.create(repository_pattern="acme/payments", nhi=app)
    PromotionRule.objects.filter(condition=PromotionCondition.UNKNOWN_VALIDITY).update(is_active=False)
    places = [{"Secret": AWS_SECRET, "File": f"svc{n}/prod.env"} for n in range(3)]
    run_import(analyst, gitleaks_v8(*places))
    assert Exposure.objects.get().promotion_reason == "It recurs: found in 3 places (rule: 3 or more)."


def test_turning_a_promotion_rule_off_stops_it_promoting(analyst: Any) -> None:
    PromotionRule.objects.filter(condition=PromotionCondition.VALID).update(is_active=False)
    run_import(
        analyst,
        trufflehog_v3({"Raw": AWS_SECRET, "file": "a.env", "line": 1, "Verified": True}),
        report_format="trufflehog",
    )
    assert Case.objects.count() == 0


def test_no_planted_secret_reaches_the_database_in_any_query(analyst: Any) -> None:
    with CaptureQueriesContext(connection) as queries:
        run_import(analyst, THREE_PLACES)
    statements = "\n".join(query["sql"] for query in queries.captured_queries)
    assert "INSERT" in statements
    assert AWS_SECRET not in statements
    assert GITHUB_TOKEN not in statements


@pytest.mark.parametrize(
    "written",
    [
        "https://github.com/acme/payments",
        "https://github.com/acme/payments.git",
        "git@github.com:acme/payments.git",
        "https://ci-bot@github.com/acme/payments/",
    ],
)
def test_repositories_are_named_alike_whatever_the_scanner_wrote(analyst: Any, written: str) -> None:
    run_import(
        analyst,
        trufflehog_v3({"Raw": AWS_SECRET, "file": "a.env", "line": 1, "repository": written}),
        report_format="trufflehog",
    )
    assert Finding.objects.get().repository == "github.com/acme/payments"


def test_the_same_secret_twice_at_one_place_in_a_report_is_one_finding(analyst: Any) -> None:
    twice = {"Secret": AWS_SECRET, "File": "deploy/prod.env", "StartLine": 3}
    run = run_import(analyst, gitleaks_v8(twice, twice))
    assert run.summary["created"] == 1
    assert Finding.objects.get().occurrences == 2


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL table setting")
def test_postgresql_leaves_room_in_each_page_for_reimport_updates() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reloptions FROM pg_class "
            "WHERE relname IN ('findings_exposure', 'findings_finding')"
        )
        options = dict(cursor.fetchall())
    assert options == {"findings_exposure": ["fillfactor=70"], "findings_finding": ["fillfactor=80"]}


def test_a_secret_already_resolved_at_the_source_opens_no_case(analyst: Any) -> None:
    alert = {"secret": GITHUB_TOKEN, "state": "resolved", "resolution": "revoked", "validity": "active"}
    run = run_import(analyst, github_alerts(alert), report_format="github")
    assert run.summary["cases_opened"] == 0
    assert Exposure.objects.get().case is None


def test_the_old_leak_in_another_commit_is_neither_a_change_nor_a_regression(
    analyst: Any, remediated_exposure: Exposure
) -> None:
    # The same place in another (older) commit: a rebase or cherry-pick of the leak, not a new one.
    run = run_import(
        analyst, gitleaks_v8({"Secret": AWS_SECRET, "File": "deploy/prod.env", "Commit": "e" * 40})
    )
    remediated_exposure.refresh_from_db()
    assert (run.summary["updated"], run.summary["regressions"]) == (0, 0)
    assert remediated_exposure.state == ExposureState.REMEDIATED


def test_the_summary_counts_every_entry_once(analyst: Any) -> None:
    place = {"Secret": AWS_SECRET, "File": "deploy/prod.env", "StartLine": 3}
    report = gitleaks_v8(place, {**place, "Commit": "d" * 40}, {"Secret": "REDACTED", "File": "x"})
    summary = run_import(analyst, report).summary
    assert summary["entries"] == 3
    assert (summary["created"], summary["updated"], summary["unchanged"], summary["skipped"]) == (1, 0, 1, 1)


def test_other_secrets_on_the_same_line_are_masked_in_the_stored_context(analyst: Any) -> None:
    line = f'AWS_SECRET="{AWS_SECRET}" SLACK="{SLACK_TOKEN}"'
    findings = [
        {"rule": "AWS", "offender": AWS_SECRET, "line": line, "file": ".env", "commit": "a" * 40},
        {"rule": "Slack", "offender": SLACK_TOKEN, "line": line, "file": ".env", "commit": "a" * 40},
    ]
    run_import(analyst, json.dumps(findings).encode())
    assert tables_containing([AWS_SECRET, SLACK_TOKEN]) == []
    # Each line keeps its own secret as the preview and the other one masked.
    assert sorted(Finding.objects.values_list("context", flat=True)) == [
        'AWS_SECRET="[AWS:wJal…(41 chars)]" SLACK="[masked, 41 chars]"',
        'AWS_SECRET="[masked, 41 chars]" SLACK="[Slack:xoxb…(41 chars)]"',
    ]


def test_credentials_in_a_finding_url_are_not_stored(analyst: Any) -> None:
    token = "ghs_PlantedCiJobToken2026abcdefghijklmnop"
    finding = {
        "rule": "AWS",
        "offender": AWS_SECRET,
        "file": "deploy/prod.env",
        "leakURL": f"https://x-access-token:{token}@github.com/acme/payments/blob/abc/deploy/prod.env#L3",
    }
    run_import(analyst, json.dumps([finding]).encode())
    assert Finding.objects.get().url == "https://github.com/acme/payments/blob/abc/deploy/prod.env#L3"
    assert tables_containing([token, AWS_SECRET]) == []


def test_attributing_an_exposure_moves_it_to_its_identitys_case(analyst: Any, payments_identity: Any) -> None:
    run_import(
        analyst,
        trufflehog_v3({"Raw": AWS_SECRET, "file": "a.env", "line": 1, "Verified": True}),
        report_format="trufflehog",
    )
    exposure = Exposure.objects.get()
    unattributed_case = exposure.case
    assert unattributed_case is not None

    exposure_attribute(actor=analyst, exposure_id=exposure.pk, nhi_id=payments_identity.pk)

    exposure.refresh_from_db()
    assert exposure.case is not None
    assert exposure.case != unattributed_case
    assert list(exposure.case.identities.all()) == [payments_identity]
    assert unattributed_case.comments.filter(body__contains="left this case").exists()


def test_giving_a_confirmed_exposure_to_another_identity_asks_its_owner_again(
    analyst: Any, owner: Any, payments_identity: Any, platform_identity: Any
) -> None:
    AttributionRule.objects.create(repository_pattern="acme/payments", nhi=payments_identity)
    run_import(analyst, gitleaks_v8({"Secret": AWS_SECRET, "File": "deploy/prod.env"}))
    exposure = exposure_answer(actor=owner, exposure_id=Exposure.objects.get().pk, answer=Answer.CONFIRM)

    exposure_attribute(actor=analyst, exposure_id=exposure.pk, nhi_id=platform_identity.pk)

    exposure.refresh_from_db()
    assert (exposure.state, exposure.answered_by, exposure.nhi) == (
        ExposureState.PENDING,
        None,
        platform_identity,
    )


def test_owners_are_notified_once_the_import_commits(
    analyst: Any, payments_identity: Any, django_capture_on_commit_callbacks: Any
) -> None:
    AttributionRule.objects.create(repository_pattern="acme/payments", nhi=payments_identity)
    with patch("findings.services.notify_owners.delay") as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            run_import(analyst, THREE_PLACES)
        delay.assert_not_called()  # nothing is sent before the import has committed
        for callback in callbacks:
            callback()
    awaiting = sorted(Exposure.objects.filter(nhi=payments_identity).values_list("pk", flat=True))
    delay.assert_called_once_with(awaiting)
