#!/usr/bin/env python3
"""Check an evidence bundle of the NHI Governance Portal without the portal.

    python verify_bundle.py BUNDLE.zip [--public-key HEX]

Python 3.11 or newer, standard library only: an auditor runs it on any machine. It checks the bundle's
Ed25519 signature, every file against the manifest, the hash links of the audit chain entries it holds, and
that the case's transitions, evidence and other records match what the chain recorded. It prints what it
checked and exits 0, or prints the first failure and exits 1. README.txt (next to this file in the bundle)
explains what is and is not proven.

The Ed25519 verification below follows the reference code of RFC 8032, section 6.
"""

import argparse
import hashlib
import json
import re
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TextIO

FORMAT = "nhi-portal-evidence-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# The zip's end-of-central-directory comment: this prefix, then the signature as 128 lowercase hex digits.
SIGNATURE_PREFIX = b"nhi-portal-bundle-signature:v1:ed25519:"
SIGNATURE_HEX_DIGITS = 128
COMMENT_LENGTH = len(SIGNATURE_PREFIX) + SIGNATURE_HEX_DIGITS
EOCD_MAGIC = b"PK\x05\x06"
EOCD_FIXED_SIZE = 22  # the end record without its comment
CHUNK = 1024 * 1024
GENESIS_HASH = "0" * 64
HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
SIGNATURE_HEX = re.compile(rb"[0-9a-f]{128}")
PUBLIC_KEY_HEX = re.compile(r"[0-9a-fA-F]{64}")


def signed_statement(digest_hex: str) -> bytes:
    """What the portal signs: the SHA-256 of every byte of the zip that comes before the signature comment.

    Signing the digest rather than the bytes themselves lets both sides stream a bundle of any size.
    """
    return f"nhi-portal evidence bundle v{FORMAT_VERSION}\nsha256:{digest_hex}\n".encode("ascii")


def fingerprint(public_key: bytes) -> str:
    """A short form of a public key to compare by eye: the first 128 bits of its SHA-256, in groups."""
    digest = hashlib.sha256(public_key).hexdigest()[:32]
    return ":".join(digest[index : index + 4] for index in range(0, 32, 4))


# --- Ed25519 verification (RFC 8032, section 6) -------------------------------------------------------------

_P = 2**255 - 19
_Q = 2**252 + 27742317777372353535851937790883648493
Point = tuple[int, int, int, int]


def _inverse(x: int) -> int:
    return pow(x, _P - 2, _P)


_D = -121665 * _inverse(121666) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _point_add(first: Point, second: Point) -> Point:
    a = (first[1] - first[0]) * (second[1] - second[0]) % _P
    b = (first[1] + first[0]) * (second[1] + second[0]) % _P
    c = 2 * first[3] * second[3] * _D % _P
    d = 2 * first[2] * second[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f, g * h, f * g, e * h)


def _point_mul(scalar: int, point: Point) -> Point:
    result: Point = (0, 1, 1, 0)
    while scalar > 0:
        if scalar & 1:
            result = _point_add(result, point)
        point = _point_add(point, point)
        scalar >>= 1
    return result


def _point_equal(first: Point, second: Point) -> bool:
    return (first[0] * second[2] - second[0] * first[2]) % _P == 0 and (
        first[1] * second[2] - second[1] * first[2]
    ) % _P == 0


def _recover_x(y: int, sign: int) -> int | None:
    if y >= _P:
        return None
    x2 = (y * y - 1) * _inverse(_D * y * y + 1) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None
    if (x & 1) != sign:
        x = _P - x
    return x


def _point_decompress(encoded: bytes) -> Point | None:
    if len(encoded) != 32:
        return None
    y = int.from_bytes(encoded, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % _P)


_G_Y = 4 * _inverse(5) % _P
_G_X = _recover_x(_G_Y, 0)
assert _G_X is not None
_G: Point = (_G_X, _G_Y, 1, _G_X * _G_Y % _P)


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is `public_key`'s Ed25519 signature of `message` (RFC 8032, 5.1.7)."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a_point = _point_decompress(public_key)
    if a_point is None:
        return False
    r_encoded = signature[:32]
    r_point = _point_decompress(r_encoded)
    if r_point is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _Q:
        return False
    h = int.from_bytes(hashlib.sha512(r_encoded + public_key + message).digest(), "little") % _Q
    return _point_equal(_point_mul(s, _G), _point_add(r_point, _point_mul(h, a_point)))


# --- The checks ---------------------------------------------------------------------------------------------


class BundleInvalid(Exception):
    """The bundle failed a check; the message names the first failure."""


@dataclass
class Report:
    """What was checked, line by line, and what the auditor should know besides."""

    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    emit: Callable[[str], None] = print

    def ok(self, line: str) -> None:
        self.lines.append(line)
        self.emit(f"OK    {line}")

    def warn(self, line: str) -> None:
        self.warnings.append(line)
        self.emit(f"NOTE  {line}")


@dataclass(frozen=True)
class Signature:
    signed_length: int
    value: bytes


def _sha256_of(stream: BinaryIO, length: int) -> str:
    digest = hashlib.sha256()
    remaining = length
    while remaining > 0:
        chunk = stream.read(min(CHUNK, remaining))
        if not chunk:
            raise BundleInvalid("The bundle ended early while it was being read.")
        digest.update(chunk)
        remaining -= len(chunk)
    return digest.hexdigest()


def read_signature(path: Path) -> Signature:
    """The signature from the zip's end record; the comment must be exactly the one the portal writes."""
    with path.open("rb") as stream:
        size = stream.seek(0, 2)
        if size < EOCD_FIXED_SIZE + COMMENT_LENGTH:
            raise BundleInvalid("The file is too short to be a signed evidence bundle.")
        end = size - COMMENT_LENGTH - EOCD_FIXED_SIZE
        stream.seek(end)
        tail = stream.read()
    if tail[:4] != EOCD_MAGIC or int.from_bytes(tail[20:22], "little") != COMMENT_LENGTH:
        raise BundleInvalid(
            "The zip does not end with the portal's signature comment: the bundle was changed, re-packed "
            "or truncated, or it is not an evidence bundle."
        )
    comment = tail[EOCD_FIXED_SIZE:]
    if not comment.startswith(SIGNATURE_PREFIX) or not SIGNATURE_HEX.fullmatch(
        comment[len(SIGNATURE_PREFIX) :]
    ):
        raise BundleInvalid("The zip's comment is not a well-formed signature: the bundle was changed.")
    return Signature(
        signed_length=size - COMMENT_LENGTH, value=bytes.fromhex(comment[len(SIGNATURE_PREFIX) :].decode())
    )


def _public_key_from(hex_key: str, *, where: str) -> bytes:
    hex_key = hex_key.strip()
    if not PUBLIC_KEY_HEX.fullmatch(hex_key):
        raise BundleInvalid(f"The public key {where} is not 64 hexadecimal digits (an Ed25519 public key).")
    return bytes.fromhex(hex_key)


def _json_member(archive: zipfile.ZipFile, name: str) -> Any:
    try:
        return json.loads(archive.read(name).decode("utf-8"))
    except KeyError:
        raise BundleInvalid(f"{name} is missing from the bundle.") from None
    except ValueError as error:
        raise BundleInvalid(f"{name} is not valid JSON: {error}.") from None


def _manifest_key(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        manifest = _json_member(archive, MANIFEST)
    key = manifest.get("public_key") if isinstance(manifest, dict) else None
    return str(key.get("hex", "")) if isinstance(key, dict) else ""


def check_signature(path: Path, public_key_hex: str | None, report: Report) -> None:
    """The first check, before anything in the zip is trusted (with --public-key, before it is even read)."""
    signature = read_signature(path)
    if public_key_hex is not None:
        key = _public_key_from(public_key_hex, where="given with --public-key")
    else:
        key = _public_key_from(_manifest_key(path), where="in the manifest")
    with path.open("rb") as stream:
        digest = _sha256_of(stream, signature.signed_length)
    if not ed25519_verify(key, signed_statement(digest), signature.value):
        raise BundleInvalid(
            "The signature does not match: the bundle was changed after the portal signed it, or it was "
            f"signed with another key than {fingerprint(key)}."
        )
    report.ok(
        f"Signature: valid Ed25519 signature over bytes 0 to {signature.signed_length} of the zip (sha256 "
        f"{digest}), key fingerprint {fingerprint(key)}."
    )
    if public_key_hex is None:
        report.warn(
            f"The public key was taken from the bundle itself (fingerprint {fingerprint(key)}). Whoever "
            "could change the bundle could also re-sign it with a key of their own: compare this "
            "fingerprint with the one the portal's operators gave you out of band, or run again with "
            "--public-key."
        )


def check_members(archive: zipfile.ZipFile, manifest: dict[str, Any], report: Report) -> dict[str, str]:
    """Every file listed with its size and SHA-256, and nothing unlisted. Returns path -> sha256."""
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise BundleInvalid(
            f"The manifest is not a {FORMAT} version {FORMAT_VERSION} manifest; this script cannot check it."
        )
    names = archive.namelist()
    if len(names) != len(set(names)):
        raise BundleInvalid("The zip holds two files under the same name.")
    listed: dict[str, dict[str, Any]] = {}
    for member in manifest.get("members", []):
        if not isinstance(member, dict) or member.get("path") in listed or member.get("path") == MANIFEST:
            raise BundleInvalid("The manifest lists a file twice, or lists itself, or is malformed.")
        listed[str(member.get("path"))] = member
    for name in names:
        if name != MANIFEST and name not in listed:
            raise BundleInvalid(f"{name} is in the zip but not in the manifest.")
    digests: dict[str, str] = {}
    for path, member in listed.items():
        if path not in names:
            raise BundleInvalid(f"{path} is listed in the manifest but missing from the zip.")
        with archive.open(path) as stream:
            digest = hashlib.sha256()
            size = 0
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
        if size != member.get("size") or digest.hexdigest() != member.get("sha256"):
            raise BundleInvalid(f"{path} does not match the size and SHA-256 the manifest gives for it.")
        digests[path] = digest.hexdigest()
    report.ok(
        f"Files: all {len(listed)} listed in the manifest are present with their size and SHA-256; "
        "no other file."
    )
    return digests


def _body_prefix(seq: int, prev_hash: str, case_id: int | None, event: str) -> str:
    case = "null" if case_id is None else str(case_id)
    return f'{{"seq":{seq},"prev":"{prev_hash}","case":{case},"event":"{event}","entry":'


def _chain_rows(archive: zipfile.ZipFile) -> Iterator[tuple[int, dict[str, Any]]]:
    with archive.open("chain.jsonl") as stream:
        for number, line in enumerate(stream, start=1):
            if line.strip():
                try:
                    yield number, json.loads(line.decode("utf-8"))
                except ValueError as error:
                    raise BundleInvalid(f"chain.jsonl line {number} is not valid JSON: {error}.") from None


def check_chain(archive: zipfile.ZipFile, case_id: int, report: Report) -> dict[int, dict[str, Any]]:
    """Each entry hashes to its entry_hash, its body states its own row, and consecutive entries link."""
    entries: dict[int, dict[str, Any]] = {}
    previous: dict[str, Any] | None = None
    links = 0
    for number, row in _chain_rows(archive):
        where = f"chain.jsonl line {number}"
        seq, body, prev_hash, entry_hash = (
            row.get("seq"),
            row.get("body"),
            row.get("prev_hash"),
            row.get("entry_hash"),
        )
        if not (
            isinstance(seq, int)
            and isinstance(body, str)
            and isinstance(prev_hash, str)
            and isinstance(entry_hash, str)
        ):
            raise BundleInvalid(f"{where} lacks seq, body, prev_hash or entry_hash.")
        if hashlib.sha256(body.encode("utf-8")).hexdigest() != entry_hash:
            raise BundleInvalid(f"Chain entry #{seq} ({where}): its body does not hash to its entry_hash.")
        if not body.startswith(_body_prefix(seq, prev_hash, case_id, str(row.get("event")))):
            raise BundleInvalid(
                f"Chain entry #{seq} ({where}): its sealed body does not state the same position, "
                f"predecessor, case (#{case_id}) and event as its row."
            )
        if previous is not None:
            if seq <= previous["seq"]:
                raise BundleInvalid(
                    f"Chain entry #{seq} ({where}) is out of order: it follows #{previous['seq']}."
                )
            if seq == previous["seq"] + 1:
                if prev_hash != previous["entry_hash"]:
                    raise BundleInvalid(
                        f"Chain entry #{seq} does not link to entry #{previous['seq']}: its predecessor hash "
                        "differs from that entry's hash."
                    )
                links += 1
        if seq == 1 and prev_hash != GENESIS_HASH:
            raise BundleInvalid("Chain entry #1 does not start from the genesis hash.")
        try:
            entry = json.loads(body)["entry"]
        except (ValueError, KeyError, TypeError):
            raise BundleInvalid(f"Chain entry #{seq}: its body cannot be read.") from None
        entries[seq] = {"seq": seq, "event": row.get("event"), "entry_hash": entry_hash, "entry": entry}
        previous = entries[seq]
    span = f", #{min(entries)} to #{max(entries)}" if entries else ""
    report.ok(
        f"Chain: {len(entries)} entries of case #{case_id}{span}; each body hashes to its entry_hash and "
        f"states its own position, predecessor, case and event; {links} links between consecutive "
        "entries checked."
    )
    return entries


def _digest(text: str) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "length": len(text)}


def check_transitions(
    transitions: list[dict[str, Any]], entries: dict[int, dict[str, Any]], case_id: int, report: Report
) -> None:
    """Strict: every transition has its chain entry, recording the same step, states, actor and reason."""
    for transition in transitions:
        name, seq = transition.get("name"), transition.get("audit_seq")
        what = f"Transition #{transition.get('id')} ({name})"
        if seq is None:
            raise BundleInvalid(f"{what} has no audit chain entry: the chain does not prove it.")
        found = entries.get(seq)
        if found is None:
            raise BundleInvalid(f"{what} names chain entry #{seq}, which is not in the bundle's chain.")
        entry = found["entry"]
        details = entry.get("details") or {}
        expected = {
            "event": f"case.{name}",
            "object": {"type": "cases.case", "id": str(case_id)},
            "transition": transition.get("id"),
            "before": {"state": transition.get("source_state")},
            "after": {"state": transition.get("target_state")},
            "actor": transition.get("actor_id"),
            "reason": _digest(transition.get("reason") or ""),
        }
        recorded = {
            "event": found["event"],
            "object": entry.get("object"),
            "transition": details.get("transition"),
            "before": entry.get("before"),
            "after": entry.get("after"),
            "actor": (entry.get("actor") or {}).get("id"),
            "reason": details.get("reason"),
        }
        for key, value in expected.items():
            if recorded[key] != value:
                raise BundleInvalid(f"{what} differs from its chain entry #{seq} in its {key}.")
    report.ok(
        f"Transitions: all {len(transitions)} are recorded in the chain with the same step, states, actor "
        "and reason (SHA-256 of the reason text)."
    )


@dataclass(frozen=True)
class RecordCheck:
    """Rows of `member` against the chain entry (`events`) that created or decided them.

    Only fields that never change once written are compared, and only those the entry holds: a foreign key
    as its id, free text as {"sha256", "length"}. `when`: the check applies only to rows where that field
    is set (an approval's decision exists once it is decided).
    """

    member: str
    object_type: str
    events: tuple[str, ...]
    fields: tuple[str, ...]
    when: str | None = None


RECORD_CHECKS = (
    RecordCheck(
        "evidence.json",
        "cases.evidence",
        ("evidence.capture",),
        ("kind", "sha256", "size", "title", "captured_by"),
    ),
    RecordCheck("comments.json", "cases.comment", ("comment.add",), ("author", "body")),
    RecordCheck(
        "approvals.json",
        "cases.approval",
        ("approval.request",),
        ("kind", "reason", "requested_by", "risk_expires_on"),
    ),
    RecordCheck(
        "approvals.json",
        "cases.approval",
        ("approval.decide",),
        ("decided_by", "decision_note"),
        when="decided_by",
    ),
    RecordCheck(
        "action_items.json",
        "cases.actionitem",
        ("action_item.add", "action_item.propose"),
        ("kind", "title", "owning_team", "created_by"),
    ),
)


def _row_value(row: dict[str, Any], name: str) -> Any:
    return row[f"{name}_id"] if f"{name}_id" in row else row.get(name)


def _matches(recorded: Any, value: Any) -> bool:
    if isinstance(recorded, dict) and set(recorded) == {"sha256", "length"}:
        return isinstance(value, str) and recorded == _digest(value)
    return recorded == value


def _entries_by_object(entries: dict[int, dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The first entry of each event per object (what recorded the row's creation or decision)."""
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for seq in sorted(entries):
        target = entries[seq]["entry"].get("object") or {}
        key = (str(target.get("type")), str(target.get("id")), str(entries[seq]["event"]))
        found.setdefault(key, entries[seq])
    return found


def check_records(archive: zipfile.ZipFile, entries: dict[int, dict[str, Any]], report: Report) -> None:
    """Tolerant: a row with a chain entry must match it; a row without one is reported, not failed."""
    by_object = _entries_by_object(entries)
    checked: dict[str, int] = {}
    unrecorded: dict[str, int] = {}
    for check in RECORD_CHECKS:
        for row in _json_member(archive, check.member):
            if check.when is not None and _row_value(row, check.when) is None:
                continue
            keys = [(check.object_type, str(row.get("id")), event) for event in check.events]
            found = next((by_object[key] for key in keys if key in by_object), None)
            if found is None:
                unrecorded[check.events[0]] = unrecorded.get(check.events[0], 0) + 1
                continue
            after = found["entry"].get("after") or {}
            for name in check.fields:
                if name in after and not _matches(after[name], _row_value(row, name)):
                    raise BundleInvalid(
                        f"{check.member}: row #{row.get('id')} differs from its chain entry #{found['seq']} "
                        f"({found['event']}) in its {name}."
                    )
            checked[check.events[0]] = checked.get(check.events[0], 0) + 1
    summary = ", ".join(f"{count} by {event}" for event, count in checked.items()) or "none"
    report.ok(f"Records: rows match the chain entries that created or decided them: {summary}.")
    for event, count in unrecorded.items():
        report.warn(f"{count} row(s) have no {event} chain entry (written before the chain existed?).")


def check_evidence(evidence: list[dict[str, Any]], digests: dict[str, str], report: Report) -> None:
    """Each evidence file in the bundle is exactly what was captured: its SHA-256 as recorded at capture."""
    files = 0
    for item in evidence:
        what = f"Evidence #{item.get('id')}"
        if item.get("kind") == "file":
            path = item.get("bundle_path")
            if not path:
                raise BundleInvalid(
                    f"{what}: its file could not be read at export, so it is not in the bundle."
                )
            if digests.get(path) != item.get("sha256"):
                raise BundleInvalid(
                    f"{what}: the file {path} is not the file captured (its SHA-256 differs)."
                )
            files += 1
        elif item.get("kind") in ("url", "note"):
            text = item.get("url") if item.get("kind") == "url" else item.get("note")
            if hashlib.sha256(str(text).encode("utf-8")).hexdigest() != item.get("sha256"):
                raise BundleInvalid(
                    f"{what}: its {item.get('kind')} is not the one captured (its SHA-256 differs)."
                )
    report.ok(
        f"Evidence: {len(evidence)} item(s); {files} file(s) in the bundle match the SHA-256 recorded at "
        "capture."
    )


def check_head(head: dict[str, Any], entries: dict[int, dict[str, Any]], report: Report) -> None:
    verification = head.get("verification_at_export") or {}
    head_seq = (head.get("head_at_export") or {}).get("seq")
    if not isinstance(head_seq, int) or any(seq > head_seq for seq in entries):
        raise BundleInvalid(
            "chain_head.json does not give the chain's head, or the bundle holds entries past it."
        )
    if verification.get("ok") is not True:
        raise BundleInvalid(
            "The portal's own verification of the whole chain at export found a problem: "
            f"{verification.get('message') or 'no message recorded'}"
        )
    report.ok(
        f"At export the portal verified its whole chain (hashes, MACs and links) and found it intact: "
        f"{verification.get('entries_checked')} entries, up to #{verification.get('last_seq')} "
        f"({verification.get('finished_at')})."
    )


def verify_bundle(
    path: Path | str, *, public_key_hex: str | None = None, emit: Callable[[str], None] = print
) -> Report:
    """Run every check in order; raise BundleInvalid naming the first failure."""
    report = Report(emit=emit)
    path = Path(path)
    try:
        check_signature(path, public_key_hex, report)
        with zipfile.ZipFile(path) as archive:
            manifest = _json_member(archive, MANIFEST)
            digests = check_members(archive, manifest, report)
            case = _json_member(archive, "case.json")["case"]
            case_id = case.get("id")
            if not isinstance(case_id, int) or (manifest.get("case") or {}).get("id") != case_id:
                raise BundleInvalid("case.json and the manifest do not name the same case.")
            entries = check_chain(archive, case_id, report)
            check_transitions(_json_member(archive, "transitions.json"), entries, case_id, report)
            check_records(archive, entries, report)
            check_evidence(_json_member(archive, "evidence.json"), digests, report)
            check_head(_json_member(archive, "chain_head.json"), entries, report)
    except BundleInvalid:
        raise
    except Exception as error:  # a damaged zip fails in many ways; each is a failed bundle, named
        raise BundleInvalid(f"The bundle cannot be read: {type(error).__name__}: {error}") from error
    report.warn(
        "Not checked here: the HMAC of each chain entry (it needs the portal's chain key); chain_head.json "
        "records the portal's own full verification, HMACs included, at export."
    )
    return report


def main(argv: list[str] | None = None, stdout: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check an NHI Governance Portal evidence bundle.")
    parser.add_argument("bundle", help="The bundle (.zip).")
    parser.add_argument(
        "--public-key", help="The portal's bundle signing key, 64 hex digits, obtained out of band."
    )
    arguments = parser.parse_args(argv)
    out = stdout or sys.stdout

    def emit(line: str) -> None:
        print(line, file=out)

    try:
        verify_bundle(arguments.bundle, public_key_hex=arguments.public_key, emit=emit)
    except BundleInvalid as error:
        print(f"FAILED  {error}", file=out)
        return 1
    print("Bundle verified.", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
