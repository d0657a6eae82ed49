"""The audit chain's keys at start-up, run as a real `manage.py` process: refused loudly, never echoed."""

import hashlib
import secrets

import pytest

from tests.portal.test_settings import manage, production_env

CURRENT = "audit-2026"
RETIRED_SECRET = "an-old-audit-chain-key-" + "r" * 24


def settings_of(env: dict[str, str], expression: str) -> str:
    # --no-imports: Django 5.2's shell otherwise announces its automatic imports on stdout.
    code = f"from django.conf import settings; print({expression})"
    result = manage(env, "shell", "--no-imports", "-c", code)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_production_refuses_to_start_without_an_audit_chain_key(tmp_path):
    result = manage(production_env(tmp_path, AUDIT_CHAIN_KEY=None), "check")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "PORTAL_ENV=production needs AUDIT_CHAIN_KEY or AUDIT_CHAIN_KEY_FILE." in result.stderr


def test_production_refuses_a_short_audit_chain_key_without_showing_it(tmp_path):
    short = "tooshort-" + secrets.token_hex(8)

    result = manage(production_env(tmp_path, AUDIT_CHAIN_KEY=short), "check")

    assert result.returncode != 0
    assert "AUDIT_CHAIN_KEY must be at least 32 characters long." in result.stderr
    assert short not in result.stderr + result.stdout


@pytest.mark.parametrize("other", ["SECRET_KEY", "FINGERPRINT_KEY", "HANDOFF_SIGNING_KEY"])
def test_production_refuses_an_audit_chain_key_shared_with_another_key(tmp_path, other):
    env = production_env(tmp_path)
    env["AUDIT_CHAIN_KEY"] = env[other]

    result = manage(env, "check")

    assert result.returncode != 0
    assert (
        "AUDIT_CHAIN_KEY must differ from SECRET_KEY, FINGERPRINT_KEY and HANDOFF_SIGNING_KEY."
        in result.stderr
    )
    assert env[other] not in result.stderr + result.stdout


def test_the_audit_chain_key_can_be_read_from_a_file(tmp_path):
    key = secrets.token_urlsafe(40)
    key_file = tmp_path / "audit_chain_key"
    key_file.write_text(key + "\n", encoding="utf-8")
    env = production_env(tmp_path, AUDIT_CHAIN_KEY=None, AUDIT_CHAIN_KEY_FILE=str(key_file))

    key_id = settings_of(env, "settings.AUDIT_CHAIN_KEY_ID")

    # The default key id is derived from the key: it proves the file's key is the one in use.
    assert key_id == "audit-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def test_retired_keys_are_read_as_id_key_pairs(tmp_path):
    env = production_env(
        tmp_path,
        AUDIT_CHAIN_KEY_ID=CURRENT,
        AUDIT_CHAIN_RETIRED_KEYS=f"audit-2024=first-{RETIRED_SECRET}, audit-2025={RETIRED_SECRET}",
    )

    shown = settings_of(env, "sorted(settings.AUDIT_CHAIN_RETIRED_KEYS)")

    assert shown == "['audit-2024', 'audit-2025']"


def test_retired_keys_can_be_read_from_a_file(tmp_path):
    keys_file = tmp_path / "retired_keys"
    keys_file.write_text(f"audit-2025={RETIRED_SECRET}\n", encoding="utf-8")
    env = production_env(tmp_path, AUDIT_CHAIN_KEY_ID=CURRENT, AUDIT_CHAIN_RETIRED_KEYS_FILE=str(keys_file))

    shown = settings_of(env, "settings.AUDIT_CHAIN_RETIRED_KEYS['audit-2025'] == " + repr(RETIRED_SECRET))

    assert shown == "True"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (f"audit-2025:{RETIRED_SECRET}", "AUDIT_CHAIN_RETIRED_KEYS entry 1 is not of the form id=key"),
        (
            f"audit-2024={RETIRED_SECRET},{RETIRED_SECRET}",
            "AUDIT_CHAIN_RETIRED_KEYS entry 2 is not of the form",
        ),
        ("audit-2025=", "AUDIT_CHAIN_RETIRED_KEYS entry 1 is not of the form id=key"),
        (f"={RETIRED_SECRET}", "AUDIT_CHAIN_RETIRED_KEYS entry 1 is not of the form id=key"),
        (
            f"audit-2025={RETIRED_SECRET},audit-2025=x{RETIRED_SECRET}",
            "AUDIT_CHAIN_RETIRED_KEYS names the id 'audit-2025' twice.",
        ),
    ],
    ids=["colon", "no-id", "no-key", "empty-id", "twice"],
)
def test_malformed_retired_keys_stop_start_up_naming_the_variable_not_the_secret(tmp_path, value, message):
    result = manage(production_env(tmp_path, AUDIT_CHAIN_RETIRED_KEYS=value), "check")

    assert result.returncode != 0
    assert message in result.stderr
    assert RETIRED_SECRET not in result.stderr + result.stdout


def test_the_current_key_id_cannot_also_be_retired(tmp_path):
    env = production_env(
        tmp_path, AUDIT_CHAIN_KEY_ID=CURRENT, AUDIT_CHAIN_RETIRED_KEYS=f"{CURRENT}={RETIRED_SECRET}"
    )

    result = manage(env, "check")

    assert result.returncode != 0
    assert (
        f"AUDIT_CHAIN_RETIRED_KEYS names the current key id '{CURRENT}'; retire a key after it stops being "
        "current." in result.stderr
    )
    assert RETIRED_SECRET not in result.stderr + result.stdout


def test_development_derives_a_key_when_none_is_set(tmp_path):
    env = production_env(tmp_path, PORTAL_ENV="development", AUDIT_CHAIN_KEY=None, CELERY_BROKER_URL=None)

    key_id = settings_of(env, "settings.AUDIT_CHAIN_KEY_ID")

    assert key_id.startswith("audit-")
    assert len(key_id) == len("audit-") + 12
