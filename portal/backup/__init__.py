"""Backups: a consistent snapshot of the database and of every blob it refers to.

``flask --app wsgi backup create DIR`` and ``backup restore DIR`` (portal/cli.py) call
:func:`create_backup` and :func:`restore_backup`; ``snapshot.py`` explains the layout and why
a backup taken while the portal runs is consistent.
"""

from portal.backup.snapshot import BackupError, Restored, create_backup, restore_backup

__all__ = ["BackupError", "Restored", "create_backup", "restore_backup"]
