"""The signature scheme on its own, and the production rule for HANDOFF_SIGNING_KEY."""

import secrets
import time
from pathlib import Path

import pytest

from handoffs import signing
from tests.handoffs.conftest import receiver_signature
from tests.portal.test_settings import manage, production_env


def test_the_portal_signs_as_the_documentation_tells_a_receiver_to_verify():
    key, stamp, body = "whk_" + "ab" * 32, "1700000000", b'{"a":1}'

    assert signing.signature(key=key, timestamp=stamp, body=body) == receiver_signature(key, stamp, body)


def test_the_signature_covers_the_timestamp_and_every_byte_of_the_body():
    key = "whk_" + "cd" * 32
    signed = signing.signature(key=key, timestamp="1700000000", body=b'{"a":1}')

    assert signing.signature_matches(key=key, timestamp="1700000000", body=b'{"a":1}', given=signed)
    assert not signing.signature_matches(key=key, timestamp="1700000001", body=b'{"a":1}', given=signed)
    assert not signing.signature_matches(key=key, timestamp="1700000000", body=b'{"a":2}', given=signed)
    assert not signing.signature_matches(key=key + "0", timestamp="1700000000", body=b'{"a":1}', given=signed)


def test_a_non_ascii_signature_header_is_simply_wrong():
    assert not signing.signature_matches(key="k", timestamp="1", body=b"", given="sha256=é")


@pytest.mark.parametrize(
    ("offset", "fresh"), [(0, True), (-300, True), (300, True), (-301, False), (301, False)]
)
def test_a_timestamp_is_fresh_within_five_minutes_either_way(offset, fresh):
    now = 1_800_000_000.0

    assert signing.timestamp_is_fresh(str(int(now) + offset), now=now) is fresh


def test_a_timestamp_is_read_at_the_portals_clock():
    assert signing.timestamp_is_fresh(signing.timestamp_now())
    assert not signing.timestamp_is_fresh(str(int(time.time()) - 3600))


def test_production_refuses_to_start_without_a_handoff_signing_key(tmp_path: Path):
    result = manage(production_env(tmp_path, HANDOFF_SIGNING_KEY=None), "check")

    assert result.returncode != 0
    assert "needs HANDOFF_SIGNING_KEY or HANDOFF_SIGNING_KEY_FILE" in result.stderr


def test_production_refuses_a_handoff_signing_key_equal_to_the_secret_key(tmp_path: Path):
    shared = secrets.token_urlsafe(64)

    result = manage(production_env(tmp_path, SECRET_KEY=shared, HANDOFF_SIGNING_KEY=shared), "check")

    assert result.returncode != 0
    assert "HANDOFF_SIGNING_KEY must differ" in result.stderr


def test_production_reads_the_handoff_signing_key_from_a_file(tmp_path: Path):
    key_file = tmp_path / "handoff_key"
    key_file.write_text(secrets.token_urlsafe(40), encoding="utf-8")
    env = production_env(tmp_path, HANDOFF_SIGNING_KEY=None, HANDOFF_SIGNING_KEY_FILE=str(key_file))

    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stderr
