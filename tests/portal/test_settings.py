"""Production start-up, run as a real `manage.py` process: settings are read once per process."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Variables that would change how the child reads its settings (and every NAME_FILE) are dropped; the rest
# (PATH, HOME, ...) is kept.
_CONTROLLED = {
    "PORTAL_ENV",
    "DEBUG",
    "SECRET_KEY",
    "FINGERPRINT_KEY",
    "FINGERPRINT_KEY_ID",
    "HANDOFF_SIGNING_KEY",
    "AUDIT_CHAIN_KEY",
    "AUDIT_CHAIN_KEY_ID",
    "AUDIT_CHAIN_RETIRED_KEYS",
    "ALLOWED_HOSTS",
    "CELERY_BROKER_URL",
    "DATABASE_URL",
    "DJANGO_SETTINGS_MODULE",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
}


def production_env(tmp_path: Path, **overrides: str | None) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _CONTROLLED and not name.endswith("_FILE")
    }
    env.update(
        {
            "PORTAL_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "FINGERPRINT_KEY": secrets.token_urlsafe(40),
            "HANDOFF_SIGNING_KEY": secrets.token_urlsafe(40),
            "AUDIT_CHAIN_KEY": secrets.token_urlsafe(40),
            "ALLOWED_HOSTS": "portal.example.com",
            "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
            "PORTAL_VAR_DIR": str(tmp_path),
        }
    )
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_deploy_check_passes_without_warnings_in_production(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = manage(production_env(tmp_path, SECRET_KEY=None), "check")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


def test_production_refuses_a_broker_url_given_only_as_a_file(tmp_path):
    # CELERY_BROKER_URL is not read from a file: start-up must stop, not fall back to the in-memory broker.
    broker_file = tmp_path / "broker_url"
    broker_file.write_text("redis://broker.internal:6379/0", encoding="utf-8")
    env = production_env(tmp_path, CELERY_BROKER_URL=None, CELERY_BROKER_URL_FILE=str(broker_file))

    result = manage(env, "check")

    assert result.returncode != 0
    assert "needs CELERY_BROKER_URL" in result.stderr


@pytest.mark.parametrize("portal_env", ["production", "development"])
def test_a_malformed_debug_value_stops_start_up_naming_debug(tmp_path, portal_env):
    result = manage(production_env(tmp_path, PORTAL_ENV=portal_env, DEBUG="maybe"), "check")

    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_without_a_real_broker_tasks_run_in_process() -> None:
    # memory:// has no workers: a task sent there would never run (no owner would ever be emailed).
    assert settings.CELERY_BROKER_URL.startswith("memory://")
    assert settings.CELERY_TASK_ALWAYS_EAGER is True
