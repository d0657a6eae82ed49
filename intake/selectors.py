"""Which assistant outputs a person may see, and which open case an output joins."""

from collections.abc import Sequence

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from cases.models import Case, CaseState
from cases.selectors import case_list
from intake.models import AssistantOutput, AssistantOutputIdentity, ProposedAction
from nhi_inventory.selectors import identity_scope, sees_all_identities
from portal.permissions import Actor

# An output joins a case that can still take its proposals as work. A verified case is done but for its
# closing, so new work goes to a new case instead.
JOINABLE_STATES = (CaseState.IDENTIFIED, CaseState.CONFIRMED, CaseState.ASSIGNED, CaseState.IN_PROGRESS)


def assistant_output_scope(user: Actor) -> Q:
    """Outputs that concern an identity the user or one of their teams owns (as cases do for owners)."""
    concerns_own_identity = Exists(
        AssistantOutputIdentity.objects.filter(output_id=OuterRef("pk")).filter(
            identity_scope(user, prefix="nhi__")
        )
    )
    return Q(concerns_own_identity)


def assistant_output_list(*, user: Actor) -> QuerySet[AssistantOutput]:
    outputs = AssistantOutput.objects.all()
    if not user.is_authenticated or not user.is_active:
        return outputs.none()
    if sees_all_identities(user):
        return outputs
    return outputs.filter(assistant_output_scope(user))


def assistant_output_list_detailed(*, user: Actor) -> QuerySet[AssistantOutput]:
    """The list with everything its API representation shows, in a fixed number of queries."""
    return (
        assistant_output_list(user=user)
        .select_related("case", "submitted_by", "recommendation_item", "evidence", "context_evidence")
        .prefetch_related(
            "nhis",
            "credentials",
            Prefetch("proposed_actions", queryset=ProposedAction.objects.select_related("action_item")),
        )
    )


def joinable_case(*, user: Actor, kind: str, nhi_ids: Sequence[int]) -> Case | None:
    """The oldest case of this kind, still open to work, that concerns one of these identities."""
    return (
        case_list(user=user)
        .filter(kind=kind, state__in=JOINABLE_STATES, identity_links__nhi_id__in=list(nhi_ids))
        .order_by("pk")
        .first()
    )
