"""Filing a batch of raw messages onto case timelines: idempotent, one transaction per batch.

For each message, in order:

1. store the raw bytes in the blob store (content-addressed, so a retry rewrites nothing);
2. parse them (``mailbridge.parse`` never raises; what went wrong becomes a staff flag);
3. skip it if this mailbox already has it (``mailbridge.dedup``: same UID, raw SHA-256 or
   content fingerprint). A copy found under an old UIDVALIDITY (or imported without a UID) is
   given its new UID instead of being stored again;
4. thread it (``mailbridge.threads``), opening a case when it belongs to none;
5. add the Message and its Attachment rows, and queue an acknowledgement for a new case.

Mail from a locked-out reporter (``portal.services.abuse.active_lockout``, any spelling of
the address) is kept, because it is evidence, but quarantined: it joins an existing case only
as a quarantined row, opens no case and gets no acknowledgement, until staff release it.

The batch's rows and the mailbox cursor commit together. The database's unique keys,
(mailbox, UIDVALIDITY, UID) and (mailbox, dedup key), are the last word: if another bridge
filed the same mail first, the commit fails, the batch is rolled back and filed again, and
step 3 then finds the other bridge's rows.

Each message is filed inside a savepoint. If filing it fails for a reason of ours (a bug, a
value the database refuses), the savepoint is rolled back and the message is kept anyway,
unfiled and flagged, so one message never stops a mailbox. Infrastructure failures (disk,
database connection) abort the whole batch instead: its cursor does not move, and the batch
is fetched again later.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, false, or_, select, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from mailbridge.charsets import one_line
from mailbridge.dedup import Identity, KnownRows
from mailbridge.errors import BridgeFault
from mailbridge.fingerprint import content_fingerprint
from mailbridge.parse import ParsedMail, parse_headers_only, parse_mail
from mailbridge.threads import CaseInfo, ThreadIndex, decide
from portal.addresses import EmailNotValidError, canonical_address, normalize_address
from portal.config import Settings
from portal.models import Attachment, Case, MailboxState, Message
from portal.models.base import utcnow
from portal.models.message import Channel, Direction
from portal.policy import Team, legally_open_channel
from portal.services.abuse import locked_out_addresses
from portal.services.acks import acknowledge_mail
from portal.services.appeals import Filed, appeal_from_mail
from portal.services.cases import open_mail_case
from portal.services.outbound import deliver_due
from portal.storage import BatchBlobStore, sha256_hex

log = logging.getLogger(__name__)

# Mail older than this when we first see it (a first sync, a restored mailbox) is history:
# its sender is not waiting for an acknowledgement.
ACK_MAX_AGE = timedelta(days=3)
_INFRASTRUCTURE = (OSError, OperationalError, InterfaceError, BridgeFault)
_ID_MAX = 998
_ADDRESS_MAX = 320
_NAME_MAX = 200


@dataclass(frozen=True)
class IncomingMail:
    """One message as fetched (or read from a file): raw bytes, or a header for a placeholder."""

    raw: bytes | None
    arrived_at: datetime
    size: int
    uid: int | None = None
    header: bytes | None = None
    problem: str | None = None  # why there is no raw message (too large, not returned)


@dataclass
class Tally:
    """Counts for the summary line: ``ca: 12 new, 3 already stored, 1 flagged``."""

    new: int = 0
    already: int = 0
    flagged: int = 0
    opened: int = 0

    def add(self, other: Tally) -> None:
        self.new += other.new
        self.already += other.already
        self.flagged += other.flagged
        self.opened += other.opened

    def __str__(self) -> str:
        return (
            f"{self.new} new, {self.already} already stored, {self.flagged} flagged "
            f"({self.opened} cases opened)"
        )


@dataclass
class _Prepared:
    mail: IncomingMail
    parsed: ParsedMail
    identity: Identity


class Ingestor:
    """Files batches into one mailbox's queue. Holds no ORM objects between batches."""

    def __init__(
        self,
        session: Session,
        settings: Settings,
        secret_key: str,
        *,
        mailbox: str,
        team: Team,
        acknowledge: bool,
        authserv_id: str | None = None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.secret_key = secret_key
        self.mailbox = mailbox
        self.team = team
        self.acknowledge = acknowledge
        self.authserv_id = authserv_id
        self.blobs = BatchBlobStore(settings.blob_dir)
        self._locked: set[str] = set()  # canonical senders locked out, looked up per batch
        self.role_addresses = frozenset(
            canonical_address(address)
            for address in (settings.address_ca, settings.address_appeals, settings.address_legal)
        )

    # -- the batch ------------------------------------------------------------------------------

    def ingest_batch(
        self,
        mails: Sequence[IncomingMail],
        *,
        uidvalidity: int | None = None,
        cursor_uid: int | None = None,
    ) -> Tally:
        """File ``mails`` and move the cursor to ``cursor_uid`` in one commit, then send acks."""
        try:
            prepared = [self._prepare(mail) for mail in mails]
            for attempt in (1, 2):
                try:
                    self._begin()
                    tally, ack_ids = self._file(prepared, uidvalidity, cursor_uid)
                    self.blobs.sync()  # durable before the rows that name them commit
                    self.session.commit()
                    break
                except IntegrityError:
                    self.session.rollback()
                    if attempt == 2:
                        raise BridgeFault(
                            f"{self.mailbox}: a batch conflicted twice with rows filed meanwhile"
                        ) from None
                    log.warning("%s: batch raced another writer; filing it again", self.mailbox)
                except BaseException:
                    self.session.rollback()
                    raise
        finally:
            self.blobs.discard()  # nothing is pending after a sync; leftovers of a failure
        self.session.expunge_all()
        self._send(ack_ids)
        return tally

    def _begin(self) -> None:
        """Open the batch's one transaction, where the driver would not.

        Python 3.11's sqlite3 opens a transaction before INSERT or UPDATE but never before
        SAVEPOINT, so the per-message ``begin_nested()`` would otherwise *be* the transaction
        and its RELEASE would commit each message on its own, ahead of the cursor.
        ``BEGIN IMMEDIATE`` also takes the write lock now: a concurrent writer means a wait
        (busy_timeout), never a failed lock upgrade halfway through the batch.
        """
        connection = self.session.connection()
        if connection.dialect.name != "sqlite":
            return
        dbapi = connection.connection.dbapi_connection
        if dbapi is not None and not dbapi.in_transaction:  # type: ignore[attr-defined]
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    def _prepare(self, mail: IncomingMail) -> _Prepared:
        """Raw bytes stored before anything else looks at them; then parsed."""
        if mail.raw is None:
            parsed = parse_headers_only(
                mail.header or b"", arrived_at=mail.arrived_at, authserv_id=self.authserv_id
            )
            parsed.problems.insert(0, mail.problem or "the server returned no message body")
            header_hash = sha256_hex(mail.header or b"")
            identity = Identity(
                uid=mail.uid,
                raw_sha256=None,
                content_sha256=None,
                message_id=parsed.message_id,
                placeholder_key=f"size:{mail.size}:header-sha256:{header_hash}",
            )
            return _Prepared(mail, parsed, identity)
        try:
            stored = self.blobs.put(mail.raw)
        except OSError as exc:
            raise BridgeFault(f"{self.mailbox}: cannot store raw mail ({exc.strerror})") from exc
        parsed = parse_mail(mail.raw, arrived_at=mail.arrived_at, authserv_id=self.authserv_id)
        if mail.problem:
            parsed.problems.insert(0, mail.problem)
        identity = Identity(
            uid=mail.uid,
            raw_sha256=stored.sha256,
            content_sha256=content_fingerprint(mail.raw),
            message_id=parsed.message_id,
        )
        return _Prepared(mail, parsed, identity)

    def _file(
        self, prepared: Sequence[_Prepared], uidvalidity: int | None, cursor_uid: int | None
    ) -> tuple[Tally, list[int]]:
        known = self._known(prepared, uidvalidity)
        now = utcnow()
        senders = [p.parsed.sender for p in prepared if p.parsed.sender and "@" in p.parsed.sender]
        self._locked = locked_out_addresses(self.session, senders, now)
        index = ThreadIndex.load(self.session, [item.parsed for item in prepared])
        tally = Tally()
        ack_ids: list[int] = []
        for item in prepared:
            self._file_one(item, known, index, uidvalidity, now, tally, ack_ids)
        if cursor_uid is not None:
            state = self.session.scalars(
                select(MailboxState).where(MailboxState.name == self.mailbox)
            ).one()
            state.uidvalidity = uidvalidity
            state.last_uid = max(state.last_uid, cursor_uid)
        return tally, ack_ids

    def _known(self, prepared: Sequence[_Prepared], uidvalidity: int | None) -> KnownRows:
        """One query for every row this batch could duplicate."""
        identities = [item.identity for item in prepared]
        uids = [i.uid for i in identities if i.uid is not None]
        shas = [i.raw_sha256 for i in identities if i.raw_sha256]
        fingerprints = [i.content_sha256 for i in identities if i.content_sha256]
        keys = [key for i in identities for key in i.candidate_keys()]
        by_uid = (
            and_(Message.uidvalidity == uidvalidity, Message.uid.in_(uids))
            if uids and uidvalidity is not None
            else false()
        )
        rows = self.session.execute(
            select(
                Message.id,
                Message.uidvalidity,
                Message.uid,
                Message.raw_sha256,
                Message.content_sha256,
                Message.dedup_key,
            ).where(
                Message.mailbox == self.mailbox,
                or_(
                    by_uid,
                    Message.raw_sha256.in_(shas),
                    Message.content_sha256.in_(fingerprints),
                    Message.dedup_key.in_(keys),
                ),
            )
        )
        known = KnownRows()
        for row_id, validity, uid, raw_sha, content_sha, key in rows:
            known.add(
                row_id,
                uidvalidity=validity,
                uid=uid,
                raw_sha256=raw_sha,
                content_sha256=content_sha,
                dedup_key=key,
            )
        return known

    # -- one message ----------------------------------------------------------------------------

    def _file_one(
        self,
        item: _Prepared,
        known: KnownRows,
        index: ThreadIndex,
        uidvalidity: int | None,
        now: datetime,
        tally: Tally,
        ack_ids: list[int],
    ) -> None:
        duplicate = known.duplicate_of(item.identity, uidvalidity)
        if duplicate is not None:
            self._relocate(duplicate, item, known, uidvalidity)
            tally.already += 1
            return
        key, key_flag = known.dedup_key(item.identity)
        try:
            with self.session.begin_nested():
                message, queued, opened = self._file_new(
                    item, key, key_flag, index, uidvalidity, now
                )
        except (IntegrityError, *_INFRASTRUCTURE):
            raise
        except Exception as exc:
            log.error(
                "%s: UID %s could not be filed (%s); keeping it unfiled for staff",
                self.mailbox,
                item.mail.uid,
                type(exc).__name__,
                exc_info=True,
            )
            reason = f"could not be filed automatically ({type(exc).__name__}); see the raw message"
            with self.session.begin_nested():
                message = self._file_unfiled(item, key, uidvalidity, now, reason)
            queued, opened = [], False
        tally.new += 1
        tally.flagged += bool(message.flag_reason or message.quarantined)
        tally.opened += opened
        ack_ids.extend(queued)
        known.add(
            message.id,
            uidvalidity=uidvalidity,
            uid=item.mail.uid,
            raw_sha256=item.identity.raw_sha256,
            content_sha256=item.identity.content_sha256,
            dedup_key=key,
        )

    def _relocate(
        self, row_id: int, item: _Prepared, known: KnownRows, uidvalidity: int | None
    ) -> None:
        """A message we hold under an old UIDVALIDITY (or imported) is at this UID now."""
        uid = item.mail.uid
        if uid is None or not known.moved(row_id, uidvalidity, uid):
            return
        self.session.execute(
            update(Message)
            .where(Message.id == row_id)
            .values(uidvalidity=uidvalidity, uid=uid)
            .execution_options(synchronize_session=False)
        )
        known.relocate(row_id, uidvalidity, uid)

    def _file_new(
        self,
        item: _Prepared,
        key: str,
        key_flag: str | None,
        index: ThreadIndex,
        uidvalidity: int | None,
        now: datetime,
    ) -> tuple[Message, list[int], bool]:
        parsed = item.parsed
        decision = decide(parsed, index, team=self.team, secret=self.secret_key)
        flags = [*parsed.problems, *(f for f in (key_flag, decision.flag) if f)]
        if parsed.auth_results.get("dmarc") == "fail":
            flags.append("failed DMARC at our server: the From address may be forged")
        quarantined = self._locked_out(parsed.sender, now)
        urgent_reason = (
            legally_open_channel(parsed.subject, parsed.body_text) if quarantined else None
        )
        if urgent_reason:
            flags.append(f"{urgent_reason} from a locked-out reporter: read it now")
        case: Case | None = None
        case_id = decision.case_id
        if case_id is None and not quarantined:
            linked = index.cases.get(decision.linked_case_id) if decision.linked_case_id else None
            case = open_mail_case(
                self.session,
                team=self.team,
                mailbox=self.mailbox,
                sender=parsed.sender,
                sender_name=parsed.sender_name,
                subject=parsed.subject,
                linked_case_id=decision.linked_case_id,
                linked_reference=linked.reference if linked else None,
                now=now,
            )
            case_id = case.id
            index.add_case(CaseInfo(case.id, case.reference, case.team))
            if case.requester_id is not None and parsed.sender:
                index.add_party(case.id, parsed.sender)
        message = self._message(item, key, uidvalidity, now, flags)
        message.case_id = case_id
        message.quarantined = quarantined
        message.urgent = urgent_reason is not None
        self.session.add(message)
        self.session.flush()
        self._attachments(message, parsed)
        index.add_message(message.message_id, case_id, Direction.INBOUND)
        queued = self._answer(case, message, item, now) if case is not None else []
        if flags:
            log.info(
                "%s: UID %s flagged for staff: %s", self.mailbox, item.mail.uid, "; ".join(flags)
            )
        if urgent_reason:
            log.warning(
                "%s: UID %s quarantined but URGENT (%s): staff alerted",
                self.mailbox,
                item.mail.uid,
                urgent_reason,
            )
        elif quarantined:
            log.info(
                "%s: UID %s quarantined: its sender is locked out", self.mailbox, item.mail.uid
            )
        return message, queued, case is not None

    def _answer(self, case: Case, message: Message, item: _Prepared, now: datetime) -> list[int]:
        """Mail to queue for a message that opened a case: an appeal's confirmation link or
        refusal when it names a case its sender is party to, else the acknowledgement."""
        queued: list[int] = []
        if self.mailbox == "appeals" and self.acknowledge:
            filing = appeal_from_mail(
                self.session, self.settings, self.secret_key, message=message, now=now
            )
            queued += filing.outbound_ids
            if filing.result in (Filed.CONFIRMATION_SENT, Filed.REFUSED):
                return queued  # the person has their answer: no acknowledgement on top
        ack_id = self._acknowledge(case, item, now)
        return [*queued, ack_id] if ack_id is not None else queued

    def _locked_out(self, sender: str | None, now: datetime) -> bool:
        """Whether the sender is locked out now (looked up once for the whole batch)."""
        return bool(sender and "@" in sender and canonical_address(sender) in self._locked)

    def _message(
        self,
        item: _Prepared,
        key: str,
        uidvalidity: int | None,
        now: datetime,
        flags: Sequence[str],
    ) -> Message:
        parsed = item.parsed
        return Message(
            direction=Direction.INBOUND,
            channel=Channel.MAIL,
            message_id=parsed.message_id,
            in_reply_to=parsed.in_reply_to,
            references=" ".join(parsed.references) or None,
            sender=one_line(parsed.sender, _ADDRESS_MAX),
            sender_name=one_line(parsed.sender_name, _NAME_MAX),
            recipients=parsed.recipients,
            subject=parsed.subject,
            body_text=parsed.body_text,
            body_html=parsed.body_html,
            sent_at=parsed.sent_at,
            created_at=now,
            raw_sha256=item.identity.raw_sha256,
            content_sha256=item.identity.content_sha256,
            raw_size=item.mail.size,
            mailbox=self.mailbox,
            uidvalidity=uidvalidity if item.mail.uid is not None else None,
            uid=item.mail.uid,
            dedup_key=key,
            auth_results=parsed.auth_results,
            auto_submitted=parsed.automatic.auto_submitted,
            bounce=parsed.automatic.bounce,
            flag_reason="; ".join(flags) or None,
        )

    def _attachments(self, message: Message, parsed: ParsedMail) -> None:
        for part in parsed.attachments:
            stored = self.blobs.put(part.data)
            self.session.add(
                Attachment(
                    message_id=message.id,
                    filename=part.filename,
                    content_type=part.content_type,
                    size=stored.size,
                    sha256=stored.sha256,
                    inline=part.inline,
                    content_id=part.content_id,
                )
            )

    def _file_unfiled(
        self, item: _Prepared, key: str, uidvalidity: int | None, now: datetime, reason: str
    ) -> Message:
        """The least we can store: enough to find the raw message and to know why."""
        message = Message(
            direction=Direction.INBOUND,
            channel=Channel.MAIL,
            message_id=item.parsed.message_id,
            sender=one_line(item.parsed.sender, _ADDRESS_MAX),
            subject=one_line(item.parsed.subject, _NAME_MAX),
            sent_at=item.parsed.sent_at,
            created_at=now,
            raw_sha256=item.identity.raw_sha256,
            content_sha256=item.identity.content_sha256,
            raw_size=item.mail.size,
            mailbox=self.mailbox,
            uidvalidity=uidvalidity if item.mail.uid is not None else None,
            uid=item.mail.uid,
            dedup_key=key,
            flag_reason=reason,
        )
        self.session.add(message)
        self.session.flush()
        return message

    # -- acknowledgements -----------------------------------------------------------------------

    def _acknowledge(self, case: Case, item: _Prepared, now: datetime) -> int | None:
        """Queue an acknowledgement for a case this message opened, unless a guard says no."""
        parsed = item.parsed
        if not self.acknowledge or case.requester_id is None or not parsed.sender:
            return None
        if parsed.automatic.auto_submitted or parsed.automatic.bounce:
            return None
        if parsed.auth_results.get("dmarc") == "fail":
            return None  # a forged From: an acknowledgement would be backscatter
        if now - item.mail.arrived_at > ACK_MAX_AGE:
            return None
        try:
            address = normalize_address(parsed.sender)
        except EmailNotValidError:
            return None
        if canonical_address(address) in self.role_addresses:
            return None  # mail from our own role addresses: answering would start a loop
        outbound = acknowledge_mail(
            self.session,
            self.settings,
            self.secret_key,
            case=case,
            to=parsed.sender,
            in_reply_to=parsed.message_id,
            references=parsed.references,
            now=now,
        )
        return outbound.id if outbound else None

    def _send(self, ack_ids: Sequence[int]) -> None:
        """After the commit: try to deliver at once; a failure leaves the mail queued for retry."""
        if not ack_ids:
            return
        try:
            deliver_due(self.session, self.settings, only=ack_ids)
        except Exception:
            self.session.rollback()
            log.exception(
                "%s: acknowledgements stay queued for the next delivery run", self.mailbox
            )
