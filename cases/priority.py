"""Case priority: how urgently a case needs attention, from its severity and the identities it concerns.

score = 2 × severity (1..4) + the riskiest linked identity's criticality (0..3) + privilege (0..3)
        + 1 if internet-facing + 1 if third-party                          → 2..16
P1 ≥ 12, P2 ≥ 9, P3 ≥ 6, else P4. A case with no linked identity is ranked on severity alone.
"""

from collections.abc import Iterable

from cases.models import Priority
from nhi_inventory.models import NonHumanIdentity

P1_FROM, P2_FROM, P3_FROM = 12, 9, 6


def identity_risk(identity: NonHumanIdentity) -> int:
    return (
        int(identity.criticality)
        + int(identity.privilege_level)
        + int(identity.internet_facing)
        + int(identity.third_party)
    )


def priority_for(*, severity: int, identities: Iterable[NonHumanIdentity]) -> Priority:
    score = 2 * severity + max((identity_risk(identity) for identity in identities), default=0)
    if score >= P1_FROM:
        return Priority.P1
    if score >= P2_FROM:
        return Priority.P2
    if score >= P3_FROM:
        return Priority.P3
    return Priority.P4
