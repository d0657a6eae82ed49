"""Scanner report parsers, by the format name `ingest_findings --format` takes."""

from findings.parsers import detect_secrets, github, gitleaks, sarif, secretlint, trufflehog
from findings.parsers.base import Entry, Location, Parser, ReportFormatError, ScannedSecret, Skipped

PARSERS: dict[str, Parser] = {
    "gitleaks": gitleaks.parse,
    "trufflehog": trufflehog.parse,
    "detect-secrets": detect_secrets.parse,
    "sarif": sarif.parse,
    "secretlint": secretlint.parse,
    "github": github.parse,
}

__all__ = ["PARSERS", "Entry", "Location", "Parser", "ReportFormatError", "ScannedSecret", "Skipped"]
