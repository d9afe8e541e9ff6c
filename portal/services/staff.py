"""Staff accounts and signing in: passwords (Argon2) plus a TOTP code, throttled in the DB.

Sign-in costs the same Argon2 verification whether the account exists, is disabled or has no
password: an unknown address is checked against a dummy hash made with the same parameters,
so the answer's timing does not tell which addresses have accounts. Ending sessions moves the
account's ``session_version`` on; the user loader refuses a session opened under an older one.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portal.addresses import normalize_address, redact
from portal.models import StaffUser
from portal.models.base import utcnow
from portal.policy.roles import Role
from portal.services import audit
from portal.services.signin_throttle import LoginThrottled, claim, forgive
from portal.signin import account_key, throttle_address
from portal.text import clean_text

log = logging.getLogger(__name__)

__all__ = ["LoginThrottled"]  # raised by authenticate, defined with the throttle

ISSUER = "Office Actions Portal"
MIN_PASSWORD_CHARS = 12

_hasher = PasswordHasher()
_dummy_hashes: dict[tuple[int, int, int], str] = {}


class StaffError(Exception):
    """A staff account operation that cannot be done, with a message for the operator."""


class LoginRefused(Exception):
    """Wrong e-mail, password or code: one message for all, so nothing is revealed."""


@dataclass(frozen=True)
class NewCredentials:
    user: StaffUser
    provisioning_uri: str


def set_password_hasher(hasher: PasswordHasher) -> None:
    """Tests swap in cheap parameters; production keeps argon2-cffi's defaults."""
    global _hasher
    _hasher = hasher


def hash_password(password: str) -> str:
    password = _as_typed_on_the_web(password)
    if len(password) < MIN_PASSWORD_CHARS:
        raise StaffError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    return _hasher.hash(password)


def _as_typed_on_the_web(password: str) -> str:
    """The password as the sign-in form hands it over (NFC, no control characters), so that
    ``Contraseña`` set on a terminal that sends decomposed ``n`` + ``◌̃`` still signs in."""
    return clean_text(password) or ""


def _dummy_hash() -> str:
    """A hash of a random password made with the current parameters, so verifying against it
    costs what verifying a real account does. Made once per parameter set."""
    params = (_hasher.time_cost, _hasher.memory_cost, _hasher.parallelism)
    if params not in _dummy_hashes:
        _dummy_hashes[params] = _hasher.hash(secrets.token_urlsafe(24))
    return _dummy_hashes[params]


def _new_totp(user: StaffUser) -> str:
    user.totp_secret = pyotp.random_base32()
    user.last_totp_step = None
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def create_staff(
    session: Session, *, email: str, roles: list[str], password: str, name: str | None = None
) -> NewCredentials:
    unknown = set(roles) - set(Role)
    if unknown or not roles:
        raise StaffError(f"roles must be among {', '.join(Role)}")
    password_hash = hash_password(password)
    address = normalize_address(email)
    if _by_key(session, account_key(address)) is not None:
        raise StaffError("a staff account with this address exists already")
    user = StaffUser(email=address, name=name, roles=sorted(set(roles)), active=True)
    user.password_hash = password_hash
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


def _by_key(session: Session, key: str) -> StaffUser | None:
    return session.scalar(select(StaffUser).where(func.lower(StaffUser.email) == key))


def find_staff(session: Session, email: str) -> StaffUser:
    user = _by_key(session, account_key(email))
    if user is None:
        raise StaffError("no staff account with this address")
    return user


def disable_staff(session: Session, email: str) -> StaffUser:
    user = find_staff(session, email)
    user.active = False
    end_sessions(session, user)
    audit.record(session, actor="system", action="staff.disabled", details={"staff_id": user.id})
    return user


def reset_two_factor(session: Session, email: str) -> NewCredentials:
    user = find_staff(session, email)
    uri = _new_totp(user)
    end_sessions(session, user)
    audit.record(session, actor="system", action="staff.2fa_reset", details={"staff_id": user.id})
    return NewCredentials(user, uri)


def end_sessions(session: Session, user: StaffUser) -> int:
    """End every session of ``user`` (they must sign in again) and return the new session
    version. An UPDATE in SQL, so two ends at once both count."""
    session.execute(
        update(StaffUser)
        .where(StaffUser.id == user.id)
        .values(session_version=StaffUser.session_version + 1)
        .execution_options(synchronize_session=False)
    )
    session.refresh(user, ["session_version"])
    return user.session_version


def sign_out(session: Session, user: StaffUser) -> None:
    """Signing out ends every session of the account, including copies of the cookie."""
    end_sessions(session, user)
    audit.record(session, actor=audit.staff_actor(user), action="staff.logout")


def set_password(session: Session, email: str, password: str) -> StaffUser:
    """An operator sets a new password (e.g. a forgotten one); every session ends."""
    user = find_staff(session, email)
    user.password_hash = hash_password(password)
    end_sessions(session, user)
    audit.record(
        session, actor="system", action="staff.password_set", details={"staff_id": user.id}
    )
    return user


def change_own_password(
    session: Session,
    user: StaffUser,
    *,
    current: str,
    new: str,
    remote_addr: str | None,
    now: datetime | None = None,
) -> int:
    """A signed-in staff member changes their password, proving they know the current one
    (throttled like a sign-in: a borrowed session must not be a way to guess it). Every
    session ends; the caller keeps its own going with the version returned. Raises
    LoginRefused for a wrong current password, StaffError for an unusable new one."""
    now = now or utcnow()
    turn = claim(
        session, email=account_key(user.email), address=throttle_address(remote_addr), now=now
    )
    if not _password_ok(user.password_hash, current):
        raise LoginRefused()
    forgive(session, turn)
    if new == current:
        raise StaffError("the new password must differ from the current one")
    user.password_hash = hash_password(new)
    version = end_sessions(session, user)
    audit.record(session, actor=audit.staff_actor(user), action="staff.password_changed", now=now)
    return version


def authenticate(
    session: Session,
    *,
    email: str,
    password: str,
    code: str,
    remote_addr: str | None,
    now: datetime | None = None,
) -> StaffUser:
    """The staff member, or LoginRefused / LoginThrottled.

    The attempt is committed as a failure before the password is checked (see
    :mod:`portal.services.signin_throttle`); the caller commits the outcome either way."""
    now = now or utcnow()
    key = account_key(email)
    turn = claim(session, email=key, address=throttle_address(remote_addr), now=now)

    user = _by_key(session, key)
    # Always one Argon2 verification, whoever asks: the answer's timing reveals nothing.
    password_ok = _password_ok(user.password_hash if user else None, password)
    if user is None or not user.active or not password_ok or not _code_ok(session, user, code, now):
        log.info("failed staff login for %s", redact(key))
        raise LoginRefused()

    forgive(session, turn)
    user.last_login_at = now
    if _hasher.check_needs_rehash(user.password_hash or ""):
        user.password_hash = _hasher.hash(_as_typed_on_the_web(password))
    audit.record(session, actor=audit.staff_actor(user), action="staff.login", now=now)
    return user


def _password_ok(password_hash: str | None, password: str) -> bool:
    try:
        password = _as_typed_on_the_web(password)
        return _hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def _code_ok(session: Session, user: StaffUser, code: str, now: datetime) -> bool:
    """A valid code for this or the neighbouring 30-second step, never one already used.

    The step is taken with a conditional UPDATE, so the same code sent twice at once (two
    workers) signs in only once."""
    if not user.totp_secret:
        return False
    totp = pyotp.TOTP(user.totp_secret)
    code = "".join(code.split())
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):
        if not pyotp.utils.strings_equal(totp.generate_otp(step), code):
            continue
        taken = session.execute(
            update(StaffUser)
            .where(
                StaffUser.id == user.id,
                (StaffUser.last_totp_step.is_(None)) | (StaffUser.last_totp_step < step),
            )
            .values(last_totp_step=step)
            .execution_options(synchronize_session=False)
        )
        session.refresh(user, ["last_totp_step"])
        return taken.rowcount == 1  # type: ignore[attr-defined]
    return False
