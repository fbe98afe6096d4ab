"""A database brought to a given migration revision (to test what the later revisions do to it)."""

from __future__ import annotations

import sqlalchemy as sa

from events import migrations


def upgrade_to(conn: sa.Connection, revision: str) -> None:
    """Run the migrations up to `revision` only, in the caller's transaction."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations.location()))
    config.attributes["connection"] = conn
    command.upgrade(config, revision)
