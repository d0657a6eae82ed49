"""The import pipeline behind `findings_import`: scanner entries in, exposures and findings out, in batches.

Two processes (`SealingPipeline`): a forked child reads and parses the report and reduces each batch of
entries to what may be stored (fingerprints, previews, scrubbed context, normalised locations) with
`seal()`; from `_sealed()` on, no raw secret is referenced, and only sealed batches leave the child.
This process writes them (`BatchWriter`), a fixed number of queries a batch: look up its exposures and
findings, bulk-insert the new ones with their history rows (ids taken beforehand, so nothing is looked up
again), and add to the counters of the known findings in one statement. The exposures' counters are
added up over the whole import and written once at its end (`finish()`). Exposures that may need a case
are collected for the promotion step at the end of the import."""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import gc
import hashlib
import hmac
import multiprocessing
import os
import re
import signal
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from multiprocessing.connection import Connection
from typing import IO, Any, BinaryIO, NamedTuple, cast

from django.conf import settings
from django.contrib.auth.models import User

from findings.bulk import (
    HistoryInserter,
    RowInserter,
    add_to_counters,
    db_datetime,
    exposures_by,
    findings_at,
    next_ids,
    one_of,
)
from findings.models import (
    Attribution,
    AttributionRule,
    Exposure,
    ExposureState,
    Finding,
    FingerprintScheme,
    ImportRun,
)
from findings.parsers import Entry, Parser, ReportFormatError, ScannedSecret, Skipped
from nhi_inventory.fingerprints import mask_credentials, redacted_preview
from nhi_inventory.models import Credential

BATCH_SIZE = 2000
ALIAS_CACHE_LIMIT = 20_000  # secrets the sealing remembers with what it derived from them (about 8 MB)
PIPE_BYTES = 1 << 20  # Linux's default pipe-max-size; a sealed batch of 2,000 pickles to about 0.8 MB
COUNTER_CHUNK = 10_000  # exposures' counter updates per statement at the end of an import
CONTEXT_LENGTH = 300
NO_SECRET = "no secret value in the entry"
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://([^/?#]*@)?", re.IGNORECASE)
USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)[^/?#]*@", re.IGNORECASE)
SSH_REMOTE = re.compile(r"^[^@/:]+@([^/:]+):")


class KeyedHash:
    """HMAC-SHA256 under one key, with the key's inner and outer blocks hashed once (RFC 2104).

    Each message then costs two copies of a SHA-256 state and two updates, in C: 2 µs, where
    `hmac.digest()` sets the key up again for every call (5 µs; 140,000 calls an import).
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _SHA256_BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_SHA256_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(hmac.trans_36))
        self._outer = hashlib.sha256(key.translate(hmac.trans_5C))

    def hexdigest(self, message: str) -> str:
        inner = self._inner.copy()
        inner.update(message.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def sha1_alias(self, sha1_hex: str) -> str:
        """The keyed form of a secret's SHA-1, under which detect-secrets (which keeps only that) names it."""
        return self.hexdigest(f"sha1:{sha1_hex.lower()}")


_SHA256_BLOCK = 64


def scrub(text: str, *, secret: str, preview: str) -> str:
    """The text with the secret replaced by its preview and anything else shaped like a credential masked,
    cut to the stored length.

    A scanner's context is often the whole line, and a line may hold more than one secret (two keys in
    one .env line): the others are masked too, whether or not this report names them.
    """
    if not text:
        return ""
    scrubbed = text.replace(secret, "\x00") if secret else text
    scrubbed = mask_credentials(scrubbed).replace("\x00", f"[{preview}]")
    return scrubbed[:CONTEXT_LENGTH]


class Sealed(NamedTuple):
    """A scanned secret reduced to what may be stored.

    A tuple: batches of these cross from the sealing process to the writing one (pickled), and tuples
    are the cheapest to pickle and build. Nothing in it is the secret or an unkeyed hash of it.
    """

    fingerprint: str
    scheme: str
    # The keyed form of the secret's SHA-1, under which a detect-secrets report finds the same secret.
    sha1_fingerprint: str
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


_as_sealed = functools.partial(tuple.__new__, Sealed)  # a plain tuple back to a Sealed, in C


@functools.lru_cache(maxsize=4096)
def _repository(raw: str, source: str) -> str:
    """host/owner/name whatever the scanner wrote (URL, SSH remote, with .git), so one rule fits all."""
    repository = raw.strip()
    if repository in ("", "."):
        repository = source.strip()
    repository = SCHEME.sub("", repository)
    repository = SSH_REMOTE.sub(r"\1/", repository)
    return repository.removesuffix("/").removesuffix(".git")[:255]


class Sealer:
    """Reduces parsed entries to what may be stored (`Sealed`), under FINGERPRINT_KEY.

    What sealing derives from a secret alone (fingerprint, SHA-1 alias, preview) is remembered for the
    next secrets of the import: a report names the same secret many times. Those secrets stay in the
    memory of the process that seals (the pipeline's child), like the batch itself.
    """

    def __init__(self, *, source: str) -> None:
        self.source = source
        self.keyed = KeyedHash(settings.FINGERPRINT_KEY.encode())
        self.known: dict[str, tuple[str, str, str, str]] = {}  # secret: fingerprint, alias, detector, preview

    def seal_batch(self, batch: list[Entry]) -> SealedBatch:
        """The raw entries are dropped by the caller."""
        if len(self.known) > ALIAS_CACHE_LIMIT:
            self.known.clear()
        skipped: Counter[str] = Counter()
        sealed: list[Sealed] = []
        for entry in batch:
            if isinstance(entry, Skipped):
                skipped[entry.reason] += 1
                continue
            found = self.seal(entry)
            if found is None:
                skipped[NO_SECRET] += 1
            else:
                sealed.append(found)
        return SealedBatch(len(batch), dict(skipped), sealed)

    def _secret(self, secret: str, detector: str) -> tuple[str, str, str, str]:
        known = self.known.get(secret)
        if known is None or known[2] != detector:
            if known is None:
                sha1_hex = hashlib.sha1(secret.encode(), usedforsecurity=False).hexdigest()
                fingerprint, alias = self.keyed.hexdigest(secret), self.keyed.sha1_alias(sha1_hex)
            else:
                fingerprint, alias = known[0], known[1]
            known = self.known[secret] = (
                fingerprint,
                alias,
                detector,
                redacted_preview(secret, detector=detector[:80]),
            )
        return known

    def seal(self, entry: ScannedSecret) -> Sealed | None:
        detector = entry.detector.strip()[:120] or entry.scanner
        location = entry.location
        repository = _repository(location.repository, self.source)
        path = location.path.strip()[:1024]
        url = location.url.strip()
        if "@" in url:  # CI remotes carry tokens in the user-info part (https://x-access-token:...@)
            url = USERINFO.sub(r"\1", url)
        url = url[:1024]
        secret = entry.secret
        if secret:
            fingerprint, sha1_fingerprint, _, preview = self._secret(secret, detector)
            scheme = FingerprintScheme.SECRET
            context = scrub(entry.context, secret=secret, preview=preview)
            if secret in context:  # a secret longer than the stored context, cut in the middle, or re-encoded
                context = ""
            if secret in path or secret in url:  # a secret used as a file name or in a link
                path, url = path.replace(secret, f"[{preview}]"), url.replace(secret, f"[{preview}]")
        elif entry.scanner_sha1:
            fingerprint = sha1_fingerprint = self.keyed.sha1_alias(entry.scanner_sha1)
            scheme = FingerprintScheme.DETECT_SECRETS_SHA1
            preview = f"{detector[:80]}:(only the scanner's hash is known)"
            context = ""  # without the secret there is no way to scrub it
        else:
            return None
        line = location.line
        # The location key: a file position, or the link alone when the scanner gives no path.
        place = f"{path}\x00{line or ''}" if path or not url else f"url\x00{url}"
        location_key = hashlib.sha256(f"{repository}\x00{place}".encode()).hexdigest()
        # Positionally, in Sealed's field order: keyword construction of a named tuple is five times slower.
        return _as_sealed(
            (
                fingerprint,
                scheme,
                sha1_fingerprint,
                detector,
                preview,
                entry.validity,
                entry.scanner[:40],
                repository,
                path,
                line,
                location.commit.strip()[:64],
                url,
                location_key,
                context,
                entry.found_at,
                entry.resolved_at_source,
                entry.resolved_at,
                entry.source_state[:80],
            )
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
                one_of("fingerprint", list(fingerprints)), fingerprint_key_id=settings.FINGERPRINT_KEY_ID
            ).only("id", "fingerprint", "nhi_id")
        }


def batches(entries: Iterator[Entry], size: int = BATCH_SIZE) -> Iterator[list[Entry]]:
    while batch := list(islice(entries, size)):
        yield batch


class HashingReader:
    """A binary stream that keeps the SHA-256 and size of what was read through it."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream, self.digest, self.size = stream, hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data = self.stream.readline(size)
        self.digest.update(data)
        self.size += len(data)
        return data

    def __iter__(self) -> HashingReader:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class SealedBatch(NamedTuple):
    """A batch of entries as it leaves sealing: counts, skip reasons and the sealed secrets, no raw one."""

    entries: int
    skipped: dict[str, int]
    sealed: list[Sealed]


class ReportDigest(NamedTuple):
    sha256: str
    size: int


def _sealed_batches(parser: Parser, reader: HashingReader, source: str, size: int) -> Iterator[SealedBatch]:
    sealer = Sealer(source=source)
    for batch in batches(iter(parser(cast(BinaryIO, reader))), size):
        sealed = sealer.seal_batch(batch)
        del batch  # the raw secrets go with it
        yield sealed


def _seal_in_child(sender: Connection, parser: Parser, stream: IO[bytes], source: str, size: int) -> None:
    """The pipeline's child: reads, parses and seals the report; only sealed batches leave it."""
    try:
        try:
            reader = HashingReader(stream)
            for sealed in _sealed_batches(parser, reader, source, size):
                # Plain tuples: pickled in C, a third of the time named tuples take.
                sender.send(("batch", (sealed.entries, sealed.skipped, list(map(tuple, sealed.sealed)))))
            message: tuple[str, object] = ("done", ReportDigest(reader.digest.hexdigest(), reader.size))
        except ReportFormatError as error:
            message = ("invalid", str(error))  # the message names where, never quotes the input
        except Exception as error:  # reported to the parent, which fails the import
            message = ("failed", type(error).__name__)  # the type only: a message could quote the input
        sender.send(message)
    except OSError:
        pass  # the parent stopped listening (its import failed and rolls back): nothing left to tell
    finally:
        sender.close()


class SealingPipeline:
    """Parses and seals the report in a forked child while this process writes: two cores, two stages.

    The child reads the stream itself (inherited by fork) and sends sealed batches through a pipe, at
    most about one batch ahead (the pipe's buffer), so memory stays flat. Raw secrets never leave the
    child. A `ReportFormatError` in the child is raised here again, with its message, so the caller's
    transaction rolls back as if parsing had failed in-process. Without fork, it all runs in-process.
    """

    def __init__(self, parser: Parser, stream: IO[bytes], *, source: str, size: int = BATCH_SIZE) -> None:
        self.parser, self.stream, self.source, self.size = parser, stream, source, size
        self.digest: ReportDigest | None = None

    def _fork(self, receiver: Connection, sender: Connection) -> int:
        """Start the sealing child; here, return its pid."""
        # Objects that exist now are left alone by the collector in both processes until the import ends:
        # collections in the child would otherwise write to (and so copy) every shared page that holds
        # one, and here full collections would walk all of Django's objects again and again.
        gc.freeze()
        try:
            # A bare fork, not multiprocessing.Process: that one closes the child's sys.stdin, which may
            # be the very stream to read (`ingest_findings -`), and runs its own start-up and exit code.
            pid = os.fork()
        except BaseException:
            gc.unfreeze()
            receiver.close()
            sender.close()
            raise
        if pid == 0:  # the child: seal, send, and leave without running any of the parent's exit code
            status = 1
            try:
                receiver.close()
                _seal_in_child(sender, self.parser, self.stream, self.source, self.size)
                status = 0
            finally:
                os._exit(status)
        return pid

    def sealed(self) -> Generator[SealedBatch, None, None]:
        # Forking a process that runs other threads (a threaded web server) can leave the child waiting on
        # a lock some other thread held at the fork: only single-threaded processes fork (the command, a
        # prefork worker); the others seal in-process.
        if not hasattr(os, "fork") or threading.active_count() > 1:
            reader = HashingReader(self.stream)
            yield from _sealed_batches(self.parser, reader, self.source, self.size)
            self.digest = ReportDigest(reader.digest.hexdigest(), reader.size)
            return
        sys.stdout.flush()  # else the child could write the parent's pending output again
        sys.stderr.flush()
        receiver, sender = multiprocessing.Pipe(duplex=False)
        with contextlib.suppress(ImportError, AttributeError, OSError):  # Linux: 64 KiB without it
            import fcntl  # noqa: PLC0415 (POSIX only)

            # Lets the child run a batch or two ahead, so that neither side waits on the other's slow batch.
            fcntl.fcntl(sender.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        pid = self._fork(receiver, sender)
        sender.close()
        try:
            while True:
                try:
                    kind, payload = receiver.recv()
                except EOFError:
                    raise RuntimeError("The report's parsing process ended unexpectedly.") from None
                if kind == "batch":
                    entries, skipped, rows = payload
                    yield SealedBatch(entries, skipped, list(map(_as_sealed, rows)))
                elif kind == "done":
                    self.digest = payload
                    return
                elif kind == "invalid":
                    raise ReportFormatError(payload)
                else:
                    raise RuntimeError(f"The report's parsing process failed ({payload}).")
        finally:
            gc.unfreeze()
            receiver.close()
            if self.digest is None:  # stopped early (an error here or there): the child has nothing to add
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


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
        self.exposures = RowInserter(Exposure, with_id=True)
        self.exposure_history = HistoryInserter(Exposure)
        self.findings = RowInserter(Finding, with_id=True)
        self.finding_history = HistoryInserter(Finding)
        self.reason = f"found by import #{run.pk}"
        self.now_db = db_datetime(now)
        self.known_exposures: dict[str, KnownExposure] = {}
        # Exposures' sightings and new places, added up over the whole import and written by finish(): one
        # row update per exposure an import, not one per batch it appears in (at most one int per exposure).
        self.exposure_seen: Counter[int] = Counter()
        self.exposure_places: Counter[int] = Counter()
        # Aliases are looked up only once some exposure is known by its detect-secrets hash alone.
        self.hashed_only_known = Exposure.objects.filter(
            fingerprint_key_id=self.key_id, fingerprint_scheme=FingerprintScheme.DETECT_SECRETS_SHA1
        ).exists()

    def write(self, batch: SealedBatch) -> None:
        self.outcome.entries += batch.entries
        self.outcome.skipped.update(batch.skipped)
        if batch.sealed:
            exposures = self._exposures(batch.sealed)
            self._findings(batch.sealed, exposures)

    # --- exposures ----------------------------------------------------------------------------------------

    def _known_exposures(self, sealed: list[Sealed]) -> dict[str, KnownExposure]:
        """Existing exposures by the fingerprint of this batch they answer to (own or SHA-1 alias).

        Asked again for every batch rather than remembered over the import: remembering 40,000 exposures
        made the import slower (the collector walks them) and 20 MB larger.
        """
        wanted = {item.fingerprint for item in sealed}
        if self.hashed_only_known:
            wanted |= {item.sha1_fingerprint for item in sealed}
        hashed_only = {
            item.fingerprint for item in sealed if item.scheme == FingerprintScheme.DETECT_SECRETS_SHA1
        }
        rows = exposures_by("fingerprint", self.key_id, wanted)
        if hashed_only:  # a detect-secrets hash may name an exposure another scanner made
            rows += exposures_by("sha1_fingerprint", self.key_id, hashed_only)
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
                exposure = known.get(item.sha1_fingerprint)  # first reported by detect-secrets
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
                    "sha1_fingerprint": item.sha1_fingerprint,
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
            for (fingerprint, row), pk in zip(new.items(), next_ids(Exposure, len(new)), strict=True):
                row["id"] = ids[fingerprint] = pk
            self.exposures.insert(new.values())
            self.exposure_history.insert(
                list(new.values()), user_id=self.actor.pk, reason=self.reason, at=self.now_db
            )
            self.outcome.new_exposures += len(new)
            if any(
                row["fingerprint_scheme"] == FingerprintScheme.DETECT_SECRETS_SHA1 for row in new.values()
            ):
                self.hashed_only_known = True
            self.outcome.candidates.update(row["id"] for row in new.values())
        self.exposure_seen.update(seen)
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

    def finish(self) -> None:
        """Write what was added up over the import: the exposures' occurrences, places and last-seen."""
        increments = [
            (pk, times, self.exposure_places.get(pk, 0)) for pk, times in sorted(self.exposure_seen.items())
        ]
        for start in range(0, len(increments), COUNTER_CHUNK):
            add_to_counters(
                Exposure,
                increments[start : start + COUNTER_CHUNK],
                ("occurrences", "locations"),
                last_seen_at=self.now_db,
            )
        self.exposure_seen.clear()
        self.exposure_places.clear()

    # --- findings -----------------------------------------------------------------------------------------

    def _findings(self, sealed: list[Sealed], exposures: dict[str, int]) -> None:
        # Only the known exposures can have findings already: a first import looks nothing up.
        known_exposure_ids = {exposure.pk for exposure in self.known_exposures.values()}
        places = {
            (exposure_id, item.location_key)
            for item in sealed
            if (exposure_id := exposures[item.fingerprint]) in known_exposure_ids
        }
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
        for item in sealed:
            exposure_id = exposures[item.fingerprint]
            place = (exposure_id, item.location_key)
            finding = known.get(place)
            if finding is not None:
                seen[finding.pk] += 1
                # A known place in another commit is the same leak (a rebase, a cherry-pick, the file
                # untouched): only the source's own state changes a finding.
                if self._source_state_changed(finding, item):
                    changed[finding.pk] = item
                if exposure_id in remediated and self._recurs(remediated[exposure_id], item):
                    regressed.add(exposure_id)
                continue
            row = new.get(place)
            if row is not None:
                row["occurrences"] += 1
                self.outcome.unchanged += 1  # a place this report already named: every entry is counted
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
            for row, pk in zip(new.values(), next_ids(Finding, len(new)), strict=True):
                row["id"] = pk
            self.findings.insert(new.values())
            self.finding_history.insert(
                list(new.values()), user_id=self.actor.pk, reason=self.reason, at=self.now_db
            )
            self.outcome.created += len(new)
        add_to_counters(
            Finding,
            sorted(seen.items()),
            ("occurrences",),
            last_seen_at=self.now_db,
            last_import_id=self.run.pk,
        )
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
    def _recurs(exposure: KnownExposure, item: Sealed) -> bool:
        """Seen again at a known place after remediation: only when the scanner dates it after the
        remediation (committed again). Reported again as it was, it is the old leak still in the history;
        found in a new place, it is a regression whatever its date (see _findings)."""
        return bool(item.found_at and exposure.remediated_at and item.found_at > exposure.remediated_at)

    def _update_changed(self, changed: dict[int, Sealed]) -> None:
        """The few findings whose source state changed: saved one by one, with history."""
        for finding_id, item in changed.items():
            finding = Finding.objects.get(pk=finding_id)
            if item.resolved_at_source and not (
                finding.resolved_at_source and finding.source_state == item.source_state
            ):
                self.outcome.resolved_at_source += 1
            finding.resolved_at_source = item.resolved_at_source
            finding.resolved_at = item.resolved_at if item.resolved_at_source else None
            finding.source_state = item.source_state
            finding._history_user = self.actor  # type: ignore[attr-defined]
            finding._change_reason = f"changed at the source, import #{self.run.pk}"  # type: ignore[attr-defined]
            finding.save(update_fields=["resolved_at_source", "resolved_at", "source_state"])

    def _count_places(self, new_places: Counter[int]) -> None:
        self.exposure_places.update(new_places)  # written by finish()
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
