"""The review committee's queue and appeal decisions (issue 5)."""

from portal.staff import bp  # noqa: F401
