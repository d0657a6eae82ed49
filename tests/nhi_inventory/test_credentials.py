"""Registering a credential keeps only its keyed fingerprint and a redacted preview, never the secret."""

import hashlib
import hmac

import pytest
from django.apps import apps
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models

from nhi_inventory import services
from nhi_inventory.models import Credential, CredentialStatus, CredentialType

SECRET = "AKIAQ7EXAMPLEsecretMaterial+9f8e7d6c5b4a3/zz"


def text_values(model: type[models.Model]) -> list[str]:
    fields = [
        f.attname for f in model._meta.concrete_fields if isinstance(f, (models.CharField, models.TextField))
    ]
    return [str(value) for row in model._default_manager.values_list(*fields) for value in row if value]


def register(actor, identity, secret: str = SECRET, **extra):
    return services.credential_register(
        actor=actor, nhi_id=identity.pk, credential_type=CredentialType.ACCESS_KEY, secret=secret, **extra
    )


def test_registering_stores_the_hmac_fingerprint_under_the_fingerprint_key(analyst, payments_identity):
    credential = register(analyst, payments_identity)

    expected = hmac.new(settings.FINGERPRINT_KEY.encode(), SECRET.encode(), hashlib.sha256).hexdigest()
    assert credential.fingerprint == expected
    assert credential.fingerprint_key_id == settings.FINGERPRINT_KEY_ID


def test_registering_stores_a_redacted_preview(analyst, payments_identity):
    credential = register(analyst, payments_identity)

    assert credential.preview == f"AKIA…({len(SECRET)} chars)"


def test_the_secret_is_in_no_column_of_the_credential_table(analyst, payments_identity):
    register(analyst, payments_identity, label="prod deploy key")

    values = text_values(Credential)
    assert values, "the scan found no text to check"
    assert not [value for value in values if SECRET in value or SECRET[4:] in value]


def test_the_secret_is_in_no_column_of_the_credential_history(analyst, payments_identity):
    credential = register(analyst, payments_identity)
    services.credential_set_status(
        actor=analyst, credential_id=credential.pk, status=CredentialStatus.ROTATED
    )

    history = Credential.history.model
    assert history.objects.count() == 2
    assert not [value for value in text_values(history) if SECRET in value or SECRET[4:] in value]


def test_the_secret_is_in_no_text_column_of_any_table(analyst, payments_identity):
    register(analyst, payments_identity)

    leaks = {
        model._meta.label
        for model in apps.get_models()
        for value in text_values(model)
        if SECRET[4:] in value
    }
    assert leaks == set()


def test_a_duplicate_secret_is_refused(analyst, payments_identity, platform_identity):
    first = register(analyst, payments_identity)

    with pytest.raises(ValidationError) as refused:
        register(analyst, platform_identity)

    assert f"credential #{first.pk}" in str(refused.value.message_dict["secret"])
    assert Credential.objects.count() == 1


def test_the_duplicate_refusal_does_not_repeat_the_secret(analyst, payments_identity, platform_identity):
    register(analyst, payments_identity)

    with pytest.raises(ValidationError) as refused:
        register(analyst, platform_identity)

    assert SECRET not in str(refused.value)
    assert SECRET[4:] not in str(refused.value)


def test_an_empty_secret_is_refused(analyst, payments_identity):
    with pytest.raises(ValidationError, match="The secret is empty"):
        register(analyst, payments_identity, secret="   ")


def test_an_unknown_credential_type_is_refused(analyst, payments_identity):
    with pytest.raises(ValidationError, match="not a known credential type"):
        services.credential_register(
            actor=analyst, nhi_id=payments_identity.pk, credential_type="magic", secret=SECRET
        )


def test_the_auditor_may_not_register_credentials(auditor, payments_identity):
    with pytest.raises(PermissionDenied, match="add_credential"):
        register(auditor, payments_identity)


def test_the_owner_may_not_register_credentials(owner, payments_identity):
    with pytest.raises(PermissionDenied):
        register(owner, payments_identity)


def test_registering_writes_history_with_the_actor(analyst, payments_identity):
    credential = register(analyst, payments_identity)

    assert credential.history.get().history_user == analyst


def test_a_revoked_credential_stays_revoked(analyst, payments_identity):
    credential = register(analyst, payments_identity)
    services.credential_set_status(
        actor=analyst, credential_id=credential.pk, status=CredentialStatus.REVOKED
    )

    with pytest.raises(ValidationError, match="stays revoked"):
        services.credential_set_status(
            actor=analyst, credential_id=credential.pk, status=CredentialStatus.ACTIVE
        )
