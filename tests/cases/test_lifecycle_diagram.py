from pathlib import Path

from django.core.management import call_command

from cases.diagram import lifecycle_mermaid

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_committed_diagram_matches_the_code():
    assert (DOCS / "lifecycle.mmd").read_text(encoding="utf-8") == lifecycle_mermaid()


def test_the_architecture_page_embeds_the_current_diagram():
    assert lifecycle_mermaid() in (DOCS / "ARCHITECTURE.md").read_text(encoding="utf-8")


def test_the_diagram_shows_every_transition_with_its_guards():
    diagram = lifecycle_mermaid()
    assert "in_progress --> verified: verify [action_items_done, has_evidence] (verify_case)" in diagram
    assert "verified --> closed: close [closure_approved_if_severe] (close_case)" in diagram


def test_the_command_writes_the_diagram(tmp_path):
    target = tmp_path / "lifecycle.mmd"
    call_command("lifecycle_diagram", output=target)
    assert target.read_text(encoding="utf-8") == lifecycle_mermaid()
