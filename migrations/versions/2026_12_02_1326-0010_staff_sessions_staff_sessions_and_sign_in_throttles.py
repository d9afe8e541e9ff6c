"""staff sessions and sign-in throttles

Revision ID: 0010_staff_sessions
Revises: 0009_jobs
Create Date: 2026-12-02 13:26:26.972943

Staff sessions carry their account's `session_version`; moving it on ends them all (logout,
disabling, a password change, a 2FA reset). Sign-in is throttled per (typed account, client
address) in `login_throttles`; `login_attempts` is counted per client address.
"""

import sqlalchemy as sa
from alembic import op

import portal.models.base  # noqa: F401  (revisions may use the models' column types)

# revision identifiers, used by Alembic.
revision = "0010_staff_sessions"
down_revision = "0009_jobs"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "login_throttles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", portal.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", portal.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_throttles")),
        sa.UniqueConstraint("email", "address", name=op.f("uq_login_throttles_email_address")),
    )
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_login_attempts_remote_addr_created_at", ["remote_addr", "created_at"], unique=False
        )

    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_version", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade():
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_column("session_version")

    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_login_attempts_remote_addr_created_at")

    op.drop_table("login_throttles")
