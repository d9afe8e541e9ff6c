"""Staff accounts, their login attempts and throttles, and what they keep ready to hand
(canned responses)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, utcnow
from portal.policy.permissions import holds


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)  # portal.policy.roles.Role
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # The last TOTP time step accepted: a code is good once, never replayed within its window.
    last_totp_step: Mapped[int | None]
    # Every session carries the version it was opened under; moving it on (logout, disabling,
    # a password change, a 2FA reset) ends every session of the account at its next request.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")

    # Flask-Login's user protocol.
    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    def has_role(self, *roles: str) -> bool:
        return holds(self.roles, roles)

    @property
    def display_name(self) -> str:
        return self.name or self.email.split("@", 1)[0]

    def __repr__(self) -> str:
        return f"<StaffUser #{self.id} roles={','.join(self.roles or [])}>"


class LoginAttempt(Base):
    """One sign-in attempt not (yet) proven right, kept in the database so that the cap per
    client address holds across workers and restarts; a successful one is deleted."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_email_created_at", "email", "created_at"),
        Index("ix_login_attempts_remote_addr_created_at", "remote_addr", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<LoginAttempt #{self.id}>"


class LoginThrottle(Base):
    """The failures of one (typed account, client address) pair and when it may try again.

    ``failures`` doubles as a version: an attempt claims its turn with a conditional UPDATE on
    the value it read, so two workers can never both pass the same open turn.
    """

    __tablename__ = "login_throttles"
    __table_args__ = (UniqueConstraint("email", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    address: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<LoginThrottle #{self.id} failures={self.failures}>"


class CannedResponse(Base):
    """A reply text kept by admins; ``{reference}`` and ``{requester_name}`` are filled in."""

    __tablename__ = "canned_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200), unique=True)
    body: Mapped[str] = mapped_column(Text)
    team: Mapped[str | None] = mapped_column(String(32))  # None: every team
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<CannedResponse #{self.id}>"


class ReplyPresence(Base):
    """Who opened the reply box of a case, and when: to warn a colleague before they answer too."""

    __tablename__ = "reply_presence"
    __table_args__ = (Index("ix_reply_presence_case_id_opened_at", "case_id", "opened_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<ReplyPresence case={self.case_id} staff={self.staff_id}>"
