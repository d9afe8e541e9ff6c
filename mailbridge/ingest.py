"""Filing a batch of raw messages onto case timelines: idempotent, one transaction per batch.

For each message, in order:

1. store the raw bytes in the blob store (content-addressed, so a retry rewrites nothing),
   parse them (``mailbridge.parse`` never raises; what went wrong becomes a staff flag) and
   store the attachments: ``mailbridge.prepare``, in worker processes for large batches;
2. skip it if this mailbox already has it (``mailbridge.dedup``: same UID, raw SHA-256 or
   content fingerprint). A copy found under an old UIDVALIDITY (or imported without a UID) is
   given its new UID instead of being stored again;
3. thread it (``mailbridge.threads``), opening a case when it belongs to none;
4. add the Message and its Attachment rows, and queue an acknowledgement for a new case.

Mail from a locked-out reporter (``portal.services.abuse.LockoutScreen``: any spelling of the
address, or a look-alike of it) is kept, because it is evidence, but quarantined: it joins an
existing case only as a quarantined row, opens no case and gets no acknowledgement, until staff
release it. So is mail from a domain that imitates a large provider's or a locked-out
reporter's (``gmaıl.com``), flagged with what it imitates.

The batch's rows and the mailbox cursor commit together. The database's unique keys,
(mailbox, UIDVALIDITY, UID) and (mailbox, dedup key), are the last word: if another bridge
filed the same mail first, the commit fails, the batch is rolled back and filed again, and
step 2 then finds the other bridge's rows.

On SQLite, whose write lock the batch holds from its first statement, the batch is filed in
one go: ids are handed out up front (``portal.services.bulk``) and every row is written in
one flush, a statement per table. Anything that goes wrong there sends the batch round again,
message by message: each message is then filed inside a savepoint, and if filing it fails for
a reason of ours (a bug, a value the database refuses), the savepoint is rolled back and the
message is kept anyway, unfiled and flagged, so one message never stops a mailbox.
Infrastructure failures (disk, database connection) abort the whole batch instead: its cursor
does not move, and the batch is fetched again later.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, union, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from mailbridge.dedup import KnownRows
from mailbridge.errors import BridgeFault
from mailbridge.lease import Holder, renew
from mailbridge.prepare import IncomingMail, Prepared
from mailbridge.threads import CaseInfo, Decision, ThreadIndex, decide
from mailbridge.workers import Ticket, default_workers, submit
from portal.addresses import (
    EmailNotValidError,
    canonical_address,
    normalize_address,
    remember_canonical,
)
from portal.config import Settings
from portal.models import Attachment, Case, MailboxState, Message
from portal.models.base import utcnow
from portal.models.message import Channel, Direction
from portal.policy.abuse import legally_open_channel
from portal.policy.mail import why_no_acknowledgement
from portal.policy.routing import Team
from portal.services.abuse import LockoutScreen
from portal.services.acks import acknowledge_mail
from portal.services.appeals import Filed, appeal_from_mail
from portal.services.bulk import RowIds, insert_new_rows
from portal.services.cases import ReporterBook, open_mail_case
from portal.services.outbound import deliver_due

log = logging.getLogger(__name__)

_INFRASTRUCTURE = (OSError, OperationalError, InterfaceError, BridgeFault)


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
class _Batch:
    """What filing one batch knows and gathers; ``ids`` only when it is filed in one go."""

    known: KnownRows
    index: ThreadIndex
    uidvalidity: int | None
    now: datetime
    screen: LockoutScreen  # the lockouts in force now
    ids: RowIds | None = None
    reporters: ReporterBook | None = None
    tally: Tally = field(default_factory=Tally)
    ack_ids: list[int] = field(default_factory=list)


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
        workers: int | None = None,
        holder: Holder | None = None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.secret_key = secret_key
        self.mailbox = mailbox
        self.team = team
        self.acknowledge = acknowledge
        self.authserv_id = authserv_id
        self.workers = default_workers() if workers is None else workers
        self.holder = holder or Holder.this_process()  # of the mailbox's lease
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
        return self.file_batch(self.prepare(mails), uidvalidity=uidvalidity, cursor_uid=cursor_uid)

    def prepare(self, mails: Sequence[IncomingMail]) -> Ticket:
        """Start storing and parsing ``mails`` (in worker processes when it pays), so that the
        caller can fetch and file other mail meanwhile."""
        return submit(
            mails,
            blob_dir=self.settings.blob_dir,
            mailbox=self.mailbox,
            authserv_id=self.authserv_id,
            workers=self.workers,
        )

    def file_batch(
        self, ticket: Ticket, *, uidvalidity: int | None = None, cursor_uid: int | None = None
    ) -> Tally:
        """File a prepared batch and move the cursor in one commit, then send acks."""
        prepared = ticket.result()
        for item in prepared:
            if item.parsed.sender and item.canonical_sender:
                remember_canonical(item.parsed.sender, item.canonical_sender)
        tally, ack_ids = self._commit(prepared, uidvalidity, cursor_uid)
        self.session.expunge_all()
        self._send(ack_ids)
        return tally

    def _commit(
        self, prepared: Sequence[Prepared], uidvalidity: int | None, cursor_uid: int | None
    ) -> tuple[Tally, list[int]]:
        """File the batch in one go where the database allows it, else message by message.

        In one go (SQLite, whose write lock the batch holds): rows are named up front and the
        batch is written in one flush, a statement per table. That cannot tell which message
        a failure came from, so any failure of ours sends the batch round again message by
        message, each in a savepoint, where one bad message is kept unfiled and the rest go on.
        """
        if self._is_sqlite():
            try:
                return self._attempt(prepared, uidvalidity, cursor_uid, in_one_go=True)
            except _INFRASTRUCTURE:
                raise
            except Exception as exc:
                log.warning(
                    "%s: the batch could not be filed in one go (%s); filing it message by message",
                    self.mailbox,
                    type(exc).__name__,
                    exc_info=True,
                )
        for attempt in (1, 2):
            try:
                return self._attempt(prepared, uidvalidity, cursor_uid, in_one_go=False)
            except IntegrityError:
                if attempt == 2:
                    raise BridgeFault(
                        f"{self.mailbox}: a batch conflicted twice with rows filed meanwhile"
                    ) from None
                log.warning("%s: batch raced another writer; filing it again", self.mailbox)
        raise AssertionError("unreachable")

    def _attempt(
        self,
        prepared: Sequence[Prepared],
        uidvalidity: int | None,
        cursor_uid: int | None,
        *,
        in_one_go: bool,
    ) -> tuple[Tally, list[int]]:
        try:
            locked = self._begin(in_one_go=in_one_go)
            result = self._file(prepared, uidvalidity, cursor_uid, in_one_go=in_one_go and locked)
            self.session.commit()  # the batch's blobs were made durable when it was prepared
            return result
        except BaseException:
            self.session.rollback()
            raise

    def _is_sqlite(self) -> bool:
        return self.session.get_bind().dialect.name == "sqlite"

    def _begin(self, *, in_one_go: bool) -> bool:
        """Open the batch's one transaction, where the driver would not; True when this took
        the database's write lock, as filing in one go needs.

        Python 3.11's sqlite3 opens a transaction before INSERT or UPDATE but never before
        SAVEPOINT, so the per-message ``begin_nested()`` would otherwise *be* the transaction
        and its RELEASE would commit each message on its own, ahead of the cursor.
        ``BEGIN IMMEDIATE`` also takes the write lock now: a concurrent writer means a wait
        (busy_timeout), never a failed lock upgrade halfway through the batch. In one go, the
        foreign keys are checked at the commit: one flush writes a table at a time, in an order
        ``insert_new_rows`` writes a table at a time, not in the order of each row's references.
        """
        connection = self.session.connection()
        if connection.dialect.name != "sqlite":
            return False
        dbapi = connection.connection.dbapi_connection
        if dbapi is None or dbapi.in_transaction:  # type: ignore[attr-defined]
            return False
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        if in_one_go:
            connection.exec_driver_sql("PRAGMA defer_foreign_keys = ON")  # until this commit
        return True

    def _file(
        self,
        prepared: Sequence[Prepared],
        uidvalidity: int | None,
        cursor_uid: int | None,
        *,
        in_one_go: bool,
    ) -> tuple[Tally, list[int]]:
        now = utcnow()
        senders = [p.parsed.sender for p in prepared if p.parsed.sender and "@" in p.parsed.sender]
        ids = RowIds.install(self.session) if in_one_go else None
        batch = _Batch(
            known=self._known(prepared, uidvalidity),
            index=ThreadIndex.load(self.session, [item.parsed for item in prepared]),
            uidvalidity=uidvalidity,
            now=now,
            screen=LockoutScreen.load(self.session, now),
            ids=ids,
            reporters=ReporterBook(self.session, senders, ids) if ids is not None else None,
        )
        for item in prepared:
            self._file_one(item, batch)
        if ids is not None:
            insert_new_rows(self.session, ids)
        if cursor_uid is not None:
            state = self.session.scalars(
                select(MailboxState).where(MailboxState.name == self.mailbox)
            ).one()
            state.uidvalidity = uidvalidity
            state.last_uid = max(state.last_uid, cursor_uid)
            renew(state, self.holder, now)
        return batch.tally, batch.ack_ids

    def _known(self, prepared: Sequence[Prepared], uidvalidity: int | None) -> KnownRows:
        """One query for every row this batch could duplicate.

        A union of one indexed lookup per rule, not one WHERE with ORs, which SQLite answers by
        walking every message of the mailbox. The hashes are looked up across mailboxes and
        the other mailboxes' rows dropped here: with the mailbox in the WHERE, SQLite (without
        statistics) prefers the mailbox index to the far more selective hash index.
        """
        identities = [item.identity for item in prepared]
        uids = [i.uid for i in identities if i.uid is not None]
        shas = [i.raw_sha256 for i in identities if i.raw_sha256]
        fingerprints = [i.content_sha256 for i in identities if i.content_sha256]
        keys = [key for i in identities for key in i.candidate_keys()]
        mailbox = Message.mailbox == self.mailbox
        lookups = []
        if uids and uidvalidity is not None:
            lookups.append(and_(mailbox, Message.uidvalidity == uidvalidity, Message.uid.in_(uids)))
        if shas:
            lookups.append(Message.raw_sha256.in_(shas))
        if fingerprints:
            lookups.append(Message.content_sha256.in_(fingerprints))
        if keys:
            lookups.append(and_(mailbox, Message.dedup_key.in_(keys)))
        known = KnownRows()
        if not lookups:
            return known
        columns = (
            Message.id,
            Message.mailbox,
            Message.uidvalidity,
            Message.uid,
            Message.raw_sha256,
            Message.content_sha256,
            Message.dedup_key,
        )
        rows = self.session.execute(union(*(select(*columns).where(c) for c in lookups)))
        for row_id, row_mailbox, validity, uid, raw_sha, content_sha, key in rows:
            if row_mailbox != self.mailbox:
                continue
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

    def _file_one(self, item: Prepared, batch: _Batch) -> None:
        known, uidvalidity = batch.known, batch.uidvalidity
        duplicate = known.duplicate_of(item.identity, uidvalidity)
        if duplicate is not None:
            self._relocate(duplicate, item, known, uidvalidity)
            batch.tally.already += 1
            return
        key, key_flag = known.dedup_key(item.identity)
        if batch.ids is not None:  # in one go: a failure sends the batch round again
            message, queued, opened = self._file_new(item, key, key_flag, batch)
        else:
            message, queued, opened = self._file_in_savepoint(item, key, key_flag, batch)
        batch.tally.new += 1
        batch.tally.flagged += bool(message.flag_reason or message.quarantined)
        batch.tally.opened += opened
        batch.ack_ids.extend(queued)
        known.add(
            message.id,
            uidvalidity=uidvalidity,
            uid=item.uid,
            raw_sha256=item.identity.raw_sha256,
            content_sha256=item.identity.content_sha256,
            dedup_key=key,
        )

    def _file_in_savepoint(
        self, item: Prepared, key: str, key_flag: str | None, batch: _Batch
    ) -> tuple[Message, list[int], bool]:
        try:
            with self.session.begin_nested():
                return self._file_new(item, key, key_flag, batch)
        except (IntegrityError, *_INFRASTRUCTURE):
            raise
        except Exception as exc:
            log.error(
                "%s: UID %s could not be filed (%s); keeping it unfiled for staff",
                self.mailbox,
                item.uid,
                type(exc).__name__,
                exc_info=True,
            )
            reason = f"could not be filed automatically ({type(exc).__name__}); see the raw message"
            with self.session.begin_nested():
                message = self._file_unfiled(item, key, batch.uidvalidity, batch.now, reason)
            return message, [], False

    def _relocate(
        self, row_id: int, item: Prepared, known: KnownRows, uidvalidity: int | None
    ) -> None:
        """A message we hold under an old UIDVALIDITY (or imported) is at this UID now."""
        uid = item.uid
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
        self, item: Prepared, key: str, key_flag: str | None, batch: _Batch
    ) -> tuple[Message, list[int], bool]:
        parsed, index, now = item.parsed, batch.index, batch.now
        decision = decide(parsed, index, team=self.team, secret=self.secret_key)
        flags = [*parsed.problems, *(f for f in (key_flag, decision.flag) if f)]
        if parsed.auth_results.get("dmarc") == "fail":
            flags.append("failed DMARC at our server: the From address may be forged")
        screening = batch.screen.screen(parsed.sender) if parsed.sender else None
        quarantined = screening is not None and screening.quarantine
        if screening is not None and screening.lookalike:
            flags.append(f"the sender's address: {screening.lookalike}")
        urgent_reason = (
            legally_open_channel(parsed.subject, parsed.body_text) if quarantined else None
        )
        if urgent_reason and screening is not None:
            who = "a locked-out reporter" if screening.lockout_id else "a look-alike address"
            flags.append(f"{urgent_reason} from {who}: read it now")
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
                ids=batch.ids,
                reporters=batch.reporters,
            )
            case_id = case.id
            index.add_case(CaseInfo(case.id, case.reference, case.team))
            if case.requester_id is not None and parsed.sender:
                index.add_party(case.id, parsed.sender)
        message = self._message(item, key, batch.uidvalidity, now, flags)
        message.case_id = case_id
        message.sender_verified = decision.verified
        message.quarantined = quarantined
        message.urgent = urgent_reason is not None
        if batch.ids is not None:
            message.id = batch.ids.take(Message)
            self.session.add(message)
        else:
            self.session.add(message)
            self.session.flush()
        self._attachments(message, item)
        index.add_message(message.message_id, case_id, Direction.INBOUND)
        queued = self._answer(case, message, item, decision, now) if case is not None else []
        if flags:
            log.info("%s: UID %s flagged for staff: %s", self.mailbox, item.uid, "; ".join(flags))
        if urgent_reason:
            log.warning(
                "%s: UID %s quarantined but URGENT (%s): staff alerted",
                self.mailbox,
                item.uid,
                urgent_reason,
            )
        elif quarantined:
            log.info("%s: UID %s quarantined: its sender is locked out", self.mailbox, item.uid)
        return message, queued, case is not None

    def _answer(
        self, case: Case, message: Message, item: Prepared, decision: Decision, now: datetime
    ) -> list[int]:
        """Mail to queue for a message that opened a case: an appeal's confirmation link or
        refusal when it names a case its sender is party to, else the acknowledgement.

        Mail naming a case whose party its From claims to be, without proof that the party
        wrote it, gets nothing: neither a link nor an acknowledgement goes to the party's
        address on the word of whoever wrote the From. Staff see it, flagged."""
        queued: list[int] = []
        if self.mailbox == "appeals" and self.acknowledge:
            filing = appeal_from_mail(
                self.session, self.settings, self.secret_key, message=message, now=now
            )
            queued += filing.outbound_ids
            if filing.result in (Filed.CONFIRMATION_SENT, Filed.REFUSED, Filed.UNVERIFIED):
                return queued  # answered, or not ours to answer: no acknowledgement on top
        if decision.as_party and not decision.acts_as_party:
            return queued  # a party's address on someone's word: nothing goes to the party
        ack_id = self._acknowledge(case, item, now)
        return [*queued, ack_id] if ack_id is not None else queued

    def _message(
        self,
        item: Prepared,
        key: str,
        uidvalidity: int | None,
        now: datetime,
        flags: Sequence[str],
    ) -> Message:
        parsed = item.parsed  # its strings are cleaned and cut to size by mailbridge.parse
        return Message(
            **self._provenance(item, key, uidvalidity, now),
            in_reply_to=parsed.in_reply_to,
            references=" ".join(parsed.references) or None,
            sender_name=parsed.sender_name,
            recipients=parsed.recipients,
            subject=parsed.subject,
            body_text=parsed.body_text,
            body_html=parsed.body_html,
            auth_results=parsed.auth_results,
            auto_submitted=parsed.automatic.auto_submitted,
            bounce=parsed.automatic.bounce,
            flag_reason="; ".join(flags) or None,
        )

    def _provenance(
        self, item: Prepared, key: str, uidvalidity: int | None, now: datetime
    ) -> dict[str, Any]:
        """Where a row came from and who sent it: what every stored message carries, filed or
        not, so the raw message can be found and the row de-duplicated."""
        return {
            "direction": Direction.INBOUND,
            "channel": Channel.MAIL,
            "message_id": item.parsed.message_id,
            "sender": item.parsed.sender,
            "sent_at": item.parsed.sent_at,
            "created_at": now,
            "raw_sha256": item.identity.raw_sha256,
            "content_sha256": item.identity.content_sha256,
            "raw_size": item.size,
            "mailbox": self.mailbox,
            "uidvalidity": uidvalidity if item.uid is not None else None,
            "uid": item.uid,
            "dedup_key": key,
        }

    def _attachments(self, message: Message, item: Prepared) -> None:
        for part in item.attachments:
            self.session.add(
                Attachment(
                    message_id=message.id,
                    filename=part.filename,
                    content_type=part.content_type,
                    size=part.size,
                    sha256=part.sha256,
                    inline=part.inline,
                    content_id=part.content_id,
                )
            )

    def _file_unfiled(
        self, item: Prepared, key: str, uidvalidity: int | None, now: datetime, reason: str
    ) -> Message:
        """The least we can store: enough to find the raw message and to know why."""
        message = Message(
            **self._provenance(item, key, uidvalidity, now),
            subject=item.parsed.subject,
            flag_reason=reason,
        )
        self.session.add(message)
        self.session.flush()
        return message

    # -- acknowledgements -----------------------------------------------------------------------

    def _acknowledge(self, case: Case, item: Prepared, now: datetime) -> int | None:
        """Queue an acknowledgement for a case this message opened, unless a guard says no."""
        parsed = item.parsed
        if not self.acknowledge or case.requester_id is None or not parsed.sender:
            return None
        if why_no_acknowledgement(
            auto_submitted=parsed.automatic.auto_submitted,
            bounce=parsed.automatic.bounce,
            dmarc=parsed.auth_results.get("dmarc"),
            age=now - item.arrived_at,
        ):
            return None  # the rules of portal.policy.mail
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
