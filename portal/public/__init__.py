"""What the public sees: the request form, and later appeals, DMCA notices and status pages."""

from flask import Blueprint

bp = Blueprint("public", __name__)

from portal.public import appeals, views  # noqa: E402,F401  (routes register on import)
