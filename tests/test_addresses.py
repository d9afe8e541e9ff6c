"""The one canonical-address function (portal.addresses), at its boundaries.

Issue 10, section 6: 9 of 28 spellings of a locked-out reporter's address escaped the
lockout. Every spelling below must fold to the same canonical address, or, for look-alike
domains, be recognised as imitating it. Section 2: internationalised addresses (RFC 6530-6532)
must be accepted and keep a form that can be sent.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.addresses import (
    LARGE_PROVIDERS,
    canonical_address,
    canonical_domain,
    imitated_domain,
    lookalike_key,
    looks_like,
    mail_address,
    needs_smtputf8,
    normalize_address,
    skeleton,
    strip_invisible,
)
from portal.services.abuse import LockoutScreen

JANE = "janedoe@gmail.com"

# Spellings that are the same mailbox as jane.doe@gmail.com. The ones marked "escaped" got a
# locked-out reporter's mail into the queue before this issue.
SAME_MAILBOX = [
    "jane.doe@gmail.com",
    "Jane.Doe@GMAIL.COM",
    "janedoe@gmail.com",
    "janedoe+appeal@gmail.com",
    "jane.doe+x+y@gmail.com",
    "j.a.n.e.d.o.e@googlemail.com",
    "JANEDOE@GoogleMail.com",
    '"jane.doe"@gmail.com',
    "  jane.doe@gmail.com  ",
    "<jane.doe@gmail.com>",
    "jane.doe@gmail.com.",  # escaped: trailing dot
    "jane.doe@gmail.com\u3002",  # escaped: ideographic full stop, a dot under UTS-46
    "jane..doe@gmail.com",  # escaped: two dots
    ".jane.doe@gmail.com",  # escaped: a leading dot
    "jane.doe.@gmail.com",
    "jane\u200b.doe@gmail.com",  # escaped: zero-width space
    "\u200ejane.doe@gmail.com",  # left-to-right mark
    "jane.doe\u202e@gmail.com",  # right-to-left override
    "jane\u2060doe@gmail.com",  # word joiner
    "jane.doe@gma\u00adil.com",  # soft hyphen in the domain
    "jane.doe@gmail.com\ufeff",  # byte order mark
    "=?utf-8?q?jane.doe?=@gmail.com",  # escaped: RFC 2047 encoded-word local part
    "=?UTF-8?B?amFuZS5kb2U=?=@gmail.com",
    "\uff2a\uff21\uff2e\uff25\uff0e\uff24\uff2f\uff25@\uff47\uff4d\uff41\uff49\uff4c.com",
]

# Other domains that look like gmail.com (UTS #39 skeletons): not the same mailbox, but mail
# from them imitates it.
LOOKALIKES = [
    "jane.doe@gma\u0131l.com",  # escaped: dotless i
    "JANE.DOE@GMA\u0130L.COM",  # escaped: capital I with dot above
    "janedoe@xn--gmil-6na.com",  # escaped: gmáil.com in ASCII form
    "jane.doe@gm\u0430il.com",  # Cyrillic a
    "jane.doe@grnail.com",  # r n for m
    "jane.doe@googlemai1.com",  # digit one for l
]


@pytest.mark.parametrize("spelling", SAME_MAILBOX)
def test_every_spelling_of_one_mailbox_folds_to_one_canonical_address(spelling: str) -> None:
    assert canonical_address(spelling) == JANE


@pytest.mark.parametrize("spelling", LOOKALIKES)
def test_lookalike_domains_are_recognised_not_folded(spelling: str) -> None:
    canonical = canonical_address(spelling)
    assert canonical != JANE  # another domain: another mailbox, perhaps another person
    assert lookalike_key(spelling) == lookalike_key(JANE)
    assert imitated_domain(canonical.rpartition("@")[2]) in {"gmail.com", "googlemail.com"}


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("Jane.Doe+tag@Example.ORG", "jane.doe@example.org"),  # dots matter outside Gmail
        ("josé@example.com", "josé@example.com"),
        ("jose\u0301@example.com", "josé@example.com"),  # NFD spelling of the same
        ("JOSÉ@EXAMPLE.COM", "josé@example.com"),
        ("用户@例子.广告", "用户@例子.广告"),
        ("jose@exämple.com", "jose@exämple.com"),
        ("jose@xn--exmple-cua.com", "jose@exämple.com"),  # the A-label of the same domain
        ("x@xn--bcher-kva.example", "x@bücher.example"),
        ("x@BÜCHER.example", "x@bücher.example"),
        ("مريم@مثال.إختبار", "مريم@مثال.إختبار"),
        ("\u200fשרה@example.co.il", "שרה@example.co.il"),  # right-to-left mark dropped
        ("  Not An Address  ", "not an address"),
        ("", ""),
    ],
)
def test_canonical_address(address: str, expected: str) -> None:
    assert canonical_address(address) == expected


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("Example.ORG.", "example.org"),
        ("xn--bcher-kva.example", "bücher.example"),
        ("例子。广告", "例子.广告"),
        ("ＥＸＡＭＰＬＥ.org", "example.org"),
        ("exa_mple.org", "exa_mple.org"),  # not a valid host name: still folded, never refused
    ],
)
def test_canonical_domain(domain: str, expected: str) -> None:
    assert canonical_domain(domain) == expected


@pytest.mark.parametrize(
    ("address", "sendable", "smtputf8"),
    [
        ("jane@example.org", "jane@example.org", False),
        ("jose@exämple.com", "jose@xn--exmple-cua.com", False),
        ("x@bücher.example", "x@xn--bcher-kva.example", False),
        ("x@xn--bcher-kva.example", "x@xn--bcher-kva.example", False),
        ("josé@example.com", "josé@example.com", True),
        ("用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v", True),
    ],
)
def test_mail_address_puts_the_domain_in_ascii_and_keeps_the_local_part(
    address: str, sendable: str, smtputf8: bool
) -> None:
    """What goes into the envelope: only an internationalised local part needs SMTPUTF8."""
    assert mail_address(address) == sendable
    assert needs_smtputf8(address) is smtputf8


@pytest.mark.parametrize(
    ("typed", "normalized"),
    [
        ("josé@example.com", "josé@example.com"),
        ("用户@例子.广告", "用户@例子.广告"),
        ("jose@exämple.com", "jose@exämple.com"),
        ("x@xn--bcher-kva.example", "x@bücher.example"),
        ("jane\u200b.doe@gmail.com", "jane.doe@gmail.com"),  # invisible characters dropped
        ("\u202bمريم@مثال.إختبار\u202c", "مريم@مثال.إختبار"),
    ],
)
def test_normalize_address_accepts_internationalised_addresses(typed: str, normalized: str) -> None:
    assert normalize_address(typed) == normalized


def test_strip_invisible_drops_zero_width_and_bidi_controls_only() -> None:
    assert strip_invisible("a\u200bb\u200cc\u200dd\u200ee\u200ff\u202ag\u2066h\u2069i\ufeff") == (
        "abcdefghi"
    )
    assert strip_invisible("مرحبا שלום é") == "مرحبا שלום é"


def test_skeletons_see_through_confusable_characters() -> None:
    assert skeleton("gm\u0430il.com") == skeleton("gmail.com")  # Cyrillic a
    assert skeleton("paypa1.com") == skeleton("paypal.com")
    assert skeleton("example.org") != skeleton("examples.org")


def test_large_providers_are_not_lookalikes_of_each_other() -> None:
    for domain in LARGE_PROVIDERS:
        assert imitated_domain(domain) is None, domain


@pytest.mark.parametrize(
    ("address", "other", "imitates"),
    [
        ("j\u0430ne.doe@gmail.com", JANE, True),  # a Cyrillic a: no Gmail address has one
        ("jane.doe@gma\u0131l.com", JANE, True),  # any local part at a look-alike domain
        ("anna.rn@gmail.com", "anna.m@gmail.com", False),  # two Gmail users, both in ASCII
        ("jane.doe1@example.org", "jane.doel@example.org", False),
        ("jane.doe1@examp1e.org", "jane.doe1@example.org", True),
    ],
)
def test_looks_like(address: str, other: str, imitates: bool) -> None:
    assert looks_like(address, other) is imitates


def test_imitated_domain_of_a_protected_domain() -> None:
    assert imitated_domain("ex\u0430mple.org", ["example.org"]) == "example.org"
    assert imitated_domain("example.org", ["example.org"]) is None  # itself is no look-alike
    assert imitated_domain("example.net", ["example.org"]) is None


# -- properties ------------------------------------------------------------------------------

_INVISIBLE = st.sampled_from(["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff"])
_LOCAL = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789._-éüßçمرحباשלום用户"),
    min_size=1,
    max_size=20,
).filter(lambda s: any(ch not in "._-" for ch in s))
_LABEL = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789äöüéمثال例子"),
    min_size=1,
    max_size=12,
)
_DOMAIN = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(_LABEL, min_size=1, max_size=3),
    st.sampled_from(["org", "com", "example", "广告", "إختبار"]),
)
_ADDRESS = st.builds(lambda local, domain: f"{local}@{domain}", _LOCAL, _DOMAIN)


@given(_ADDRESS)
def test_canonical_is_idempotent(address: str) -> None:
    once = canonical_address(address)
    assert canonical_address(once) == once


@given(_ADDRESS, _INVISIBLE, st.integers(min_value=0, max_value=60))
def test_invisible_characters_never_change_the_canonical_address(
    address: str, invisible: str, position: int
) -> None:
    position %= len(address) + 1
    spelled = address[:position] + invisible + address[position:]
    assert canonical_address(spelled) == canonical_address(address)


@given(_ADDRESS)
def test_case_and_a_trailing_dot_never_change_the_canonical_address(address: str) -> None:
    assert canonical_address(address.upper() + ".") == canonical_address(address)


@given(_ADDRESS)
def test_ascii_and_unicode_domains_fold_together(address: str) -> None:
    local, _, domain = address.rpartition("@")
    ascii_form = mail_address(address)
    if ascii_form.rpartition("@")[2] != domain:
        assert canonical_address(ascii_form) == canonical_address(address)
    assert lookalike_key(address) == lookalike_key(canonical_address(address))


# -- screening senders against the lockouts in force (pure: no database needed) --------------


@pytest.mark.parametrize(
    ("sender", "lockout_id", "flag"),
    [
        ("Jane.Doe+x@googlemail.com.", 1, None),
        ("jane.doe@gma\u0131l.com", 1, "gma\u0131l.com looks like gmail.com"),
        ("j\u0430ne.doe@gmail.com", 1, "looks like a locked-out reporter's"),
        ("anna.rn@gmail.com", None, None),  # another Gmail user, not anna.m
        ("bob@gma\u0131l.com", None, "gma\u0131l.com looks like gmail.com"),
        ("bob@ex\u0430mple.org", None, "looks like the domain of a locked-out reporter"),
        ("bob@example.org", None, None),
    ],
)
def test_lockout_screen(sender: str, lockout_id: int | None, flag: str | None) -> None:
    screen = LockoutScreen(
        [(1, "janedoe@gmail.com"), (2, "anna.m@gmail.com"), (3, "x@example.org")]
    )
    screening = screen.screen(sender)
    assert screening.lockout_id == lockout_id
    if flag is None:
        assert screening.lookalike is None
    else:
        assert flag in (screening.lookalike or "")
        assert "example.org" not in (screening.lookalike or "")  # a reporter's domain, unnamed
    assert screening.quarantine == (lockout_id is not None or flag is not None)
