import hashlib
from datetime import date

from django.db import transaction

from cases.models import ReportSnapshot
from cases.reports.outputs import report_output
from portal.permissions import Actor, require_permission


@transaction.atomic
def report_snapshot_create(
    *, actor: Actor, framework_key: str, fmt: str, since: date | None, until: date | None
) -> ReportSnapshot:
    """Generate the report and store exactly its bytes, its parameters, who asked, when, and the sha256."""
    user = require_permission(actor, "cases.add_reportsnapshot", to="save a report snapshot")
    if since and until and since > until:
        raise ValueError("The period starts after it ends.")
    output = report_output(framework_key=framework_key, fmt=fmt, since=since, until=until)
    return ReportSnapshot.objects.create(
        framework_key=framework_key,
        format=fmt,
        since=since,
        until=until,
        requested_by=user,
        created_at=output.report.generated_at,
        sha256=hashlib.sha256(output.content).hexdigest(),
        content=output.content,
        content_type=output.content_type,
        filename=output.filename,
    )
