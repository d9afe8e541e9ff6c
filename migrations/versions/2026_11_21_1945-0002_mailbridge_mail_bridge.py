"""mail bridge: linked cases and content fingerprints

Revision ID: 0002_mailbridge
Revises: 568dd802d137
Create Date: 2026-11-21 19:45:00.000000

Plain ``ALTER TABLE ... ADD COLUMN`` (no batch mode) on purpose: batch mode rebuilds a table on
SQLite by copying and dropping it, and dropping ``cases`` while foreign keys are enforced
cascades into ``messages`` and ``case_parties``. Both columns are nullable and carry no
foreign key (see Case.linked_case_id), so SQLite adds and drops them in place.
"""

import sqlalchemy as sa
from alembic import op

import portal.models.base  # noqa: F401  (house style: every revision may use the models' types)

# revision identifiers, used by Alembic.
revision = "0002_mailbridge"
down_revision = "568dd802d137"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("cases", sa.Column("linked_case_id", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_cases_linked_case_id"), "cases", ["linked_case_id"], unique=False)
    op.add_column("messages", sa.Column("content_sha256", sa.String(length=64), nullable=True))
    op.create_index(
        op.f("ix_messages_content_sha256"), "messages", ["content_sha256"], unique=False
    )


def downgrade():
    op.drop_index(op.f("ix_messages_content_sha256"), table_name="messages")
    op.drop_column("messages", "content_sha256")
    op.drop_index(op.f("ix_cases_linked_case_id"), table_name="cases")
    op.drop_column("cases", "linked_case_id")
