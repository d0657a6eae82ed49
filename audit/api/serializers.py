"""How the audit trail looks over the API.

An entry is shown as stored, with its sealed body, so a client can check it on its own: sha256(body) is
entry_hash, and the body names its position and its predecessor's hash. The actor and the time are read from
the sealed body (the columns are copies for lookups).
"""

import json
from typing import Any

from rest_framework import serializers

from audit.models import AuditEntry, AuditVerification


class SealedActorSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    username = serializers.CharField()


class AuditEntrySerializer(serializers.Serializer[AuditEntry]):
    seq = serializers.IntegerField(help_text="Position in the chain, from 1.")
    recorded_at = serializers.DateTimeField(help_text="When the entry was sealed (the body's `entry.at`).")
    event = serializers.CharField(help_text="What happened, e.g. `case.confirm`, `evidence.capture`.")
    case = serializers.IntegerField(
        source="case_id", allow_null=True, help_text="Id of the case concerned, if any."
    )
    object_type = serializers.CharField(help_text="The changed row's model (`cases.case`), or empty.")
    object_id = serializers.CharField(help_text="The changed row's id, or empty.")
    actor = SealedActorSerializer(
        allow_null=True, help_text="Who did it, as sealed; null for the portal itself or an anonymous answer."
    )
    prev_hash = serializers.CharField(help_text="The previous entry's entry_hash (64 zeros for the first).")
    entry_hash = serializers.CharField(help_text="SHA-256 of `body`, hex.")
    key_id = serializers.CharField(help_text="Id of the key the MAC is made with (keys rotate).")
    mac = serializers.CharField(help_text="HMAC-SHA256 of entry_hash under that key, hex.")
    body = serializers.CharField(
        help_text=(
            'The sealed text: `{"seq":…,"prev":"…","case":…,"event":"…","entry":{…}}`, the entry in '
            "canonical JSON (actor, at, object, before, after, details). Free text appears only as its "
            "SHA-256 and length."
        )
    )

    def to_representation(self, instance: AuditEntry) -> dict[str, Any]:
        data = super().to_representation(instance)
        sealed = _sealed_entry(instance.body)
        data["actor"] = sealed.get("actor")
        data["recorded_at"] = sealed.get("at") or data["recorded_at"]
        return data


def _sealed_entry(body: str) -> dict[str, Any]:
    # A body changed behind the portal's back may not even be JSON: show the columns then (verification
    # names the entry).
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    entry = parsed.get("entry") if isinstance(parsed, dict) else None
    return entry if isinstance(entry, dict) else {}


class AuditVerificationSerializer(serializers.ModelSerializer[AuditVerification]):
    requested_by = serializers.CharField(
        source="requested_by.username",
        allow_null=True,
        default=None,
        help_text="Who asked for it; null for the command and the nightly task.",
    )

    class Meta:
        model = AuditVerification
        fields = (
            "id",
            "started_at",
            "finished_at",
            "trigger",
            "requested_by",
            "ok",
            "entries_checked",
            "last_seq",
            "last_hash",
            "problem_kind",
            "problem_seq",
            "message",
        )
        read_only_fields = fields
        extra_kwargs = {
            "problem_kind": {
                "help_text": (
                    "Empty when intact; else changed, missing, inserted, reordered, unknown-key or head."
                )
            },
            "problem_seq": {"help_text": "The entry (position) where the first problem is."},
            "message": {"help_text": "The first problem, in a sentence; empty when intact."},
        }
