"""The owner page: plain pages where an NHI owner sees the leaked secrets of their identities and answers.

Reads go through the selectors (scoped by user), writes through `exposure_answer` (or, for an emailed
link, `answer_link_answer`), which check permission and scope again. An exposure outside the user's scope
is a 404, never a 403, so its existence is not revealed.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from findings.forms import AnswerForm
from findings.links import AnswerLinkRefused, answer_link_open
from findings.models import Exposure, ExposureState, Finding
from findings.selectors import (
    exposure_is_answerable_by,
    exposure_list,
    exposures_owned_awaiting_answer,
    with_recent_locations,
)
from findings.services import Answer, answer_link_answer, exposure_answer

PAGE_SIZE = 50
LIST_LOCATIONS = 5
DETAIL_LOCATIONS = 50


def _answers_for(exposure: Exposure) -> list[str] | None:
    """Every answer while it awaits one; once confirmed, only "already rotated or revoked"."""
    return [Answer.REMEDIATED] if exposure.state == ExposureState.CONFIRMED else None


def _locations(exposure: Exposure) -> QuerySet[Finding]:
    return exposure.findings.order_by("-last_seen_at", "-id")[:DETAIL_LOCATIONS]


def _answered_message(exposure: Exposure) -> str:
    preview = exposure.credential.preview if exposure.credential else exposure.preview
    return f"Thank you: {preview} is now “{exposure.get_state_display()}”."


@login_required
@require_http_methods(["GET"])
def owner_list(request: HttpRequest) -> HttpResponse:
    exposures = with_recent_locations(
        exposures_owned_awaiting_answer(user=request.user), limit=LIST_LOCATIONS
    )
    page = Paginator(exposures, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "findings/owner_list.html", {"page": page, "list_locations": LIST_LOCATIONS})


@login_required
@require_http_methods(["GET", "POST"])
def exposure_detail(request: HttpRequest, exposure_id: int) -> HttpResponse:
    exposure = get_object_or_404(
        exposure_list(user=request.user).select_related(
            "nhi", "nhi__owner_team", "credential", "answered_by"
        ),
        pk=exposure_id,
    )
    answers_for_it = exposure_is_answerable_by(exposure=exposure, user=request.user)
    form = None
    if request.method == "POST":
        if not answers_for_it:
            # Staff see every exposure, but only the identity's owners answer for it.
            raise PermissionDenied("Only the owners of this identity answer for its exposures.")
        # Every answer is accepted here: if a colleague answered meanwhile, the service says so by name.
        form = AnswerForm(request.POST)
        if form.is_valid():
            try:
                answered = exposure_answer(actor=request.user, exposure_id=exposure.pk, **form.arguments())
            except ValidationError as error:
                form.add_service_errors(error)
            else:
                messages.success(request, _answered_message(answered))
                return redirect("findings:owner_list")
    elif answers_for_it and (exposure.awaits_answer or exposure.state == ExposureState.CONFIRMED):
        form = AnswerForm(answers=_answers_for(exposure))
    context = {"exposure": exposure, "form": form, "locations": _locations(exposure)}
    return render(request, "findings/exposure_detail.html", context)


def _refused(request: HttpRequest, reason: str) -> HttpResponse:
    return _private(render(request, "findings/link_refused.html", {"reason": reason}, status=403))


def _private(response: HttpResponse) -> HttpResponse:
    # The token is in the address: keep it out of Referer headers sent to any other site. Not
    # "no-referrer": browsers then send "Origin: null" with the form, which CSRF protection refuses.
    response["Referrer-Policy"] = "same-origin"
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def answer_by_link(request: HttpRequest, exposure_id: int, token: str) -> HttpResponse:
    """One exposure's answer form, opened from an email. It does not sign anyone in."""
    try:
        link = answer_link_open(token=token, exposure_id=exposure_id)
    except AnswerLinkRefused as refusal:
        return _refused(request, str(refusal))
    exposure = link.exposure
    form = AnswerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            answered = answer_link_answer(token=token, exposure_id=exposure_id, **form.arguments())
        except AnswerLinkRefused as refusal:
            return _refused(request, str(refusal))
        except PermissionDenied as error:
            return _refused(request, str(error))
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            context = {"exposure": answered, "message": _answered_message(answered)}
            return _private(render(request, "findings/link_answered.html", context))
    context = {"exposure": exposure, "form": form, "locations": _locations(exposure), "owner": link.user}
    return _private(render(request, "findings/link_answer.html", context))
