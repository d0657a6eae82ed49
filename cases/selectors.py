from typing import TypeVar

from django.db.models import Exists, OuterRef, Q, QuerySet

from cases.models import ActionItem, Approval, ApprovalStatus, Case, CaseIdentity, CaseTransition, Evidence
from nhi_inventory.selectors import identity_scope, team_ids_of
from portal.permissions import Actor

Child = TypeVar("Child", Evidence, ActionItem, Approval)


def sees_all_cases(user: Actor) -> bool:
    return user.is_active and user.has_perm("cases.view_all_cases")


def case_scope(user: Actor) -> Q:
    """Cases owned by one of the user's teams, or concerning an identity the user or their teams own."""
    concerns_own_identity = Exists(
        CaseIdentity.objects.filter(case_id=OuterRef("pk")).filter(identity_scope(user, prefix="nhi__"))
    )
    return Q(owning_team_id__in=team_ids_of(user)) | Q(concerns_own_identity)


def case_list(*, user: Actor) -> QuerySet[Case]:
    cases = Case.objects.all()
    if not user.is_authenticated or not user.is_active:
        return cases.none()
    if sees_all_cases(user):
        return cases
    return cases.filter(case_scope(user))


def case_is_visible(*, case: Case, user: Actor) -> bool:
    return case_list(user=user).filter(pk=case.pk).exists()


def case_transition_log(*, case: Case) -> QuerySet[CaseTransition]:
    return case.transitions.select_related("actor").order_by("at", "id")


def _scoped_children(rows: QuerySet[Child], user: Actor) -> QuerySet[Child]:
    """Rows that hang off a case, limited to the cases the user may see."""
    if not user.is_authenticated or not user.is_active:
        return rows.none()
    if sees_all_cases(user):
        return rows
    return rows.filter(case__in=case_list(user=user))


def evidence_list(*, user: Actor) -> QuerySet[Evidence]:
    return _scoped_children(Evidence.objects.all(), user)


def action_item_list(*, user: Actor) -> QuerySet[ActionItem]:
    items = _scoped_children(ActionItem.objects.all(), user)
    if user.is_authenticated and not sees_all_cases(user):
        # Owners also see the work routed to their teams on cases they cannot otherwise open.
        items = items | ActionItem.objects.filter(owning_team_id__in=team_ids_of(user))
    return items


def approval_list(*, user: Actor) -> QuerySet[Approval]:
    return _scoped_children(Approval.objects.all(), user)


def pending_approvals_for(*, user: Actor) -> QuerySet[Approval]:
    """Requests the user may decide: pending, and requested by someone else (four-eyes)."""
    return approval_list(user=user).filter(status=ApprovalStatus.PENDING).exclude(requested_by_id=user.pk)
