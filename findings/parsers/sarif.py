"""SARIF 2.1.0 logs from secret scanners (gitleaks, secretlint, ...), streamed one result at a time.

Where the secret is:
- gitleaks v7 puts it in `properties.offender`; its `region.snippet.text` is the whole line (kept as context).
- gitleaks v8 puts the secret itself in `region.snippet.text` with a column-bounded region.
- In general a snippet is the text of its region (SARIF §3.30.13): the secret when the region is bounded by
  columns or characters, a whole line when it is bounded by lines only, in which case the secret within it is
  not marked and the result is skipped; so are results with no snippet (secretlint's SARIF has none).
The detector is `ruleId` (or `rule.id`, or the driver rule `ruleIndex` points to); gitleaks v7 writes none,
only a message "<rule> secret detected" naming one of the driver's rules, which is used instead.
"""

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import BinaryIO

from findings.parsers import fields
from findings.parsers.base import Entry, Location, ReportFormatError, ScannedSecret, Skipped
from findings.parsers.fields import JSONObject
from findings.parsers.gitleaks import v7_header_only
from findings.parsers.json_stream import ValueBuilder, iter_object_events

_REPORT = "SARIF log"
_VERSION = "2.1.0"
_REDACTED = "REDACTED"  # gitleaks --redact
_RULE = "runs.item.tool.driver.rules.item"
_RESULT = "runs.item.results.item"
_COLUMN_BOUNDS = ("startColumn", "endColumn", "charOffset", "charLength", "byteOffset", "byteLength")


class _Run:
    """What a run says about all its results: which tool, which rules, which repository."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.scanner = ""
        self.rule_ids: list[str] = []
        self.repository = ""
        self.tool_seen = False
        self.result_count = 0
        # Results met before `tool` (SARIF does not fix key order); normally empty.
        self.pending: list[tuple[str, JSONObject]] = []


def parse(stream: BinaryIO) -> Iterator[Entry]:
    log = _Log()
    for prefix, event, value in iter_object_events(stream, report=_REPORT):
        if entries := log.feed(prefix, event, value):
            yield from entries


class _Log:
    """Walks the log's events, keeping one run's facts and building one result or rule at a time."""

    def __init__(self) -> None:
        self.saw_runs = False
        self.run = _Run(-1)
        self.builder: ValueBuilder | None = None
        self.target = ""
        self.handlers: dict[str, Callable[[str, object], list[Entry]]] = {
            "": self._top,
            "version": self._version,
            "runs": self._runs,
            "runs.item": self._run_event,
            "runs.item.tool": self._tool,
            "runs.item.tool.driver.name": self._driver_name,
            "runs.item.versionControlProvenance.item.repositoryUri": self._repository_uri,
            _RULE: self._start_rule,
            _RESULT: self._start_result,
        }

    def feed(self, prefix: str, event: str, value: object) -> list[Entry]:
        if self.builder is not None:
            if not self.builder.feed(event, value):
                return []
            built, self.builder = self.builder.value, None
            return self._built(built)
        handler = self.handlers.get(prefix)
        return handler(event, value) if handler is not None else []

    def _top(self, event: str, value: object) -> list[Entry]:
        if event == "end_map" and not self.saw_runs:
            raise ReportFormatError(f"the {_REPORT} has no 'runs' array (is it another format?)")
        return []

    def _version(self, event: str, value: object) -> list[Entry]:
        if value != _VERSION:
            raise ReportFormatError(f"the {_REPORT}'s field 'version' must be '{_VERSION}' (another format?)")
        return []

    def _runs(self, event: str, value: object) -> list[Entry]:
        if event not in ("start_array", "end_array"):
            raise ReportFormatError(f"the {_REPORT}'s field 'runs' must be an array")
        self.saw_runs = True
        return []

    def _run_event(self, event: str, value: object) -> list[Entry]:
        if event == "start_map":
            self.run = _Run(self.run.index + 1)
        elif event == "end_map":
            return self._flush()
        elif event != "map_key":
            raise ReportFormatError(f"runs[{self.run.index + 1}] must be a JSON object")
        return []

    def _tool(self, event: str, value: object) -> list[Entry]:
        if event != "end_map":
            return []
        self.run.tool_seen = True
        return self._flush()

    def _driver_name(self, event: str, value: object) -> list[Entry]:
        if not isinstance(value, str):
            raise ReportFormatError(f"field 'runs[{self.run.index}].tool.driver.name' must be a string")
        self.run.scanner = value.strip().lower()
        return []

    def _repository_uri(self, event: str, value: object) -> list[Entry]:
        if not isinstance(value, str):
            raise ReportFormatError(
                f"field 'runs[{self.run.index}].versionControlProvenance[].repositoryUri' must be a string"
            )
        self.run.repository = self.run.repository or value
        return []

    def _start_rule(self, event: str, value: object) -> list[Entry]:
        return self._start(_RULE, event, value)

    def _start_result(self, event: str, value: object) -> list[Entry]:
        return self._start(_RESULT, event, value)

    def _start(self, target: str, event: str, value: object) -> list[Entry]:
        self.target = target
        builder = ValueBuilder(event, value)
        if builder.done:  # a scalar where an object belongs: _built rejects it
            return self._built(builder.value)
        self.builder = builder
        return []

    def _built(self, value: object) -> list[Entry]:
        run = self.run
        if self.target == _RULE:
            rule = fields.as_object(value, f"runs[{run.index}].tool.driver.rules[{len(run.rule_ids)}]")
            rule_id = rule.get("id")
            run.rule_ids.append(rule_id if isinstance(rule_id, str) else "")
            return []
        position = f"runs[{run.index}].results[{run.result_count}]"
        run.result_count += 1
        result = fields.as_object(value, position)
        if not run.tool_seen:
            run.pending.append((position, result))
            return []
        return [_result(run, result, position)]

    def _flush(self) -> list[Entry]:
        pending, self.run.pending = self.run.pending, []
        return [_result(self.run, result, position) for position, result in pending]


def _result(run: _Run, result: JSONObject, position: str) -> Entry:
    properties = fields.sub_object(result, "properties", position) or {}
    fingerprints = fields.sub_object(result, "partialFingerprints", position) or {}
    physical, region = _first_region(result, position)
    detector = _detector(run, result, position)
    path = ""
    if physical is not None:
        artifact = fields.sub_object(physical, "artifactLocation", position, label="artifactLocation") or {}
        path = fields.text(artifact, "uri", position, label="artifactLocation.uri")
    snippet_object = fields.sub_object(region, "snippet", position, label="region.snippet") or {}
    snippet = fields.text(snippet_object, "text", position, label="region.snippet.text")
    offender = fields.text(properties, "offender", position, label="properties.offender")
    commit = fields.text(properties, "commit", position, label="properties.commit") or fields.text(
        fingerprints, "commitSha", position, label="partialFingerprints.commitSha"
    )
    repository = fields.text(properties, "repo", position, label="properties.repo")
    if repository in ("", "."):  # gitleaks v7: "." only says it ran in the current directory
        repository = run.repository
    found_at = _found_at(properties, fingerprints, position)
    line = fields.line_number(region, "startLine", position, label="region.startLine")
    if _suppressed(result, position):
        return Skipped(position=position, reason="the result is suppressed in the SARIF log")

    context = ""
    if offender:
        secret, context = offender, snippet
    elif snippet and any(key in region for key in _COLUMN_BOUNDS):
        secret = snippet
    elif snippet:
        return Skipped(
            position=position, reason="the SARIF snippet is a whole line; the secret in it is not marked"
        )
    else:
        return Skipped(position=position, reason="the SARIF result has no snippet holding the secret")
    if unusable := _unusable(secret, run.scanner):
        return Skipped(position=position, reason=unusable)
    return ScannedSecret(
        position=position,
        scanner=run.scanner or "sarif",
        detector=detector,
        location=Location(repository=repository, path=path, line=line, commit=commit),
        secret=secret,
        context=context,
        found_at=found_at,
    )


def _unusable(secret: str, scanner: str) -> str:
    """Why the secret as reported is not the secret ("" when it is)."""
    if secret == _REDACTED:
        return "the secret is redacted in the report"
    if header_only := v7_header_only(secret):
        return header_only
    if scanner == "gitleaks" and secret.endswith("..."):  # gitleaks --redact=N keeps a prefix
        return "the secret is partly redacted in the report"
    return ""


def _first_region(result: JSONObject, position: str) -> tuple[JSONObject | None, JSONObject]:
    """The first location's physicalLocation and region; a result may have none (e.g. about a whole repo)."""
    locations = fields.array(result, "locations", position)
    if not locations:
        return None, {}
    first = fields.as_object(locations[0], f"{position}.locations[0]")
    physical = fields.sub_object(first, "physicalLocation", position, label="locations[0].physicalLocation")
    if physical is None:
        return None, {}
    region = fields.sub_object(physical, "region", position, label="physicalLocation.region") or {}
    return physical, region


def _detector(run: _Run, result: JSONObject, position: str) -> str:
    rule_id = fields.text(result, "ruleId", position)
    if rule_id:
        return rule_id
    rule = fields.sub_object(result, "rule", position) or {}
    rule_id = fields.text(rule, "id", position, label="rule.id")
    if rule_id:
        return rule_id
    rule_index = fields.integer(result, "ruleIndex", position)
    if rule_index is None:
        rule_index = fields.integer(rule, "index", position, label="rule.index")
    if rule_index is not None and 0 <= rule_index < len(run.rule_ids):
        return run.rule_ids[rule_index]
    message = fields.sub_object(result, "message", position) or {}
    text = fields.text(message, "text", position, label="message.text")
    # gitleaks v7: "AWS Access Key secret detected"; the longest rule name wins ("Slack" vs "Slack Webhook").
    named = [rule for rule in run.rule_ids if rule and text.startswith(f"{rule} ")]
    return max(named, key=len) if named else ""


def _found_at(properties: JSONObject, fingerprints: JSONObject, position: str) -> datetime | None:
    if "date" in properties:
        return fields.timestamp(properties, "date", position, label="properties.date")
    return fields.timestamp(fingerprints, "date", position, label="partialFingerprints.date")


def _suppressed(result: JSONObject, position: str) -> bool:
    """Suppressed in the log (e.g. an inline ignore comment), unless the suppression was rejected."""
    for index, suppression in enumerate(fields.array(result, "suppressions", position)):
        entry = fields.as_object(suppression, f"{position}.suppressions[{index}]")
        if fields.text(entry, "status", position, label=f"suppressions[{index}].status") != "rejected":
            return True
    return False
