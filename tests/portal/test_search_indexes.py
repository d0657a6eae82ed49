import pytest
from django.db import connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

EXPECTED = {
    "case_title_upper_trgm",
    "nhi_name_upper_trgm",
    "nhi_provider_upper_trgm",
    "nhi_external_id_upper_trgm",
}


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("trigram indexes exist only on PostgreSQL")


def test_the_admin_search_columns_have_upper_trigram_indexes():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE %s", ["%upper_trgm"])
        found = dict(cursor.fetchall())
    assert set(found) == EXPECTED
    # The expression must be exactly what the admin's icontains generates, or the planner ignores it.
    assert all("gin (upper(" in definition and "gin_trgm_ops" in definition for definition in found.values())
