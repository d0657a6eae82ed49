"""Secrets findings and the AI/chat intake in the audit chain: one entry per import (never per finding), the
owners' answers, attribution and its rules, promotion rules, and each assistant output's outcome."""

import io
from collections.abc import Callable
from datetime import UTC, timedelta
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from cases.models import ActionKind, Case
from findings.links import answer_link_issue
from findings.models import Exposure, ExposureState, ImportRun, PromotionCondition
from findings.services import (
    Answer,
    answer_link_answer,
    attribution_rule_create,
    attribution_rule_update,
    attribution_rules_apply,
    exposure_answer,
    exposure_attribute,
    findings_import,
    promotion_rule_create,
    promotion_rule_update,
)
from intake.models import AssistantOutput, Outcome
from intake.rules import Facts
from intake.services import ProposedActionInput, assistant_output_submit
from portal import roles
from tests.audit.recorded import Recorded, appended, chain_unchanged, digest, events, only
from tests.factories import ExposureFactory, FindingFactory
from tests.findings.reports import AWS_SECRET, GITHUB_TOKEN, SLACK_TOKEN, gitleaks_v8

pytestmark = pytest.mark.django_db

MakeExposure = Callable[..., Exposure]


@pytest.fixture
def make_exposure(db: None) -> MakeExposure:
    """A pending exposure of `nhi`, found in one place by one import."""

    def make(nhi: Any, **fields: Any) -> Exposure:
        exposure = ExposureFactory.create(nhi=nhi, **fields)
        FindingFactory.create(exposure=exposure)
        return exposure

    return make


def run_import(actor: Any, report: bytes, *, file_name: str = "report.json") -> ImportRun:
    return findings_import(
        actor=actor,
        report_format="gitleaks",
        source="acme/payments",
        stream=io.BytesIO(report),
        file_name=file_name,
    )


def imports(entries: list[Recorded]) -> list[Recorded]:
    return [entry for entry in entries if entry.event == "findings.import"]


# --- Imports ------------------------------------------------------------------------------------------------


def test_an_import_is_one_entry_with_the_run_its_report_s_hash_and_its_counts(analyst: Any) -> None:
    report = gitleaks_v8(
        {"Secret": AWS_SECRET, "File": "deploy/prod.env", "StartLine": 3},
        {"Secret": AWS_SECRET, "File": "deploy/staging.env", "StartLine": 7},
        {"Secret": GITHUB_TOKEN, "File": "ci/release.sh", "StartLine": 12},
    )

    with appended() as entries:
        run = run_import(analyst, report)

    entry = only(entries, "findings.import")
    assert entry.targets(run)
    assert entry.case_id is None
    assert entry.actor_id == analyst.pk
    assert entry.after is not None
    assert entry.after["file_sha256"] == run.file_sha256 != "0" * 64
    assert (entry.after["report_format"], entry.after["file_size"]) == ("gitleaks", len(report))
    assert (entry.after["source"], entry.after["file_name"]) == (
        digest("acme/payments"),
        digest("report.json"),
    )
    assert entry.after["counts"]["entries"] == 3
    assert entry.after["counts"] == {
        name: value for name, value in run.summary.items() if isinstance(value, int)
    }


def test_an_import_of_many_findings_is_still_one_entry(analyst: Any) -> None:
    many = gitleaks_v8(
        *({"Secret": f"{AWS_SECRET[:-3]}{n:03d}", "File": f"deploy/{n}.env"} for n in range(40))
    )

    with appended() as entries:
        run = run_import(analyst, many)

    assert run.summary["created"] == 40
    assert len(imports(entries)) == 1


def test_a_malformed_report_records_nothing(analyst: Any) -> None:
    with chain_unchanged(), pytest.raises(ValidationError):
        run_import(analyst, b'[{"Secret": 1}')


def test_an_import_refused_records_nothing(owner: Any) -> None:
    with chain_unchanged(), pytest.raises(PermissionDenied):
        run_import(owner, gitleaks_v8({"Secret": AWS_SECRET, "File": "a.env"}))


# --- Owners' answers ----------------------------------------------------------------------------------------


def test_an_owner_s_answer_is_recorded_with_the_state_it_moved(
    make_exposure: MakeExposure, owner: Any, payments_identity: Any
) -> None:
    exposure = make_exposure(payments_identity)

    with appended() as entries:
        exposure_answer(
            actor=owner,
            exposure_id=exposure.pk,
            answer=Answer.NOT_OURS,
            suggested_owner="the data team",
            note="we never used it",
        )

    entry = entries[0]
    assert entry.event == "exposure.answer"
    assert entry.targets(exposure)
    assert entry.actor_id == owner.pk
    assert entry.before is not None
    assert entry.after is not None
    assert (entry.before["state"], entry.after["state"]) == (ExposureState.PENDING, ExposureState.NOT_OURS)
    assert (entry.before["answered_by"], entry.after["answered_by"]) == (None, owner.pk)
    assert entry.after["suggested_owner"] == digest("the data team")
    assert entry.after["answer_note"] == digest("we never used it")
    assert entry.details == {"answer": "not_ours", "remediation": None, "credential": None}
    assert len([e for e in entries if e.event == "exposure.answer"]) == 1


def test_a_remediated_answer_records_when_the_secret_was_rotated(
    make_exposure: MakeExposure, owner: Any, payments_identity: Any
) -> None:
    exposure = make_exposure(payments_identity)
    rotated_at = timezone.now() - timedelta(hours=2)

    with appended() as entries:
        exposure_answer(
            actor=owner,
            exposure_id=exposure.pk,
            answer=Answer.REMEDIATED,
            remediation="rotated",
            remediated_at=rotated_at,
        )

    answer = only(entries, "exposure.answer")
    assert answer.after is not None
    assert answer.after["state"] == ExposureState.REMEDIATED
    assert answer.after["remediated_at"] == rotated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert answer.details == {"answer": "remediated", "remediation": "rotated", "credential": None}


def test_a_confirmation_records_the_answer_and_the_case_it_reaches(
    make_exposure: MakeExposure, owner: Any, payments_identity: Any
) -> None:
    exposure = make_exposure(payments_identity)

    with appended() as entries:
        exposure_answer(actor=owner, exposure_id=exposure.pk, answer=Answer.CONFIRM)

    case = Case.objects.get(exposures=exposure)
    assert events(entries)[0] == "exposure.answer"
    assert "case.open" in events(entries)
    assert only(entries, "case.open").case_id == case.pk


def test_an_answer_refused_records_nothing(
    make_exposure: MakeExposure, owner: Any, platform_identity: Any, payments_identity: Any
) -> None:
    theirs = make_exposure(platform_identity)
    ours = make_exposure(payments_identity)

    with chain_unchanged(), pytest.raises(PermissionDenied):
        exposure_answer(actor=owner, exposure_id=theirs.pk, answer=Answer.CONFIRM)
    with chain_unchanged(), pytest.raises(ValidationError):
        exposure_answer(actor=owner, exposure_id=ours.pk, answer=Answer.NOT_OURS)


def test_an_answer_through_a_link_is_recorded_once_as_the_owner_s_answer(
    make_exposure: MakeExposure, owner: Any, payments_identity: Any
) -> None:
    exposure = make_exposure(payments_identity)
    token = answer_link_issue(exposure=exposure, user=owner)

    with appended() as entries:
        answer_link_answer(
            token=token, exposure_id=exposure.pk, answer=Answer.FALSE_POSITIVE, note="a test key"
        )

    assert events(entries) == ["exposure.answer"]
    assert entries[0].actor_id == owner.pk


def test_an_answer_through_a_spent_link_records_nothing(
    make_exposure: MakeExposure, owner: Any, payments_identity: Any
) -> None:
    exposure = make_exposure(payments_identity)
    token = answer_link_issue(exposure=exposure, user=owner)
    answer_link_answer(token=token, exposure_id=exposure.pk, answer=Answer.FALSE_POSITIVE, note="a test key")

    with chain_unchanged(), pytest.raises(Exception, match="used"):
        answer_link_answer(token=token, exposure_id=exposure.pk, answer=Answer.CONFIRM)


# --- Attribution and rules ----------------------------------------------------------------------------------


@pytest.fixture
def waiting(db: None) -> Exposure:
    """An exposure nobody owns yet, found in acme/payments' deploy folder."""
    exposure = ExposureFactory.create(nhi=None)
    FindingFactory.create(exposure=exposure, repository="github.com/acme/payments", path="deploy/prod.env")
    return exposure


def test_an_attribution_by_an_analyst_is_recorded_from_nobody_to_the_identity(
    waiting: Exposure, analyst: Any, payments_identity: Any
) -> None:
    with appended() as entries:
        exposure_attribute(actor=analyst, exposure_id=waiting.pk, nhi_id=payments_identity.pk, note="theirs")

    entry = entries[0]
    assert entry.event == "exposure.attribute"
    assert entry.targets(waiting)
    assert entry.actor_id == analyst.pk
    assert entry.before is not None
    assert entry.after is not None
    assert (entry.before["nhi"], entry.after["nhi"]) == (None, payments_identity.pk)
    assert (entry.before["attribution"], entry.after["attribution"]) == ("", "analyst")
    assert entry.details == {"note": digest("theirs")}


def test_an_attribution_refused_records_nothing(
    waiting: Exposure, owner: Any, payments_identity: Any
) -> None:
    with chain_unchanged(), pytest.raises(PermissionDenied):
        exposure_attribute(actor=owner, exposure_id=waiting.pk, nhi_id=payments_identity.pk)


def test_a_new_attribution_rule_records_itself_then_what_it_attributed(
    waiting: Exposure, analyst: Any, payments_identity: Any
) -> None:
    with appended() as entries:
        rule = attribution_rule_create(
            actor=analyst,
            fields={"repository_pattern": "*acme/payments", "nhi": payments_identity, "note": "payments"},
        )

    assert events(entries)[:2] == ["attribution_rule.create", "attribution_rule.apply"]
    created = only(entries, "attribution_rule.create")
    assert created.targets(rule)
    assert created.actor_id == analyst.pk
    assert created.after is not None
    assert created.after["repository_pattern"] == "*acme/payments"  # a glob: kept as written
    assert (created.after["nhi"], created.after["note"]) == (payments_identity.pk, digest("payments"))
    applied = only(entries, "attribution_rule.apply")
    assert applied.details == {"attributed": 1, "by_rule": {str(rule.pk): 1}}


def test_an_attribution_rule_edit_records_only_what_changed(analyst: Any, payments_identity: Any) -> None:
    rule = attribution_rule_create(
        actor=analyst, fields={"path_pattern": "deploy/*", "nhi": payments_identity}
    )

    with appended() as entries:
        attribution_rule_update(actor=analyst, rule_id=rule.pk, changes={"is_active": False})

    entry = only(entries, "attribution_rule.update")
    assert (entry.before, entry.after) == ({"is_active": True}, {"is_active": False})


def test_applying_the_rules_when_nothing_waits_records_nothing(analyst: Any) -> None:
    with appended() as entries:
        assert attribution_rules_apply(actor=analyst) == 0

    assert entries == []


def test_promotion_rules_created_and_edited_are_recorded(analyst: Any) -> None:
    with appended() as created:
        rule = promotion_rule_create(
            actor=analyst, fields={"condition": PromotionCondition.RECURRING, "min_locations": 3}
        )
    with appended() as edited:
        promotion_rule_update(actor=analyst, rule_id=rule.pk, changes={"min_locations": 5})

    entry = only(created, "promotion_rule.create")
    assert entry.targets(rule)
    assert entry.actor_id == analyst.pk
    assert entry.after is not None
    assert (entry.after["condition"], entry.after["min_locations"]) == ("recurring", 3)
    change = only(edited, "promotion_rule.update")
    assert (change.before, change.after) == ({"min_locations": 3}, {"min_locations": 5})


# --- The intake ---------------------------------------------------------------------------------------------

NO_FACTS = Facts(
    needs_multi_person_review=False,
    triggers_downstream_work=False,
    must_be_retained_as_evidence=False,
    depends_on_fresh_context=False,
)


@pytest.fixture
def automation(role_groups: None) -> Any:
    return roles.automation_user()


def test_an_advisory_is_one_entry_without_a_case(automation: Any, payments_identity: Any) -> None:
    with appended() as entries:
        output = assistant_output_submit(
            actor=automation,
            summary="payments-api-bot has not been used for 200 days.",
            recommendation="Consider decommissioning it.",
            assistant="SecOps Copilot",
            facts=NO_FACTS,
            nhi_ids=[payments_identity.pk],
        )

    entry = only(entries, "intake.submit")
    assert events(entries) == ["intake.submit"]
    assert entry.targets(output)
    assert entry.case_id is None
    assert entry.actor_id == automation.pk
    assert entry.after is not None
    assert (entry.after["outcome"], entry.after["case"], entry.after["proposals"]) == (
        Outcome.ADVISORY,
        None,
        0,
    )
    assert entry.after["triggers"] == []
    assert entry.after["reason"] == digest(output.reason)
    assert entry.after["identities"] == [payments_identity.pk]


def test_a_promoted_output_records_its_case_work_then_its_outcome(
    automation: Any, payments_identity: Any
) -> None:
    with appended() as entries:
        output = assistant_output_submit(
            actor=automation,
            summary="The deploy key of payments-api-bot is in a public gist.",
            recommendation="Revoke the key.",
            assistant="SecOps Copilot",
            facts=NO_FACTS,
            nhi_ids=[payments_identity.pk],
            proposed_actions=[ProposedActionInput(kind=ActionKind.REVOCATION, description="Revoke it")],
        )

    output = AssistantOutput.objects.get(pk=output.pk)
    assert events(entries) == [
        "case.open",
        "action_item.propose",
        "action_item.propose",
        "comment.add",
        "intake.submit",
    ]
    entry = only(entries, "intake.submit")
    assert entry.case_id == output.case_id is not None
    assert entry.after is not None
    assert (entry.after["outcome"], entry.after["case"], entry.after["proposals"]) == (
        Outcome.CASE_OPENED,
        output.case_id,
        1,
    )
    assert entry.after["triggers"] == output.triggers != []
    assert entry.after["recommendation_item"] == output.recommendation_item_id


def test_an_output_refused_records_nothing(automation: Any) -> None:
    with chain_unchanged(), pytest.raises(ValidationError):
        assistant_output_submit(
            actor=automation, summary="s", recommendation="r", assistant="a", facts=NO_FACTS
        )


def test_an_output_from_someone_without_the_permission_records_nothing(
    auditor: Any, payments_identity: Any
) -> None:
    with chain_unchanged(), pytest.raises(PermissionDenied):
        assistant_output_submit(
            actor=auditor,
            summary=SLACK_TOKEN,
            recommendation="r",
            assistant="a",
            facts=NO_FACTS,
            nhi_ids=[payments_identity.pk],
        )
