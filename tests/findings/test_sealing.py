"""Sealing: what the import keeps of a secret must be exactly what the rest of the portal computes."""

import hashlib
import hmac
from typing import Any

import pytest
from django.conf import settings

from findings.ingest import KeyedHash, Sealer
from findings.parsers.base import Location, ScannedSecret
from nhi_inventory.fingerprints import fingerprint_secret, redacted_preview


@pytest.mark.parametrize("key", [b"", b"short key", b"k" * 64, b"a much longer key than one block " * 4])
def test_keyed_hash_is_hmac_sha256(key: bytes) -> None:
    for message in ("", "AKIA1SKCZTKMBF4JDPY7", "ünïcode", "x" * 1000):
        assert (
            KeyedHash(key).hexdigest(message) == hmac.new(key, message.encode(), hashlib.sha256).hexdigest()
        )


def test_a_sealed_secret_has_the_fingerprint_of_a_registered_credential() -> None:
    sealed = Sealer(source="repo").seal(_entry("ghp_0123456789abcdefghijABCDEFGHIJ012345"))
    assert sealed is not None
    assert sealed.fingerprint == fingerprint_secret("ghp_0123456789abcdefghijABCDEFGHIJ012345").value


def test_the_alias_is_the_keyed_sha1_detect_secrets_would_give() -> None:
    secret = "sk_live_fY5PBNaNKNYd7pMCapFTzdbK"
    sealed = Sealer(source="repo").seal(_entry(secret))
    sha1 = hashlib.sha1(secret.encode()).hexdigest()
    key = settings.FINGERPRINT_KEY.encode()
    assert sealed is not None
    assert sealed.sha1_fingerprint == hmac.new(key, f"sha1:{sha1}".encode(), hashlib.sha256).hexdigest()


def test_a_remembered_secret_under_another_detector_gets_that_detectors_preview() -> None:
    sealer = Sealer(source="repo")
    secret = "AKIA1SKCZTKMBF4JDPY7"
    first, second = (
        sealer.seal(_entry(secret, detector="aws")),
        sealer.seal(_entry(secret, detector="generic")),
    )
    assert first is not None
    assert second is not None
    assert (first.preview, second.preview) == (
        redacted_preview(secret, detector="aws"),
        redacted_preview(secret, detector="generic"),
    )
    assert first.fingerprint == second.fingerprint


def test_the_location_key_tells_places_apart_and_ignores_the_commit() -> None:
    sealer = Sealer(source="repo")
    keys = {
        sealer.seal(_entry("AKIA1SKCZTKMBF4JDPY7", **place)).location_key  # type: ignore[union-attr]
        for place in (
            {"path": "a.env", "line": 1},
            {"path": "a.env", "line": 2},
            {"path": "b.env", "line": 1},
            {"path": "", "url": "https://example.com/a"},
        )
    }
    same = {
        sealer.seal(_entry("AKIA1SKCZTKMBF4JDPY7", path="a.env", line=1, commit=commit)).location_key  # type: ignore[union-attr]
        for commit in ("aaa", "bbb")
    }
    assert len(keys) == 4
    assert len(same) == 1


def _entry(secret: str, *, detector: str = "aws", **location: Any) -> ScannedSecret:
    return ScannedSecret(
        position="finding 1",
        scanner="gitleaks",
        detector=detector,
        location=Location(**{"path": "config.env", "line": 3, **location}),
        secret=secret,
        context=f"TOKEN={secret}",
    )
