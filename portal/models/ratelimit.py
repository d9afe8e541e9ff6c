"""Rate-limit counters shared by every web worker and host (``PORTAL_RATELIMIT_STORAGE_URI=database://``)."""

from __future__ import annotations

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base


class RateLimitCounter(Base):
    """One fixed window of one limit for one client: how many hits, and when it ends.

    Keyed by the SHA-256 of Flask-Limiter's key, which carries client and appellant addresses:
    the table counts them without holding them. ``expires_at`` is in seconds since the epoch,
    as the limits library reckons it.
    """

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int]
    expires_at: Mapped[float] = mapped_column(Float, index=True)

    def __repr__(self) -> str:
        return f"<RateLimitCounter {self.key[:12]} {self.count}>"
