"""No foreign keys on the tables an import writes row by row: records, staged, before_images.

PostgreSQL checks a foreign key with a query per inserted row: it halved COPY's rate into
`records` (97k against 190k rows a second, measured on the bench's rows), the CPU the database
and the workers share. The keys guarded nothing the code does not: no path deletes a dataset or a
ticket (their ON DELETE CASCADE never ran), and every row is written with the id of a dataset or
ticket read in the same transaction. The indexes stay.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # frozen here: tables.py may change

# (table, column, parent): the foreign keys this revision drops (downgrade puts them back)
KEYS = (("records", "dataset_id", "datasets"), ("staged", "ticket", "tickets"), ("before_images", "ticket", "tickets"))


def _tables(with_keys: bool) -> dict[str, sa.Table]:
    """The three tables as they are at this revision (SQLite rebuilds a table from its definition)."""
    meta = sa.MetaData()
    sa.Table("datasets", meta, sa.Column("id", BigId, primary_key=True))
    sa.Table("tickets", meta, sa.Column("id", BigId, primary_key=True))

    keys = {
        table: [sa.ForeignKeyConstraint([column], [f"{parent}.id"], ondelete="CASCADE")] if with_keys else []
        for table, column, parent in KEYS
    }

    return {
        "records": sa.Table(
            "records", meta,
            sa.Column("id", BigId, primary_key=True, autoincrement=True),
            sa.Column("dataset_id", BigId, nullable=False),
            sa.Column("key", sa.Text(), nullable=False),
            sa.Column("uuid", sa.String(length=36), nullable=False),
            sa.Column("data", sa.Text(), nullable=False),
            sa.Column("ticket", sa.BigInteger(), nullable=True),
            sa.UniqueConstraint("dataset_id", "key", name="uq_records_key"),
            *keys["records"],
        ),
        "staged": sa.Table(
            "staged", meta,
            sa.Column("ticket", BigId, nullable=False),
            sa.Column("key", sa.Text(), nullable=False),
            sa.Column("uuid", sa.String(length=36), nullable=False),
            sa.Column("data", sa.Text(), nullable=False),
            sa.Column("base", sa.Text(), nullable=True),
            sa.PrimaryKeyConstraint("ticket", "key", name="pk_staged"),
            *keys["staged"],
        ),
        "before_images": sa.Table(
            "before_images", meta,
            sa.Column("ticket", BigId, nullable=False),
            sa.Column("key", sa.Text(), nullable=False),
            sa.Column("uuid", sa.String(length=36), nullable=True),
            sa.Column("data", sa.Text(), nullable=True),
            sa.Column("prev_ticket", sa.BigInteger(), nullable=True),
            sa.PrimaryKeyConstraint("ticket", "key", name="pk_before_images"),
            *keys["before_images"],
        ),
    }


def upgrade() -> None:
    """Drop the three foreign keys (where the database has them: one made before migrations may not)."""
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    tables = _tables(with_keys=False)
    for table, column, _parent in KEYS:
        found = [fk for fk in inspector.get_foreign_keys(table) if fk["constrained_columns"] == [column]]
        if not found:
            continue
        if bind.dialect.name == "sqlite":  # its foreign keys have no names: the table is rebuilt without them
            with op.batch_alter_table(table, recreate="always", copy_from=tables[table]):
                pass
        else:
            for fk in found:
                op.drop_constraint(str(fk["name"]), table, type_="foreignkey")  # PostgreSQL names every key


def downgrade() -> None:
    """Put the foreign keys back."""
    bind = op.get_bind()
    tables = _tables(with_keys=True)
    for table, column, parent in KEYS:
        if bind.dialect.name == "sqlite":
            with op.batch_alter_table(table, recreate="always", copy_from=tables[table]):
                pass
        else:
            op.create_foreign_key(None, table, parent, [column], ["id"], ondelete="CASCADE")
