"""Fingerprints are HMAC-SHA256 under the dedicated FINGERPRINT_KEY; previews never show the secret."""

import hashlib
import hmac

import pytest
from django.test import override_settings

from nhi_inventory.fingerprints import fingerprint_secret, redacted_preview

SECRET = "ghp_R3alLookingTokenValue0123456789abcdef"


@override_settings(FINGERPRINT_KEY="test-fingerprint-key-0123456789abcdef", FINGERPRINT_KEY_ID="fp-test")
def test_the_fingerprint_is_hmac_sha256_under_the_fingerprint_key():
    expected = hmac.new(b"test-fingerprint-key-0123456789abcdef", SECRET.encode(), hashlib.sha256).hexdigest()

    assert fingerprint_secret(SECRET).value == expected


@override_settings(
    FINGERPRINT_KEY="test-fingerprint-key-0123456789abcdef", SECRET_KEY="a-different-secret-key-" * 3
)
def test_the_fingerprint_is_not_keyed_with_the_secret_key():
    under_secret_key = hmac.new(
        ("a-different-secret-key-" * 3).encode(), SECRET.encode(), hashlib.sha256
    ).hexdigest()

    assert fingerprint_secret(SECRET).value != under_secret_key


def test_the_fingerprint_changes_when_the_fingerprint_key_changes():
    with override_settings(FINGERPRINT_KEY="first-key-0123456789abcdef0123456789"):
        first = fingerprint_secret(SECRET).value
    with override_settings(FINGERPRINT_KEY="second-key-0123456789abcdef012345678"):
        second = fingerprint_secret(SECRET).value

    assert first != second


def test_the_fingerprint_is_not_a_plain_sha256_of_the_secret():
    assert fingerprint_secret(SECRET).value != hashlib.sha256(SECRET.encode()).hexdigest()


@override_settings(FINGERPRINT_KEY_ID="fp-rotation-2025")
def test_the_fingerprint_records_the_key_id():
    assert fingerprint_secret(SECRET).key_id == "fp-rotation-2025"


def test_the_same_secret_gives_the_same_fingerprint():
    assert fingerprint_secret(SECRET) == fingerprint_secret(SECRET)


def test_it_refuses_to_fingerprint_an_empty_secret():
    with pytest.raises(ValueError, match="empty secret"):
        fingerprint_secret("")


def test_the_preview_shows_four_leading_characters_and_the_length():
    assert redacted_preview(SECRET) == f"ghp_…({len(SECRET)} chars)"


def test_the_preview_never_contains_the_secret():
    preview = redacted_preview(SECRET)

    assert SECRET not in preview
    assert SECRET[4:8] not in preview


def test_the_preview_of_a_short_secret_shows_no_characters():
    assert redacted_preview("hunter2") == "…(7 chars)"


def test_the_preview_names_the_detector():
    assert redacted_preview(SECRET, detector="github").startswith("github:ghp_…")
