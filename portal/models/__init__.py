"""All models, imported here so that Alembic and the app see the whole schema."""

from portal.models.audit import AuditEvent
from portal.models.base import Base
from portal.models.case import Case, CaseParty
from portal.models.mailbox import MailboxState
from portal.models.message import Attachment, Message, OutboundMail
from portal.models.people import Reporter

__all__ = [
    "Attachment",
    "AuditEvent",
    "Base",
    "Case",
    "CaseParty",
    "MailboxState",
    "Message",
    "OutboundMail",
    "Reporter",
]
