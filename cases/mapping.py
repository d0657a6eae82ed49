"""Case-to-control mapping: rules stored as data, applied when a case opens or its kind, links or origin
change; staff add or remove mappings by hand with a rationale. Every change is a history row.

The default rules (`cases/mapping_rules.json`) are this project's own assessment. No official crosswalk
exists between NIST CSF 2.0, the OWASP NHI Top 10 and the NIST AI RMF.
"""

import json
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.canonical import text_digest
from audit.services import audit_entry_append
from audit.values import audit_changes, audit_fields
from cases.errors import CaseWorkflowError
from cases.models import (
    Case,
    CaseControlMapping,
    CaseKind,
    CaseOrigin,
    MappingCondition,
    MappingRule,
    MappingSource,
)
from cases.selectors import case_is_visible
from frameworks.models import Control
from nhi_inventory.models import PrivilegeLevel
from portal.permissions import Actor, require_permission

DEFAULT_RULES = Path(__file__).resolve().parent / "mapping_rules.json"
LONG_LIVED_AFTER = timedelta(days=90)


def case_mapping_facts(case: Case) -> dict[str, bool]:
    """Which rule conditions hold for this case now."""
    identities = list(case.identities.all())
    stale_before = timezone.now() - LONG_LIVED_AFTER
    return {
        MappingCondition.ALWAYS: True,
        MappingCondition.LONG_LIVED_CREDENTIAL: any(
            i.last_rotated_at is None or i.last_rotated_at < stale_before for i in identities
        ),
        MappingCondition.PRIVILEGED_IDENTITY: any(
            i.privilege_level >= PrivilegeLevel.ELEVATED for i in identities
        ),
        MappingCondition.INTERNET_FACING: any(i.internet_facing for i in identities),
        MappingCondition.THIRD_PARTY: any(i.third_party for i in identities),
        MappingCondition.FROM_ASSISTANT: case.origin == CaseOrigin.ASSISTANT,
        MappingCondition.FROM_SCANNER: case.origin == CaseOrigin.SCANNER,
    }


def _save(mapping: CaseControlMapping, *, actor: User | None, reason: str) -> None:
    mapping.changed_by = actor
    mapping.changed_at = timezone.now()
    mapping._history_user = actor  # type: ignore[attr-defined]
    mapping._change_reason = reason  # type: ignore[attr-defined]
    mapping.save()


def case_mappings_apply(*, case: Case, actor: User | None) -> None:
    """Bring the case's rule-made mappings in line with the active rules. Runs in the caller's transaction."""
    facts = case_mapping_facts(case)
    rules = MappingRule.objects.filter(is_active=True).filter(Q(case_kind="") | Q(case_kind=case.kind))
    wanted: dict[int, MappingRule] = {}
    for rule in rules.order_by("pk"):
        if facts[rule.condition]:
            wanted.setdefault(rule.control_id, rule)
    existing = {mapping.control_id: mapping for mapping in case.control_mappings.all()}
    active_before = sorted(control_id for control_id, mapping in existing.items() if mapping.is_active)
    added: dict[str, int] = {}  # control id -> the rule that maps it
    removed: list[int] = []
    for control_id, rule in wanted.items():
        mapping = existing.get(control_id)
        if mapping is None:
            mapping = CaseControlMapping(
                case=case,
                control_id=control_id,
                source=MappingSource.RULE,
                rule=rule,
                rationale=rule.rationale,
            )
            _save(mapping, actor=actor, reason=f"mapped by rule #{rule.pk}")
            added[str(control_id)] = rule.pk
        elif not mapping.is_active and not mapping.removed_by_hand:
            mapping.is_active, mapping.rule, mapping.rationale = True, rule, rule.rationale
            _save(mapping, actor=actor, reason=f"mapped again by rule #{rule.pk}")
            added[str(control_id)] = rule.pk
    for control_id, mapping in existing.items():
        if mapping.source == MappingSource.RULE and mapping.is_active and control_id not in wanted:
            mapping.is_active = False
            _save(mapping, actor=actor, reason="no rule applies any more")
            removed.append(control_id)
    if added or removed:
        # One entry per application, not per mapping: the rules' whole effect on the case at once.
        active_after = sorted((set(active_before) | {int(control_id) for control_id in added}) - set(removed))
        audit_entry_append(
            actor=actor,
            event="mapping.apply",
            target=case,
            case_id=case.pk,
            before={"controls": active_before},
            after={"controls": active_after},
            details={"added_by_rule": added, "removed": sorted(removed)},
        )


def _mappable_case(*, actor: User, case_id: int) -> Case:
    case = Case.objects.select_for_update().filter(pk=case_id).first()
    if case is None:
        raise ValidationError({"case": f"No case with id {case_id}."})
    if not case_is_visible(case=case, user=actor):
        raise CaseWorkflowError(f"{case.reference} belongs to another team.")
    return case


@transaction.atomic
def case_mapping_add(*, actor: Actor, case_id: int, control_id: int, rationale: str) -> CaseControlMapping:
    actor = require_permission(actor, "cases.map_case", to="map cases to controls")
    if not rationale.strip():
        raise ValidationError({"rationale": "Say why this case falls under the control."})
    case = _mappable_case(actor=actor, case_id=case_id)
    control = Control.objects.filter(pk=control_id).first()
    if control is None:
        raise ValidationError({"control": f"No control with id {control_id}."})
    mapping = CaseControlMapping.objects.filter(case=case, control=control).first()
    if mapping is not None and mapping.is_active:
        raise CaseWorkflowError(f"{case.reference} is already mapped to {control.ref_id}.")
    if mapping is None:
        mapping = CaseControlMapping(case=case, control=control)
    before = audit_fields(mapping, MAPPING_AUDITED_FIELDS) if mapping.pk is not None else None
    mapping.source, mapping.rule, mapping.rationale = MappingSource.MANUAL, None, rationale.strip()
    mapping.is_active, mapping.removed_by_hand = True, False
    _save(mapping, actor=actor, reason=f"added by hand: {rationale.strip()}")
    _record_mapping(mapping, actor=actor, event="mapping.add", before=before, ref_id=control.ref_id)
    return mapping


@transaction.atomic
def case_mapping_remove(*, actor: Actor, case_id: int, control_id: int, rationale: str) -> CaseControlMapping:
    actor = require_permission(actor, "cases.map_case", to="map cases to controls")
    if not rationale.strip():
        raise ValidationError({"rationale": "Say why this case does not fall under the control."})
    case = _mappable_case(actor=actor, case_id=case_id)
    mapping = CaseControlMapping.objects.filter(case=case, control_id=control_id, is_active=True).first()
    if mapping is None:
        raise CaseWorkflowError(f"{case.reference} is not mapped to control #{control_id}.")
    before = audit_fields(mapping, MAPPING_AUDITED_FIELDS)
    mapping.is_active, mapping.removed_by_hand, mapping.rationale = False, True, rationale.strip()
    _save(mapping, actor=actor, reason=f"removed by hand: {rationale.strip()}")
    _record_mapping(
        mapping, actor=actor, event="mapping.remove", before=before, ref_id=mapping.control.ref_id
    )
    return mapping


MAPPING_AUDITED_FIELDS = ("control", "source", "rule", "is_active", "removed_by_hand", "rationale")


def _record_mapping(
    mapping: CaseControlMapping, *, actor: User, event: str, before: dict[str, Any] | None, ref_id: str
) -> None:
    audit_entry_append(
        actor=actor,
        event=event,
        target=mapping,
        case_id=mapping.case_id,
        before=before,
        after=audit_fields(mapping, MAPPING_AUDITED_FIELDS),
        details={"control_ref_id": ref_id},
    )


MAPPING_RULE_EDITABLE_FIELDS = frozenset({"case_kind", "condition", "control", "rationale", "is_active"})
MAPPING_RULE_AUDITED_FIELDS = ("case_kind", "condition", "control", "rationale", "is_active")


def _save_rule(rule: MappingRule, *, actor: User | None, reason: str) -> None:
    rule.rationale = rule.rationale.strip()
    rule.full_clean()
    rule._history_user = actor  # type: ignore[attr-defined]
    rule._change_reason = reason  # type: ignore[attr-defined]
    rule.save()


@transaction.atomic
def mapping_rule_create(
    *,
    actor: Actor,
    case_kind: str,
    condition: str,
    control: Control,
    rationale: str,
    is_active: bool = True,
) -> MappingRule:
    """A new rule; it applies to cases opened, or whose kind, links or origin change, from now on."""
    user = require_permission(actor, "cases.add_mappingrule", to="add mapping rules")
    rule = MappingRule(
        case_kind=case_kind, condition=condition, control=control, rationale=rationale, is_active=is_active
    )
    _save_rule(rule, actor=user, reason="created")
    audit_entry_append(
        actor=user,
        event="mapping_rule.create",
        target=rule,
        after=audit_fields(rule, MAPPING_RULE_AUDITED_FIELDS),
    )
    return rule


@transaction.atomic
def mapping_rule_update(
    *, actor: Actor, rule_id: int, changes: Mapping[str, Any], reason: str = ""
) -> MappingRule:
    """Edit a rule, or retire it with `is_active=False`: rules are never deleted, mappings and history name
    them. Cases already mapped keep their mappings until their kind, links or origin change."""
    user = require_permission(actor, "cases.change_mappingrule", to="change mapping rules")
    unknown = sorted(set(changes) - MAPPING_RULE_EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "This field of a mapping rule cannot be edited."))
    rule = MappingRule.objects.select_for_update().filter(pk=rule_id).first()
    if rule is None:
        raise ValidationError({"rule": f"No mapping rule with id {rule_id}."})
    changed = [name for name, value in changes.items() if getattr(rule, name) != value]
    if not changed:
        return rule
    before = audit_fields(rule, MAPPING_RULE_AUDITED_FIELDS)
    for name in changed:
        setattr(rule, name, changes[name])
    _save_rule(rule, actor=user, reason=reason or f"edited {', '.join(changed)}")
    was, now = audit_changes(before, audit_fields(rule, MAPPING_RULE_AUDITED_FIELDS))
    audit_entry_append(
        actor=user,
        event="mapping_rule.update",
        target=rule,
        before=was,
        after=now,
        details={"reason": text_digest(reason)},
    )
    return rule


_RULE_FIELDS = ("case_kind", "condition", "framework", "control", "rationale")


def _rule_entries(path: Path) -> list[dict[str, Any]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValidationError(f"{path.name}: not valid JSON (line {error.lineno}: {error.msg}).") from None
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise ValidationError(f"{path.name} must be a JSON object with a list called 'rules'.")
    entries: list[dict[str, Any]] = document["rules"]
    for position, entry in enumerate(entries):
        where = f"{path.name}: rules[{position}]"
        if not isinstance(entry, dict):
            raise ValidationError(f"{where} must be a JSON object.")
        missing = [name for name in _RULE_FIELDS if name not in entry]
        if missing:
            raise ValidationError(f"{where} lacks field(s): {', '.join(missing)}.")
        if not isinstance(entry["rationale"], str) or not entry["rationale"].strip():
            raise ValidationError(f"{where}: the rationale must be a non-empty string.")
    return entries


@transaction.atomic
def mapping_rules_load(*, path: Path = DEFAULT_RULES) -> int:
    """Create the shipped rules that are missing; rules already present (and edited in the admin) stay."""
    entries = _rule_entries(path)
    controls = {
        (control.framework.key, control.ref_id): control
        for control in Control.objects.select_related("framework")
    }
    created: list[int] = []
    for position, entry in enumerate(entries):
        where = f"{path.name}: rules[{position}]"
        control = controls.get((entry["framework"], entry["control"]))
        if control is None:
            raise ValidationError(
                f"{where}: no control {entry['control']!r} in {entry['framework']!r} (load_catalogs first)."
            )
        if entry["case_kind"] and entry["case_kind"] not in CaseKind.values:
            raise ValidationError(f"{where}: unknown case kind {entry['case_kind']!r}.")
        if entry["condition"] not in MappingCondition.values:
            raise ValidationError(f"{where}: unknown condition {entry['condition']!r}.")
        if MappingRule.objects.filter(
            case_kind=entry["case_kind"], condition=entry["condition"], control=control
        ).exists():
            continue
        rule = MappingRule(
            case_kind=entry["case_kind"],
            condition=entry["condition"],
            control=control,
            rationale=entry["rationale"],
        )
        _save_rule(rule, actor=None, reason=f"loaded from {path.name}")
        created.append(rule.pk)
    if created:
        # Loaded by the operator's command, not a person in the portal: no actor, the rules by id.
        audit_entry_append(actor=None, event="mapping_rule.load", details={"created": created})
    return len(created)
