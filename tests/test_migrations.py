import io

import pytest
from django.core.management import call_command
from django.db import connection


@pytest.mark.django_db
def test_models_and_migrations_agree():
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db
def test_migrations_applied_on_this_database():
    tables = set(connection.introspection.table_names())
    assert {"care_household", "care_meter", "care_consent", "care_carerecipient"} <= tables
