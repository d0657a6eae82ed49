"""The scanner report parsers, on DefectDojo's real samples (samples/, BSD-3, notice beside them) and on
reports these tests write: counts, field mapping, and errors that name a place without quoting the input."""

import base64
import hashlib
import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from findings.parsers import (
    PARSERS,
    Entry,
    Location,
    ReportFormatError,
    ScannedSecret,
    Skipped,
    gitleaks,
    json_stream,
)
from findings.parsers.fields import parse_timestamp
from findings.parsers.gitleaks import PRIVATE_KEY_HEADER_ONLY

SAMPLES = Path(__file__).parent / "samples"
PDT = timezone(timedelta(hours=-7))

# Secrets these tests plant in reports they write, to check that error messages never repeat them.
PLANTED = "ghp_PlantedSecretValue0123456789abcdefXYZ"


def parse(fmt: str, data: bytes) -> list[Entry]:
    return list(PARSERS[fmt](io.BytesIO(data)))


def parse_sample(fmt: str, name: str) -> list[Entry]:
    with (SAMPLES / name).open("rb") as stream:
        return list(PARSERS[fmt](stream))


def found(entries: list[Entry]) -> list[ScannedSecret]:
    return [entry for entry in entries if isinstance(entry, ScannedSecret)]


def rejection(fmt: str, data: bytes, *, secret: str = PLANTED) -> str:
    """The ReportFormatError message for `data`, checked not to carry `secret` in it or in a chained error."""
    with pytest.raises(ReportFormatError) as info:
        parse(fmt, data)
    message = str(info.value)
    assert secret not in message
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    return message


def dumps(value: Any) -> bytes:
    return json.dumps(value, indent=1).encode()


def gitleaks_v8(**overrides: Any) -> dict[str, Any]:
    finding = {
        "RuleID": "github-pat",
        "Description": "GitHub Personal Access Token",
        "StartLine": 7,
        "EndLine": 7,
        "StartColumn": 14,
        "EndColumn": 53,
        "Match": f"token: {PLANTED}",
        "Secret": PLANTED,
        "File": "deploy/values.yaml",
        "Commit": "0123456789abcdef0123456789abcdef01234567",
        "Entropy": 4.6,
        "Author": "Jane Doe",
        "Email": "jane@example.com",
        "Date": "2024-03-01T09:30:00Z",
        "Message": "add values",
        "Tags": [],
        "Fingerprint": "0123456789abcdef:deploy/values.yaml:github-pat:7",
    }
    finding.update(overrides)
    return finding


def trufflehog_line(**overrides: Any) -> dict[str, Any]:
    finding = {
        "SourceMetadata": {
            "Data": {
                "Git": {
                    "commit": "0123456789abcdef0123456789abcdef01234567",
                    "file": "deploy/values.yaml",
                    "email": "Jane <jane@example.com>",
                    "repository": "https://github.com/acme/payments",
                    "timestamp": "2024-03-01 09:30:00 +0000",
                    "line": 7,
                }
            }
        },
        "SourceID": 1,
        "SourceType": 16,
        "SourceName": "trufflehog - git",
        "DetectorType": 8,
        "DetectorName": "Github",
        "DecoderName": "PLAIN",
        "Verified": False,
        "Raw": PLANTED,
        "RawV2": "",
        "Redacted": PLANTED,
        "ExtraData": None,
        "StructuredData": None,
    }
    finding.update(overrides)
    return finding


def jsonl(*objects: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(obj).encode() + b"\n" for obj in objects)


# --- every sample -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "name", "entries", "secrets"),
    [
        ("gitleaks", "gitleaks__data_many.json", 2, 2),
        ("gitleaks", "gitleaks__gitleaks8_many.json", 4, 4),
        ("gitleaks", "gitleaks__no_findings.json", 0, 0),
        ("trufflehog", "trufflehog__v3_git.json", 4, 4),
        ("detect-secrets", "detect_secrets__many_findings.json", 4, 3),
        ("detect-secrets", "detect_secrets__no_findings.json", 0, 0),
        ("sarif", "sarif__gitleaks_7.5.0.sarif", 8, 6),
        ("secretlint", "secretlint__secretlint_many_vuln.json", 4, 4),
        ("github", "github_secrets_detection_report__github_secrets_detection_report_many_vul.json", 3, 3),
        ("github", "github_secrets_detection_report__github_secrets_detection_report_zero_vul.json", 0, 0),
    ],
)
def test_sample_yields_the_exact_number_of_entries(fmt: str, name: str, entries: int, secrets: int) -> None:
    parsed = parse_sample(fmt, name)
    assert len(parsed) == entries
    assert len(found(parsed)) == secrets


def test_every_sample_file_is_covered_and_the_license_notice_sits_beside_them() -> None:
    assert (
        (SAMPLES / "LICENSE-defectdojo-samples.md")
        .read_text()
        .startswith("### Copyright (c) 2015-2023 DefectDojo")
    )
    assert len([path for path in SAMPLES.iterdir() if not path.name.startswith("LICENSE")]) == 10


def test_parsers_are_registered_under_the_ingest_format_names() -> None:
    assert set(PARSERS) == {"gitleaks", "trufflehog", "detect-secrets", "sarif", "secretlint", "github"}


# --- gitleaks -----------------------------------------------------------------------------------------------


def test_gitleaks_v7_sample_maps_offender_line_and_commit() -> None:
    first, second = found(parse_sample("gitleaks", "gitleaks__data_many.json"))
    assert first.scanner == "gitleaks"
    assert first.detector == "Github"
    # v7 has no separate secret: the offender (the rule's match) is passed on verbatim.
    assert first.secret == 'GITHUB_TOKEN="c77e01c1e89682e4d4b94a059a7fd2b37ab326ed"'
    assert first.context == 'export JEKYLL_GITHUB_TOKEN="c77e01c1e89682e4d4b94a059a7fd2b37ab326ed"'
    assert first.location == Location(path=".bashrc", commit="d54ce70d0cf883054ed256db46406a5df551f000")
    assert first.found_at == datetime(2020, 4, 4, 15, 52, 59, tzinfo=PDT)
    assert first.validity == "unknown"
    assert second.detector == "MailChimp API key"
    assert second.secret == 'MAILCHIMP_API_KEY="38c47f19e349153fa963bb3b3212fe8e-us11"'


def test_gitleaks_v8_sample_maps_secret_match_and_location() -> None:
    entries = found(parse_sample("gitleaks", "gitleaks__gitleaks8_many.json"))
    first, rsa, generic = entries[0], entries[2], entries[3]
    assert first.position == "finding 1"
    assert first.detector == "aws-access-token"
    assert first.secret == "secretAWSsecret"
    assert first.location == Location(
        path="/conf/aws.tf", line=2, commit="74d53286c550630f80847d37f68aa3065554ac813544072ccd1278da71fafe31"
    )
    assert first.found_at == datetime(2021, 10, 14, 17, 5, 15, tzinfo=UTC)
    assert rsa.detector == "RSA-PK"
    assert rsa.location == Location(path="conf/rsa.pk", line=57)
    assert rsa.found_at is None  # "Date": "" outside git history
    assert generic.secret == "dfjksdjfs3294dfjlsdaf213"
    assert generic.context == 'apikey = "dfjksdjfs3294dfjlsdaf213"'


def test_gitleaks_reads_v8_link_as_the_location_url() -> None:
    link = "https://github.com/acme/payments/blob/0123/deploy/values.yaml#L7"
    (entry,) = found(parse("gitleaks", dumps([gitleaks_v8(Link=link)])))
    assert entry.location.url == link


def test_gitleaks_skips_a_redacted_secret() -> None:
    entries = parse("gitleaks", dumps([gitleaks_v8(Secret="REDACTED", Match="token: REDACTED")]))
    assert entries == [Skipped(position="finding 1", reason="the secret is redacted in the report")]


def test_gitleaks_skips_a_partly_redacted_secret() -> None:
    entries = parse("gitleaks", dumps([gitleaks_v8(Secret="ghp_Plant...")]))
    assert entries == [Skipped(position="finding 1", reason="the secret is partly redacted in the report")]


def test_gitleaks_accepts_a_byte_order_mark() -> None:
    assert len(parse("gitleaks", b"\xef\xbb\xbf" + dumps([gitleaks_v8()]))) == 1


def test_gitleaks_accepts_an_empty_array() -> None:
    assert parse("gitleaks", b" [ ]\n") == []


def test_gitleaks_rejects_truncated_report_naming_the_position() -> None:
    data = dumps([gitleaks_v8(), gitleaks_v8()])
    cut = data[: data.rindex(PLANTED.encode()) + 10]
    last_line = cut.count(b"\n") + 1
    message = rejection("gitleaks", cut, secret=PLANTED[:10])
    assert message == (
        "the gitleaks report ends before its JSON is complete "
        f"(truncated after line {last_line}), after finding 1"
    )


def test_gitleaks_rejects_malformed_json_naming_the_line_and_the_last_good_finding() -> None:
    data = b'[\n{"RuleID": "x", "Secret": "' + PLANTED.encode() + b'", "File": "a"},\n{"RuleID": }\n]'
    message = rejection("gitleaks", data)
    assert message == "the gitleaks report is not valid JSON at line 3, after finding 1"


def test_gitleaks_rejects_invalid_utf8_without_echoing_it() -> None:
    data = b'[{"RuleID": "x", "Secret": "' + PLANTED.encode() + b'\xff", "File": "a"}]'
    assert (
        rejection("gitleaks", data)
        == "the gitleaks report is not valid UTF-8 (from line 1 on), before finding 1 was read"
    )


def test_gitleaks_rejects_trufflehog_report_as_another_format() -> None:
    message = rejection(
        "gitleaks", (SAMPLES / "trufflehog__v3_git.json").read_bytes(), secret="AKIAYVP4CIPPERUVIFXG"
    )
    assert message == "the gitleaks report must be a JSON array, found a JSON object (is it another format?)"


def test_gitleaks_rejects_an_item_that_is_no_gitleaks_finding() -> None:
    message = rejection("gitleaks", (SAMPLES / "secretlint__secretlint_many_vuln.json").read_bytes())
    assert message == "finding 1: not a gitleaks finding (no 'RuleID' or 'rule' field)"


def test_gitleaks_rejects_wrong_field_type_naming_finding_and_field() -> None:
    data = dumps([gitleaks_v8(), gitleaks_v8(), gitleaks_v8(File=["deploy", PLANTED])])
    assert rejection("gitleaks", data) == "finding 3: field 'File' must be a string"


def test_gitleaks_rejects_a_line_number_that_is_not_an_integer() -> None:
    assert (
        rejection("gitleaks", dumps([gitleaks_v8(StartLine="7")]))
        == "finding 1: field 'StartLine' must be an integer"
    )


def test_gitleaks_rejects_missing_secret_field() -> None:
    finding = gitleaks_v8()
    del finding["Secret"]
    assert rejection("gitleaks", dumps([finding])) == "finding 1: field 'Secret' is missing"


def test_gitleaks_rejects_unparseable_date_naming_the_field() -> None:
    message = rejection("gitleaks", dumps([gitleaks_v8(Date=f"yesterday {PLANTED}")]))
    assert message == "finding 1: field 'Date' is not a date and time"


def test_gitleaks_rejects_an_empty_file() -> None:
    assert rejection("gitleaks", b"  \n") == "the gitleaks report is empty: expected a JSON array"


# --- TruffleHog ---------------------------------------------------------------------------------------------


def test_trufflehog_sample_decodes_base64_raw_and_maps_git_metadata() -> None:
    aws, uri, key, _ = found(parse_sample("trufflehog", "trufflehog__v3_git.json"))
    assert aws.position == "line 1"
    assert aws.scanner == "trufflehog"
    assert aws.detector == "AWS"
    assert aws.secret == "AKIAYVP4CIPPERUVIFXG"
    assert aws.validity == "valid"
    assert aws.location == Location(
        repository="https://github.com/trufflesecurity/test_keys",
        path="keys",
        line=4,
        commit="fbc14303ffbf8fb1c2c1914e8dda7d0121633aca",
    )
    assert aws.found_at == datetime(2022, 6, 16, 10, 17, 40, tzinfo=PDT)
    assert uri.detector == "URI"
    assert uri.secret == "https://admin:admin@the-internet.herokuapp.com/basic_auth"
    assert key.detector == "PrivateKey"
    assert key.secret is not None
    assert key.secret.startswith(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIA"
    )
    assert key.secret.endswith("-----END OPENSSH PRIVATE KEY-----\n")


def test_trufflehog_never_passes_redacted_through_as_context() -> None:
    # The sample's `Redacted` for the AWS finding is the key id itself.
    for entry in found(parse_sample("trufflehog", "trufflehog__v3_git.json")):
        assert entry.context == ""


def test_trufflehog_reads_plain_raw_from_current_releases() -> None:
    (entry,) = found(parse("trufflehog", jsonl(trufflehog_line())))
    assert entry.secret == PLANTED
    assert entry.validity == "unknown"
    assert entry.location.line == 7
    assert entry.found_at == datetime(2024, 3, 1, 9, 30, tzinfo=UTC)


def test_trufflehog_takes_a_legacy_raw_that_is_not_base64_as_it_is() -> None:
    line = trufflehog_line(Raw=PLANTED)
    del line["DecoderName"], line["RawV2"]
    (entry,) = found(parse("trufflehog", jsonl(line)))
    assert entry.secret == PLANTED


def test_trufflehog_decodes_a_legacy_base64_raw() -> None:
    line = trufflehog_line(Raw=base64.b64encode(PLANTED.encode()).decode())
    del line["DecoderName"], line["RawV2"]
    (entry,) = found(parse("trufflehog", jsonl(line)))
    assert entry.secret == PLANTED


def test_trufflehog_maps_a_filesystem_source() -> None:
    line = trufflehog_line(SourceMetadata={"Data": {"Filesystem": {"file": "/srv/app/.env", "line": 3}}})
    (entry,) = found(parse("trufflehog", jsonl(line)))
    assert entry.location == Location(path="/srv/app/.env", line=3)
    assert entry.found_at is None


def test_trufflehog_skips_its_own_log_lines() -> None:
    log = {
        "level": "info-0",
        "ts": "2026-01-10T19:18:07Z",
        "logger": "trufflehog",
        "msg": "finished scanning",
    }
    entries = parse("trufflehog", jsonl(log, trufflehog_line()))
    assert entries[0] == Skipped(position="line 1", reason="a TruffleHog log line, not a finding")
    assert isinstance(entries[1], ScannedSecret)


def test_trufflehog_ignores_blank_lines_and_an_empty_report() -> None:
    assert parse("trufflehog", b"") == []
    assert len(parse("trufflehog", b"\n" + jsonl(trufflehog_line()) + b"\n\n")) == 1


def test_trufflehog_rejects_malformed_line_naming_the_line() -> None:
    broken = b'{"DetectorName": "Github", "Raw": "' + PLANTED.encode() + b'",}\n'
    column = broken.index(b",}") + 2  # 1-based, at the brace that follows a trailing comma
    data = jsonl(trufflehog_line(), trufflehog_line()) + broken
    assert rejection("trufflehog", data) == f"line 3, column {column}: not valid JSON"


def test_trufflehog_rejects_truncated_last_line_naming_it() -> None:
    data = jsonl(trufflehog_line(), trufflehog_line())
    message = rejection("trufflehog", data[:-40], secret=PLANTED[:10])
    assert message.startswith("line 2, column ")
    assert message.endswith(": not valid JSON (the report may be truncated)")


def test_trufflehog_rejects_gitleaks_report_as_another_format() -> None:
    data = json.dumps([gitleaks_v8()]).encode()
    assert rejection("trufflehog", data) == (
        "line 1 is a JSON array: TruffleHog --json writes one object per line (is it another format?)"
    )


def test_trufflehog_rejects_an_object_that_is_no_finding() -> None:
    assert rejection("trufflehog", jsonl({"offender": PLANTED, "rule": "x"})) == (
        "line 1: not a TruffleHog v3 finding (no 'DetectorName' field)"
    )


def test_trufflehog_rejects_wrong_type_in_source_metadata() -> None:
    line = trufflehog_line()
    line["SourceMetadata"]["Data"]["Git"]["line"] = PLANTED
    data = jsonl(trufflehog_line(), line)
    assert rejection("trufflehog", data) == "line 2: field 'SourceMetadata.Data.Git.line' must be an integer"


def test_trufflehog_rejects_unparseable_timestamp() -> None:
    line = trufflehog_line()
    line["SourceMetadata"]["Data"]["Git"]["timestamp"] = "16/06/2022"
    assert rejection("trufflehog", jsonl(line)) == (
        "line 1: field 'SourceMetadata.Data.Git.timestamp' is not a date and time"
    )


def test_trufflehog_rejects_verified_that_is_not_a_boolean() -> None:
    assert rejection("trufflehog", jsonl(trufflehog_line(Verified="yes"))) == (
        "line 1: field 'Verified' must be true or false"
    )


# --- detect-secrets -----------------------------------------------------------------------------------------


def test_detect_secrets_sample_carries_the_hash_not_the_secret() -> None:
    entries = parse_sample("detect-secrets", "detect_secrets__many_findings.json")
    first, second, third = found(entries)
    assert first.scanner == "detect-secrets"
    assert first.detector == "Secret Keyword"
    assert first.secret is None
    assert first.scanner_sha1 == "bd564db5d5cc358eb0e3523d3e03041739f230d5"
    assert first.location == Location(path="modules_images", line=151)
    assert first.validity == "unknown"
    assert second.scanner_sha1 == "535850f35566365fddf9eb01a0d36962c0ffed8c"  # is_secret: true is kept
    assert third.location == Location(path="example/pkg/docker_registry_watcher/docker_config.go", line=109)


def test_detect_secrets_skips_what_an_audit_marked_not_a_secret() -> None:
    entries = parse_sample("detect-secrets", "detect_secrets__many_findings.json")
    assert entries[3] == Skipped(position="finding 4", reason="marked not a secret in the baseline")


def test_detect_secrets_reads_a_baseline_the_real_tool_wrote(tmp_path: Path) -> None:
    aws_key = "AKIAZ3MNQ7RW2XTLVB4E"
    (tmp_path / "settings.py").write_text(f'aws_access_key_id = "{aws_key}"\n')
    (tmp_path / "deploy.pem").write_text(
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7xq2Jv\n-----END RSA PRIVATE KEY-----\n"
    )
    tool = Path(sys.executable).parent / "detect-secrets"
    baseline = subprocess.run(
        [str(tool), "scan", "--all-files", "."], cwd=tmp_path, capture_output=True, check=True, timeout=120
    ).stdout

    entries = {entry.location.path: entry for entry in found(parse("detect-secrets", baseline))}
    assert set(entries) == {"settings.py", "deploy.pem"}
    aws, key = entries["settings.py"], entries["deploy.pem"]
    assert aws.detector == "AWS Access Key"
    assert aws.secret is None
    assert aws.scanner_sha1 == hashlib.sha1(aws_key.encode()).hexdigest()
    assert aws.location.line == 1
    assert key.detector == "Private Key"
    assert key.location.line == 1


def test_detect_secrets_maps_is_verified_to_valid() -> None:
    baseline = {
        "version": "1.5.0",
        "results": {
            "a.py": [
                {"type": "AWS Access Key", "filename": "a.py", "hashed_secret": "a" * 40, "is_verified": True}
            ]
        },
    }
    (entry,) = found(parse("detect-secrets", dumps(baseline)))
    assert entry.validity == "valid"
    assert entry.location == Location(path="a.py")  # slim baselines carry no line_number


def test_detect_secrets_rejects_sarif_as_another_format() -> None:
    data = (SAMPLES / "sarif__gitleaks_7.5.0.sarif").read_bytes()
    assert rejection("detect-secrets", data, secret="AKIAIOSFODNN7EXAMPLE") == (
        "the detect-secrets baseline has no 'results' object (is it another format?)"
    )


def test_detect_secrets_rejects_gitleaks_report_as_another_format() -> None:
    assert rejection("detect-secrets", dumps([gitleaks_v8()])) == (
        "the detect-secrets baseline must be a JSON object, found a JSON array (is it another format?)"
    )


def test_detect_secrets_rejects_results_that_are_not_an_object() -> None:
    assert rejection("detect-secrets", dumps({"results": [PLANTED]})) == (
        "the detect-secrets baseline's field 'results' must be an object"
    )


def test_detect_secrets_rejects_a_hash_that_is_not_sha1() -> None:
    baseline = {
        "results": {"a.py": [{"type": "Secret Keyword", "hashed_secret": PLANTED, "is_verified": False}]}
    }
    assert rejection("detect-secrets", dumps(baseline)) == (
        "finding 1: field 'hashed_secret' must be a SHA-1 hex digest"
    )


def test_detect_secrets_rejects_wrong_type_of_line_number() -> None:
    finding = {"type": "Secret Keyword", "hashed_secret": "b" * 40, "line_number": "12"}
    data = dumps({"results": {"a.py": [finding], "b.py": [finding | {"line_number": 3}, finding]}})
    assert rejection("detect-secrets", data) == "finding 1: field 'line_number' must be an integer"


def test_detect_secrets_rejects_truncated_baseline_naming_the_line() -> None:
    data = (SAMPLES / "detect_secrets__many_findings.json").read_bytes()[:-200]
    last_line = data.count(b"\n") + 1
    assert rejection("detect-secrets", data) == (
        f"the detect-secrets baseline ends before its JSON is complete (truncated after line {last_line})"
    )


# --- SARIF --------------------------------------------------------------------------------------------------


def test_sarif_gitleaks_v7_sample_takes_offender_and_rule_named_in_the_message() -> None:
    entries = found(parse_sample("sarif", "sarif__gitleaks_7.5.0.sarif"))
    first = entries[0]
    test_file = next(entry for entry in entries if entry.location.path.endswith("_parser.py"))
    assert first.position == "runs[0].results[0]"
    assert first.scanner == "gitleaks"
    assert first.detector == "AWS Access Key"
    assert first.secret == "AKIAIOSFODNN7EXAMPLE"
    assert first.context == '      "raw_source_code_extract": "AKIAIOSFODNN7EXAMPLE",'
    assert first.location == Location(
        path="dojo/unittests/scans/gitlab_secret_detection_report/gitlab_secret_detection_report_1_vuln.json",
        line=13,
        commit="6d127980966808f7413935678e079dcd7fedf9c2",
    )
    assert first.found_at == datetime(2021, 7, 15, 22, 0, 32, tzinfo=timezone(timedelta(hours=7)))
    assert test_file.location.path == "dojo/unittests/tools/test_gitlab_secret_detection_report_parser.py"
    assert test_file.location.line == 37


def test_sarif_gitleaks_v7_skips_private_keys_reported_by_their_header_only() -> None:
    # Every key would share the header as its "secret": one exposure for all keys, of every team.
    skipped = [
        entry for entry in parse_sample("sarif", "sarif__gitleaks_7.5.0.sarif") if isinstance(entry, Skipped)
    ]
    assert [entry.reason for entry in skipped] == [PRIVATE_KEY_HEADER_ONLY, PRIVATE_KEY_HEADER_ONLY]


def test_gitleaks_v7_skips_a_private_key_reported_by_its_header_only() -> None:
    finding = {
        "rule": "Asymmetric Private Key",
        "offender": "-----BEGIN OPENSSH PRIVATE KEY-----",
        "file": "id",
    }
    assert parse("gitleaks", dumps([finding])) == [
        Skipped(position="finding 1", reason=PRIVATE_KEY_HEADER_ONLY)
    ]


def test_a_text_field_with_a_lone_surrogate_is_refused_by_name() -> None:
    data = b'[{"RuleID": "x", "Secret": "abc\\ud800def", "File": "a"}]'
    assert rejection("gitleaks", data, secret="abc") == (
        "finding 1: field 'Secret' is not valid text (a lone surrogate or NUL)"
    )


def test_a_text_field_with_a_nul_character_is_refused_by_name() -> None:
    data = b'[{"RuleID": "x", "Secret": "s3cr3t-value", "File": "a\\u0000b"}]'
    assert (
        rejection("gitleaks", data, secret="s3cr3t-value")
        == "finding 1: field 'File' contains a NUL character"
    )


def test_a_line_number_beyond_what_the_database_takes_is_refused_by_name() -> None:
    data = b'[{"RuleID": "x", "Secret": "s3cr3t-value", "File": "a", "StartLine": 2147483648}]'
    assert (
        rejection("gitleaks", data, secret="s3cr3t-value") == "finding 1: field 'StartLine' is out of range"
    )


def sarif_log(*results: dict[str, Any], driver: str = "gitleaks", tool_first: bool = True) -> bytes:
    tool = {"driver": {"name": driver, "semanticVersion": "v8.18.0", "rules": [{"id": "github-pat"}]}}
    run: dict[str, Any] = {"tool": tool, "results": list(results)}
    if not tool_first:
        run = {"results": list(results), "tool": tool}
    return dumps(
        {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0", "runs": [run]}
    )


def sarif_result(region: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    result = {
        "message": {"text": "github-pat has detected secret for file deploy/values.yaml at commit 0123."},
        "ruleId": "github-pat",
        "locations": [
            {"physicalLocation": {"artifactLocation": {"uri": "deploy/values.yaml"}, "region": region}}
        ],
        "partialFingerprints": {"commitSha": "0123", "date": "2024-03-01T09:30:00Z", "author": "Jane"},
        "properties": {"tags": []},
    }
    result.update(overrides)
    return result


V8_REGION = {"startLine": 7, "startColumn": 14, "endLine": 7, "endColumn": 53, "snippet": {"text": PLANTED}}


def test_sarif_reads_the_gitleaks_v8_snippet_as_the_secret() -> None:
    (entry,) = found(parse("sarif", sarif_log(sarif_result(V8_REGION))))
    assert entry.detector == "github-pat"
    assert entry.secret == PLANTED
    assert entry.location == Location(path="deploy/values.yaml", line=7, commit="0123")
    assert entry.found_at == datetime(2024, 3, 1, 9, 30, tzinfo=UTC)


def test_sarif_names_the_scanner_even_when_results_come_before_the_tool() -> None:
    (entry,) = found(parse("sarif", sarif_log(sarif_result(V8_REGION), tool_first=False)))
    assert entry.scanner == "gitleaks"


def test_sarif_finds_the_detector_through_rule_index() -> None:
    result = sarif_result(V8_REGION, ruleIndex=0)
    del result["ruleId"]
    (entry,) = found(parse("sarif", sarif_log(result)))
    assert entry.detector == "github-pat"


def test_sarif_skips_a_whole_line_snippet_that_does_not_mark_the_secret() -> None:
    region = {"startLine": 7, "snippet": {"text": f"token: {PLANTED}"}}
    assert parse("sarif", sarif_log(sarif_result(region))) == [
        Skipped(
            position="runs[0].results[0]",
            reason="the SARIF snippet is a whole line; the secret in it is not marked",
        )
    ]


def test_sarif_skips_a_result_without_snippet_as_secretlint_writes_it() -> None:
    region = {"startLine": 2, "startColumn": 14, "endLine": 2, "endColumn": 54}
    data = sarif_log(sarif_result(region, ruleId="@secretlint/secretlint-rule-github"), driver="secretlint")
    assert parse("sarif", data) == [
        Skipped(position="runs[0].results[0]", reason="the SARIF result has no snippet holding the secret")
    ]


def test_sarif_skips_a_suppressed_result() -> None:
    result = sarif_result(V8_REGION, suppressions=[{"kind": "inSource"}])
    assert parse("sarif", sarif_log(result)) == [
        Skipped(position="runs[0].results[0]", reason="the result is suppressed in the SARIF log")
    ]


def test_sarif_rejects_a_detect_secrets_baseline_as_another_format() -> None:
    data = (SAMPLES / "detect_secrets__many_findings.json").read_bytes()
    assert rejection("sarif", data) == "the SARIF log's field 'version' must be '2.1.0' (another format?)"


def test_sarif_rejects_an_object_without_runs() -> None:
    assert rejection("sarif", dumps({"version": "2.1.0", "results": [PLANTED]})) == (
        "the SARIF log has no 'runs' array (is it another format?)"
    )


def test_sarif_rejects_wrong_field_type_naming_result_and_field() -> None:
    region = V8_REGION | {"startLine": PLANTED}
    data = sarif_log(sarif_result(V8_REGION), sarif_result(region))
    assert rejection("sarif", data) == "runs[0].results[1]: field 'region.startLine' must be an integer"


def test_sarif_rejects_truncated_log_naming_the_line() -> None:
    data = sarif_log(sarif_result(V8_REGION), sarif_result(V8_REGION))
    cut = data[: data.rindex(PLANTED.encode()) + 5]
    last_line = cut.count(b"\n") + 1
    assert rejection("sarif", cut, secret=PLANTED[:5]) == (
        f"the SARIF log ends before its JSON is complete (truncated after line {last_line})"
    )


# --- secretlint ---------------------------------------------------------------------------------------------


def test_secretlint_sample_slices_the_secret_and_its_line() -> None:
    entries = found(parse_sample("secretlint", "secretlint__secretlint_many_vuln.json"))
    github = entries[1]
    assert github.position == "file 3, message 1"
    assert github.scanner == "secretlint"
    assert github.detector == "@secretlint/secretlint-rule-github"
    assert github.secret == "ghp_000000000000000000000000000000000000"
    assert github.context == "GITHUB_TOKEN=ghp_000000000000000000000000000000000000"
    assert github.location == Location(path="/src/generic-app/ci.env", line=2)
    assert entries[3].secret == "ghp_111111111111111111111111111111111111"
    assert entries[3].location.line == 3


def test_secretlint_recovers_the_aws_key_from_the_rules_misplaced_range() -> None:
    # secretlint-rule-aws reports [start of `aws_secret_access_key = `, start + 40]: the key is after it.
    aws = found(parse_sample("secretlint", "secretlint__secretlint_many_vuln.json"))[0]
    assert aws.detector == "@secretlint/secretlint-rule-aws"
    assert aws.secret == "0" * 40
    assert aws.context == "aws_secret_access_key = " + "0" * 40
    assert aws.location == Location(path="/src/generic-app/aws-config.ini", line=3)


def secretlint_report(content: str, start: int, end: int, **message: Any) -> bytes:
    return dumps(
        [
            {
                "filePath": "/src/app/.env",
                "sourceContent": content,
                "sourceContentType": "text",
                "messages": [
                    {"ruleId": "@secretlint/secretlint-rule-github", "range": [start, end]} | message
                ],
            }
        ]
    )


def test_secretlint_counts_offsets_in_utf16_code_units_like_node() -> None:
    content = f"# 🔑 deploy token\nTOKEN={PLANTED}\n"
    start = len(content.encode("utf-16-le")) // 2 - len(PLANTED) - 1  # the emoji takes two code units
    (entry,) = found(parse("secretlint", secretlint_report(content, start, start + len(PLANTED))))
    assert entry.secret == PLANTED
    assert entry.context == f"TOKEN={PLANTED}"
    assert entry.location.line == 2


def test_secretlint_skips_a_masked_secret() -> None:
    report = secretlint_report("TOKEN=****************\n", 6, 22)
    assert parse("secretlint", report) == [
        Skipped(position="file 1, message 1", reason="the secret is masked in the report")
    ]


def test_secretlint_skips_a_message_when_the_report_has_no_source_content() -> None:
    report = json.loads(secretlint_report(f"TOKEN={PLANTED}\n", 6, 6 + len(PLANTED)))
    del report[0]["sourceContent"]
    assert parse("secretlint", dumps(report)) == [
        Skipped(position="file 1, message 1", reason="the report does not include the file's content")
    ]


def test_secretlint_rejects_a_range_outside_the_content() -> None:
    report = secretlint_report(f"TOKEN={PLANTED}\n", 6, 600)
    assert (
        rejection("secretlint", report) == "file 1, message 1: field 'range' lies outside the file's content"
    )


def test_secretlint_rejects_a_malformed_range() -> None:
    report = secretlint_report(f"TOKEN={PLANTED}\n", 9, 6)
    assert rejection("secretlint", report) == (
        "file 1, message 1: field 'range' must be two offsets [start, end] with start <= end"
    )


def test_secretlint_rejects_a_gitleaks_report_as_another_format() -> None:
    assert rejection("secretlint", dumps([gitleaks_v8()])) == (
        "file 1: not a secretlint result (no 'filePath' or 'messages' field)"
    )


# --- GitHub secret scanning ---------------------------------------------------------------------------------

GITHUB_SAMPLE = "github_secrets_detection_report__github_secrets_detection_report_many_vul.json"


def test_github_sample_maps_state_validity_and_first_location() -> None:
    resolved, open_alert, revoked = found(parse_sample("github", GITHUB_SAMPLE))
    assert resolved.position == "alert 1"
    assert resolved.scanner == "github-secret-scanning"
    assert resolved.detector == "adafruit_io_key"
    assert resolved.secret == "aio_XXXXXXXXXXXXXXXXXXXXXXXXXXXX"
    assert resolved.validity == "valid"
    assert resolved.resolved_at_source is True
    assert resolved.source_state == "resolved: false_positive"
    assert resolved.resolved_at == datetime(2020, 11, 7, 2, 47, 13, tzinfo=UTC)
    assert resolved.found_at == datetime(2020, 11, 6, 18, 48, 51, tzinfo=UTC)
    assert resolved.location == Location(
        repository="https://github.com/octocat/Hello-World",
        path="/example/secrets.txt",
        line=1,
        commit="f14d7debf9775f957cf4f1e8176da0786431f72b",
        url="https://github.com/owner/private-repo/security/secret-scanning/2",
    )
    assert open_alert.secret == "AKIAIOSFODNN7EXAMPLE"
    assert open_alert.resolved_at_source is False
    assert open_alert.source_state == "open"
    assert open_alert.resolved_at is None
    assert revoked.validity == "invalid"
    assert revoked.source_state == "resolved: revoked"


def github_alert(**overrides: Any) -> dict[str, Any]:
    alert = {
        "number": 7,
        "created_at": "2024-03-01T09:30:00Z",
        "html_url": "https://github.example.com/acme/payments/security/secret-scanning/7",
        "state": "open",
        "resolution": None,
        "resolved_at": None,
        "secret_type": "github_personal_access_token",
        "secret_type_display_name": "GitHub Personal Access Token",
        "secret": PLANTED,
        "validity": "unknown",
    }
    alert.update(overrides)
    return alert


def test_github_derives_the_repository_from_html_url_without_a_repository_object() -> None:
    (entry,) = found(parse("github", dumps([github_alert()])))
    assert entry.location == Location(
        repository="https://github.example.com/acme/payments",
        url="https://github.example.com/acme/payments/security/secret-scanning/7",
    )
    assert entry.validity == "unknown"


def test_github_skips_an_alert_listed_without_its_secret() -> None:
    assert parse("github", dumps([github_alert(secret=None)])) == [
        Skipped(position="alert 1", reason="the alert does not include the secret")
    ]


def test_github_rejects_an_unknown_validity() -> None:
    assert rejection("github", dumps([github_alert(validity="maybe")])) == (
        "alert 1: field 'validity' must be 'active', 'inactive' or 'unknown'"
    )


def test_github_rejects_an_unparseable_created_at() -> None:
    assert rejection("github", dumps([github_alert(), github_alert(created_at="2024-13-45T99:00:00Z")])) == (
        "alert 2: field 'created_at' is not a date and time"
    )


def test_github_rejects_a_gitleaks_report_as_another_format() -> None:
    assert rejection("github", dumps([gitleaks_v8()])) == (
        "alert 1: not a GitHub secret scanning alert (no 'secret_type' field)"
    )


# --- every format -------------------------------------------------------------------------------------------


class CountingStream(io.BytesIO):
    """Records how far a parser has read, to show it yields before reaching the end."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.high_water = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.high_water = self.tell()
        return chunk

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(size)
        self.high_water = self.tell()
        return line


@pytest.mark.parametrize(
    ("fmt", "report"),
    [
        ("gitleaks", lambda n: dumps([gitleaks_v8(StartLine=i + 1) for i in range(n)])),
        ("trufflehog", lambda n: jsonl(*(trufflehog_line() for _ in range(n)))),
        ("sarif", lambda n: sarif_log(*(sarif_result(V8_REGION) for _ in range(n)))),
    ],
)
def test_parsers_yield_the_first_entry_before_reading_the_whole_report(fmt: str, report: Any) -> None:
    data = report(2000)
    stream = CountingStream(data)
    first = next(iter(PARSERS[fmt](stream)))
    assert isinstance(first, ScannedSecret)
    assert stream.high_water < len(data) / 4


def test_ijson_runs_on_its_c_backend() -> None:
    # The pure-Python fallback (no wheel for the platform) would parse ten times slower.
    assert json_stream.BACKEND == "yajl2_c"


@pytest.mark.parametrize("fmt", sorted(PARSERS))
def test_every_parser_rejects_text_that_is_not_json_without_quoting_it(fmt: str) -> None:
    message = rejection(fmt, f"token={PLANTED}\n".encode())
    assert "found neither a JSON array nor an object" in message or "not valid JSON" in message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2022-06-16 10:17:40 -0700 -0700", datetime(2022, 6, 16, 10, 17, 40, tzinfo=PDT)),
        ("2022-06-16 17:17:40 +0000 UTC", datetime(2022, 6, 16, 17, 17, 40, tzinfo=UTC)),
        ("2022-06-16 17:17:40.123456789 +0000", datetime(2022, 6, 16, 17, 17, 40, 123456, tzinfo=UTC)),
        ("2020-04-04T15:52:59-07:00", datetime(2020, 4, 4, 15, 52, 59, tzinfo=PDT)),
        ("2021-10-14T17:05:15Z", datetime(2021, 10, 14, 17, 5, 15, tzinfo=UTC)),
        ("2021-10-14T17:05:15", datetime(2021, 10, 14, 17, 5, 15, tzinfo=UTC)),
        ("14 Oct 2021", None),
    ],
)
def test_timestamps_of_every_scanner_parse_to_aware_datetimes(raw: str, expected: datetime | None) -> None:
    assert parse_timestamp(raw) == expected


def test_gitleaks_reads_a_report_larger_than_one_chunk() -> None:
    findings = [gitleaks_v8(File=f"deploy/service-{n}.env") for n in range(3000)]
    data = json.dumps(findings, indent=2).encode()
    assert len(data) > 1024 * 1024  # more than one chunk: an element is cut at the chunk's end
    parsed = found(parse("gitleaks", data))
    assert [entry.location.path for entry in parsed] == [f"deploy/service-{n}.env" for n in range(3000)]


def test_gitleaks_names_the_exact_line_of_a_fault_far_into_a_large_report() -> None:
    findings = [gitleaks_v8(File=f"deploy/service-{n}.env") for n in range(3000)]
    data = json.dumps(findings, indent=1).encode()
    broken_line = data.count(b"\n", 0, data.index(b"deploy/service-2500.env")) + 1
    data = data.replace(b'"deploy/service-2500.env"', b'"deploy/service-2500.env" oops', 1)
    assert (
        rejection("gitleaks", data)
        == f"the gitleaks report is not valid JSON at line {broken_line}, after finding 2500"
    )


def test_gitleaks_rejects_content_after_the_array() -> None:
    data = dumps([gitleaks_v8()])
    extra_line = data.count(b"\n") + 2
    assert rejection("gitleaks", data + b"\n[]") == (
        f"the gitleaks report has content after its JSON array, at line {extra_line}, after finding 1"
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"StartLine": 0},
        {"StartLine": -3},
        {"Date": "0001-01-01T00:00:00Z"},
        {"Date": ""},
        {"Link": "https://github.com/acme/x/blob/abc/deploy/values.yaml#L7"},
        {"Match": None, "Commit": None},
        {"Match": "token = “curly quotes”"},
    ],
)
def test_gitleaks_v8_fast_reading_agrees_with_the_checked_one(overrides: dict[str, Any]) -> None:
    # The fast path reads what it can (plain ASCII, small integers) and leaves the rest to the checked one.
    finding = {**gitleaks_v8(), **overrides}
    fast = gitleaks.v8_fast(finding, "finding 1")
    assert fast is None or fast == gitleaks.v8_checked(finding, "finding 1")


def test_gitleaks_v8_fast_reading_takes_the_common_case() -> None:
    finding = gitleaks_v8()
    assert gitleaks.v8_fast(finding, "finding 1") == gitleaks.v8_checked(finding, "finding 1")
