from django.dispatch import Signal

# Sent by nhi_inventory.services when an identity's criticality, privilege or exposure changes, with
# `identity_ids` and `actor`. nhi_inventory does not know which apps derive figures from those fields
# (cases derives priorities); it only announces the change, inside the same transaction.
identity_risk_changed = Signal()
