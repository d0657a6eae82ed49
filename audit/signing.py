"""The Ed25519 key that signs evidence bundles, derived from the audit chain key.

Derived rather than stored: the portal holds one audit secret (AUDIT_CHAIN_KEY) and nothing new to keep or
back up; HKDF with its own `info` keeps this key independent of the chain's HMAC key. Auditors get the
public key out of band (`manage.py audit_public_key`), never only from a bundle, which anyone who can change
a bundle could also re-sign. Rotating AUDIT_CHAIN_KEY changes this key: bundles signed earlier verify with
the public key of their time, which the operators should keep alongside it.
"""

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings

from audit.bundle_verifier.verify_bundle import fingerprint

HKDF_INFO = b"nhi-portal evidence bundle signing"


@dataclass(frozen=True)
class PublicKey:
    hex: str
    fingerprint: str


def bundle_signing_key() -> Ed25519PrivateKey:
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(
        settings.AUDIT_CHAIN_KEY.encode()
    )
    return Ed25519PrivateKey.from_private_bytes(seed)


def bundle_public_key() -> PublicKey:
    raw = bundle_signing_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return PublicKey(hex=raw.hex(), fingerprint=fingerprint(raw))


def bundle_sign(message: bytes) -> bytes:
    return bundle_signing_key().sign(message)
