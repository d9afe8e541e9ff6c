"""Public appeal form and confirmation link (issue 5)."""

from portal.public import bp  # noqa: F401
