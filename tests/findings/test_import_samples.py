"""Every real scanner sample, and real detect-secrets output, imported without a secret left anywhere."""

import base64
import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from findings.models import Exposure, Finding, FingerprintScheme, ImportRun
from findings.parsers import PARSERS, ScannedSecret
from findings.services import findings_import
from tests.findings.leaks import tables_containing
from tests.findings.reports import gitleaks_v8

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).parent / "samples"
SAMPLE_FORMATS = {
    "gitleaks__data_many.json": "gitleaks",
    "gitleaks__gitleaks8_many.json": "gitleaks",
    "gitleaks__no_findings.json": "gitleaks",
    "trufflehog__v3_git.json": "trufflehog",
    "detect_secrets__many_findings.json": "detect-secrets",
    "detect_secrets__no_findings.json": "detect-secrets",
    "sarif__gitleaks_7.5.0.sarif": "sarif",
    "secretlint__secretlint_many_vuln.json": "secretlint",
    "github_secrets_detection_report__github_secrets_detection_report_many_vul.json": "github",
    "github_secrets_detection_report__github_secrets_detection_report_zero_vul.json": "github",
}
# Fields in which the scanners carry a secret, its hash or an unredacted form of it.
SECRET_FIELDS = {"Secret", "secret", "offender", "Match", "Raw", "RawV2", "Redacted", "hashed_secret"}


def _walk(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in SECRET_FIELDS and isinstance(value, str):
                yield value
                if key in ("Raw", "RawV2"):
                    yield base64.b64decode(value + "=" * (-len(value) % 4)).decode("latin-1")
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def planted(name: str) -> set[str]:
    """Every secret string of a sample: what its parser yields and what its secret fields hold."""
    raw = (SAMPLES / name).read_bytes()
    documents = (
        [json.loads(line) for line in raw.splitlines() if line.strip()]
        if name.startswith("trufflehog")
        else [json.loads(raw)]
    )
    values = set(_walk(documents))
    values |= {
        entry.secret
        for entry in PARSERS[SAMPLE_FORMATS[name]](io.BytesIO(raw))
        if isinstance(entry, ScannedSecret) and entry.secret
    }
    # Masks ("****"), very short values and runs of one character (secretlint's sample "0000…", which is
    # also in every audit chain's genesis hash) are not secrets and would match by chance.
    return {
        value
        for value in values
        if len(value) >= 8 and value.strip("*") and "*****" not in value and len(set(value)) > 1
    }


def test_every_sample_file_is_imported_by_these_tests() -> None:
    assert set(SAMPLE_FORMATS) == {
        path.name for path in SAMPLES.iterdir() if not path.name.startswith("LICENSE")
    }


@pytest.mark.parametrize("name", sorted(SAMPLE_FORMATS))
def test_a_sample_imports_and_leaves_no_secret_in_any_table_or_log(
    analyst: Any, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG), (SAMPLES / name).open("rb") as stream:
        run = findings_import(
            actor=analyst,
            report_format=SAMPLE_FORMATS[name],
            source="samples/acme",
            stream=stream,
            file_name=name,
        )
    secrets = planted(name)
    assert run.summary["entries"] >= len([s for s in secrets if s]) // 4  # the secrets were really read
    assert tables_containing(secrets) == []
    assert [secret[:6] for secret in secrets if secret in caplog.text] == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gitleaks__data_many.json", 2),
        ("gitleaks__gitleaks8_many.json", 4),
        ("trufflehog__v3_git.json", 4),
        ("detect_secrets__many_findings.json", 4),
        ("sarif__gitleaks_7.5.0.sarif", 8),
        ("secretlint__secretlint_many_vuln.json", 4),
        ("github_secrets_detection_report__github_secrets_detection_report_many_vul.json", 3),
    ],
)
def test_a_sample_creates_one_finding_per_secret_and_place(analyst: Any, name: str, expected: int) -> None:
    with (SAMPLES / name).open("rb") as stream:
        run = findings_import(
            actor=analyst,
            report_format=SAMPLE_FORMATS[name],
            source="samples/acme",
            stream=stream,
            file_name=name,
        )
    assert run.summary["entries"] == expected
    assert run.summary["created"] == Finding.objects.count() > 0
    assert run.summary["created"] + run.summary["skipped"] <= expected


def test_a_sample_with_many_planted_secrets_is_really_searched() -> None:
    # Guards the leak test above against a planted() that finds nothing to look for.
    assert len(planted("gitleaks__gitleaks8_many.json")) >= 4
    assert len(planted("trufflehog__v3_git.json")) >= 4


# --- real detect-secrets output -----------------------------------------------------------------------------

AWS_KEY = "AKIAZ3MNQ7RW2XTLVB4E"


@pytest.fixture
def detect_secrets_baseline(tmp_path: Path) -> bytes:
    (tmp_path / "settings.py").write_text(f'aws_access_key_id = "{AWS_KEY}"\n')
    tool = Path(sys.executable).parent / "detect-secrets"
    return subprocess.run(
        [str(tool), "scan", "--all-files", "."], cwd=tmp_path, capture_output=True, check=True, timeout=120
    ).stdout


def test_real_detect_secrets_output_imports_without_the_secret_or_its_sha1(
    analyst: Any, detect_secrets_baseline: bytes
) -> None:
    run = findings_import(
        actor=analyst,
        report_format="detect-secrets",
        source="acme/payments",
        stream=io.BytesIO(detect_secrets_baseline),
    )
    sha1 = json.loads(detect_secrets_baseline)["results"]["settings.py"][0]["hashed_secret"]
    assert run.summary["created"] == 1
    assert Exposure.objects.get().fingerprint_scheme == FingerprintScheme.DETECT_SECRETS_SHA1
    assert tables_containing([AWS_KEY, sha1]) == []


def test_detect_secrets_and_another_scanner_group_the_same_secret(
    analyst: Any, detect_secrets_baseline: bytes
) -> None:
    findings_import(
        actor=analyst,
        report_format="detect-secrets",
        source="acme/payments",
        stream=io.BytesIO(detect_secrets_baseline),
    )
    findings_import(
        actor=analyst,
        report_format="gitleaks",
        source="acme/payments",
        stream=io.BytesIO(gitleaks_v8({"Secret": AWS_KEY, "File": "deploy/aws.env"})),
    )
    exposure = Exposure.objects.get()
    assert exposure.locations == 2
    assert ImportRun.objects.count() == 2


def test_another_scanner_first_then_detect_secrets_group_the_same_secret(
    analyst: Any, detect_secrets_baseline: bytes
) -> None:
    findings_import(
        actor=analyst,
        report_format="gitleaks",
        source="acme/payments",
        stream=io.BytesIO(gitleaks_v8({"Secret": AWS_KEY, "File": "deploy/aws.env"})),
    )
    findings_import(
        actor=analyst,
        report_format="detect-secrets",
        source="acme/payments",
        stream=io.BytesIO(detect_secrets_baseline),
    )
    assert Exposure.objects.get().locations == 2
