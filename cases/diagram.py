"""The case lifecycle as a Mermaid state diagram, generated from the FSM declarations themselves."""

from cases.models import Case, CaseState


def lifecycle_mermaid() -> str:
    field = Case._meta.get_field("state")
    lines = ["stateDiagram-v2", f"    [*] --> {CaseState.IDENTIFIED}: open"]
    edges = []
    for transition in field.get_all_transitions(Case):
        permission = str(transition.permission).removeprefix("cases.")
        guards = [getattr(check, "__name__", "") for check in transition.conditions]
        label = transition.name + (f" [{', '.join(guards)}]" if guards else "") + f" ({permission})"
        edges.append((str(transition.source), str(transition.target), label))
    for source, target, label in sorted(edges):
        lines.append(f"    {source} --> {target}: {label}")
    for state in (CaseState.CLOSED,):
        lines.append(f"    {state} --> [*]")
    return "\n".join(lines) + "\n"
