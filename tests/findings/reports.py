"""Small scanner reports written by the tests, in the scanners' real field sets."""

import base64
import json
from typing import Any

# Made-up secrets shaped like real ones; each test plants its own and then looks for it everywhere.
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYPLANTED1KEY"
GITHUB_TOKEN = "ghp_PlantedTokenFor2026TestsOnlyAbCdEf12"
SLACK_TOKEN = "xoxb-2026112900-planted-slack-token-value"


def gitleaks_v8(*findings: dict[str, Any]) -> bytes:
    """A gitleaks v8 JSON report; each finding needs at least Secret, File and StartLine."""
    items = []
    for finding in findings:
        secret = finding["Secret"]
        items.append(
            {
                "Description": finding.get("Description", "Generic API Key"),
                "StartLine": finding.get("StartLine", 1),
                "EndLine": finding.get("StartLine", 1),
                "StartColumn": 10,
                "EndColumn": 10 + len(secret),
                "Match": f"token = {secret}",
                "Secret": secret,
                "File": finding["File"],
                "SymlinkFile": "",
                "Commit": finding.get("Commit", "a" * 40),
                "Entropy": 4.5,
                "Author": "Jane Doe",
                "Email": "jane@example.com",
                "Date": finding.get("Date", "2026-01-02T03:04:05Z"),
                "Message": f"add config {secret}",
                "Tags": [],
                "RuleID": finding.get("RuleID", "generic-api-key"),
                "Fingerprint": f"{finding.get('Commit', 'a' * 40)}:{finding['File']}:generic-api-key:1",
            }
        )
    return json.dumps(items).encode()


def trufflehog_v3(*findings: dict[str, Any]) -> bytes:
    """TruffleHog v3 JSON lines; each finding needs Raw (the secret), file and line."""
    lines = []
    for finding in findings:
        secret = finding["Raw"]
        lines.append(
            json.dumps(
                {
                    "SourceMetadata": {
                        "Data": {
                            "Git": {
                                "commit": finding.get("commit", "b" * 40),
                                "file": finding["file"],
                                "email": "dev <dev@example.com>",
                                "repository": finding.get("repository", "https://github.com/acme/payments"),
                                "timestamp": "2026-01-02 10:17:40 -0700 -0700",
                                "line": finding["line"],
                            }
                        }
                    },
                    "SourceID": 0,
                    "SourceType": 16,
                    "SourceName": "trufflehog - git",
                    "DetectorType": 2,
                    "DetectorName": finding.get("DetectorName", "AWS"),
                    "Verified": finding.get("Verified", False),
                    "Raw": base64.b64encode(secret.encode()).decode(),
                    "Redacted": secret,
                    "ExtraData": None,
                    "StructuredData": None,
                }
            )
        )
    return ("\n".join(lines) + "\n").encode()


def github_alerts(*alerts: dict[str, Any]) -> bytes:
    """GitHub secret scanning alerts as the REST API lists them."""
    items = []
    for number, alert in enumerate(alerts, start=1):
        resolved = alert.get("state") == "resolved"
        items.append(
            {
                "number": number,
                "created_at": "2026-01-05T10:00:00Z",
                "url": f"https://api.github.com/repos/acme/payments/secret-scanning/alerts/{number}",
                "html_url": f"https://github.com/acme/payments/security/secret-scanning/{number}",
                "locations_url": f"https://api.github.com/repos/acme/payments/secret-scanning/alerts/{number}/locations",
                "state": alert.get("state", "open"),
                "resolution": alert.get("resolution") if resolved else None,
                "resolved_at": "2026-02-01T10:00:00Z" if resolved else None,
                "resolved_by": None,
                "secret_type": "github_personal_access_token",
                "secret_type_display_name": "GitHub Personal Access Token",
                "secret": alert["secret"],
                "validity": alert.get("validity", "unknown"),
            }
        )
    return json.dumps(items).encode()
