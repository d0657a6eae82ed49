"""Work on cases over the API: evidence, action items, approvals, comments and the history of a case."""

import hashlib
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cases import services
from cases.models import (
    ActionItem,
    ActionStatus,
    Approval,
    ApprovalKind,
    ApprovalStatus,
    Case,
    CaseState,
    Comment,
    Evidence,
    EvidenceKind,
    Severity,
)

EVIDENCE = "/api/v1/evidence/"
ACTION_ITEMS = "/api/v1/action-items/"
APPROVALS = "/api/v1/approvals/"


def ids(response):
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def comments_url(case):
    return f"/api/v1/cases/{case.pk}/comments/"


def history_url(case):
    return f"/api/v1/cases/{case.pk}/history/"


@pytest.fixture
def both_teams(open_case, platform_identity):
    return open_case(), open_case(identities=[platform_identity])


def note(actor, case, text="Key rotated"):
    return services.evidence_capture(
        actor=actor, case_id=case.pk, kind=EvidenceKind.NOTE, title="Log", note=text
    )


def same_cost_for_2_and_12(client, url, add_rows, django_assert_num_queries):
    """Add 2 rows, count the list's queries; add 10 more: the list must cost exactly as much."""
    add_rows(2)
    with CaptureQueriesContext(connection) as two:
        assert len(ids(client.get(url))) == 2
    add_rows(10)
    with django_assert_num_queries(len(two.captured_queries)):
        assert len(ids(client.get(url))) == 12


# --- Evidence -----------------------------------------------------------------------------------------------


def test_an_analyst_uploads_a_file_and_the_server_computes_its_sha256_and_size(api, analyst, open_case):
    case = open_case()
    content = b"aws iam list-access-keys: none active\n" * 100

    response = api(analyst).post(
        EVIDENCE,
        {
            "case": case.pk,
            "kind": "file",
            "title": "Key list",
            "file": SimpleUploadedFile("keys.txt", content),
        },
        format="multipart",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["sha256"], body["size"]) == (hashlib.sha256(content).hexdigest(), len(content))
    assert body["filename"] == "keys.txt"
    assert body["captured_by"]["username"] == "analyst"
    assert Case.objects.get(pk=case.pk).has_evidence is True


def test_a_client_cannot_supply_the_digest(api, analyst, open_case):
    case = open_case()
    content = b"real content"

    response = api(analyst).post(
        EVIDENCE,
        {
            "case": case.pk,
            "kind": "file",
            "title": "x",
            "sha256": "0" * 64,
            "file": SimpleUploadedFile("a", content),
        },
        format="multipart",
    )

    assert response.status_code == 400
    assert "sha256" in response.json()
    assert not Evidence.objects.exists()


def test_a_note_is_captured_from_json_with_its_digest(api, analyst, open_case):
    response = api(analyst).post(
        EVIDENCE,
        {"case": open_case().pk, "kind": "note", "title": "Call", "note": "Owner confirmed rotation"},
    )

    assert response.status_code == 201, response.content
    assert response.json()["sha256"] == hashlib.sha256(b"Owner confirmed rotation").hexdigest()
    assert response.json()["download_url"] is None


def test_file_evidence_without_a_file_is_a_400_naming_it(api, analyst, open_case):
    response = api(analyst).post(EVIDENCE, {"case": open_case().pk, "kind": "file", "title": "Missing"})

    assert response.status_code == 400
    assert set(response.json()) == {"file"}
    assert not Evidence.objects.exists()


def test_evidence_without_a_case_is_a_400_naming_it(api, analyst, db):
    response = api(analyst).post(EVIDENCE, {"kind": "note", "title": "x", "note": "y"})

    assert response.status_code == 400
    assert set(response.json()) == {"case"}


def test_an_owner_adds_evidence_to_their_teams_case(api, owner, open_case):
    response = api(owner).post(
        EVIDENCE, {"case": open_case().pk, "kind": "url", "title": "PR", "url": "https://x.test/1"}
    )

    assert response.status_code == 201, response.content


def test_an_owner_cannot_add_evidence_to_another_teams_case(api, owner, both_teams):
    _, platform_case = both_teams

    response = api(owner).post(
        EVIDENCE, {"case": platform_case.pk, "kind": "note", "title": "x", "note": "y"}
    )

    assert response.status_code == 400
    assert set(response.json()) == {"case"}
    assert not Evidence.objects.exists()


@pytest.mark.parametrize("who", ["approver", "auditor", "outsider"])
def test_evidence_capture_outside_ones_role_is_a_403(api, persona, open_case, who):
    response = api(persona(who)).post(
        EVIDENCE, {"case": open_case().pk, "kind": "note", "title": "x", "note": "y"}
    )

    assert response.status_code == 403
    assert not Evidence.objects.exists()


def test_evidence_on_a_closed_case_is_a_409(api, analyst, case_in_state):
    case = case_in_state(CaseState.CLOSED)

    response = api(analyst).post(EVIDENCE, {"case": case.pk, "kind": "note", "title": "late", "note": "y"})

    assert response.status_code == 409
    assert case.evidence.count() == 1  # the one captured on the way to closing


@pytest.mark.parametrize("who", ["analyst", "approver", "auditor"])
def test_staff_see_all_evidence(api, persona, analyst, both_teams, who):
    rows = {note(analyst, case).pk for case in both_teams}

    assert ids(api(persona(who)).get(EVIDENCE)) == rows


def test_an_owner_sees_only_their_teams_evidence_and_an_outsider_none(
    api, analyst, owner, outsider, both_teams
):
    payments_case, platform_case = both_teams
    own = note(analyst, payments_case)
    other = note(analyst, platform_case)

    assert ids(api(owner).get(EVIDENCE)) == {own.pk}
    assert api(owner).get(f"{EVIDENCE}{other.pk}/").status_code == 404
    assert ids(api(outsider).get(EVIDENCE)) == set()
    assert api(None).get(EVIDENCE).status_code == 401


def test_the_evidence_list_filters_by_case(api, analyst, both_teams):
    payments_case, platform_case = both_teams
    own = note(analyst, payments_case)
    note(analyst, platform_case)

    assert ids(api(analyst).get(EVIDENCE, {"case": payments_case.pk})) == {own.pk}


def test_a_visible_evidence_file_downloads_as_its_exact_bytes(api, analyst, owner, open_case):
    content = b"\x00\x01binary evidence\xff"
    evidence = services.evidence_capture(
        actor=analyst,
        case_id=open_case().pk,
        kind=EvidenceKind.FILE,
        title="dump",
        file=SimpleUploadedFile("dump.bin", content),
    )

    response = api(owner).get(f"{EVIDENCE}{evidence.pk}/download/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert b"".join(response.streaming_content) == content
    assert "dump.bin" in response["Content-Disposition"]


def test_another_teams_evidence_file_is_a_404_for_an_owner(api, analyst, owner, both_teams):
    _, platform_case = both_teams
    evidence = services.evidence_capture(
        actor=analyst,
        case_id=platform_case.pk,
        kind=EvidenceKind.FILE,
        title="dump",
        file=SimpleUploadedFile("dump.bin", b"secret-free bytes"),
    )

    assert api(owner).get(f"{EVIDENCE}{evidence.pk}/download/").status_code == 404


def test_evidence_without_a_file_has_nothing_to_download(api, analyst, open_case):
    evidence = note(analyst, open_case())

    assert api(analyst).get(f"{EVIDENCE}{evidence.pk}/download/").status_code == 404


@pytest.mark.parametrize("who", ["analyst", "owner"])
def test_the_evidence_list_costs_the_same_for_2_and_12_rows(
    api, persona, analyst, open_case, django_assert_num_queries, who
):
    def add(count):
        for _ in range(count):
            note(analyst, open_case())

    same_cost_for_2_and_12(api(persona(who)), EVIDENCE, add, django_assert_num_queries)


# --- Action items -------------------------------------------------------------------------------------------


def test_an_analyst_adds_an_action_item(api, analyst, open_case, payments):
    case = open_case()

    response = api(analyst).post(
        ACTION_ITEMS,
        {
            "case": case.pk,
            "kind": "rotation",
            "title": "Rotate",
            "owning_team": payments.pk,
            "external_reference": "JIRA-1",
        },
    )

    assert response.status_code == 201, response.content
    assert response.json()["owning_team"]["id"] == payments.pk
    assert response.json()["status"] == "open"
    assert case.action_items.get().external_reference == "JIRA-1"


def test_an_action_item_without_a_team_is_a_400_naming_it(api, analyst, open_case):
    response = api(analyst).post(
        ACTION_ITEMS, {"case": open_case().pk, "kind": "rotation", "title": "Rotate"}
    )

    assert response.status_code == 400
    assert set(response.json()) == {"owning_team"}


@pytest.mark.parametrize("who", ["approver", "auditor", "owner", "outsider"])
def test_nobody_but_an_analyst_adds_action_items(api, persona, open_case, payments, who):
    response = api(persona(who)).post(
        ACTION_ITEMS,
        {"case": open_case().pk, "kind": "rotation", "title": "Rotate", "owning_team": payments.pk},
    )

    assert response.status_code == 403
    assert not ActionItem.objects.exists()


def test_an_owner_moves_their_teams_action_item_along(api, owner, case_in_state):
    item = case_in_state(CaseState.IN_PROGRESS).action_items.get()

    response = api(owner).post(
        f"{ACTION_ITEMS}{item.pk}/status/", {"status": "done", "external_reference": "CHG-9"}
    )

    assert response.status_code == 200, response.content
    item.refresh_from_db()
    assert (item.status, item.external_reference, item.completed_at is not None) == ("done", "CHG-9", True)


def test_an_owner_gets_404_for_another_teams_action_item(api, analyst, owner, both_teams, platform):
    _, platform_case = both_teams
    item = services.action_item_add(
        actor=analyst, case_id=platform_case.pk, kind="rotation", title="Rotate", owning_team=platform
    )

    assert api(owner).post(f"{ACTION_ITEMS}{item.pk}/status/", {"status": "done"}).status_code == 404
    assert ActionItem.objects.get(pk=item.pk).status == ActionStatus.OPEN


@pytest.mark.parametrize("who", ["approver", "auditor", "outsider"])
def test_a_status_change_outside_ones_role_is_a_403(api, persona, case_in_state, who):
    item = case_in_state(CaseState.IN_PROGRESS).action_items.get()

    assert api(persona(who)).post(f"{ACTION_ITEMS}{item.pk}/status/", {"status": "done"}).status_code == 403
    assert ActionItem.objects.get(pk=item.pk).status == ActionStatus.OPEN


def test_an_unknown_status_is_a_400_naming_it(api, analyst, case_in_state):
    item = case_in_state(CaseState.IN_PROGRESS).action_items.get()

    response = api(analyst).post(f"{ACTION_ITEMS}{item.pk}/status/", {"status": "finished"})

    assert response.status_code == 400
    assert set(response.json()) == {"status"}


def test_an_action_item_of_a_closed_case_cannot_change_status(api, analyst, case_in_state):
    item = case_in_state(CaseState.CLOSED).action_items.get()

    assert api(analyst).post(f"{ACTION_ITEMS}{item.pk}/status/", {"status": "cancelled"}).status_code == 409


def test_a_proposed_action_item_waits_for_a_second_persons_approval(
    api, analyst, approver, open_case, payments
):
    item = services.action_item_propose(
        actor=analyst, case_id=open_case().pk, kind="revocation", title="Revoke", owning_team=payments
    )

    started = api(analyst).post(f"{ACTION_ITEMS}{item.pk}/status/", {"status": "in_progress"})
    approved = api(approver).post(f"{ACTION_ITEMS}{item.pk}/approve/")

    assert started.status_code == 400
    assert set(started.json()) == {"status"}
    assert approved.status_code == 200, approved.content
    assert approved.json()["awaiting_approval"] is False
    assert approved.json()["approved_by"]["username"] == "approver"


@pytest.mark.parametrize("who", ["analyst", "auditor", "owner"])
def test_only_an_approver_approves_a_proposed_action_item(api, persona, analyst, open_case, payments, who):
    item = services.action_item_propose(
        actor=analyst, case_id=open_case().pk, kind="revocation", title="Revoke", owning_team=payments
    )

    assert api(persona(who)).post(f"{ACTION_ITEMS}{item.pk}/approve/").status_code == 403
    assert ActionItem.objects.get(pk=item.pk).approved_at is None


def test_an_owner_sees_their_cases_items_and_the_items_routed_to_their_team(
    api, analyst, owner, both_teams, payments, platform
):
    payments_case, platform_case = both_teams
    own_case_item = services.action_item_add(
        actor=analyst, case_id=payments_case.pk, kind="rotation", title="a", owning_team=platform
    )
    routed_to_us = services.action_item_add(
        actor=analyst, case_id=platform_case.pk, kind="rotation", title="b", owning_team=payments
    )
    services.action_item_add(
        actor=analyst, case_id=platform_case.pk, kind="rotation", title="c", owning_team=platform
    )

    assert ids(api(owner).get(ACTION_ITEMS)) == {own_case_item.pk, routed_to_us.pk}
    assert len(ids(api(analyst).get(ACTION_ITEMS))) == 3
    assert ids(api(owner).get(ACTION_ITEMS, {"team": platform.pk})) == {own_case_item.pk}


def test_an_outsider_sees_no_action_items(api, analyst, outsider, open_case, payments):
    services.action_item_add(
        actor=analyst, case_id=open_case().pk, kind="rotation", title="a", owning_team=payments
    )

    assert ids(api(outsider).get(ACTION_ITEMS)) == set()


@pytest.mark.parametrize("who", ["analyst", "owner"])
def test_the_action_item_list_costs_the_same_for_2_and_12_rows(
    api, persona, analyst, open_case, payments, django_assert_num_queries, who
):
    case = open_case()

    def add(count):
        for number in range(count):
            services.action_item_add(
                actor=analyst, case_id=case.pk, kind="rotation", title=f"item {number}", owning_team=payments
            )

    same_cost_for_2_and_12(api(persona(who)), ACTION_ITEMS, add, django_assert_num_queries)


# --- Approvals ----------------------------------------------------------------------------------------------


def test_an_analyst_requests_a_closure_approval_for_a_severe_case(api, analyst, case_in_state):
    case = case_in_state(CaseState.IN_PROGRESS, severity=Severity.HIGH)

    response = api(analyst).post(APPROVALS, {"case": case.pk, "kind": "closure", "reason": "all rotated"})

    assert response.status_code == 201, response.content
    assert (response.json()["status"], response.json()["requested_by"]["username"]) == ("pending", "analyst")


def test_an_approval_request_without_a_reason_is_a_400_naming_it(api, analyst, case_in_state):
    case = case_in_state(CaseState.IN_PROGRESS, severity=Severity.HIGH)

    response = api(analyst).post(APPROVALS, {"case": case.pk, "kind": "closure"})

    assert response.status_code == 400
    assert set(response.json()) == {"reason"}


def test_a_risk_acceptance_request_without_an_expiry_is_a_400_naming_it(api, analyst, case_in_state):
    case = case_in_state(CaseState.CONFIRMED)

    response = api(analyst).post(
        APPROVALS, {"case": case.pk, "kind": "risk_acceptance", "reason": "compensated"}
    )

    assert response.status_code == 400
    assert set(response.json()) == {"risk_expires_on"}


def test_an_approval_request_of_an_unknown_kind_is_a_400_naming_it(api, analyst, open_case):
    response = api(analyst).post(APPROVALS, {"case": open_case().pk, "kind": "blanket", "reason": "x"})

    assert response.status_code == 400
    assert set(response.json()) == {"kind"}


def test_a_closure_request_in_the_wrong_state_is_a_409(api, analyst, open_case):
    response = api(analyst).post(
        APPROVALS, {"case": open_case(severity=Severity.HIGH).pk, "kind": "closure", "reason": "x"}
    )

    assert response.status_code == 409
    assert not Approval.objects.exists()


@pytest.mark.parametrize("who", ["approver", "auditor", "owner", "outsider"])
def test_nobody_but_an_analyst_requests_approvals(api, persona, case_in_state, who):
    case = case_in_state(CaseState.IN_PROGRESS, severity=Severity.HIGH)

    response = api(persona(who)).post(APPROVALS, {"case": case.pk, "kind": "closure", "reason": "x"})

    assert response.status_code == 403
    assert not Approval.objects.exists()


@pytest.fixture
def pending_closure(case_in_state, analyst):
    case = case_in_state(CaseState.IN_PROGRESS, severity=Severity.HIGH)
    return services.approval_request(actor=analyst, case_id=case.pk, kind=ApprovalKind.CLOSURE, reason="done")


def decide_url(approval):
    return f"{APPROVALS}{approval.pk}/decide/"


def test_an_approver_approves_a_request(api, approver, pending_closure):
    response = api(approver).post(decide_url(pending_closure), {"approve": True, "note": "checked"})

    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["decided_by"]["username"]) == ("approved", "approver")
    assert Case.objects.get(pk=pending_closure.case_id).closure_second_person_approved is True


def test_approving_a_risk_acceptance_moves_the_case_to_risk_accepted(api, analyst, approver, case_in_state):
    case = case_in_state(CaseState.CONFIRMED)
    approval = services.approval_request(
        actor=analyst,
        case_id=case.pk,
        kind=ApprovalKind.RISK_ACCEPTANCE,
        reason="compensating control",
        risk_expires_on=timezone.localdate() + timedelta(days=60),
    )

    assert api(approver).post(decide_url(approval), {"approve": True}).status_code == 200
    assert Case.objects.get(pk=case.pk).state == CaseState.RISK_ACCEPTED


def test_a_decision_without_approve_is_a_400_naming_it(api, approver, pending_closure):
    response = api(approver).post(decide_url(pending_closure), {"note": "hmm"})

    assert response.status_code == 400
    assert set(response.json()) == {"approve"}


def test_a_rejection_without_a_note_is_a_400_naming_it(api, approver, pending_closure):
    response = api(approver).post(decide_url(pending_closure), {"approve": False})

    assert response.status_code == 400
    assert set(response.json()) == {"note"}
    assert Approval.objects.get(pk=pending_closure.pk).status == ApprovalStatus.PENDING


def test_nobody_decides_their_own_request(api, analyst_and_approver, case_in_state):
    case = case_in_state(CaseState.IN_PROGRESS, severity=Severity.HIGH)
    own = services.approval_request(
        actor=analyst_and_approver, case_id=case.pk, kind="closure", reason="done"
    )

    response = api(analyst_and_approver).post(decide_url(own), {"approve": True})

    assert response.status_code == 403
    assert "Four-eyes" in response.json()["detail"]
    assert Approval.objects.get(pk=own.pk).status == ApprovalStatus.PENDING


@pytest.mark.parametrize("who", ["analyst", "auditor", "owner", "outsider"])
def test_nobody_but_an_approver_decides(api, persona, pending_closure, who):
    assert api(persona(who)).post(decide_url(pending_closure), {"approve": True}).status_code == 403
    assert Approval.objects.get(pk=pending_closure.pk).status == ApprovalStatus.PENDING


def test_deciding_a_request_already_decided_is_a_409(api, approver, pending_closure):
    api(approver).post(decide_url(pending_closure), {"approve": True})

    response = api(approver).post(decide_url(pending_closure), {"approve": False, "note": "changed my mind"})

    assert response.status_code == 409
    assert Approval.objects.get(pk=pending_closure.pk).status == ApprovalStatus.APPROVED


def test_the_approval_list_is_scoped_and_filters_what_awaits_my_decision(
    api, analyst, approver, owner, outsider, pending_closure, platform_identity, case_in_state
):
    assert ids(api(approver).get(APPROVALS, {"awaiting_my_decision": "true"})) == {pending_closure.pk}
    assert ids(api(analyst).get(APPROVALS, {"awaiting_my_decision": "true"})) == set()
    assert ids(api(owner).get(APPROVALS)) == {pending_closure.pk}
    assert ids(api(outsider).get(APPROVALS)) == set()
    assert api(None).get(APPROVALS).status_code == 401


def test_an_owner_gets_404_for_another_teams_approval(api, analyst, owner, platform_identity, open_case):
    case = open_case(severity=Severity.HIGH, identities=[platform_identity])
    services.case_confirm(case_id=case.pk, actor=analyst)
    approval = services.approval_request(
        actor=analyst,
        case_id=case.pk,
        kind=ApprovalKind.RISK_ACCEPTANCE,
        reason="x",
        risk_expires_on=timezone.localdate() + timedelta(days=10),
    )

    assert api(owner).get(f"{APPROVALS}{approval.pk}/").status_code == 404


@pytest.mark.parametrize("who", ["approver", "owner"])
def test_the_approval_list_costs_the_same_for_2_and_12_rows(
    api, persona, analyst, case_in_state, django_assert_num_queries, who
):
    def add(count):
        for _ in range(count):
            case = case_in_state(CaseState.CONFIRMED)
            services.approval_request(
                actor=analyst,
                case_id=case.pk,
                kind=ApprovalKind.RISK_ACCEPTANCE,
                reason="x",
                risk_expires_on=timezone.localdate() + timedelta(days=10),
            )

    same_cost_for_2_and_12(api(persona(who)), APPROVALS, add, django_assert_num_queries)


# --- Comments -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["analyst", "approver", "owner"])
def test_analysts_approvers_and_owners_comment(api, persona, open_case, who):
    case = open_case()

    response = api(persona(who)).post(comments_url(case), {"body": "Rotated at 10:00."})

    assert response.status_code == 201, response.content
    assert response.json()["author"]["username"] == who
    assert case.comments.get().body == "Rotated at 10:00."


@pytest.mark.parametrize("who", ["auditor", "outsider"])
def test_auditors_and_outsiders_cannot_comment(api, persona, open_case, who):
    case = open_case()

    assert api(persona(who)).post(comments_url(case), {"body": "hi"}).status_code == 403
    assert not Comment.objects.exists()


def test_an_owner_cannot_comment_on_another_teams_case(api, owner, both_teams):
    _, platform_case = both_teams

    assert api(owner).post(comments_url(platform_case), {"body": "hi"}).status_code == 404
    assert api(owner).get(comments_url(platform_case)).status_code == 404


def test_an_empty_comment_is_a_400_naming_the_body(api, analyst, open_case):
    response = api(analyst).post(comments_url(open_case()), {"body": ""})

    assert response.status_code == 400
    assert set(response.json()) == {"body"}


def test_the_comments_of_a_case_are_listed_to_whoever_sees_it(api, analyst, auditor, outsider, open_case):
    case = open_case()
    comment = services.comment_add(actor=analyst, case_id=case.pk, body="first")

    assert ids(api(auditor).get(comments_url(case))) == {comment.pk}
    assert api(outsider).get(comments_url(case)).status_code == 404
    assert api(None).get(comments_url(case)).status_code == 401


def test_the_comment_list_costs_the_same_for_2_and_12_rows(
    api, analyst, open_case, django_assert_num_queries
):
    case = open_case()

    def add(count):
        for number in range(count):
            services.comment_add(actor=analyst, case_id=case.pk, body=f"c{number}")

    same_cost_for_2_and_12(api(analyst), comments_url(case), add, django_assert_num_queries)


# --- History ------------------------------------------------------------------------------------------------


def test_the_history_shows_the_transition_log_and_every_version(api, analyst, auditor, open_case):
    case = open_case()
    services.case_confirm(case_id=case.pk, actor=analyst, reason="real key")

    body = api(auditor).get(history_url(case)).json()

    assert [(row["name"], row["source_state"], row["target_state"]) for row in body["transitions"]] == [
        ("open", "", "identified"),
        ("confirm", "identified", "confirmed"),
    ]
    assert body["transitions"][1]["reason"] == "real key"
    assert body["transitions"][1]["actor"]["username"] == "analyst"
    assert [row["type"] for row in body["history"]] == ["created", "changed"]
    assert "state" in body["history"][-1]["changed_fields"]
    assert body["history"][-1]["reason"] == "confirm: real key"


def test_an_owner_reads_the_history_of_their_teams_case_only(api, owner, both_teams):
    payments_case, platform_case = both_teams

    assert api(owner).get(history_url(payments_case)).status_code == 200
    assert api(owner).get(history_url(platform_case)).status_code == 404


def test_the_history_is_read_only(api, analyst, open_case):
    assert api(analyst).post(history_url(open_case()), {}).status_code == 405


def test_the_history_costs_the_same_for_few_and_many_versions(
    api, analyst, open_case, django_assert_num_queries
):
    case = open_case()
    client = api(analyst)
    services.case_confirm(case_id=case.pk, actor=analyst, reason="a")
    with CaptureQueriesContext(connection) as few:
        assert client.get(history_url(case)).status_code == 200
    for number in range(10):
        services.case_update(actor=analyst, case_id=case.pk, changes={"title": f"t{number}"}, reason="rename")

    with django_assert_num_queries(len(few.captured_queries)):
        assert len(client.get(history_url(case)).json()["history"]) == 12
