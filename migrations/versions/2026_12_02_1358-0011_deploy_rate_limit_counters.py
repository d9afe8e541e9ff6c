"""rate limit counters

Revision ID: 0011_deploy
Revises: 0010_staff_sessions
Create Date: 2026-12-02 13:58:33.998469

`rate_limit_counters` holds Flask-Limiter's fixed windows when
`PORTAL_RATELIMIT_STORAGE_URI=database://`, so that every web worker and host counts one limit.
"""

import sqlalchemy as sa
from alembic import op

import portal.models.base  # noqa: F401  (revisions may use the models' column types)

# revision identifiers, used by Alembic.
revision = "0011_deploy"
down_revision = "0010_staff_sessions"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "rate_limit_counters",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_limit_counters")),
    )
    with op.batch_alter_table("rate_limit_counters", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rate_limit_counters_expires_at"), ["expires_at"], unique=False
        )


def downgrade():
    with op.batch_alter_table("rate_limit_counters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rate_limit_counters_expires_at"))

    op.drop_table("rate_limit_counters")
