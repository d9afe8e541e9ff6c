"""Abuse marks, warnings, lockouts and the quarantine view (issue 6)."""

from portal.staff import bp  # noqa: F401
