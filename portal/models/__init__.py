"""All models, imported here so that Alembic and the app see the whole schema."""

from portal.models.abuse import AbuseMark, AbuseWarning, Lockout
from portal.models.appeal import Appeal
from portal.models.audit import AuditEvent
from portal.models.base import Base
from portal.models.case import Case, CaseParty
from portal.models.job import Job, JobState
from portal.models.mailbox import MailboxState
from portal.models.message import Attachment, Message, OutboundMail
from portal.models.people import Reporter
from portal.models.ratelimit import RateLimitCounter
from portal.models.staff import (
    CannedResponse,
    LoginAttempt,
    LoginThrottle,
    ReplyPresence,
    StaffUser,
)

__all__ = [
    "AbuseMark",
    "AbuseWarning",
    "Appeal",
    "Attachment",
    "AuditEvent",
    "Base",
    "CannedResponse",
    "Case",
    "CaseParty",
    "Job",
    "JobState",
    "Lockout",
    "LoginAttempt",
    "LoginThrottle",
    "MailboxState",
    "Message",
    "OutboundMail",
    "RateLimitCounter",
    "ReplyPresence",
    "Reporter",
    "StaffUser",
]
