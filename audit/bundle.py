"""Evidence bundles: one case, everything recorded about it, and the means to check it without the portal.

A bundle is a zip whose members come in a fixed order with fixed timestamps and attributes, so the same
records give the same bytes (only the export time, the verification run and the chain entries added since
differ between two exports). It is signed with the portal's Ed25519 bundle key (audit/signing.py): the
signature sits in the zip's end-of-central-directory comment and covers the SHA-256 of every byte before
that comment, so changing any byte (a member, a header, the central directory, the comment) breaks it.
audit/bundle_verifier/verify_bundle.py, shipped inside, checks it with the standard library only.

The export is itself recorded in the chain ("case.bundle_export", with the bundle's SHA-256) once the
bundle is complete; that entry is therefore in the portal's chain, never in the bundle it describes.
"""

import hashlib
import json
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, BinaryIO
from uuid import UUID

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils import timezone

from audit.bundle_verifier.verify_bundle import (
    COMMENT_LENGTH,
    EOCD_FIXED_SIZE,
    EOCD_MAGIC,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    SIGNATURE_PREFIX,
    signed_statement,
)
from audit.models import (
    ENTRY_COLUMNS,
    EXPORT_PERMISSION,
    AuditEntry,
    AuditHead,
    AuditVerification,
    VerificationTrigger,
)
from audit.services import audit_entry_append, audit_trail_verify
from audit.signing import PublicKey, bundle_public_key, bundle_sign
from cases.models import (
    ActionItem,
    Approval,
    AttackPathStep,
    Case,
    CaseControlMapping,
    CaseIdentity,
    CaseTransition,
    Comment,
    Evidence,
    EvidenceKind,
)
from cases.selectors import case_is_visible
from findings.models import Exposure, Finding
from portal.permissions import Actor, require_permission

VERIFIER_DIR = Path(__file__).resolve().parent / "bundle_verifier"
# What the auditor runs, first in the zip so it is the first thing they see.
SHIPPED_FILES = ("README.txt", "verify_bundle.py")
# Fixed member metadata: the bytes depend on the records only, never on when or where they were written.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
ZIP_MODE = 0o100644 << 16
CHUNK = 1024 * 1024
# Above this size hint a member is written with ZIP64 sizes (zipfile's own limit is 2 GiB).
ZIP64_FROM = 1 << 30


@dataclass(frozen=True)
class BundleSummary:
    case_id: int
    reference: str
    filename: str
    sha256: str
    size: int
    members: int
    exported_at: datetime
    public_key: PublicKey
    verification_ok: bool
    audit_seq: int


# --- Values as the bundle writes them -----------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """JSON for a database value; datetimes as the audit chain writes them (UTC, microseconds, Z)."""
    if isinstance(value, datetime):
        if timezone.is_naive(value):
            return value.isoformat()
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return value


def _row(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _plain(value) for key, value in values.items()}


def _line(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _columns(model: type[models.Model]) -> list[str]:
    return [field.attname for field in model._meta.concrete_fields]


def _user_columns(model: type[models.Model]) -> list[str]:
    return [
        field.attname
        for field in model._meta.concrete_fields
        if field.is_relation and field.related_model is User
    ]


def _safe_name(name: str) -> str:
    """A file name that is the same on every system and cannot climb out of evidence/."""
    base = name.rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._-")[:100] or "file"


# --- The zip ------------------------------------------------------------------------------------------------


class _HashingWriter:
    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._stream.write(data)
        self._digest.update(data)
        self.size += len(data)

    def text(self, text: str) -> None:
        self.write(text.encode("utf-8"))

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


class _BundleZip:
    """Members written one after another, each streamed and hashed for the manifest as it goes."""

    def __init__(self, file: IO[bytes]) -> None:
        self._zip = zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_DEFLATED)
        self.members: list[dict[str, Any]] = []
        self.people: set[int] = set()

    @contextmanager
    def member(self, path: str, *, size_hint: int = 0) -> Iterator[_HashingWriter]:
        info = zipfile.ZipInfo(path, date_time=ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.create_system = 3
        info.external_attr = ZIP_MODE
        info.file_size = size_hint
        with self._zip.open(info, mode="w", force_zip64=size_hint > ZIP64_FROM) as stream:
            writer = _HashingWriter(stream)
            yield writer
        self.members.append({"path": path, "size": writer.size, "sha256": writer.hexdigest()})

    def add_bytes(self, path: str, data: bytes) -> None:
        with self.member(path, size_hint=len(data)) as writer:
            writer.write(data)

    def add_json(self, path: str, value: Any) -> None:
        self.add_bytes(
            path, (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
        )

    def _rows(self, writer: _HashingWriter, rows: Iterable[dict[str, Any]], users: list[str]) -> int:
        count = 0
        for values in rows:
            self.people.update(values[name] for name in users if values.get(name) is not None)
            writer.text(("[\n" if count == 0 else ",\n") + _line(_row(values)))
            count += 1
        writer.text("[]" if count == 0 else "\n]")
        return count

    def add_rows(self, path: str, rows: Iterable[dict[str, Any]], *, users: list[str]) -> int:
        """A JSON array, one row per line, streamed from the database."""
        with self.member(path) as writer:
            count = self._rows(writer, rows, users)
            writer.text("\n")
        return count

    def add_row_groups(
        self, path: str, groups: Iterable[tuple[str, Iterable[dict[str, Any]], list[str]]]
    ) -> None:
        """A JSON object of arrays ({"cases.case": [rows], ...}), streamed."""
        with self.member(path) as writer:
            for index, (label, rows, users) in enumerate(groups):
                writer.text(("{\n" if index == 0 else ",\n") + json.dumps(label) + ": ")
                self._rows(writer, rows, users)
            writer.text("\n}\n")

    def close(self) -> None:
        # A placeholder of the signature's exact length: signing then overwrites it in place.
        self._zip.comment = b"\0" * COMMENT_LENGTH
        self._zip.close()


# --- What goes in -------------------------------------------------------------------------------------------


def _values(queryset: models.QuerySet[Any], *extra: str) -> Iterator[dict[str, Any]]:
    return queryset.values(*_columns(queryset.model), *extra).iterator(chunk_size=2000)


def _case_json(case: Case) -> dict[str, Any]:
    fields = _row(Case.objects.filter(pk=case.pk).values(*_columns(Case)).get())
    identities = [
        _row(link)
        for link in CaseIdentity.objects.filter(case=case)
        .order_by("id")
        .values("id", "nhi_id", "linked_at", "nhi__name", "nhi__kind", "nhi__provider", "nhi__owner_team_id")
    ]
    return {"case": {**fields, "reference": case.reference}, "identities": identities}


def _exposure_ids(case: Case) -> list[int]:
    """Exposures in the case now or at any time (an exposure can move to another identity's case)."""
    now = set(Exposure.objects.filter(case=case).values_list("id", flat=True))
    once = set(Exposure.history.filter(case_id=case.pk).values_list("id", flat=True))
    return sorted(now | once)


def _history_groups(
    case: Case, exposure_ids: list[int]
) -> Iterator[tuple[str, Iterable[dict[str, Any]], list[str]]]:
    """django-simple-history's rows of the case and of every row that hangs off it, oldest first."""
    sources: list[tuple[type[models.Model], dict[str, Any]]] = [
        (Case, {"id": case.pk}),
        (CaseIdentity, {"case_id": case.pk}),
        (Evidence, {"case_id": case.pk}),
        (ActionItem, {"case_id": case.pk}),
        (Approval, {"case_id": case.pk}),
        (Comment, {"case_id": case.pk}),
        (AttackPathStep, {"case_id": case.pk}),
        (CaseControlMapping, {"case_id": case.pk}),
        (Exposure, {"id__in": exposure_ids}),
        (Finding, {"exposure_id__in": exposure_ids}),
    ]
    for model, lookup in sources:
        historical = model.history.model  # type: ignore[attr-defined]
        rows = historical.objects.filter(**lookup).order_by("history_date", "history_id")
        yield model._meta.label_lower, _values(rows), _user_columns(historical)


def _write_evidence(bundle: _BundleZip, case: Case) -> None:
    """Each evidence file streamed into evidence/<id>-<name>, then evidence.json saying where each went."""
    storage = Evidence._meta.get_field("file").storage
    items = [
        _row(item) for item in Evidence.objects.filter(case=case).order_by("id").values(*_columns(Evidence))
    ]
    for item in items:
        bundle.people.add(item["captured_by_id"])
        item["bundle_path"] = None
        if item["kind"] != EvidenceKind.FILE or not item["file"]:
            continue
        path = f"evidence/{item['id']}-{_safe_name(item['file'])}"
        try:
            source = storage.open(item["file"], "rb")
        except OSError:
            continue  # left out with bundle_path null: the verifier reports the file as missing
        with source, bundle.member(path, size_hint=item["size"]) as writer:
            while chunk := source.read(CHUNK):
                writer.write(chunk)
        item["bundle_path"] = path
    bundle.add_rows("evidence.json", items, users=[])


def _chain_rows(case: Case, head_seq: int) -> Iterator[dict[str, Any]]:
    rows = AuditEntry.objects.filter(case_id=case.pk, seq__lte=head_seq).order_by("seq")
    return rows.values(*ENTRY_COLUMNS).iterator(chunk_size=2000)


def _write_chain(bundle: _BundleZip, case: Case, head_seq: int) -> int:
    count = 0
    with bundle.member("chain.jsonl") as writer:
        for values in _chain_rows(case, head_seq):
            if values["actor_id"] is not None:
                bundle.people.add(values["actor_id"])
            writer.text(_line(_row(values)) + "\n")
            count += 1
    return count


def _verification_json(verification: AuditVerification) -> dict[str, Any]:
    return _row(
        {
            "id": verification.pk,
            "trigger": verification.trigger,
            "requested_by_id": verification.requested_by_id,
            "started_at": verification.started_at,
            "finished_at": verification.finished_at,
            "ok": verification.ok,
            "entries_checked": verification.entries_checked,
            "last_seq": verification.last_seq,
            "last_hash": verification.last_hash,
            "problem_kind": verification.problem_kind,
            "problem_seq": verification.problem_seq,
            "message": verification.message,
        }
    )


def _people(ids: set[int]) -> dict[str, Any]:
    users = User.objects.filter(pk__in=ids).order_by("pk").values("id", "username", "first_name", "last_name")
    return {
        str(user["id"]): {
            "username": user["username"],
            "name": f"{user['first_name']} {user['last_name']}".strip(),
        }
        for user in users
    }


@dataclass(frozen=True)
class _Export:
    case: Case
    user: User
    verification: AuditVerification
    head_seq: int
    head_hash: str
    exported_at: datetime
    public_key: PublicKey


def _write_members(bundle: _BundleZip, export: _Export) -> None:
    case = export.case
    for name in SHIPPED_FILES:
        bundle.add_bytes(name, (VERIFIER_DIR / name).read_bytes())
    bundle.add_json("case.json", _case_json(case))
    bundle.people.add(export.user.pk)
    for path, model in (
        ("transitions.json", CaseTransition),
        ("approvals.json", Approval),
        ("action_items.json", ActionItem),
        ("comments.json", Comment),
        ("attack_path_steps.json", AttackPathStep),
    ):
        rows = model.objects.filter(case_id=case.pk).order_by("id")
        bundle.add_rows(path, _values(rows), users=_user_columns(model))
    mappings = CaseControlMapping.objects.filter(case=case).order_by("id")
    bundle.add_rows(
        "mappings.json",
        _values(mappings, "control__ref_id", "control__framework__key"),
        users=_user_columns(CaseControlMapping),
    )
    exposure_ids = _exposure_ids(case)
    bundle.add_rows("exposures.json", _values(Exposure.objects.filter(case=case).order_by("id")), users=[])
    findings = Finding.objects.filter(exposure__case=case).order_by("exposure_id", "id")
    bundle.add_rows("findings.json", _values(findings), users=[])
    _write_evidence(bundle, case)
    bundle.add_row_groups("history.json", _history_groups(case, exposure_ids))
    entries = _write_chain(bundle, case, export.head_seq)
    bundle.add_json(
        "chain_head.json",
        {
            "head_at_export": {"seq": export.head_seq, "hash": export.head_hash},
            "entries_of_this_case": entries,
            "verification_at_export": _verification_json(export.verification),
            "note": (
                "verification_at_export is the portal's walk of its whole chain, HMACs included, when this "
                "bundle was exported. The export's own chain entry (case.bundle_export) is written after the "
                "bundle is complete, so it is not in this bundle."
            ),
        },
    )
    bundle.add_json("people.json", _people(bundle.people))
    bundle.add_json(
        MANIFEST,
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "case": {"id": case.pk, "reference": case.reference},
            "exported_at": _plain(export.exported_at),
            "exported_by": {"id": export.user.pk, "username": export.user.get_username()},
            "public_key": {
                "algorithm": "ed25519",
                "hex": export.public_key.hex,
                "fingerprint": export.public_key.fingerprint,
            },
            "signature": {
                "algorithm": "ed25519",
                "where": "the zip's end-of-central-directory comment, after its prefix",
                "prefix": SIGNATURE_PREFIX.decode("ascii"),
                "signed_statement": signed_statement("<sha256>").decode("ascii"),
                "sha256_of": "every byte of the zip before the comment",
            },
            "members": bundle.members,
        },
    )


def _sha256_of(file: IO[bytes], length: int) -> str:
    digest = hashlib.sha256()
    file.seek(0)
    remaining = length
    while remaining > 0 and (chunk := file.read(min(CHUNK, remaining))):
        digest.update(chunk)
        remaining -= len(chunk)
    return digest.hexdigest()


def _sign(file: IO[bytes]) -> tuple[str, int]:
    """Sign the finished zip in place (its comment placeholder becomes the signature); its sha256 and size."""
    size = file.seek(0, 2)
    signed_length = size - COMMENT_LENGTH
    file.seek(signed_length - EOCD_FIXED_SIZE)
    if file.read(4) != EOCD_MAGIC:
        raise RuntimeError("The bundle's end record is not where the signature comment expects it.")
    signature = bundle_sign(signed_statement(_sha256_of(file, signed_length)))
    file.seek(signed_length)
    file.write(SIGNATURE_PREFIX + signature.hex().encode("ascii"))
    file.flush()
    return _sha256_of(file, size), size


def bundle_filename(case: Case) -> str:
    return f"{case.reference}-evidence-bundle.zip"


def _exporter(actor: Actor, case_id: int) -> tuple[User, Case]:
    user = require_permission(actor, EXPORT_PERMISSION, to="export evidence bundles")
    case = Case.objects.filter(pk=case_id).first()
    if case is None:
        raise ValidationError({"case": f"No case with id {case_id}."})
    if not case_is_visible(case=case, user=user):
        raise PermissionDenied(f"{user} may not export {case.reference}: it belongs to another team.")
    return user, case


def evidence_bundle_export(*, actor: Actor, case_id: int, output: BinaryIO) -> BundleSummary:
    """Build, sign and write the case's evidence bundle to `output`; record the export in the chain.

    Not one transaction: the chain walk and the zip read a lot and may take long, and a transaction would
    not make the reads one snapshot anyway (READ COMMITTED). The verification records itself; the export's
    chain entry is written in a short transaction of its own once the bundle is complete and signed, before
    it is handed out (so the head row is not locked while a large bundle is copied).
    """
    user, case = _exporter(actor, case_id)
    verification = audit_trail_verify(trigger=VerificationTrigger.BUNDLE, actor=user)
    head = AuditHead.objects.filter(pk=1).first()
    export = _Export(
        case=case,
        user=user,
        verification=verification,
        head_seq=head.seq if head is not None else 0,
        head_hash=head.last_hash if head is not None else "0" * 64,
        exported_at=timezone.now(),
        public_key=bundle_public_key(),
    )
    with tempfile.TemporaryFile() as scratch:
        bundle = _BundleZip(scratch)
        _write_members(bundle, export)
        bundle.close()
        sha256, size = _sign(scratch)
        with transaction.atomic():
            entry = audit_entry_append(
                actor=user,
                event="case.bundle_export",
                target=case,
                case_id=case.pk,
                details={
                    "sha256": sha256,
                    "size": size,
                    "format_version": FORMAT_VERSION,
                    "public_key_fingerprint": export.public_key.fingerprint,
                    "verification": verification.pk,
                    "verification_ok": verification.ok,
                    "head_seq": export.head_seq,
                },
            )
        scratch.seek(0)
        shutil.copyfileobj(scratch, output, CHUNK)
    return BundleSummary(
        case_id=case.pk,
        reference=case.reference,
        filename=bundle_filename(case),
        sha256=sha256,
        size=size,
        members=len(bundle.members) + 1,
        exported_at=export.exported_at,
        public_key=export.public_key,
        verification_ok=verification.ok,
        audit_seq=entry.seq,
    )
