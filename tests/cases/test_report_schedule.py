"""Scheduled alignment-report snapshots: one per framework and week, whatever the number of runs."""

from datetime import UTC, date, datetime

import pytest
import time_machine
from django.core.exceptions import PermissionDenied

from cases.models import ReportFormat, ReportSnapshot
from cases.reports.services import report_snapshot_create
from cases.sweeps import alignment_snapshots_take, snapshot_week
from frameworks.services import CATALOG_DIR, catalog_load
from portal import roles

OWASP = "owasp-nhi-top10-2025"
AI_RMF = "nist-ai-rmf-1.0"


@pytest.fixture
def automation(role_groups):
    return roles.automation_user()


@pytest.fixture
def frameworks(db):
    for key in (OWASP, AI_RMF):
        catalog_load(path=CATALOG_DIR / f"{key}.json")


@pytest.mark.parametrize(
    ("today", "sunday"),
    [
        (date(2026, 3, 9), date(2026, 3, 8)),  # Monday: the week that just ended
        (date(2026, 3, 14), date(2026, 3, 8)),  # Saturday: still that week
        (date(2026, 3, 15), date(2026, 3, 8)),  # Sunday: the current week has not ended yet
        (date(2026, 3, 16), date(2026, 3, 15)),
    ],
)
def test_the_snapshot_covers_up_to_the_end_of_the_last_full_week(today, sunday):
    assert snapshot_week(today) == sunday


def test_it_takes_one_snapshot_per_framework_for_the_last_week(frameworks, automation):
    with time_machine.travel(datetime(2026, 3, 10, 1, 20, tzinfo=UTC), tick=False):
        assert alignment_snapshots_take(actor=automation) == 2

    snapshots = ReportSnapshot.objects.order_by("framework_key")
    assert [(s.framework_key, s.since, s.until) for s in snapshots] == [
        (AI_RMF, None, date(2026, 3, 8)),
        (OWASP, None, date(2026, 3, 8)),
    ]
    assert all(s.format == ReportFormat.PDF and s.requested_by == automation for s in snapshots)
    assert all(bytes(s.content).startswith(b"%PDF") for s in snapshots)


def test_running_it_again_the_same_week_takes_nothing(frameworks, automation):
    with time_machine.travel(datetime(2026, 3, 9, 1, 20, tzinfo=UTC), tick=False) as traveller:
        alignment_snapshots_take(actor=automation)
        second = alignment_snapshots_take(actor=automation)
        traveller.move_to(datetime(2026, 3, 15, 23, 59, tzinfo=UTC))
        later_that_week = alignment_snapshots_take(actor=automation)

    assert (second, later_that_week) == (0, 0)
    assert ReportSnapshot.objects.count() == 2


def test_the_next_week_gets_its_own_snapshots(frameworks, automation):
    with time_machine.travel(datetime(2026, 3, 9, 1, 20, tzinfo=UTC), tick=False) as traveller:
        alignment_snapshots_take(actor=automation)
        traveller.move_to(datetime(2026, 3, 16, 1, 20, tzinfo=UTC))
        assert alignment_snapshots_take(actor=automation) == 2

    assert set(ReportSnapshot.objects.values_list("until", flat=True)) == {
        date(2026, 3, 8),
        date(2026, 3, 15),
    }


def test_a_snapshot_saved_by_a_person_does_not_stand_in_for_the_scheduled_one(
    frameworks, automation, analyst
):
    with time_machine.travel(datetime(2026, 3, 9, 1, 20, tzinfo=UTC), tick=False):
        report_snapshot_create(
            actor=analyst, framework_key=OWASP, fmt="pdf", since=None, until=date(2026, 3, 8)
        )
        assert alignment_snapshots_take(actor=automation) == 2


def test_the_outsider_cannot_take_snapshots(frameworks, outsider):
    with pytest.raises(PermissionDenied, match=r"cases\.add_reportsnapshot"):
        alignment_snapshots_take(actor=outsider)
