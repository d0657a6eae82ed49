"""The shipped framework catalogs load completely, keep their attribution, and load again without change."""

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from frameworks.models import Control, Framework
from frameworks.services import CATALOG_DIR, catalog_load


def load_catalogs() -> str:
    out = StringIO()
    call_command("load_catalogs", stdout=out)
    return out.getvalue()


def kind_counts(key: str) -> dict[str, int]:
    controls = Control.objects.filter(framework__key=key)
    return {kind: controls.filter(kind=kind).count() for kind in set(controls.values_list("kind", flat=True))}


@pytest.fixture
def loaded(db) -> str:
    return load_catalogs()


def test_it_loads_nist_csf_2_functions_categories_and_subcategories(loaded):
    assert kind_counts("nist-csf-2.0") == {"function": 6, "category": 22, "subcategory": 106}


def test_it_loads_the_nist_ai_rmf_functions_categories_and_subcategories(loaded):
    assert kind_counts("nist-ai-rmf-1.0") == {"function": 4, "category": 19, "subcategory": 72}


def test_it_loads_the_ten_owasp_nhi_risks(loaded):
    risks = Control.objects.filter(framework__key="owasp-nhi-top10-2025")

    assert kind_counts("owasp-nhi-top10-2025") == {"risk": 10}
    assert sorted(risks.values_list("ref_id", flat=True), key=lambda ref: int(ref[3:])) == [
        f"NHI{n}" for n in range(1, 11)
    ]


def test_it_links_every_category_to_a_function_and_every_subcategory_to_a_category(loaded):
    csf = Control.objects.filter(framework__key="nist-csf-2.0")

    assert not csf.filter(kind="category").exclude(parent__kind="function").exists()
    assert not csf.filter(kind="subcategory").exclude(parent__kind="category").exists()
    assert not csf.filter(kind="function", parent__isnull=False).exists()


def test_it_keeps_each_catalogs_attribution(loaded):
    licences = dict(Framework.objects.values_list("key", "license"))

    assert licences["nist-csf-2.0"] == "Public domain (U.S. Government work)"
    assert licences["nist-ai-rmf-1.0"] == "Public domain (U.S. Government work)"
    assert "CC BY-SA 4.0" in licences["owasp-nhi-top10-2025"]


def test_it_records_the_publisher_source_and_url(loaded):
    csf = Framework.objects.get(key="nist-csf-2.0")

    assert (csf.publisher, csf.version) == ("NIST", "2.0")
    assert "CSWP 29" in csf.source
    assert csf.url == "https://www.nist.gov/cyberframework"


def test_the_command_reports_what_it_created(loaded):
    assert "nist-csf-2.0: 134 control(s) created, 0 updated" in loaded


def test_loading_again_creates_nothing(loaded):
    again = load_catalogs()

    assert "nist-csf-2.0: 0 control(s) created, 0 updated" in again
    assert "nist-ai-rmf-1.0: 0 control(s) created, 0 updated" in again
    assert "owasp-nhi-top10-2025: 0 control(s) created, 0 updated" in again


def test_loading_again_keeps_every_id(loaded):
    before = (
        dict(Control.objects.values_list("framework__key", "framework_id").distinct()),
        set(Control.objects.values_list("id", "ref_id", "parent_id")),
    )

    load_catalogs()

    after = (
        dict(Control.objects.values_list("framework__key", "framework_id").distinct()),
        set(Control.objects.values_list("id", "ref_id", "parent_id")),
    )
    assert after == before


# --- Malformed catalogs -------------------------------------------------------------------------------------


def valid_catalog() -> dict:
    return json.loads((CATALOG_DIR / "owasp-nhi-top10-2025.json").read_text(encoding="utf-8"))


def write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "broken-catalog.json"
    path.write_text(json.dumps(document) if not isinstance(document, str) else document, encoding="utf-8")
    return path


def test_a_catalog_without_a_licence_is_refused_naming_the_field(db, tmp_path):
    document = valid_catalog()
    del document["framework"]["license"]

    with pytest.raises(ValidationError, match=r"framework lacks field\(s\): license"):
        catalog_load(path=write(tmp_path, document))


def test_a_catalog_without_a_licence_writes_nothing(db, tmp_path):
    document = valid_catalog()
    del document["framework"]["license"]

    with pytest.raises(ValidationError):
        catalog_load(path=write(tmp_path, document))

    assert not Framework.objects.exists()
    assert not Control.objects.exists()


def test_a_control_without_a_statement_is_refused_naming_the_field_and_its_position(db, tmp_path):
    document = valid_catalog()
    del document["controls"][3]["statement"]

    with pytest.raises(ValidationError, match=r"controls\[3\] lacks field\(s\): statement"):
        catalog_load(path=write(tmp_path, document))


def test_a_control_late_in_the_file_that_is_malformed_writes_nothing(db, tmp_path):
    # The first nine controls are valid and would be created before the tenth is read.
    document = valid_catalog()
    document["controls"][9]["kind"] = "threat"

    with pytest.raises(ValidationError, match=r"controls\[9\]: kind 'threat'"):
        catalog_load(path=write(tmp_path, document))

    assert not Framework.objects.exists()
    assert not Control.objects.exists()


def test_a_malformed_update_leaves_the_loaded_catalog_as_it_was(loaded, tmp_path):
    before = set(
        Control.objects.filter(framework__key="owasp-nhi-top10-2025").values_list("id", "title", "statement")
    )
    document = valid_catalog()
    document["controls"][0]["title"] = "Renamed"
    document["controls"][5]["parent"] = "NHI99"

    with pytest.raises(ValidationError, match=r"parent 'NHI99' must appear before"):
        catalog_load(path=write(tmp_path, document))

    after = set(
        Control.objects.filter(framework__key="owasp-nhi-top10-2025").values_list("id", "title", "statement")
    )
    assert after == before


def test_a_file_that_is_not_json_is_refused_with_the_line(db, tmp_path):
    with pytest.raises(ValidationError, match=r"broken-catalog.json: not valid JSON \(line 2"):
        catalog_load(path=write(tmp_path, '{\n  "framework": ,\n}'))


def test_a_catalog_that_is_not_an_object_is_refused(db, tmp_path):
    with pytest.raises(ValidationError, match="must be a JSON object"):
        catalog_load(path=write(tmp_path, []))


def test_reloading_an_unchanged_catalog_writes_no_history(db):
    call_command("load_catalogs", stdout=StringIO())
    rows = Framework.history.count()
    call_command("load_catalogs", stdout=StringIO())
    assert Framework.history.count() == rows
