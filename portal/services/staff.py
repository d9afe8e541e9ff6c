"""Staff accounts and signing in: passwords (Argon2) plus a TOTP code, throttled in the DB."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from portal.addresses import normalize_address, redact
from portal.models import LoginAttempt, Role, StaffUser
from portal.models.base import utcnow
from portal.services import audit

log = logging.getLogger(__name__)

ISSUER = "Office Actions Portal"
# Five wrong tries for one account in a quarter of an hour, then wait: slow enough to make
# guessing a six-digit code with a known password hopeless, fast enough to forgive typos.
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 20
THROTTLE_WINDOW = timedelta(minutes=15)

_hasher = PasswordHasher()


class StaffError(Exception):
    """A staff account operation that cannot be done, with a message for the operator."""


class LoginRefused(Exception):
    """Wrong e-mail, password or code: one message for all, so nothing is revealed."""


class LoginThrottled(Exception):
    def __init__(self, retry_after: timedelta) -> None:
        super().__init__(f"too many failed attempts; retry after {retry_after}")
        self.retry_after = retry_after


@dataclass(frozen=True)
class NewCredentials:
    user: StaffUser
    provisioning_uri: str


def set_password_hasher(hasher: PasswordHasher) -> None:
    """Tests swap in cheap parameters; production keeps argon2-cffi's defaults."""
    global _hasher
    _hasher = hasher


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _new_totp(user: StaffUser) -> str:
    user.totp_secret = pyotp.random_base32()
    user.last_totp_step = None
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def create_staff(
    session: Session, *, email: str, roles: list[str], password: str, name: str | None = None
) -> NewCredentials:
    unknown = set(roles) - set(Role.ALL)
    if unknown or not roles:
        raise StaffError(f"roles must be among {', '.join(Role.ALL)}")
    if len(password) < 12:
        raise StaffError("the password must have at least 12 characters")
    address = normalize_address(email)
    if session.scalar(select(StaffUser).where(func.lower(StaffUser.email) == address.lower())):
        raise StaffError("a staff account with this address exists already")
    user = StaffUser(email=address, name=name, roles=sorted(set(roles)), active=True)
    user.password_hash = hash_password(password)
    uri = _new_totp(user)
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor="system",
        action="staff.created",
        details={"staff_id": user.id, "roles": user.roles},
    )
    return NewCredentials(user, uri)


def find_staff(session: Session, email: str) -> StaffUser:
    user = session.scalar(
        select(StaffUser).where(func.lower(StaffUser.email) == email.strip().lower())
    )
    if user is None:
        raise StaffError("no staff account with this address")
    return user


def disable_staff(session: Session, email: str) -> StaffUser:
    user = find_staff(session, email)
    user.active = False
    audit.record(session, actor="system", action="staff.disabled", details={"staff_id": user.id})
    return user


def reset_two_factor(session: Session, email: str) -> NewCredentials:
    user = find_staff(session, email)
    uri = _new_totp(user)
    audit.record(session, actor="system", action="staff.2fa_reset", details={"staff_id": user.id})
    return NewCredentials(user, uri)


def authenticate(
    session: Session,
    *,
    email: str,
    password: str,
    code: str,
    remote_addr: str | None,
    now: datetime | None = None,
) -> StaffUser:
    """The staff member, or LoginRefused / LoginThrottled. The caller commits either way,
    because a failed attempt must be remembered."""
    now = now or utcnow()
    key = email.strip().lower()
    since = now - THROTTLE_WINDOW
    account_failures = session.scalar(
        select(func.count(LoginAttempt.id)).where(
            LoginAttempt.email == key, LoginAttempt.created_at >= since
        )
    )
    address_failures = session.scalar(
        select(func.count(LoginAttempt.id)).where(
            LoginAttempt.remote_addr == remote_addr, LoginAttempt.created_at >= since
        )
    )
    if (account_failures or 0) >= MAX_FAILURES_PER_ACCOUNT or (
        address_failures or 0
    ) >= MAX_FAILURES_PER_ADDRESS:
        log.warning("login throttled for %s", redact(key))
        raise LoginThrottled(THROTTLE_WINDOW)

    user = session.scalar(select(StaffUser).where(func.lower(StaffUser.email) == key))
    if (
        user is None
        or not user.active
        or not _password_ok(user, password)
        or not _code_ok(user, code, now)
    ):
        session.add(LoginAttempt(email=key, remote_addr=remote_addr, created_at=now))
        log.info("failed staff login for %s", redact(key))
        raise LoginRefused()

    session.execute(delete(LoginAttempt).where(LoginAttempt.email == key))
    user.last_login_at = now
    if _hasher.check_needs_rehash(user.password_hash or ""):
        user.password_hash = hash_password(password)
    audit.record(session, actor=audit.staff_actor(user), action="staff.login", now=now)
    return user


def _password_ok(user: StaffUser, password: str) -> bool:
    try:
        return bool(user.password_hash) and _hasher.verify(user.password_hash or "", password)
    except (VerificationError, InvalidHashError):
        return False


def _code_ok(user: StaffUser, code: str, now: datetime) -> bool:
    """A valid code for this or the neighbouring 30-second step, never one already used."""
    if not user.totp_secret:
        return False
    totp = pyotp.TOTP(user.totp_secret)
    code = "".join(code.split())
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):
        if (
            user.last_totp_step is None or step > user.last_totp_step
        ) and pyotp.utils.strings_equal(totp.generate_otp(step), code):
            user.last_totp_step = step
            return True
    return False
