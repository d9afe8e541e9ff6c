"""What proves that a mail's From wrote it. Pure: the mail as parsed, and our signing secret.

Anyone can put anyone's address in From. Two things prove it, and nothing else:

* **DMARC passed at our server for the From's domain**: the verdict of our own receiving
  server (``mailbridge.authresults``, trusted by its authserv-id), naming that domain in
  ``header.from``. A pass for another domain proves nothing about this From.
* **A reply citing a Message-ID we signed for that address** (``portal.message_ids``): only
  someone who received our mail at that address has it. (It travels on in the References of
  the thread, so a person the party forwards our mail to could use it too; that is the
  party's choice, as with any mail they forward.)

A From that failed DMARC at our server proves nothing, whatever it cites.

Mail without proof is still filed (it is evidence), but no automatic step acts on it as the
person it names: see ``mailbridge.threads`` and ``portal.services.appeals``.
"""

from __future__ import annotations

from enum import StrEnum

import idna

from mailbridge.parse import ParsedMail
from portal.message_ids import parse_message_id, verify_message_id


class Proof(StrEnum):
    DMARC = "dmarc"
    REPLY = "reply"


def sender_proof(mail: ParsedMail, *, secret: str) -> Proof | None:
    """Why we may believe ``mail.sender`` wrote ``mail``, or None when nothing says so."""
    sender = mail.sender
    if not sender or "@" not in sender:
        return None
    dmarc = mail.auth_results.get("dmarc")
    if dmarc == "fail":
        return None
    if dmarc == "pass" and mail.dmarc_from and same_domain(mail.dmarc_from, _domain(sender)):
        return Proof.DMARC
    for message_id in mail.thread_ids:
        if parse_message_id(message_id) is None:
            continue
        if verify_message_id(message_id, secret=secret, recipient=sender) is not None:
            return Proof.REPLY
    return None


def _domain(address: str) -> str:
    return address.rpartition("@")[2]


def same_domain(first: str, second: str) -> bool:
    """``Exämple.org.`` and ``xn--exmple-cua.org`` are one domain (IDNA 2008, UTS 46)."""
    return _domain_key(first) == _domain_key(second)


def _domain_key(domain: str) -> str:
    cleaned = domain.strip().rstrip(".").lower()
    try:
        return idna.encode(cleaned, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return cleaned
