"""The standalone verifier shipped in every bundle: it passes an intact bundle and fails after any change.

Each test runs the copy of verify_bundle.py extracted from the bundle under test, as an auditor would: in a
subprocess of an isolated Python without site-packages (`-I -S`: proof that it needs only the standard
library), or imported from the extracted file to run many cases quickly.
"""

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.files.base import ContentFile
from django.utils import timezone

from audit.models import AuditEntry
from audit.signing import bundle_public_key, bundle_signing_key
from cases.models import Case, CaseTransition, Comment, Evidence, EvidenceKind
from tests.audit.tamper import set_columns
from tests.audit.test_bundle import export, load_verifier, members, work_case

pytestmark = pytest.mark.django_db


def quiet(line: str) -> None:
    pass


def flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    return data[:offset] + bytes([data[offset] ^ mask]) + data[offset + 1 :]


def run_script(script: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", "-S", str(script), *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=script.parent,
        env={"PATH": os.environ.get("PATH", "")},
    )


def raw_public_key(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def repack(
    content: dict[str, bytes], key: Ed25519PrivateKey, verifier: ModuleType, *, fix_manifest: bool = True
) -> bytes:
    """A bundle rebuilt from `content` and signed with `key` in the portal's format: a forger's tool (with
    a key of their own) or, with the portal's key, a way to test the checks that follow the signature."""
    content = dict(content)
    if fix_manifest:
        manifest = json.loads(content["manifest.json"])
        manifest["members"] = [
            {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in content.items()
            if name != "manifest.json"
        ]
        manifest["public_key"]["hex"] = raw_public_key(key).hex()
        content["manifest.json"] = json.dumps(manifest).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in content.items():
            archive.writestr(name, data)
        archive.comment = b"\0" * verifier.COMMENT_LENGTH
    signed = buffer.getvalue()[: -verifier.COMMENT_LENGTH]
    signature = key.sign(verifier.signed_statement(hashlib.sha256(signed).hexdigest()))
    return signed + verifier.SIGNATURE_PREFIX + signature.hex().encode()


@pytest.fixture
def worked_case(case_in_state: Callable[..., Case], analyst: Any, approver: Any) -> Case:
    return work_case(case_in_state, analyst, approver)


@pytest.fixture
def bundle(worked_case: Case, auditor: Any, tmp_path: Path) -> Path:
    path = tmp_path / "CASE-evidence-bundle.zip"
    export(auditor, worked_case, path)
    return path


@pytest.fixture
def verifier(bundle: Path, tmp_path: Path) -> ModuleType:
    return load_verifier(bundle, tmp_path)


@pytest.fixture
def script(bundle: Path, tmp_path: Path) -> Path:
    path = tmp_path / "verify_bundle.py"
    path.write_bytes(members(bundle)["verify_bundle.py"])
    return path


def failure(verifier: ModuleType, path: Path, *, public_key_hex: str | None = None) -> str:
    """The verifier's failure message for the bundle at `path` (the test fails if it passes)."""
    with pytest.raises(verifier.BundleInvalid) as failed:
        verifier.verify_bundle(path, public_key_hex=public_key_hex, emit=quiet)
    return str(failed.value)


def write(tmp_path: Path, data: bytes, name: str = "changed.zip") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- An intact bundle ---------------------------------------------------------------------------------------


def test_a_worked_cases_bundle_verifies_in_an_isolated_python_without_site_packages(
    bundle: Path, script: Path
) -> None:
    result = run_script(script, str(bundle), "--public-key", bundle_public_key().hex)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("Bundle verified.")
    assert "Transitions: all 6 are recorded in the chain" in result.stdout
    assert "1 file(s) in the bundle match the SHA-256 recorded at capture" in result.stdout
    assert "1 by approval.decide" in result.stdout
    # The same interpreter and flags cannot import the portal's packages: the script needed none.
    assert run_script(script.parent / "verify_bundle.py", "--help").returncode == 0
    probe = subprocess.run(
        [sys.executable, "-I", "-S", "-c", "import django"], capture_output=True, check=False
    )
    assert probe.returncode != 0


def test_without_a_key_it_uses_the_manifests_and_says_to_compare_its_fingerprint(
    bundle: Path, script: Path
) -> None:
    result = run_script(script, str(bundle))
    assert result.returncode == 0, result.stdout
    assert f"fingerprint {bundle_public_key().fingerprint}" in result.stdout
    assert "compare this fingerprint" in result.stdout


def test_it_says_what_it_cannot_check(bundle: Path, verifier: ModuleType) -> None:
    report = verifier.verify_bundle(bundle, public_key_hex=bundle_public_key().hex, emit=quiet)
    assert any("HMAC" in line for line in report.warnings)


def test_repacking_an_unchanged_bundle_with_the_portals_key_still_verifies(
    bundle: Path, verifier: ModuleType, tmp_path: Path
) -> None:
    """The repack helper below is faithful: what fails after it fails because of the change made."""
    path = write(tmp_path, repack(members(bundle), bundle_signing_key(), verifier, fix_manifest=False))
    verifier.verify_bundle(path, public_key_hex=bundle_public_key().hex, emit=quiet)


# --- Any changed byte ---------------------------------------------------------------------------------------


def test_flipping_any_one_of_200_bytes_spread_over_the_bundle_fails_it(
    bundle: Path, verifier: ModuleType, tmp_path: Path
) -> None:
    data = bundle.read_bytes()
    key = bundle_public_key().hex
    verifier.verify_bundle(bundle, public_key_hex=key, emit=quiet)
    offsets = sorted({round(index * (len(data) - 1) / 199) for index in range(200)})
    assert len(offsets) == 200
    passed = []
    for number, offset in enumerate(offsets):
        path = write(tmp_path, flip(data, offset))
        try:
            # Half with the key given, half with the manifest's own: neither may pass a changed byte.
            verifier.verify_bundle(path, public_key_hex=key if number % 2 else None, emit=quiet)
        except verifier.BundleInvalid:
            continue
        passed.append(offset)
    assert passed == []


def test_flipping_any_byte_of_the_end_record_or_the_signature_fails_it(
    bundle: Path, verifier: ModuleType, tmp_path: Path
) -> None:
    data = bundle.read_bytes()
    tail = verifier.COMMENT_LENGTH + verifier.EOCD_FIXED_SIZE
    passed = []
    for offset in range(len(data) - tail, len(data)):
        for mask in (0x01, 0x20, 0x80):
            path = write(tmp_path, flip(data, offset, mask))
            try:
                verifier.verify_bundle(path, emit=quiet)
            except verifier.BundleInvalid:
                continue
            passed.append((offset, mask))
    assert passed == []


def test_a_flipped_byte_fails_the_script_run_as_an_auditor_runs_it(
    bundle: Path, script: Path, verifier: ModuleType, tmp_path: Path
) -> None:
    data = bundle.read_bytes()
    key = bundle_public_key().hex
    with zipfile.ZipFile(bundle) as archive:
        evidence = next(info for info in archive.infolist() if info.filename.startswith("evidence/"))
        data_offset = evidence.header_offset + 30 + len(evidence.filename) + 5
    offsets = {
        "evidence file data": data_offset,
        "central directory": len(data) - verifier.COMMENT_LENGTH - verifier.EOCD_FIXED_SIZE - 30,
        "signature": len(data) - 10,
    }
    for where, offset in offsets.items():
        path = write(tmp_path, flip(data, offset), f"flipped-{offset}.zip")
        result = run_script(script, str(path), "--public-key", key)
        assert result.returncode == 1, where
        assert "FAILED" in result.stdout, where


def test_a_truncated_bundle_or_one_with_bytes_added_fails(
    bundle: Path, verifier: ModuleType, tmp_path: Path
) -> None:
    data = bundle.read_bytes()
    assert "signature comment" in failure(verifier, write(tmp_path, data + b"\n"))
    assert "signature comment" in failure(verifier, write(tmp_path, data[:-1]))
    assert "does not match" in failure(
        verifier, write(tmp_path, b"PK" + data), public_key_hex=bundle_public_key().hex
    )


def test_a_member_edited_and_rezipped_without_the_key_fails(
    bundle: Path, verifier: ModuleType, tmp_path: Path
) -> None:
    content = members(bundle)
    case = json.loads(content["case.json"])
    case["case"]["severity"] = 1
    content["case.json"] = json.dumps(case).encode()
    comment = bundle.read_bytes()[-verifier.COMMENT_LENGTH :]
    for fix_manifest in (False, True):
        manifest = json.loads(content["manifest.json"])
        if fix_manifest:
            for member in manifest["members"]:
                if member["path"] == "case.json":
                    member["size"] = len(content["case.json"])
                    member["sha256"] = hashlib.sha256(content["case.json"]).hexdigest()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in {**content, "manifest.json": json.dumps(manifest).encode()}.items():
                archive.writestr(name, data)
            archive.comment = comment  # the old signature, all a forger without the key has
        path = write(tmp_path, buffer.getvalue())
        assert "signature does not match" in failure(verifier, path)
        assert "signature does not match" in failure(verifier, path, public_key_hex=bundle_public_key().hex)


def test_a_bundle_resigned_with_another_key_fails_against_the_portals_key(
    bundle: Path, verifier: ModuleType, tmp_path: Path
) -> None:
    forger = Ed25519PrivateKey.generate()
    content = members(bundle)
    content["comments.json"] = b"[]\n"
    path = write(tmp_path, repack(content, forger, verifier))

    assert "signature does not match" in failure(verifier, path, public_key_hex=bundle_public_key().hex)
    # On its own key it verifies: only the fingerprint, compared out of band, gives it away.
    lines: list[str] = []
    report = verifier.verify_bundle(path, emit=lines.append)
    forged_fingerprint = verifier.fingerprint(raw_public_key(forger))
    assert forged_fingerprint != bundle_public_key().fingerprint
    assert any(forged_fingerprint in warning for warning in report.warnings)


def test_a_wrong_public_key_fails(bundle: Path, verifier: ModuleType, script: Path) -> None:
    other = raw_public_key(Ed25519PrivateKey.generate()).hex()
    assert "signature does not match" in failure(verifier, bundle, public_key_hex=other)
    result = run_script(script, str(bundle), "--public-key", other)
    assert (result.returncode, result.stdout.startswith("FAILED")) == (1, True)
    assert "is not 64 hexadecimal digits" in failure(verifier, bundle, public_key_hex="abc")


# --- What the checks after the signature catch --------------------------------------------------------------
# These bundles are re-signed with the portal's key, or exported from records changed behind the services'
# back: the signature is then valid, and only the record checks can notice.


def test_an_unlisted_or_missing_member_fails(bundle: Path, verifier: ModuleType, tmp_path: Path) -> None:
    key = bundle_signing_key()
    content = members(bundle)
    extra = write(
        tmp_path, repack({**content, "extra.txt": b"x"}, key, verifier, fix_manifest=False), "e.zip"
    )
    assert "extra.txt is in the zip but not in the manifest" in failure(verifier, extra)
    del content["comments.json"]
    missing = write(tmp_path, repack(content, key, verifier, fix_manifest=False), "m.zip")
    assert "comments.json is listed in the manifest but missing" in failure(verifier, missing)


def test_a_chain_entry_whose_body_does_not_hash_fails(
    bundle: Path, verifier: ModuleType, tmp_path: Path
) -> None:
    content = members(bundle)
    lines = content["chain.jsonl"].decode().splitlines()
    row = json.loads(lines[2])
    row["body"] = row["body"].replace('"state":"', '"state":"x', 1)
    lines[2] = json.dumps(row)
    content["chain.jsonl"] = ("\n".join(lines) + "\n").encode()
    path = write(tmp_path, repack(content, bundle_signing_key(), verifier))
    assert f"Chain entry #{row['seq']} (chain.jsonl line 3): its body does not hash" in failure(
        verifier, path
    )


def test_chain_entries_that_do_not_link_fail(bundle: Path, verifier: ModuleType, tmp_path: Path) -> None:
    content = members(bundle)
    lines = content["chain.jsonl"].decode().splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    content["chain.jsonl"] = ("\n".join(lines) + "\n").encode()
    path = write(tmp_path, repack(content, bundle_signing_key(), verifier))
    assert "out of order" in failure(verifier, path)


def test_a_transition_reason_rewritten_in_the_database_fails(
    worked_case: Case, auditor: Any, verifier: ModuleType, tmp_path: Path
) -> None:
    closing = worked_case.transitions.get(name="close")
    CaseTransition.objects.filter(pk=closing.pk).update(reason="Closed: nothing happened")
    path = tmp_path / "rewritten.zip"
    export(auditor, worked_case, path)
    assert failure(verifier, path) == (
        f"Transition #{closing.pk} (close) differs from its chain entry #{closing.audit_seq} in its reason."
    )


def test_a_transition_written_behind_the_services_back_fails(
    worked_case: Case, auditor: Any, verifier: ModuleType, tmp_path: Path
) -> None:
    forged = CaseTransition.objects.create(
        case=worked_case,
        name="reopen",
        source_state="closed",
        target_state="identified",
        actor=auditor,
        reason="",
        at=timezone.now(),
    )
    path = tmp_path / "forged.zip"
    export(auditor, worked_case, path)
    assert failure(verifier, path) == (
        f"Transition #{forged.pk} (reopen) has no audit chain entry: the chain does not prove it."
    )


def test_an_evidence_file_replaced_in_storage_fails(
    worked_case: Case, auditor: Any, verifier: ModuleType, tmp_path: Path
) -> None:
    evidence = Evidence.objects.get(case=worked_case, kind=EvidenceKind.FILE)
    storage, name = evidence.file.storage, evidence.file.name
    storage.delete(name)
    assert storage.save(name, ContentFile(b"a receipt that says something else")) == name
    path = tmp_path / "replaced.zip"
    export(auditor, worked_case, path)
    assert "is not the file captured (its SHA-256 differs)" in failure(verifier, path)


def test_an_evidence_file_missing_at_export_fails(
    worked_case: Case, auditor: Any, verifier: ModuleType, tmp_path: Path
) -> None:
    evidence = Evidence.objects.get(case=worked_case, kind=EvidenceKind.FILE)
    evidence.file.storage.delete(evidence.file.name)
    path = tmp_path / "missing.zip"
    export(auditor, worked_case, path)
    assert failure(verifier, path) == (
        f"Evidence #{evidence.pk}: its file could not be read at export, so it is not in the bundle."
    )


def test_a_comment_rewritten_in_the_database_fails(
    worked_case: Case, auditor: Any, verifier: ModuleType, tmp_path: Path
) -> None:
    comment = worked_case.comments.get()
    Comment.objects.filter(pk=comment.pk).update(body="Nothing to see here.")
    entry = AuditEntry.objects.get(event="comment.add", object_id=str(comment.pk))
    path = tmp_path / "comment.zip"
    export(auditor, worked_case, path)
    assert failure(verifier, path) == (
        f"comments.json: row #{comment.pk} differs from its chain entry #{entry.seq} (comment.add) "
        "in its body."
    )


def test_a_chain_broken_elsewhere_fails_through_the_portals_verification_at_export(
    worked_case: Case, open_case: Callable[..., Case], auditor: Any, verifier: ModuleType, tmp_path: Path
) -> None:
    other = open_case()
    entry = AuditEntry.objects.filter(case_id=other.pk).first()
    assert entry is not None
    set_columns(entry.seq, body=entry.body.replace('"state":"', '"state":"x', 1))
    path = tmp_path / "broken.zip"
    export(auditor, worked_case, path)
    message = failure(verifier, path)
    assert message.startswith("The portal's own verification of the whole chain at export found a problem")
    assert f"#{entry.seq}" in message


# --- Ed25519 ------------------------------------------------------------------------------------------------

# RFC 8032, section 7.1, TEST 1 and TEST 2: (public key, message, signature).
RFC_8032 = (
    (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
)


@pytest.mark.parametrize(("public", "message", "signature"), RFC_8032)
def test_the_rfc_8032_vectors_verify_and_fail_once_changed(
    verifier: ModuleType, public: str, message: str, signature: str
) -> None:
    key, text, value = bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
    assert verifier.ed25519_verify(key, text, value)
    assert not verifier.ed25519_verify(key, text + b"\0", value)
    assert not verifier.ed25519_verify(key, text, flip(value, 5))
    assert not verifier.ed25519_verify(key, text, flip(value, 40))
    assert not verifier.ed25519_verify(flip(key, 0), text, value)


def test_it_agrees_with_cryptography_on_signatures_of_random_keys(verifier: ModuleType) -> None:
    for size in range(0, 200, 10):
        key = Ed25519PrivateKey.generate()
        message = os.urandom(size)
        signature = key.sign(message)
        assert verifier.ed25519_verify(raw_public_key(key), message, signature)
        assert not verifier.ed25519_verify(raw_public_key(key), message + b"x", signature)


def test_the_bundle_key_is_derived_from_the_chain_key(settings: Any) -> None:
    first = bundle_public_key()
    settings.AUDIT_CHAIN_KEY = "another chain key for this test, long enough to pass"
    second = bundle_public_key()
    assert first.hex != second.hex
    assert len(bytes.fromhex(second.hex)) == 32
    assert second.fingerprint.count(":") == 7
