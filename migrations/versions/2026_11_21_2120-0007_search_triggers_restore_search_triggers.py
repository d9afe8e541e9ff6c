"""restore the search triggers where an earlier 0004 dropped them

Revision ID: 0007_search_triggers
Revises: 0006_queue_indexes
Create Date: 2026-11-21 21:20:00.000000

The first version of 0004 added columns to `messages` in batch mode, which rebuilds the table on
SQLite and loses the FTS5 triggers defined on it: mail stored afterwards was not searchable.
0004 now adds its columns in place. Databases migrated with the first version get the triggers
back here, and the index rebuilt so that the mail stored meanwhile is found.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0007_search_triggers"
down_revision = "0006_queue_indexes"
branch_labels = None
depends_on = None

TRIGGERS = {
    "messages_search_ai": (
        "CREATE TRIGGER IF NOT EXISTS messages_search_ai AFTER INSERT ON messages BEGIN "
        "INSERT INTO message_search(rowid, subject, body_text, sender) "
        "VALUES (new.id, new.subject, new.body_text, new.sender); END"
    ),
    "messages_search_ad": (
        "CREATE TRIGGER IF NOT EXISTS messages_search_ad AFTER DELETE ON messages BEGIN "
        "INSERT INTO message_search(message_search, rowid, subject, body_text, sender) "
        "VALUES ('delete', old.id, old.subject, old.body_text, old.sender); END"
    ),
    "messages_search_au": (
        "CREATE TRIGGER IF NOT EXISTS messages_search_au AFTER UPDATE OF subject, body_text, "
        "sender ON messages BEGIN "
        "INSERT INTO message_search(message_search, rowid, subject, body_text, sender) "
        "VALUES ('delete', old.id, old.subject, old.body_text, old.sender); "
        "INSERT INTO message_search(rowid, subject, body_text, sender) "
        "VALUES (new.id, new.subject, new.body_text, new.sender); END"
    ),
}


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    present = {
        row[0]
        for row in bind.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
    }
    missing = [name for name in TRIGGERS if name not in present]
    for name in missing:
        op.execute(TRIGGERS[name])
    if missing:
        op.execute("INSERT INTO message_search(message_search) VALUES ('rebuild')")


def downgrade():
    pass  # the triggers belong to 0003; nothing to undo
