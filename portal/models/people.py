"""People outside the foundation who write to it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, utcnow


class Reporter(Base):
    """One person outside, known by their canonical e-mail address.

    The canonical form folds case, ``+tags`` and Gmail dots, so that abuse marks and lockouts
    follow the person rather than the spelling (see portal.addresses).
    """

    __tablename__ = "reporters"

    id: Mapped[int] = mapped_column(primary_key=True)
    canonical_email: Mapped[str] = mapped_column(String(320), unique=True)
    # The address as last written, for replies: mail goes where the person asked it to.
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<Reporter #{self.id}>"
