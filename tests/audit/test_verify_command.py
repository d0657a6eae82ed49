"""`manage.py verify_audit_trail` and the nightly task: the verdict, the exit status, and the record kept."""

import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from audit.models import AuditVerification
from audit.tasks import verify_audit_trail
from portal.celery import BEAT_SCHEDULE
from tests.audit import tamper


@pytest.fixture
def chain(analyst: Any) -> list[Any]:
    return tamper.append_chain(10, actor=analyst)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("verify_audit_trail", *args, stdout=out)
    return out.getvalue()


def test_an_intact_chain_exits_zero_with_a_summary(chain):
    output = run()

    assert output.startswith(
        f"Audit trail intact: 10 entries checked, up to #10 ({chain[-1].entry_hash[:16]}…), in "
    )
    assert output.rstrip().endswith(" s.")


def test_a_changed_entry_exits_non_zero_naming_it(chain):
    tamper.set_columns(4, mac="0" * 64)

    with pytest.raises(CommandError) as refused:
        run()

    assert str(refused.value) == (
        "Audit trail NOT intact (changed): Entry #4 was changed: its content no longer matches its hash and "
        "MAC. Entries #1 to #3 are intact."
    )
    # What manage.py exits with (BaseCommand.run_from_argv).
    assert refused.value.returncode == 1


def test_a_missing_entry_exits_non_zero_naming_it(chain):
    tamper.delete_entries(6)

    with pytest.raises(
        CommandError, match=r"NOT intact \(missing\): Entry #6 is missing: entry #7 follows #5"
    ):
        run()


def test_json_output_for_an_intact_chain(chain):
    report = json.loads(run("--json"))

    assert report["ok"] is True
    assert report["problem"] is None
    assert (report["entries_checked"], report["last_seq"], report["last_hash"]) == (
        10,
        10,
        chain[-1].entry_hash,
    )
    assert isinstance(report["seconds"], float | int)


def test_json_output_for_a_broken_chain_names_the_problem_and_still_fails(chain):
    tamper.swap_positions(3, 8)
    out = io.StringIO()

    with pytest.raises(CommandError):
        call_command("verify_audit_trail", "--json", stdout=out)

    report = json.loads(out.getvalue())
    assert report["ok"] is False
    assert report["problem"] == {
        "kind": "reordered",
        "seq": 3,
        "message": (
            "The chain is out of order: entry #3 is stored at position 8, and position 3 holds entry #8."
        ),
    }
    assert report["last_seq"] == 2


def test_each_run_is_recorded(chain):
    run()
    tamper.delete_entries(10)
    with pytest.raises(CommandError):
        run()

    intact, broken = AuditVerification.objects.order_by("pk")
    assert (intact.trigger, intact.ok, intact.entries_checked, intact.last_seq) == ("command", True, 10, 10)
    assert intact.requested_by is None
    assert (broken.trigger, broken.ok, broken.problem_kind, broken.problem_seq, broken.last_seq) == (
        "command",
        False,
        "missing",
        10,
        9,
    )
    assert broken.message.startswith("Entry #10 is missing from the end of the chain")


def test_the_nightly_task_records_a_verification(chain):
    pk = verify_audit_trail.delay().get()

    recorded = AuditVerification.objects.get(pk=pk)
    assert (recorded.trigger, recorded.ok, recorded.last_seq, recorded.requested_by) == (
        "schedule",
        True,
        10,
        None,
    )


def test_the_nightly_task_records_a_broken_chain_too(chain):
    tamper.delete_entries(2)

    recorded = AuditVerification.objects.get(pk=verify_audit_trail.delay().get())

    assert (recorded.ok, recorded.problem_kind, recorded.problem_seq) == (False, "missing", 2)


@override_settings(ADMINS=[("security@example.com", "security@example.com")])
def test_a_broken_chain_is_emailed_to_the_admins_and_logged(chain, mailoutbox, caplog):
    tamper.delete_entries(2)

    verify_audit_trail.delay().get()

    assert [message.to for message in mailoutbox] == [["security@example.com"]]
    assert "Audit trail NOT intact" in mailoutbox[0].subject
    assert "Entry #2 is missing: entry #3 follows #1" in mailoutbox[0].body
    assert [record.levelname for record in caplog.records if record.name == "audit.services"] == ["ERROR"]


@override_settings(ADMINS=[("security@example.com", "security@example.com")])
def test_an_intact_chain_alerts_nobody(chain, mailoutbox):
    verify_audit_trail.delay().get()

    assert mailoutbox == []


def test_the_task_is_scheduled_nightly_and_safe_to_run_twice():
    assert BEAT_SCHEDULE["verify-audit-trail"]["task"] == verify_audit_trail.name
    assert verify_audit_trail.acks_late is True
