"""The catalogs are the same for everyone who may read them; people without the view permission see none."""

from django.db.models import QuerySet

from frameworks.models import Control, Framework
from portal.permissions import Actor


def framework_list(*, user: Actor) -> QuerySet[Framework]:
    if not user.is_authenticated or not user.is_active or not user.has_perm("frameworks.view_framework"):
        return Framework.objects.none()
    return Framework.objects.all()


def control_list(*, user: Actor) -> QuerySet[Control]:
    if not user.is_authenticated or not user.is_active or not user.has_perm("frameworks.view_control"):
        return Control.objects.none()
    return Control.objects.all()
