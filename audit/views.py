"""The page behind the case admin's "Export evidence bundle": the signed zip as a download.

A URL of its own (portal/urls.py) rather than the action's own response: the admin is imported by every
process at start-up (Django's admin autodiscovery), and the bundle's signing key material and its crypto
library are needed only where a bundle is actually downloaded.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse

from audit.downloads import bundle_download


def evidence_bundle_view(request: HttpRequest, case_id: int) -> HttpResponseBase:
    try:
        response, summary = bundle_download(actor=request.user, case_id=case_id)
    except (PermissionDenied, ValidationError) as error:
        reason = " ".join(error.messages) if isinstance(error, ValidationError) else str(error)
        messages.error(request, reason)
        return HttpResponseRedirect(reverse("admin:cases_case_changelist"))
    # Shown on the next page: the download itself cannot carry a message.
    messages.success(
        request,
        f"Exported {summary.filename} (SHA-256 {summary.sha256}), signed with the bundle key "
        f"{summary.public_key.fingerprint}. Auditors check it against the key you give them out of band "
        "(manage.py audit_public_key).",
    )
    return response
