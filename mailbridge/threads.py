"""Which case does a message belong to? Decided by rules a stranger cannot game.

In order:

1. **A reply citing one of our own Message-IDs** (In-Reply-To or References). Ours are
   HMAC-signed for their recipient (``portal.message_ids``), so a valid one proves the reply
   comes from the address we wrote to: it joins that case even when the mail client rewrote the
   subject, and even if the row it cites is gone.
2. **A case reference in the subject** (``[OA-2026-000123]``) joins that case only when the
   sender is one of its parties (``CaseParty``, compared by canonical address). A stranger
   quoting someone else's reference gets a new case that *links* to the one it names, flagged
   for staff.
3. **In-Reply-To and References**, nearest first, against every Message-ID we stored or sent,
   so a reply whose direct parent never reached us still finds the case of an earlier message
   in its chain. These IDs are seen by everyone on a thread and prove nothing, so the sender
   must be a party here too; otherwise a new, linked, flagged case.
4. Otherwise, **a new case** in the mailbox's queue.

Never by subject alone, and never into another team's case without staff action (a match to
one gives a new case linked to it). A sender whose From failed DMARC at our server is not
trusted as a party: that From is likely forged.

**Joining is not acting.** Rules 2 and 3 compare addresses, and anyone can write a party's
address in From. A mail that brings no proof (``mailbridge.senders``: no DMARC pass from our
server for its domain, no reply to a Message-ID we signed for that address) still joins the
party's case, since it is evidence, but its Decision says ``verified=False``, it is flagged
"sender not verified", and no automatic step acts on it as that party (the appeals mailbox
sends no confirmation link for it, see ``portal.services.appeals.appeal_from_mail``).

A bounce of our own mail belongs on the case it bounced from: the returned message's
Message-ID is looked up among our outbound mail only (or verified by its signature for the
recipient that failed).

:class:`ThreadIndex` answers the lookups for a whole batch from a handful of queries, and is
updated as the batch files its messages, so a reply later in the same batch finds a case
opened earlier in it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from mailbridge.parse import ParsedMail
from mailbridge.senders import sender_proof
from portal.addresses import canonical_address
from portal.message_ids import parse_message_id, verify_message_id
from portal.models import Case, CaseParty, Message
from portal.models.message import Direction
from portal.policy.references import references_in

T = TypeVar("T")

# SQLite allows 32,766 bound parameters; stay far below for any database.
_IN_CHUNK = 500

NOT_VERIFIED = (
    "sender not verified: the From is a party's address, but nothing proves the party wrote "
    "it (no DMARC pass at our mail server, no reply to our mail to that address)"
)


@dataclass(frozen=True)
class CaseInfo:
    id: int
    reference: str | None
    team: str


@dataclass(frozen=True)
class Decision:
    """Where a message goes: an existing case, or a new one (possibly linked), and why;
    ``verified`` when something proves its sender wrote it (``mailbridge.senders``)."""

    case_id: int | None = None
    linked_case_id: int | None = None
    via: str = "new"  # reference | signed-id | headers | bounce | new
    flag: str | None = None
    verified: bool = False
    # The sender's address is a party's of the case it joined or was linked to (rules 2, 3).
    as_party: bool = False

    @property
    def acts_as_party(self) -> bool:
        """May automatic steps (acknowledgements, appeal links) take this mail as the party's?
        Not on the strength of an address alone."""
        return self.as_party and self.verified


@dataclass
class ThreadIndex:
    """Everything threading needs for one batch, loaded up front and kept current."""

    cases: dict[int, CaseInfo] = field(default_factory=dict)
    by_reference: dict[str, int] = field(default_factory=dict)
    # Message-ID -> (case id, direction) for every stored row carrying it.
    by_message_id: dict[str, list[tuple[int, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    parties: set[tuple[int, str]] = field(default_factory=set)

    @classmethod
    def load(cls, session: Session, mails: Sequence[ParsedMail]) -> ThreadIndex:
        """Four or five queries for the whole batch, whatever its size."""
        index = cls()
        ids = {mid for mail in mails for mid in [*mail.thread_ids, *_bounced_ids(mail)]}
        refs = {ref for mail in mails for ref in references_in(mail.subject)}
        senders = {canonical_address(mail.sender) for mail in mails if mail.sender}

        for chunk in _chunks(ids):
            rows = session.execute(
                select(Message.message_id, Message.case_id, Message.direction).where(
                    Message.message_id.in_(chunk), Message.case_id.is_not(None)
                )
            )
            for message_id, case_id, direction in rows:
                index.by_message_id[message_id].append((case_id, direction))
        case_ids = {case_id for found in index.by_message_id.values() for case_id, _ in found}
        case_ids |= {signed.case_id for mid in ids if (signed := parse_message_id(mid))}
        if refs:
            index._load_cases(session, Case.reference.in_(refs))
        for chunk in _chunks(case_ids):
            index._load_cases(session, Case.id.in_(chunk))
        all_cases = list(index.cases)
        for chunk in _chunks(all_cases):
            if not senders:
                break
            rows = session.execute(
                select(CaseParty.case_id, CaseParty.address).where(
                    CaseParty.case_id.in_(chunk), CaseParty.address.in_(senders)
                )
            )
            index.parties.update((case_id, address) for case_id, address in rows)
        return index

    def _load_cases(self, session: Session, condition: ColumnElement[bool]) -> None:
        rows = session.execute(select(Case.id, Case.reference, Case.team).where(condition))
        for case_id, reference, team in rows:
            self.add_case(CaseInfo(case_id, reference, team))

    # -- kept current as the batch is filed ----------------------------------------------------

    def add_case(self, info: CaseInfo) -> None:
        self.cases[info.id] = info
        if info.reference:
            self.by_reference[info.reference] = info.id

    def add_message(self, message_id: str | None, case_id: int | None, direction: str) -> None:
        if message_id and case_id is not None:
            self.by_message_id[message_id].append((case_id, direction))

    def add_party(self, case_id: int, address: str) -> None:
        self.parties.add((case_id, canonical_address(address)))

    # -- lookups ------------------------------------------------------------------------------

    def is_party(self, case_id: int, sender: str | None) -> bool:
        return sender is not None and (case_id, canonical_address(sender)) in self.parties


def decide(mail: ParsedMail, index: ThreadIndex, *, team: str, secret: str) -> Decision:
    """Apply the rules of the module docstring to one parsed message."""
    verified = sender_proof(mail, secret=secret) is not None
    decision = _route(mail, index, team=team, secret=secret)
    if decision.as_party and not verified:
        # A party's address alone: evidence, never the party speaking.
        flag = f"{decision.flag}; {NOT_VERIFIED}" if decision.flag else NOT_VERIFIED
        return replace(decision, flag=flag)
    return replace(decision, verified=verified)


def _route(mail: ParsedMail, index: ThreadIndex, *, team: str, secret: str) -> Decision:
    if mail.automatic.bounce:
        bounced = _bounce_case(mail, index, secret)
        if bounced is not None:
            return _within_team(bounced, index, team, via="bounce", reason="is a bounce of")
    trusted = mail.sender if mail.auth_results.get("dmarc") != "fail" else None

    for mid in mail.thread_ids:
        signed = _signed_case(mid, trusted, secret)
        if signed is not None and signed in index.cases:
            return _within_team(signed, index, team, via="signed-id", reason="answers our mail on")

    for ref in references_in(mail.subject):
        case_id = index.by_reference.get(ref)
        if case_id is None:
            continue
        if not index.is_party(case_id, trusted):
            return Decision(
                linked_case_id=case_id, flag=f"quotes {ref} but the sender is not a party"
            )
        return _within_team(case_id, index, team, via="reference", reason="quotes", party=True)

    linked: int | None = None
    for mid in mail.thread_ids:
        for case_id, _direction in index.by_message_id.get(mid, ()):
            if index.is_party(case_id, trusted):
                return _within_team(
                    case_id, index, team, via="headers", reason="replies on", party=True
                )
            linked = linked if linked is not None else case_id
    if linked is not None:
        ref = _ref(index, linked)
        return Decision(
            linked_case_id=linked, flag=f"replies to mail on {ref} but the sender is not a party"
        )
    return Decision()


def _within_team(
    case_id: int, index: ThreadIndex, team: str, *, via: str, reason: str, party: bool = False
) -> Decision:
    info = index.cases.get(case_id)
    if info is None or info.team != team:
        return Decision(
            linked_case_id=case_id,
            flag=f"{reason} {_ref(index, case_id)}, which is another team's case",
            as_party=party,
        )
    return Decision(case_id=case_id, via=via, as_party=party)


def _ref(index: ThreadIndex, case_id: int) -> str:
    info = index.cases.get(case_id)
    return (info.reference if info else None) or f"case #{case_id}"


def _signed_case(message_id: str, sender: str | None, secret: str) -> int | None:
    if sender is None or parse_message_id(message_id) is None:
        return None
    return verify_message_id(message_id, secret=secret, recipient=sender)


def _bounced_ids(mail: ParsedMail) -> list[str]:
    return list(mail.automatic.bounced_message_ids) if mail.automatic.bounce else []


def _bounce_case(mail: ParsedMail, index: ThreadIndex, secret: str) -> int | None:
    """The case whose outbound mail bounced: our rows by Message-ID, or a valid signature."""
    for mid in [*_bounced_ids(mail), *mail.thread_ids]:
        for case_id, direction in index.by_message_id.get(mid, ()):
            if direction == Direction.OUTBOUND:
                return case_id
        for recipient in mail.automatic.bounced_recipients:
            case_id = _signed_case(mid, recipient, secret)
            if case_id is not None and case_id in index.cases:
                return case_id
    return None


def _chunks(values: Iterable[T]) -> Iterable[list[T]]:
    items = list(values)
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]
