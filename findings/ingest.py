"""The import pipeline behind `findings_import`: scanner entries in, exposures and findings out, in batches.

Each batch of parsed entries is reduced to what may be stored (fingerprints, previews, scrubbed context,
normalised locations) before anything else happens: from `_sealed()` on, no raw secret is referenced.
Then the batch costs a fixed number of queries: look up its exposures and findings, bulk-insert the new
ones with their history rows, and bump the counters of the known ones with one UPDATE per distinct
increment. Exposures that may need a case are collected for the promotion step at the end of the import.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import hmac
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import F

from findings.bulk import HistoryInserter, RowInserter, db_datetime, findings_at
from findings.models import (
    Attribution,
    AttributionRule,
    Exposure,
    ExposureState,
    Finding,
    FingerprintScheme,
    ImportRun,
)
from findings.parsers import Entry, ScannedSecret, Skipped
from nhi_inventory.fingerprints import redacted_preview
from nhi_inventory.models import Credential

BATCH_SIZE = 2000
CONTEXT_LENGTH = 300
NO_SECRET = "no secret value in the entry"
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://([^@/]+@)?", re.IGNORECASE)
SSH_REMOTE = re.compile(r"^[^@/:]+@([^/:]+):")


@functools.lru_cache(maxsize=4)
def _keyed(key: str) -> hmac.HMAC:
    return hmac.new(key.encode(), digestmod=hashlib.sha256)


def _hmac(value: str) -> str:
    # Copying a keyed HMAC skips re-deriving the key pads: a third of the cost, 200,000 times an import.
    keyed = _keyed(settings.FINGERPRINT_KEY).copy()
    keyed.update(value.encode())
    return keyed.hexdigest()


def _sha1_fingerprint(sha1_hex: str) -> str:
    return _hmac(f"sha1:{sha1_hex.lower()}")


def scrub(text: str, *, secret: str, preview: str) -> str:
    """The text with every occurrence of the secret replaced by its preview, cut to the stored length."""
    if not text:
        return ""
    scrubbed = text.replace(secret, f"[{preview}]") if secret else text
    return scrubbed[:CONTEXT_LENGTH]


@dataclass(slots=True)  # not frozen: frozen dataclasses set each field through object.__setattr__
class Sealed:
    """A scanned secret reduced to what may be stored."""

    fingerprint: str
    scheme: str
    # SHA-1 of the secret (what detect-secrets records), kept in memory only to derive the alias below.
    sha1_hex: str
    detector: str
    preview: str
    validity: str
    scanner: str
    repository: str
    path: str
    line: int | None
    commit: str
    url: str
    location_key: str
    context: str
    found_at: datetime | None
    resolved_at_source: bool
    resolved_at: datetime | None
    source_state: str

    def sha1_fingerprint(self) -> str:
        """The keyed form of the SHA-1, under which a detect-secrets report finds the same secret."""
        if self.scheme == FingerprintScheme.DETECT_SECRETS_SHA1:
            return self.fingerprint
        return _sha1_fingerprint(self.sha1_hex)


def _location_key(repository: str, path: str, line: int | None, url: str) -> str:
    place = f"{repository}\x00{path}\x00{line or ''}" if path or not url else f"{repository}\x00url\x00{url}"
    return hashlib.sha256(place.encode()).hexdigest()


@functools.lru_cache(maxsize=4096)
def _repository(raw: str, *, source: str) -> str:
    """host/owner/name whatever the scanner wrote (URL, SSH remote, with .git), so one rule fits all."""
    repository = raw.strip()
    if repository in ("", "."):
        repository = source.strip()
    repository = SCHEME.sub("", repository)
    repository = SSH_REMOTE.sub(r"\1/", repository)
    return repository.removesuffix("/").removesuffix(".git")[:255]


def _sealed(entry: ScannedSecret, *, source: str) -> Sealed | None:
    detector = entry.detector.strip()[:120] or entry.scanner
    location = entry.location
    repository = _repository(location.repository, source=source)
    path, url = location.path.strip()[:1024], location.url.strip()[:1024]
    secret = entry.secret
    if secret:
        fingerprint, scheme = _hmac(secret), FingerprintScheme.SECRET
        sha1_hex = hashlib.sha1(secret.encode(), usedforsecurity=False).hexdigest()
        preview = redacted_preview(secret, detector=detector[:80])
        context = scrub(entry.context, secret=secret, preview=preview)
        if secret in context:  # a secret longer than the stored context, cut in the middle, or re-encoded
            context = ""
    elif entry.scanner_sha1:
        fingerprint, scheme = _sha1_fingerprint(entry.scanner_sha1), FingerprintScheme.DETECT_SECRETS_SHA1
        sha1_hex = entry.scanner_sha1
        preview = f"{detector[:80]}:(only the scanner's hash is known)"
        context = ""  # without the secret there is no way to scrub it
    else:
        return None
    return Sealed(
        fingerprint=fingerprint,
        scheme=scheme,
        sha1_hex=sha1_hex,
        detector=detector,
        preview=preview,
        validity=entry.validity,
        scanner=entry.scanner[:40],
        repository=repository,
        path=path,
        line=location.line,
        commit=location.commit.strip()[:64],
        url=url,
        location_key=_location_key(repository, path, location.line, url),
        context=context,
        found_at=entry.found_at,
        resolved_at_source=entry.resolved_at_source,
        resolved_at=entry.resolved_at,
        source_state=entry.source_state[:80],
    )


@dataclass
class Outcome:
    """What an import did: the summary the command prints and the import row keeps."""

    entries: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    regressions: int = 0
    resolved_at_source: int = 0
    new_exposures: int = 0
    cases_opened: int = 0
    cases_joined: int = 0
    triage: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    # Exposures the promotion step looks at: new, regressed or newly seen in more places.
    candidates: set[int] = field(default_factory=set)

    def as_dict(self) -> dict[str, object]:
        return {
            "entries": self.entries,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "regressions": self.regressions,
            "resolved_at_source": self.resolved_at_source,
            "new_exposures": self.new_exposures,
            "cases_opened": self.cases_opened,
            "cases_joined": self.cases_joined,
            "awaiting_triage": self.triage,
            "skipped": sum(self.skipped.values()),
            "skipped_reasons": dict(sorted(self.skipped.items())),
        }


class Attributor:
    """Finds the identity a new exposure belongs to: a registered credential first, then the rules."""

    def __init__(self) -> None:
        self.rules = [
            (
                rule,
                rule.repository_pattern.lower(),
                rule.path_pattern.lower(),
                rule.detector_pattern.lower(),
            )
            for rule in AttributionRule.objects.filter(is_active=True).order_by("position", "id")
        ]

    def rule_for(self, *, repository: str, path: str, detector: str) -> AttributionRule | None:
        repository, path, detector = repository.lower(), path.lower(), detector.lower()
        for rule, repository_pattern, path_pattern, detector_pattern in self.rules:
            if repository_pattern and not fnmatch.fnmatchcase(repository, repository_pattern):
                continue
            if path_pattern and not fnmatch.fnmatchcase(path, path_pattern):
                continue
            if detector_pattern and not fnmatch.fnmatchcase(detector, detector_pattern):
                continue
            return rule
        return None

    @staticmethod
    def credentials(fingerprints: Iterable[str]) -> dict[str, Credential]:
        return {
            credential.fingerprint: credential
            for credential in Credential.objects.filter(
                fingerprint_key_id=settings.FINGERPRINT_KEY_ID, fingerprint__in=list(fingerprints)
            ).only("id", "fingerprint", "nhi_id")
        }


def batches(entries: Iterator[Entry], size: int = BATCH_SIZE) -> Iterator[list[Entry]]:
    while batch := list(islice(entries, size)):
        yield batch


@dataclass(slots=True)
class KnownExposure:
    pk: int
    fingerprint: str
    sha1_fingerprint: str | None
    state: str
    validity: str
    remediated_at: datetime | None


@dataclass(slots=True)
class KnownFinding:
    pk: int
    commit: str
    resolved_at_source: bool
    source_state: str


class BatchWriter:
    """Writes one batch of entries. One instance per import; it keeps only counters between batches."""

    def __init__(self, *, run: ImportRun, actor: User, source: str, now: datetime, outcome: Outcome) -> None:
        self.run, self.actor, self.source, self.now, self.outcome = run, actor, source, now, outcome
        self.key_id = settings.FINGERPRINT_KEY_ID
        self.attributor = Attributor()
        self.exposures = RowInserter(Exposure)
        self.exposure_history = HistoryInserter(Exposure)
        self.findings = RowInserter(Finding)
        self.finding_history = HistoryInserter(Finding)
        self.reason = f"found by import #{run.pk}"
        self.now_db = db_datetime(now)
        self.known_exposures: dict[str, KnownExposure] = {}
        # Aliases are looked up only once some exposure is known by its detect-secrets hash alone.
        self.hashed_only_known = Exposure.objects.filter(
            fingerprint_key_id=self.key_id, fingerprint_scheme=FingerprintScheme.DETECT_SECRETS_SHA1
        ).exists()

    def write(self, batch: list[Entry]) -> None:
        sealed: list[Sealed] = []
        for entry in batch:
            self.outcome.entries += 1
            if isinstance(entry, Skipped):
                self.outcome.skipped[entry.reason] += 1
                continue
            found = _sealed(entry, source=self.source)
            if found is None:
                self.outcome.skipped[NO_SECRET] += 1
            else:
                sealed.append(found)
        del batch  # the raw secrets go with it
        if sealed:
            exposures = self._exposures(sealed)
            self._findings(sealed, exposures)

    # --- exposures ----------------------------------------------------------------------------------------

    def _known_exposures(self, sealed: list[Sealed]) -> dict[str, KnownExposure]:
        """Existing exposures by the fingerprint of this batch they answer to (own or SHA-1 alias)."""
        wanted = {item.fingerprint for item in sealed}
        if self.hashed_only_known:
            wanted |= {item.sha1_fingerprint() for item in sealed}
        hashed_only = {
            item.fingerprint for item in sealed if item.scheme == FingerprintScheme.DETECT_SECRETS_SHA1
        }
        fields = ("pk", "fingerprint", "sha1_fingerprint", "state", "validity", "remediated_at")
        rows = list(
            Exposure.objects.filter(fingerprint_key_id=self.key_id, fingerprint__in=wanted).values_list(
                *fields
            )
        )
        if hashed_only:  # a detect-secrets hash may name an exposure another scanner made
            rows += Exposure.objects.filter(
                fingerprint_key_id=self.key_id, sha1_fingerprint__in=hashed_only
            ).values_list(*fields)
        found: dict[str, KnownExposure] = {}
        for row in rows:
            known = KnownExposure(*row)
            found[known.fingerprint] = known
            if known.sha1_fingerprint:
                found.setdefault(known.sha1_fingerprint, known)
        return found

    def _exposures(self, sealed: list[Sealed]) -> dict[str, int]:
        """The exposure id of each fingerprint in the batch: created where new, counters bumped if known."""
        known = self._known_exposures(sealed)
        self.known_exposures = known
        ids: dict[str, int] = {}
        new: dict[str, dict[str, Any]] = {}
        first_place: dict[str, Sealed] = {}
        places: dict[str, set[str]] = defaultdict(set)
        seen: Counter[int] = Counter()
        upgraded: set[int] = set()
        for item in sealed:
            exposure = known.get(item.fingerprint)
            if exposure is None and item.scheme == FingerprintScheme.SECRET and self.hashed_only_known:
                exposure = known.get(item.sha1_fingerprint())  # first reported by detect-secrets
            if exposure is not None:
                seen[exposure.pk] += 1
                if item.validity == "valid" and exposure.validity != "valid":
                    upgraded.add(exposure.pk)
                ids[item.fingerprint] = exposure.pk
                continue
            row = new.get(item.fingerprint)
            if row is None:
                row = new[item.fingerprint] = {
                    "fingerprint": item.fingerprint,
                    "fingerprint_key_id": self.key_id,
                    "fingerprint_scheme": item.scheme,
                    "sha1_fingerprint": item.sha1_fingerprint(),
                    "detector": item.detector,
                    "preview": item.preview,
                    "validity": item.validity,
                    "first_seen_at": self.now_db,
                    "last_seen_at": self.now_db,
                    "occurrences": 0,
                }
                first_place[item.fingerprint] = item
            row["occurrences"] += 1
            places[item.fingerprint].add(item.location_key)
            if item.validity == "valid":
                row["validity"] = "valid"
        if new:
            for fingerprint, row in new.items():
                row["locations"] = len(places[fingerprint])
            self._attribute(new, first_place)
            self.exposures.insert(new.values())
            for fingerprint, pk in Exposure.objects.filter(
                fingerprint_key_id=self.key_id, fingerprint__in=list(new)
            ).values_list("fingerprint", "pk"):
                new[fingerprint]["id"] = ids[fingerprint] = pk
            self.exposure_history.insert(
                list(new.values()), user_id=self.actor.pk, reason=self.reason, at=self.now_db
            )
            self.outcome.new_exposures += len(new)
            if any(
                row["fingerprint_scheme"] == FingerprintScheme.DETECT_SECRETS_SHA1 for row in new.values()
            ):
                self.hashed_only_known = True
            self.outcome.candidates.update(row["id"] for row in new.values())
        self._bump(Exposure, seen)
        for pk in upgraded:
            self._mark_valid(pk)
        return ids

    def _attribute(self, exposures: dict[str, dict[str, Any]], first_place: dict[str, Sealed]) -> None:
        credentials = self.attributor.credentials(
            fingerprint
            for fingerprint, row in exposures.items()
            if row["fingerprint_scheme"] == FingerprintScheme.SECRET
        )
        for fingerprint, row in exposures.items():
            credential = credentials.get(fingerprint)
            if credential is not None:
                row.update(
                    credential_id=credential.pk, nhi_id=credential.nhi_id, attribution=Attribution.FINGERPRINT
                )
                continue
            item = first_place[fingerprint]
            rule = self.attributor.rule_for(
                repository=item.repository, path=item.path, detector=item.detector
            )
            if rule is not None:
                row.update(nhi_id=rule.nhi_id, attribution_rule_id=rule.pk, attribution=Attribution.RULE)

    def _mark_valid(self, exposure_id: int) -> None:
        """A scanner now says the secret is live: a change worth a history row (and a promotion check)."""
        exposure = Exposure.objects.select_for_update().get(pk=exposure_id)
        exposure.validity = "valid"
        exposure._history_user = self.actor
        exposure._change_reason = f"reported valid by import #{self.run.pk}"
        exposure.save(update_fields=["validity"])
        self.outcome.candidates.add(exposure.pk)

    def _bump(self, model: type[Exposure] | type[Finding], seen: Counter[int], **extra: object) -> None:
        """occurrences += n and last_seen = now, one UPDATE per distinct n (usually a single one)."""
        by_increment: dict[int, list[int]] = defaultdict(list)
        for pk, times in seen.items():
            by_increment[times].append(pk)
        for times, pks in by_increment.items():
            model.objects.filter(pk__in=pks).update(
                occurrences=F("occurrences") + times, last_seen_at=self.now, **extra
            )

    # --- findings -----------------------------------------------------------------------------------------

    def _findings(self, sealed: list[Sealed], exposures: dict[str, int]) -> None:
        places = {(exposures[item.fingerprint], item.location_key) for item in sealed}
        known = {
            (exposure_id, location_key): KnownFinding(pk, commit, bool(resolved), state)
            for pk, exposure_id, location_key, commit, resolved, state in findings_at(places)
        }
        remediated = {
            exposure.pk: exposure
            for exposure in self.known_exposures.values()
            if exposure.state == ExposureState.REMEDIATED
        }
        new: dict[tuple[int, str], dict[str, Any]] = {}
        seen: Counter[int] = Counter()
        changed: dict[int, Sealed] = {}
        new_places: Counter[int] = Counter()
        regressed: set[int] = set()
        known_exposure_ids = {exposure.pk for exposure in self.known_exposures.values()}
        for item in sealed:
            exposure_id = exposures[item.fingerprint]
            place = (exposure_id, item.location_key)
            finding = known.get(place)
            if finding is not None:
                seen[finding.pk] += 1
                if self._source_state_changed(finding, item) or (
                    item.commit and item.commit != finding.commit
                ):
                    changed[finding.pk] = item
                if exposure_id in remediated and self._recurs(remediated[exposure_id], finding, item):
                    regressed.add(exposure_id)
                continue
            row = new.get(place)
            if row is not None:
                row["occurrences"] += 1
                continue
            new[place] = {
                "exposure_id": exposure_id,
                "location_key": item.location_key,
                "source": self.source[:200],
                "scanner": item.scanner,
                "detector": item.detector,
                "repository": item.repository,
                "path": item.path,
                "line": item.line,
                "commit": item.commit,
                "url": item.url,
                "context": item.context,
                "first_seen_at": self.now_db,
                "last_seen_at": self.now_db,
                "occurrences": 1,
                "resolved_at_source": item.resolved_at_source,
                "resolved_at": db_datetime(item.resolved_at),
                "source_state": item.source_state,
                "first_import_id": self.run.pk,
                "last_import_id": self.run.pk,
            }
            if item.resolved_at_source:
                self.outcome.resolved_at_source += 1
            if exposure_id in known_exposure_ids:
                new_places[exposure_id] += 1  # new exposures were inserted with their places counted
            if exposure_id in remediated:
                regressed.add(exposure_id)  # the remediated secret turned up somewhere new
        if new:
            self.findings.insert(new.values())
            for pk, exposure_id, location_key, *_ in findings_at(set(new)):
                new[(exposure_id, location_key)]["id"] = pk
            self.finding_history.insert(
                list(new.values()), user_id=self.actor.pk, reason=self.reason, at=self.now_db
            )
            self.outcome.created += len(new)
        self._bump(Finding, seen, last_import_id=self.run.pk)
        self._update_changed(changed)
        self.outcome.unchanged += sum(seen.values()) - len(changed)
        self.outcome.updated += len(changed)
        self._count_places(new_places)
        for exposure_id in regressed:
            self._regress(exposure_id)

    @staticmethod
    def _source_state_changed(finding: KnownFinding, item: Sealed) -> bool:
        return finding.resolved_at_source != item.resolved_at_source or (
            item.resolved_at_source and finding.source_state != item.source_state
        )

    @staticmethod
    def _recurs(exposure: KnownExposure, finding: KnownFinding, item: Sealed) -> bool:
        """Seen again after remediation: committed again, or the scanner dates it after the remediation.

        The same commit reported again is the old leak still in the history, not a new one.
        """
        if item.commit and item.commit != finding.commit:
            return True
        return bool(item.found_at and exposure.remediated_at and item.found_at > exposure.remediated_at)

    def _update_changed(self, changed: dict[int, Sealed]) -> None:
        """The few findings whose source state or commit changed: saved one by one, with history."""
        for finding_id, item in changed.items():
            finding = Finding.objects.get(pk=finding_id)
            if item.resolved_at_source and not (
                finding.resolved_at_source and finding.source_state == item.source_state
            ):
                self.outcome.resolved_at_source += 1
            finding.resolved_at_source = item.resolved_at_source
            finding.resolved_at = item.resolved_at if item.resolved_at_source else None
            finding.source_state = item.source_state
            if item.commit:
                finding.commit = item.commit
            finding._history_user = self.actor  # type: ignore[attr-defined]
            finding._change_reason = f"changed at the source, import #{self.run.pk}"  # type: ignore[attr-defined]
            finding.save(update_fields=["resolved_at_source", "resolved_at", "source_state", "commit"])

    def _count_places(self, new_places: Counter[int]) -> None:
        by_increment: dict[int, list[int]] = defaultdict(list)
        for pk, places in new_places.items():
            by_increment[places].append(pk)
        for places, pks in by_increment.items():
            Exposure.objects.filter(pk__in=pks).update(locations=F("locations") + places)
        # An exposure seen in more places than before may now count as recurring.
        self.outcome.candidates.update(new_places)

    def _regress(self, exposure_id: int) -> None:
        exposure = Exposure.objects.select_for_update().get(pk=exposure_id)
        if exposure.state != ExposureState.REMEDIATED:
            return
        exposure.regress()
        exposure.regressions += 1
        exposure._history_user = self.actor
        exposure._change_reason = f"seen again after remediation, import #{self.run.pk}"
        exposure.save()
        self.outcome.regressions += 1
        self.outcome.candidates.add(exposure.pk)
