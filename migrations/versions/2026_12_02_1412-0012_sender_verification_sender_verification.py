"""messages.sender_verified: whether something proves an inbound mail's From wrote it

Revision ID: 0012_sender_verification
Revises: 0011_deploy
Create Date: 2026-12-02 14:12:20.010306

Added in place, outside a batch: on SQLite a batch rebuilds `messages` and loses its FTS5
triggers. Rows stored before are left NULL (not judged); the page shows nothing for them.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0012_sender_verification"
down_revision = "0011_deploy"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("messages", sa.Column("sender_verified", sa.Boolean(), nullable=True))


def downgrade():
    # In place too (SQLite 3.35+ drops a column without rebuilding the table).
    op.drop_column("messages", "sender_verified")
