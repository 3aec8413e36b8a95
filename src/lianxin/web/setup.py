"""Start Django from the command line: settings, apps, and a check that the database is ready."""

import os

from lianxin.errors import LianxinError


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lianxin.web.settings")
    import django

    django.setup()


def migrate(verbosity: int = 0):
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=verbosity)


def require_migrated():
    """Fail with an instruction, not a 500 on the first request, when migrations are pending."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # noqa: BLE001 - any connection failure gets the same advice
        raise LianxinError(f"cannot reach the database: {' '.join(str(exc).split())}") from exc
    if pending:
        raise LianxinError(
            f"the database has {len(pending)} unapplied migration(s): run `lianxin init` first"
        )
