from typing import Any

from django.dispatch import receiver

from cases.services import case_refresh_priorities
from nhi_inventory.signals import identity_risk_changed
from portal.permissions import Actor


@receiver(identity_risk_changed, dispatch_uid="cases.refresh_priorities")
def refresh_priorities(sender: Any, *, identity_ids: list[int], actor: Actor, **kwargs: Any) -> None:
    case_refresh_priorities(actor=actor, identity_ids=identity_ids)
