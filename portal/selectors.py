from django.db.models import QuerySet

from portal.models import ApiToken
from portal.permissions import Actor


def api_token_list(*, user: Actor) -> QuerySet[ApiToken]:
    """A person's own tokens: through the API, even administrators see only theirs (the admin shows all)."""
    if not user.is_authenticated or not user.is_active:
        return ApiToken.objects.none()
    return ApiToken.objects.filter(user_id=user.pk)
