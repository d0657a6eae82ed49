"""The audit chain's HMAC keys: the current one signs, retired ones still verify what they signed."""

from django.conf import settings


def current_chain_key() -> tuple[str, bytes]:
    return settings.AUDIT_CHAIN_KEY_ID, settings.AUDIT_CHAIN_KEY.encode()


def chain_keys() -> dict[str, bytes]:
    keys = {key_id: key.encode() for key_id, key in settings.AUDIT_CHAIN_RETIRED_KEYS.items()}
    key_id, key = current_chain_key()
    keys[key_id] = key
    return keys
