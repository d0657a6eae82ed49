"""The import's bulk statements: array literals reach PostgreSQL unchanged; counters add up per row."""

import pytest
from django.db import connection

from findings.bulk import add_to_counters, pg_array
from findings.models import Finding
from tests.factories import FindingFactory

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL array literals")


def test_it_writes_an_empty_array_without_elements() -> None:
    assert pg_array([]) == "{}"


def test_it_writes_ids_as_a_plain_list() -> None:
    assert pg_array([3, 1, 20]) == "{3,1,20}"


def test_it_quotes_each_string() -> None:
    assert pg_array(["ab", "c d"]) == '{"ab","c d"}'


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db
def test_strings_with_quotes_backslashes_and_separators_round_trip() -> None:
    values = ["plain", 'with "quotes"', "back\\slash", "comma,brace}{", " spaced ", "NULL", ""]
    with connection.cursor() as cursor:
        cursor.execute("SELECT unnest(%s::text[])", [pg_array(values)])
        assert [row[0] for row in cursor.fetchall()] == values


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db
def test_big_ids_round_trip() -> None:
    values = [1, 2**62, 0]
    with connection.cursor() as cursor:
        cursor.execute("SELECT unnest(%s::bigint[])", [pg_array(values)])
        assert [row[0] for row in cursor.fetchall()] == values


def test_it_escapes_quotes_and_backslashes_inside_strings() -> None:
    assert pg_array(['a"b', "c\\d"]) == '{"a\\"b","c\\\\d"}'


@pytest.mark.django_db
def test_counters_add_each_rows_own_increment() -> None:
    findings = FindingFactory.create_batch(4, occurrences=1)
    add_to_counters(
        Finding,
        [(findings[0].pk, 1), (findings[1].pk, 3), (findings[2].pk, 1)],
        ("occurrences",),
        source="counted",
    )
    rows = dict(Finding.objects.values_list("pk", "occurrences"))
    assert [rows[finding.pk] for finding in findings] == [2, 4, 2, 1]
    assert set(Finding.objects.filter(source="counted").values_list("pk", flat=True)) == {
        findings[0].pk,
        findings[1].pk,
        findings[2].pk,
    }
