"""The Office Actions Portal. ``create_app`` (in ``portal.app``) builds the web app.

Importing the package itself stays cheap: the mail bridge's worker processes import only
what parsing needs (``portal.text``, ``portal.sanitize``, ...), not Flask and SQLAlchemy.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from portal.app import create_app

        return create_app
    raise AttributeError(f"module 'portal' has no attribute {name!r}")
