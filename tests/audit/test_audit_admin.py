"""The audit trail in the admin: the last verification, "Verify now", and nothing editable."""

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEntry, AuditVerification
from audit.services import audit_trail_verify
from cases import services
from tests.audit import tamper

ENTRIES = reverse("admin:audit_auditentry_changelist")
VERIFY = reverse("admin:audit_auditentry_verify")
VERIFICATIONS = reverse("admin:audit_auditverification_changelist")


@pytest.fixture
def chain(analyst: Any) -> list[AuditEntry]:
    return tamper.append_chain(6, actor=analyst)


def panel(response: Any) -> str:
    """The "Last verification" box of the changelist."""
    page = response.content.decode()
    start = page.index('id="audit-last-verification"')
    return page[start : page.index("</form>", start)]


# --- The last verification ----------------------------------------------------------------------------------


def test_the_changelist_says_when_the_chain_was_never_verified(client, auditor, chain):
    client.force_login(auditor)

    response = client.get(ENTRIES)

    assert response.status_code == 200
    assert "The chain has never been verified." in panel(response)


def test_the_changelist_shows_an_intact_last_verification(client, auditor, chain):
    audit_trail_verify(trigger="command")
    client.force_login(auditor)

    shown = panel(client.get(ENTRIES))

    assert "<strong>Intact</strong>" in shown
    assert "verify_audit_trail command" in shown
    assert "6 entries checked, intact up to #6." in shown
    assert "errornote" not in shown


def test_the_changelist_shows_a_broken_last_verification_with_its_message(client, auditor, chain):
    audit_trail_verify(trigger="command")
    tamper.delete_entries(3)
    audit_trail_verify(trigger="schedule")
    client.force_login(auditor)

    shown = panel(client.get(ENTRIES))

    assert "<strong>NOT intact (missing)</strong>" in shown
    assert "Scheduled task" in shown
    assert "2 entries checked, intact up to #2." in shown
    assert '<p class="errornote">Entry #3 is missing: entry #4 follows #2.</p>' in shown


# --- Verify now ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["analyst", "approver", "auditor"])
def test_verify_now_records_a_verification_by_the_person_who_asked(client, persona, who, chain):
    person = persona(who)
    client.force_login(person)

    response = client.post(VERIFY, follow=True)

    recorded = AuditVerification.objects.get()
    assert (recorded.trigger, recorded.requested_by, recorded.ok, recorded.last_seq) == (
        "admin",
        person,
        True,
        6,
    )
    assert response.redirect_chain == [(ENTRIES, 302)]
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Audit trail intact: 6 entries checked."]
    assert "<strong>Intact</strong>" in panel(response)
    assert f"Admin by {person}" in panel(response)


def test_verify_now_on_a_broken_chain_says_what_is_wrong(client, auditor, chain):
    tamper.set_columns(2, event="case.close")
    client.force_login(auditor)

    response = client.post(VERIFY, follow=True)

    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Audit trail NOT intact: Entry #2 was changed: its event column no longer matches what the portal "
        "sealed."
    ]
    recorded = AuditVerification.objects.get()
    assert (recorded.ok, recorded.problem_kind, recorded.problem_seq, recorded.requested_by) == (
        False,
        "changed",
        2,
        auditor,
    )


def test_a_get_of_verify_now_records_nothing(client, auditor, chain):
    client.force_login(auditor)

    response = client.get(VERIFY)

    assert (response.status_code, response.url) == (302, ENTRIES)
    assert not AuditVerification.objects.exists()


def test_the_owner_may_neither_see_the_trail_nor_verify_it(client, owner, chain):
    client.force_login(owner)

    assert client.get(ENTRIES).status_code == 403
    assert client.get(reverse("admin:audit_auditentry_change", args=(1,))).status_code == 403
    assert client.get(VERIFICATIONS).status_code == 403
    assert client.post(VERIFY).status_code == 403
    assert not AuditVerification.objects.exists()


def test_the_owner_is_not_shown_the_audit_app(client, owner, chain):
    client.force_login(owner)

    assert "Audit trail" not in client.get(reverse("admin:index")).content.decode()


@pytest.mark.parametrize("url", [ENTRIES, VERIFICATIONS, VERIFY])
def test_the_outsider_is_sent_to_the_login_page(client, outsider, chain, url):
    client.force_login(outsider)

    response = client.post(url) if url == VERIFY else client.get(url)

    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")
    assert not AuditVerification.objects.exists()


# --- Read-only ----------------------------------------------------------------------------------------------


def test_entries_offer_no_add_change_or_delete(client, analyst, chain):
    client.force_login(analyst)
    change = reverse("admin:audit_auditentry_change", args=(3,))

    assert client.get(reverse("admin:audit_auditentry_add")).status_code == 403
    assert client.get(reverse("admin:audit_auditentry_delete", args=(3,))).status_code == 403
    page = client.get(change)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.post(change, {"event": "case.close"}).status_code == 403
    assert "delete_selected" not in client.get(ENTRIES).content.decode()
    assert AuditEntry.objects.get(seq=3).event == chain[2].event


def test_an_entry_page_shows_its_sealed_event(client, auditor, chain):
    client.force_login(auditor)

    page = client.get(reverse("admin:audit_auditentry_change", args=(3,))).content.decode()

    assert chain[2].entry_hash in page
    assert "&quot;after&quot;: {\n    &quot;step&quot;: 3\n  }" in page


def test_verifications_offer_no_add_change_or_delete(client, analyst, chain):
    verification = audit_trail_verify(trigger="command")
    client.force_login(analyst)

    assert client.get(reverse("admin:audit_auditverification_add")).status_code == 403
    assert (
        client.get(reverse("admin:audit_auditverification_delete", args=(verification.pk,))).status_code
        == 403
    )
    change = reverse("admin:audit_auditverification_change", args=(verification.pk,))
    assert client.post(change, {"ok": ""}).status_code == 403
    assert AuditVerification.objects.get().ok is True


# --- Query count --------------------------------------------------------------------------------------------


def queries_for(client: Any, params: dict[str, str]) -> int:
    client.get(ENTRIES, params)  # warm per-process caches (content types, permissions) first
    with CaptureQueriesContext(connection) as captured:
        response = client.get(ENTRIES, params)
    assert response.status_code == 200
    assert response.context["cl"].result_count > 0, "the page listed no row: the count proves nothing"
    return len(captured)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({}, id="plain"),
        pytest.param({"event__exact": "case.confirm"}, id="filtered"),
        pytest.param({"q": "101"}, id="searched"),
    ],
)
def test_the_changelist_query_count_does_not_grow_with_entries(client, auditor, params):
    client.force_login(auditor)
    tamper.append_chain(10, actor=auditor)
    audit_trail_verify(trigger="command")
    few = queries_for(client, params)

    tamper.append_chain(290, actor=auditor)
    audit_trail_verify(trigger="admin", actor=auditor)
    many = queries_for(client, params)

    assert few == many


# --- The case page's link to its entries --------------------------------------------------------------------


def test_the_case_page_links_to_its_entries_with_their_count(client, auditor, open_case, analyst):
    case = open_case()
    services.case_confirm(case_id=case.pk, actor=analyst, reason="The key is live.")
    case.refresh_from_db()
    client.force_login(auditor)

    page = client.get(reverse("admin:cases_case_change", args=(case.pk,))).content.decode()

    count = AuditEntry.objects.filter(case_id=case.pk).count()
    assert count >= 2  # opening and confirming at least
    assert f'href="{ENTRIES}?case_id={case.pk}"' in page
    link_text = f"{count} entries in the audit chain</a>; its latest transition is entry #{case.chain_seq}."
    assert link_text in page


def test_the_linked_changelist_lists_only_that_cases_entries(client, auditor, open_case):
    first, second = open_case(), open_case()
    client.force_login(auditor)

    page = client.get(ENTRIES, {"case_id": first.pk})

    shown = {entry.case_id for entry in page.context["cl"].result_list}
    assert shown == {first.pk} != {second.pk}


def test_the_owner_sees_no_audit_trail_on_the_case_page(client, owner, open_case):
    case = open_case()
    client.force_login(owner)

    page = client.get(reverse("admin:cases_case_change", args=(case.pk,)))

    assert page.status_code == 200
    assert "entries in the audit chain" not in page.content.decode()
