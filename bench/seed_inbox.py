"""Seed a SQLite database for the staff inbox benchmark (issue 4).

Builds the schema with the real Alembic migrations, then bulk-inserts with SQLAlchemy Core
(``insert()`` executemany, chunks of 10,000): 30,000 reporters, 100,000 cases with their
requester party and a hash-chained audit trail, and 1,000,000 messages. The migrations' FTS5
triggers index every message as it is inserted, exactly as in production; nothing is skipped
and nothing is rebuilt afterwards.

Messages are generated in time order across all cases (as mail really arrives), so that one
case's timeline is spread over the table the way it would be after three years of use. Text
is word salad drawn with a Zipf distribution from a vocabulary of a few thousand English words
(plus some Arabic and Cyrillic), with URLs, diff numbers, usernames and case references, so
that the full-text index has a realistic number of terms and posting-list lengths.

One worker process generates the rows while this one inserts them (the machine has 2 cores).
The same ``--seed`` always yields the same data.

    .venv/bin/python -m bench.seed_inbox [PATH] [--cases N] [--messages N] [--seed N]

Writes PATH (default ``bench/results/inbox.sqlite3``) and ``PATH.json`` beside it with the
staff logins, the seeding time per phase and the database size, which bench_inbox reads.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import sys
import time
import zlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

import flask_migrate
from sqlalchemy import Connection, insert, text

from portal import create_app
from portal.addresses import canonical_address
from portal.extensions import db
from portal.models import AuditEvent, Case, CaseParty, Message, Reporter
from portal.models.case import NO_DUE_DATE
from portal.policy.actions import (
    OPEN_STATUSES,
    RULES,
    ActionType,
    CaseKind,
    CaseStatus,
    Priority,
    due_at,
)
from portal.policy.references import format_reference
from portal.policy.routing import Team
from portal.services import staff as staff_service
from portal.services.audit import _digest as audit_digest
from portal.services.audit import chain_key

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATH = ROOT / "bench" / "results" / "inbox.sqlite3"
CHUNK = 10_000
# Rows per transaction: a commit every 100,000 messages keeps the WAL file bounded.
CHUNKS_PER_COMMIT = 10
STAFF_PASSWORD = "bench-inbox correct horse battery"  # noqa: S105  (benchmark data only)
SECRET_KEY = "bench-inbox-secret"  # noqa: S105
# Fixed "now", so the same seed gives the same data whatever day it runs; bench_inbox passes
# the real clock to the app, so the newest cases are a few days old by then: still realistic.
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HISTORY = timedelta(days=3 * 365)

# (email, roles, name): the first one is the account bench_inbox signs in with.
STAFF = (
    ("tess.admin@foundation.example", ["trust_safety", "admin"], "Tess Admin"),
    ("sam.ts@foundation.example", ["trust_safety"], "Sam Safety"),
    ("lee.legal@foundation.example", ["legal"], "Lee Legal"),
    ("ari.appeals@foundation.example", ["appeals_reviewer"], "Ari Appeals"),
    ("dana.admin@foundation.example", ["admin"], "Dana Admin"),
)

# --- vocabulary ---------------------------------------------------------------------------


def _split(words: str) -> list[str]:
    return words.split()


# Roughly in order of frequency: the Zipf weights below make the first words the commonest.
FUNCTION_WORDS = _split(
    """
the of and to a in is that for it was on with as be by this not are or have from at but an
they which you we his her he she has had were been their there would will can all if my me our
your them what so about who when no one more also any other than some into only could these
because after then should may how did do very just out up like over before even while those
where most such much many again still against without between under since through during each
both own same few here why being does done said please thank thanks dear regards hello
sincerely i am its
"""
)

DOMAIN_WORDS = _split(
    """
account user wiki page edit edits article talk admin administrator administrators steward
stewards checkuser oversight block blocked ban banned global event events conference meetup
harassment harassing abuse abusive threat threats threatening doxxing personal information
private address phone photo photos image images copyright infringement takedown notice counter
dmca license licensed commons upload uploaded author owner rights removal remove removed
protection protected range ip addresses proxy sockpuppet sockpuppets vandalism vandal spam
community communities project projects wikipedia wikimedia foundation trust safety team legal
policy policies terms conduct universal code violation violations report reported reporting
request requests requested evidence link links diff diffs screenshot screenshots archive
archived discussion discussions noticeboard arbitration committee appeal appeals decision
decisions review reviewed warning warnings warned minor minors child children safeguarding
urgent emergency police law enforcement court order lawyer attorney counsel claim claims content
material text book music video film website source sources citation citations reference
references editor editors volunteer volunteers functionary functionaries bureaucrat sysop
rollback revert reverted reverting deleted deletion restore restored suppress suppressed
revision revisions history log logs message messages email mail reply replied response respond
case cases ticket number days weeks months year years today yesterday week month time date
deadline ago behaviour behavior repeated pattern persistent severe serious concern concerns
issue issues problem problems situation matter incident incidents offline online social media
forum chat channel group groups members member moderator moderators organiser organisers
venue participant participants attendee attendees scholarship grant affiliate chapter
username usernames identity impersonation impersonating stalking hounding outing insults
insulting slurs racist sexist homophobic transphobic hate speech intimidation retaliation
blackmail extortion coordinated campaign brigading canvassing paid editing undisclosed
conflict interest promotional advertising company brand trademark logo infringing
photograph photographer painting artwork lyrics translation translated publisher permission
permissions ticket otrs vrt consent release waiver attribution violated unauthorised copied
copying plagiarism mirror scraped duplicate original creator creators unblock unban lifted
reconsider reconsideration statement apology apologise explain explanation context
misunderstanding mistake unfair unjust innocent accused accusation allegations alleged
investigation investigate investigated confidential confidentiality anonymous pseudonym
"""
)

NOUNS = _split(
    """
people person way thing things world life hand part place eye woman man child government
company system program question work night point home water room mother area money story fact
lot right study word business side kind head house service friend father power hour game line
end member law car city name president team minute idea kid body information back parent face
others level office door health art war history party result change morning reason research
girl guy moment air teacher force education foot boy age policy process music market sense
nation plan college interest death experience effect class control care field development role
effort rate heart drug show leader light voice wife police mind price report decision son view
relationship town road arm difference value building action model season society tax director
position player record paper space ground form event official matter center couple site
project activity star table need court oil situation cost industry figure street image phone
data picture practice piece land product doctor wall patient worker news test movie north love
support technology step baby computer type attention film tree source organization hair window
evidence population truth song sun hospital floor animal letter tomorrow energy bill beginning
term article bank security answer order purpose interview character rest patient brother
nature trial bed memory sister staff skill task sort hope theory network guess flight job
choice chance plant detail design pressure medium mouth region loss agreement amount trouble
media campaign economy university response reality firm approach quality capital property
career sea dog training station audience strategy evening environment conference speech
subject knowledge box scene opportunity culture challenge performance benefit statement
impact resource agency contract fire range resident method fear gun sign summer account
address influence choice cell board relationship direction standard foot decade deal
attempt authority page lawyer list writer access interview behavior manager unit hit
generation weapon glass feature protection treatment series disease argument safety weight
individual trip blood camp contact effect army vote difficulty religion shot goal ability
discussion husband meeting violence window message version dinner pain surface candidate
cancer element bag travel drive commission analysis wind edge crime structure credit
estimate painting rock chair newspaper science concern economy collection thought operation
card stage minister participant election sales share budget conversation victim official
debate league income sex crowd plane tour student stock peace emotion mission spring
investment future track speaker west fight effort employee east lady opinion corner
solution strength kitchen balance master truck baseball sector bottom note recognition
category garden youth teaching shoulder file gas neighborhood variety radio daughter shape
manner assessment key coach injury rule grade past spirit plate layer clothes cloud path
expert visit novel observation gift partner pattern journey object code link chicken
accountant advice airline album ambulance anniversary apartment appetite application appointment
architect architecture arrival assistant atmosphere auction aunt bakery balloon band basket
battery beach bean bear beard bedroom bell bicycle bird birthday blanket boat bone bonus border
bottle bowl brain branch bread breakfast brick bride bucket bulb bus butter button cabin cable
cake calendar camera canal candle cap captain carpet cart castle cat ceiling cellar cereal
champion channel chapter cheese chef chemistry chest chocolate cinema circle citizen clerk
client climate clock coast coat coffee coin colleague column comment committee competition
complaint computer concept concert confusion connection consequence constitution consultant
container contest contribution cook copy cottage cousin cow craft credit criticism crop cup
curtain customer cycle database deadline debt definition delivery demand department deposit
desk dictionary diet dinner disaster discount dish display distance district document dollar
drawer dream dress driver dust duty eagle earth editor egg election elevator emergency engine
engineer entrance envelope equipment error essay estate exam example exchange exhibition exit
expense explanation factory failure farm farmer fashion feedback fence festival fiction
finger fish flag flat flavor flower folder football forest fortune frame freedom fridge fruit
fuel function funeral furniture gallery gap gate gear ghost girlfriend glove goat gold golf
grain grandmother grass guest guide guitar habit hall hammer harbor hat headline height
helicopter highway hobby holiday homework honey horse host hotel household housing hunt
illness imagination income inflation ingredient insect inspector instance institution
instruction instrument insurance internet invitation iron jacket joke judge juice jury kid
king knife ladder lake lamp landscape laptop lawn lecture leg lemon lesson library licence lift
lion lip liquid literature loan lock lunch machine magazine mail map marriage mask meal meat
medicine menu metal meter midnight milk mirror mistake mixture mobile monitor moon motor
mountain mouse movement mud museum nail neck needle neighbour nephew nerve nest noise nose
nurse ocean oven owner package pain pair palace pan panel parking passenger passport pasta
patience payment peak pen pencil pension pepper permit pet philosophy photograph physics piano
pie pig pilot pipe pitch pizza planet plastic platform pleasure pocket poem poet poetry
portrait post pot potato poverty powder prayer presentation priest prince princess printer
prison prize profession professor profile profit promise proof prospect protest pub queen
rabbit race rain recipe regulation relative religion rent replacement reputation requirement
restaurant revenue reward rice ring river robot roof root rope route routine sail salad salary
salt sample sand sandwich satellite sauce scale schedule scheme scholar scientist screen
script sculpture secretary seed servant session shadow sheep shelf shell shelter ship shirt
shoe shop shower signal silver singer sink skin sky sleep slice smell smile snake snow soap
sock sofa soil soldier soup speaker spoon sport square stadium stair stamp steak steel stomach
stone storm stranger stream student studio suit suitcase sugar supermarket supplier surgeon
survey sweater symbol tail tank tape target taste teacher temperature tenant tennis tent
territory theatre thread throat thumb ticket tie tiger timber toe toilet tomato tone tongue
tool tooth topic towel tower toy trade tradition traffic train transport trap treasure trend
tribe truck tube tunnel uncle uniform union vacation valley van vegetable vehicle village
violin visitor volume wage waiter wallet warehouse weather wedding weekend wheel whistle wine
wing winner winter witness wolf wood wool worker workshop wound yard yesterday zone
"""
)

VERBS = _split(
    """
ask say go get make know think take see come want look use find give tell call try feel
become leave put mean keep let begin seem help talk turn start show hear play run move live
believe hold bring happen write provide sit stand lose pay meet include continue set learn
lead understand watch follow stop create speak read allow add spend grow open walk win offer
remember love consider appear buy wait serve die send expect build stay fall cut reach kill
remain suggest raise pass sell require decide return explain hope develop carry break receive
agree support hit produce eat cover catch draw choose cause point listen realize place close
involve increase accept identify prepare describe reduce establish protect prove argue
indicate claim apply refuse avoid admit assume compare realise ensure publish contain
recognise wonder announce obtain attack mention handle confirm threaten delete block ignore
insult harass stalk warn review monitor investigate report respond escalate forward
"""
)

OTHER_WORDS = _split(
    """
good new first last long great little own other old right big high different small large
next early young important few public bad same able late hard major better economic strong
possible whole free military true federal international full special easy clear recent
certain personal open red difficult available likely short single medical current wrong
private past foreign fine common poor natural significant similar hot dead central happy
serious ready simple left physical general environmental financial blue democratic dark
various entire close legal religious cold final main green nice huge popular traditional
cultural wide particular top far deep individual specific basic sure heavy human local
obvious unusual aggressive hostile rude offensive inappropriate unacceptable disruptive
malicious deliberate intentional repeated ongoing previous former future temporary
permanent indefinite partial complete formal informal public sensitive safe unsafe afraid
worried scared upset angry frustrated disappointed grateful sorry concerned anxious
quickly finally really probably actually already certainly clearly simply recently nearly
directly immediately eventually exactly usually apparently seriously unfortunately
obviously honestly personally currently previously repeatedly publicly privately online
below above across behind beyond toward within upon among around along despite towards
although though unless whether whereas however therefore moreover furthermore meanwhile
otherwise instead indeed perhaps maybe almost enough quite rather somewhat
january february march april may june july august september october november december
monday tuesday wednesday thursday friday saturday sunday morning afternoon evening
village island river mountain valley bridge harbour castle tower temple church museum
library school garden market square station airport border coast desert forest lake
english german french spanish arabic russian hebrew italian dutch polish turkish persian
chinese japanese korean hindi portuguese swedish norwegian danish finnish czech greek
"""
)

# Inflected forms bring the vocabulary to a few thousand words, as in real mail.
IRREGULAR = {
    "say": "said saying says",
    "go": "went gone going goes",
    "get": "got getting gets",
    "make": "made making makes",
    "know": "knew known knowing knows",
    "think": "thought thinking thinks",
    "take": "took taken taking takes",
    "see": "saw seen seeing sees",
    "come": "came coming comes",
    "give": "gave given giving gives",
    "tell": "told telling tells",
    "feel": "felt feeling feels",
    "become": "became becoming becomes",
    "leave": "left leaving leaves",
    "put": "putting puts",
    "mean": "meant meaning means",
    "keep": "kept keeping keeps",
    "let": "letting lets",
    "begin": "began begun beginning begins",
    "hear": "heard hearing hears",
    "run": "ran running runs",
    "hold": "held holding holds",
    "bring": "brought bringing brings",
    "write": "wrote written writing writes",
    "sit": "sat sitting sits",
    "stand": "stood standing stands",
    "lose": "lost losing loses",
    "pay": "paid paying pays",
    "meet": "met meeting meets",
    "set": "setting sets",
    "lead": "led leading leads",
    "understand": "understood understanding understands",
    "read": "reading reads",
    "spend": "spent spending spends",
    "grow": "grew grown growing grows",
    "win": "won winning wins",
    "buy": "bought buying buys",
    "fall": "fell fallen falling falls",
    "cut": "cutting cuts",
    "die": "died dying dies",
    "build": "built building builds",
    "send": "sent sending sends",
    "speak": "spoke spoken speaking speaks",
    "break": "broke broken breaking breaks",
    "catch": "caught catching catches",
    "draw": "drew drawn drawing draws",
    "choose": "chose chosen choosing chooses",
    "eat": "ate eaten eating eats",
    "sell": "sold selling sells",
    "hit": "hitting hits",
    "find": "found finding finds",
    "stop": "stopped stopping stops",
    "admit": "admitted admitting admits",
    "refer": "referred referring refers",
}
UNCOUNTABLE = set(
    _split(
        """
people woman man child foot information evidence news data media music money research
education health safety advice equipment furniture homework weather traffic luggage knowledge
police staff sheep fish mouse tooth
"""
    )
)


def _plural(noun: str) -> str:
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _verb_forms(verb: str) -> list[str]:
    if verb in IRREGULAR:
        return IRREGULAR[verb].split()
    if verb.endswith("e"):
        return [verb + "d", verb[:-1] + "ing", verb + "s"]
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return [verb[:-1] + "ied", verb + "ing", verb[:-1] + "ies"]
    third = verb + "es" if verb.endswith(("s", "x", "ch", "sh")) else verb + "s"
    return [verb + "ed", verb + "ing", third]


GENERAL_WORDS = (
    NOUNS
    + VERBS
    + OTHER_WORDS
    + [_plural(noun) for noun in NOUNS if noun not in UNCOUNTABLE]
    + [form for verb in VERBS for form in _verb_forms(verb)]
)

# The long tail: words most messages never use, for "rare word" searches.
RARE_WORDS = _split(
    """
quarantine bilingual transliteration orthography etymology lexicon heraldry genealogy
numismatics philately ornithology entomology mycology speleology glaciology volcanology
seismology cartography calligraphy typography lithography marquetry embroidery tapestry
porcelain terracotta mosaic fresco tempera gouache sepia daguerreotype cyanotype tintype
ambrotype palimpsest codex incunabula manuscript folio quarto octavo colophon marginalia
gazetteer almanac chronicle annals cartulary charter deed covenant easement escrow lien
subpoena injunction affidavit deposition tribunal magistrate bailiff notary solicitor
barrister plaintiff defendant appellant respondent amicus certiorari habeas mandamus
estoppel laches tort negligence libel slander defamation indemnity arbitration mediation
zeppelin gondola funicular monorail trolleybus catamaran schooner brigantine frigate
corvette galleon caravel dhow felucca junk sampan coracle kayak canoe pirogue outrigger
saxophone clarinet bassoon oboe piccolo flugelhorn euphonium sousaphone harpsichord
clavichord celesta glockenspiel xylophone marimba vibraphone timpani tambourine castanets
"""
)

ARABIC_WORDS = _split(
    """
في من على إلى عن مع هذا هذه التي الذي كان قد لا ما هو هي نحن أنا أنت هم كل بعد قبل بين حتى
حساب مستخدم ويكيبيديا صفحة تعديل مقالة حظر تحرش إساءة تهديد معلومات شخصية عنوان هاتف صورة
حقوق النشر إزالة حماية نطاق مجتمع مشروع مؤسسة ويكيميديا سياسة انتهاك بلاغ طلب دليل رابط نقاش
استئناف قرار مراجعة تحذير قاصر طفل عاجل شرطة قانون محكمة محامي محتوى مصدر محرر متطوع إداري
رسالة بريد رد قضية يوم أسبوع شهر سنة وقت مشكلة حادثة سلوك متكرر خطير شكرا تحية مرحبا أرجو
الرجاء المساعدة بسرعة ممكن أريد أطلب حذف إلغاء الحساب الصفحة المستخدم الإداريين المجتمع
"""
)

CYRILLIC_WORDS = _split(
    """
в и не на я что с по это он она они мы вы как а то все так его но да ты к у же за бы от
учётная запись участник википедия страница правка статья блокировка бан преследование
оскорбление угроза личная информация адрес телефон фотография авторское право удаление защита
диапазон сообщество проект фонд викимедиа правила нарушение жалоба запрос доказательство
ссылка обсуждение апелляция решение проверка предупреждение несовершеннолетний ребёнок срочно
полиция закон суд адвокат содержание источник редактор волонтёр администратор письмо почта
ответ дело день неделя месяц год время проблема инцидент поведение повторный серьёзный спасибо
здравствуйте пожалуйста помогите прошу удалить отменить быстро администраторы сообщества
"""
)

LATIN_FIRST = _split(
    """
James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard
Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony Betty Mark
Margaret Paul Sandra Steven Ashley Andrew Kimberly Kenneth Emily Joshua Donna Kevin Michelle
Lukas Anna Jonas Lea Pierre Camille Giulia Marco Sofia Mateo Lucia Pablo Ines Jan Eva Piotr
Kasia Mehmet Elif Ahmet Zeynep Kwame Amara Chidi Ngozi Raj Priya Arjun Ananya Wei Mei Hiroshi
Yuki
"""
)
LATIN_LAST = _split(
    """
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris
Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill
Flores Mueller Schmidt Schneider Fischer Weber Dubois Laurent Rossi Russo Ferrari Kowalski
Nowak Yilmaz Kaya Okafor Mensah Sharma Patel Singh Wang Li Zhang Tanaka Sato
"""
)
ARABIC_NAMES = (
    ("محمد", "أحمد", "فاطمة", "علي", "مريم", "يوسف", "نور", "عمر", "ليلى", "خالد"),
    ("الحداد", "المصري", "العلي", "الخطيب", "النجار", "الشامي", "العمر", "حسن"),
)
CYRILLIC_NAMES = (
    ("Александр", "Мария", "Дмитрий", "Анна", "Сергей", "Елена", "Иван", "Ольга", "Павел"),
    ("Иванов", "Петрова", "Смирнов", "Кузнецова", "Попов", "Соколова", "Лебедев", "Новикова"),
)
MAIL_DOMAINS = (
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "protonmail.com",
    "gmx.de",
    "web.de",
    "mail.ru",
    "yandex.ru",
    "hotmail.fr",
    "example.org",
    "lawfirm.example",
    "university.example.edu",
)
WIKIS = (
    "en.wikipedia.org",
    "de.wikipedia.org",
    "fr.wikipedia.org",
    "ar.wikipedia.org",
    "ru.wikipedia.org",
    "es.wikipedia.org",
    "commons.wikimedia.org",
    "meta.wikimedia.org",
    "www.wikidata.org",
    "en.wiktionary.org",
)
TEAM_ADDRESS = {
    Team.TRUST_SAFETY: "ca@example.org",
    Team.LEGAL: "legal@example.org",
    Team.APPEALS: "appeals@example.org",
}
TEAM_MAILBOX = {Team.TRUST_SAFETY: "ca", Team.LEGAL: "ca", Team.APPEALS: "appeals"}
UIDVALIDITY = {"ca": 1_700_000_001, "appeals": 1_700_000_002}

# Message kinds on a timeline (an int per message in the schedule).
WEB_REQUEST, MAIL_FIRST, ACK, MAIL_REPLY, STAFF_REPLY, NOTE, AUTO_REPLY, BOUNCE = range(8)
INBOUND_KINDS = (MAIL_FIRST, MAIL_REPLY, AUTO_REPLY, BOUNCE)
FOLLOW_UP_KINDS = (MAIL_REPLY, STAFF_REPLY, NOTE, AUTO_REPLY, BOUNCE)
FOLLOW_UP_WEIGHTS = (0.42, 0.33, 0.19, 0.04, 0.02)

TS_ACTIONS = (
    (ActionType.GLOBAL_BAN, 0.22),
    (ActionType.EVENT_BAN, 0.10),
    (ActionType.CHILD_PROTECTION, 0.06),
    (ActionType.CONDUCT_WARNING, 0.18),
    (ActionType.RIGHTS_REMOVAL, 0.06),
    (ActionType.PAGE_PROTECTION, 0.08),
    (ActionType.RANGE_BLOCK, 0.08),
    (None, 0.22),  # an inquiry from the ca@ mailbox, not yet classified
)
OPEN_WEIGHTS = (0.40, 0.30, 0.15, 0.15)


def zipf_cumulative(count: int, exponent: float = 1.0, offset: float = 2.7) -> list[float]:
    weights = [1.0 / (rank + offset) ** exponent for rank in range(count)]
    return list(itertools.accumulate(weights))


def _dedupe(words: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(words))


ENGLISH = _dedupe(FUNCTION_WORDS + DOMAIN_WORDS + GENERAL_WORDS)
# Function words stay at the head; the rest get a fixed but arbitrary rank.
_tail = ENGLISH[len(FUNCTION_WORDS) :]
Random(4).shuffle(_tail)
ENGLISH = ENGLISH[: len(FUNCTION_WORDS)] + _tail + _dedupe(RARE_WORDS)
ENGLISH_CUM = zipf_cumulative(len(ENGLISH))
ARABIC_CUM = zipf_cumulative(len(ARABIC_WORDS))
CYRILLIC_CUM = zipf_cumulative(len(CYRILLIC_WORDS))


# --- text ------------------------------------------------------------------------------------


class Writer:
    """Deterministic text of a given length, in English, Arabic or Russian."""

    def __init__(self, rng: Random) -> None:
        self.rng = rng

    def words(self, count: int, language: str = "en") -> list[str]:
        if language == "ar":
            return self.rng.choices(ARABIC_WORDS, cum_weights=ARABIC_CUM, k=count)
        if language == "ru":
            return self.rng.choices(CYRILLIC_WORDS, cum_weights=CYRILLIC_CUM, k=count)
        return self.rng.choices(ENGLISH, cum_weights=ENGLISH_CUM, k=count)

    def sentences(self, chars: int, language: str = "en") -> str:
        """Roughly ``chars`` characters of sentences, in paragraphs."""
        rng = self.rng
        words = self.words(max(4, chars // 6), language)
        # Some English slips into messages otherwise written in another script.
        if language != "en":
            for _ in range(len(words) // 12):
                words[rng.randrange(len(words))] = self.words(1)[0]
        out: list[str] = []
        position = 0
        while position < len(words):
            length = rng.randint(6, 22)
            sentence = words[position : position + length]
            position += length
            first = sentence[0]
            sentence[0] = first[:1].upper() + first[1:]
            out.append(" ".join(sentence) + rng.choice(".....?!"))
            if rng.random() < 0.2:
                out.append("\n\n")
            elif rng.random() < 0.08:
                out.append(" " + self.url())
        return " ".join(out).replace(" \n\n ", "\n\n")

    def url(self) -> str:
        rng = self.rng
        wiki = rng.choice(WIKIS)
        shape = rng.random()
        if shape < 0.5:
            return f"https://{wiki}/w/index.php?diff={rng.randint(900_000_000, 1_250_000_000)}"
        if shape < 0.8:
            title = "_".join(w.capitalize() for w in self.words(rng.randint(1, 3)))
            return f"https://{wiki}/wiki/{title}"
        return f"https://{wiki}/wiki/User:{self.username()}"

    def username(self) -> str:
        rng = self.rng
        return f"{rng.choice(LATIN_FIRST)}{rng.choice(ENGLISH[-400:]).capitalize()}{rng.randint(1, 9999)}"


# --- the plan: reporters, cases and the message schedule --------------------------------------


def make_reporters(count: int, rng: Random) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    start = NOW - HISTORY - timedelta(days=30)
    for number in range(1, count + 1):
        script = rng.random()
        first, last = rng.choice(LATIN_FIRST), rng.choice(LATIN_LAST)
        if script < 0.08:
            name = f"{rng.choice(ARABIC_NAMES[0])} {rng.choice(ARABIC_NAMES[1])}"
        elif script < 0.15:
            name = f"{rng.choice(CYRILLIC_NAMES[0])} {rng.choice(CYRILLIC_NAMES[1])}"
        elif script < 0.25:
            name = ""
        else:
            name = f"{first} {last}"
        local = rng.choice(
            (f"{first}.{last}", f"{first[0]}{last}", f"{last}{first}", f"{first}_{last}")
        ).lower()
        email = f"{local}{number}@{rng.choice(MAIL_DOMAINS)}"
        if rng.random() < 0.05:
            email = email.replace("@", f"+wiki{rng.randint(1, 99)}@", 1)
        canonical = canonical_address(email)
        if canonical in seen:
            continue
        seen.add(canonical)
        rows.append(
            {
                "id": number,
                "canonical_email": canonical,
                "email": email,
                "name": name or None,
                "created_at": start
                + timedelta(seconds=rng.randrange(int(HISTORY.total_seconds()))),
            }
        )
    return rows


def _summary(writer: Writer, language: str) -> str:
    return writer.sentences(writer.rng.randint(80, 400), language)


def make_cases(
    count: int, reporters: list[dict[str, Any]], staff_ids: list[int], rng: Random
) -> list[dict[str, Any]]:
    """Cases in the order they were opened (ids grow with created_at, as in production)."""
    writer = Writer(rng)
    span = int(HISTORY.total_seconds())
    created = sorted(NOW - timedelta(seconds=rng.randrange(span)) for _ in range(count))
    ts_actions, ts_weights = zip(*TS_ACTIONS, strict=True)
    decided_ts: list[int] = []
    cases: list[dict[str, Any]] = []
    for case_id, created_at in enumerate(created, start=1):
        age_days = (NOW - created_at).total_seconds() / 86400
        roll = rng.random()
        appeal_of_id = None
        kind = CaseKind.REQUEST
        if roll < 0.70:
            team = Team.TRUST_SAFETY
            action = rng.choices(ts_actions, ts_weights)[0]
        elif roll < 0.90:
            team, action = Team.LEGAL, ActionType.DMCA
            kind = rng.choices(
                (CaseKind.DMCA_NOTICE, CaseKind.DMCA_COUNTER_NOTICE, CaseKind.INQUIRY),
                (0.80, 0.08, 0.12),
            )[0]
            if kind is CaseKind.INQUIRY:
                action = None
        else:
            team = Team.APPEALS
            kind, action = CaseKind.INQUIRY, None
            if decided_ts and rng.random() < 0.65:
                appealed = rng.choice(decided_ts[-5000:])
                if cases[appealed - 1]["action"] != ActionType.CHILD_PROTECTION:
                    kind, appeal_of_id = CaseKind.APPEAL, appealed
                    action = ActionType(cases[appealed - 1]["action"])
        if action is None:
            kind = kind if kind is CaseKind.APPEAL else CaseKind.INQUIRY
        rule = RULES[action] if action else None
        if rule is not None and kind is CaseKind.REQUEST:
            kind = rule.kind
        priority = rule.priority if rule else Priority.NORMAL
        due = due_at(action, created_at) if action else None

        # Recent cases are mostly open; a backlog of old ones lingers (about 25% open in all).
        if action is ActionType.CHILD_PROTECTION:
            p_open = 0.9 if age_days < 2 else 0.02
        elif age_days < 30:
            p_open = 0.9
        elif age_days < 180:
            p_open = 0.5
        else:
            p_open = 0.187
        is_open = rng.random() < p_open
        decision = decided_at = decided_by_id = decision_details = None
        assignee_id = None
        if is_open:
            status = rng.choices(OPEN_STATUSES, OPEN_WEIGHTS)[0]
            if status is not CaseStatus.NEW and rng.random() < 0.8:
                assignee_id = rng.choice(staff_ids)
        else:
            assignee_id = rng.choice(staff_ids) if rng.random() < 0.7 else None
            closed_at = min(NOW, created_at + timedelta(hours=rng.uniform(2, 24 * 60)))
            if action is not None and rng.random() < 0.65:
                status = CaseStatus.DECIDED
                decision = rng.choice(("granted", "declined"))
                decided_at, decided_by_id = closed_at, rng.choice(staff_ids)
                decision_details = writer.sentences(rng.randint(60, 300))
                if team is Team.TRUST_SAFETY:
                    decided_ts.append(case_id)
            else:
                status = CaseStatus.CLOSED
                decided_at = closed_at  # kept aside below as the end of the timeline
        confidential = rng.random() < 0.03
        if confidential and assignee_id is None:
            assignee_id = rng.choice(staff_ids)
        reporter = reporters[rng.randrange(len(reporters))]
        language = rng.choices(("en", "ar", "ru"), (0.84, 0.08, 0.08))[0]
        urls = [writer.url() for _ in range(rng.choice((0, 1, 1, 2, 3)))]
        event_ban = action is ActionType.EVENT_BAN
        cases.append(
            {
                "id": case_id,
                "reference": format_reference(created_at.year, case_id),
                "kind": kind.value,
                "action": action.value if action else None,
                "team": team.value,
                "status": status.value,
                "priority": priority.value,
                "due_at": due,
                "queue_due_at": due or NO_DUE_DATE,  # Core bypasses the model's validator
                "requester_id": reporter["id"],
                "requester_name": reporter["name"],
                "summary": _summary(writer, language),
                "details": writer.sentences(rng.randint(100, 900), language)
                if rng.random() < 0.5
                else None,
                "evidence_urls": urls,
                "prior_attempt_urls": [writer.url()] if rng.random() < 0.4 else [],
                "no_prior_attempt_reason": None,
                "scope_location": rng.choice(("Berlin", "Nairobi", "Online"))
                if event_ban
                else None,
                "scope_project": rng.choice(("Wikimania", "WikiCon")) if event_ban else None,
                "scope_until": None,
                "decision": decision,
                "decided_at": decided_at if status is CaseStatus.DECIDED else None,
                "modified_at": None,
                "appeal_of_id": appeal_of_id,
                "linked_case_id": None,
                "confidential": confidential,
                "assignee_id": assignee_id,
                "decided_by_id": decided_by_id,
                "decision_details": decision_details,
                "created_at": created_at,
                "updated_at": decided_at or created_at,
                # Not columns: what the message generator needs to know about the case.
                "_end": decided_at or NOW,
                "_language": language,
                "_email": reporter["email"],
            }
        )
    return cases


CASE_COLUMNS = {column.key for column in Case.__table__.columns}


def message_counts(case_count: int, total: int, rng: Random) -> list[int]:
    """Messages per case: log-normal around ``total / case_count``, summing to ``total``."""
    mean = total / case_count
    sigma = 0.8
    mu = math.log(max(mean, 1.0)) - sigma * sigma / 2
    counts = [max(1, min(400, round(rng.lognormvariate(mu, sigma)))) for _ in range(case_count)]
    difference = total - sum(counts)
    while difference:
        index = rng.randrange(case_count)
        if difference > 0:
            counts[index] += 1
            difference -= 1
        elif counts[index] > 1:
            counts[index] -= 1
            difference += 1
    return counts


# The message schedule, built before the worker forks so that it inherits it for free.
SCHEDULE: dict[str, Any] = {}


def make_schedule(cases: list[dict[str, Any]], total: int, rng: Random) -> None:
    """Every message's (time, case, position, kind), sorted by time, plus each mailbox's UIDs."""
    counts = message_counts(len(cases), total, rng)
    entries: list[tuple[float, int, int, int]] = []
    kinds_by_case: list[bytes] = [b""]
    for case, count in zip(cases, counts, strict=True):
        start = case["created_at"].timestamp()
        end = max(start + 60, case["_end"].timestamp())
        first = (
            WEB_REQUEST if case["kind"] != CaseKind.INQUIRY and rng.random() < 0.7 else MAIL_FIRST
        )
        kinds = [first]
        if count > 1:
            kinds.append(ACK)
        kinds += rng.choices(FOLLOW_UP_KINDS, FOLLOW_UP_WEIGHTS, k=max(0, count - 2))
        times = [start, start + 45] + sorted(rng.uniform(start + 60, end) for _ in kinds[2:])
        for seq, (kind, moment) in enumerate(zip(kinds, times, strict=False)):
            entries.append((moment, case["id"], seq, kind))
        kinds_by_case.append(bytes(kinds))
    entries.sort()
    uids = {"ca": 0, "appeals": 0}
    uid_list: list[int] = []
    for _, case_id, _, kind in entries:
        if kind in INBOUND_KINDS:
            mailbox = TEAM_MAILBOX[Team(cases[case_id - 1]["team"])]
            uids[mailbox] += 1
            uid_list.append(uids[mailbox])
        else:
            uid_list.append(0)
    SCHEDULE.update(entries=entries, uids=uid_list, kinds=kinds_by_case, cases=cases)


def _message_id(case_id: int, seq: int, kind: int, domain: str) -> str:
    token = zlib.crc32(f"{case_id}.{seq}".encode())
    if kind in INBOUND_KINDS:
        return f"<{token:08x}.{case_id}{seq}@mail.{domain}>"
    return f"<oa.{case_id}.{seq}.{token:08x}@portal.example.org>"


def _subject(case: dict[str, Any], kind: int, writer: Writer) -> str:
    rule = RULES[ActionType(case["action"])] if case["action"] else None
    reference = case["reference"]
    if kind == WEB_REQUEST:
        return f"{rule.label if rule else 'Office action'} request"
    if kind == ACK:
        return f"We received your request [{reference}]"
    if kind == NOTE:
        return ""
    if kind == AUTO_REPLY:
        return f"Automatic reply: Re: [{reference}] {writer.rng.choice(('Out of office', 'Away'))}"
    if kind == BOUNCE:
        return "Undelivered Mail Returned to Sender"
    topic = " ".join(writer.words(writer.rng.randint(2, 7), case["_language"]))
    if kind == MAIL_FIRST:
        return topic.capitalize()
    return f"Re: [{reference}] {topic}"


def _body(case: dict[str, Any], kind: int, writer: Writer, staff: dict[str, Any]) -> str:
    rng = writer.rng
    language = case["_language"]
    if kind == WEB_REQUEST:
        lines = [f"Request: {case['action'] or case['kind']}", "", "Summary:", case["summary"]]
        if case["evidence_urls"]:
            lines += ["", "Evidence:", *case["evidence_urls"]]
        if case["details"]:
            lines += ["", "Further details:", case["details"]]
        return "\n".join(lines) + "\n"
    if kind == ACK:
        return (
            f"Thank you. We received your request and gave it the reference {case['reference']}. "
            "Please keep the reference in the subject when you write to us about it.\n\n"
            + writer.sentences(rng.randint(250, 600))
        )
    if kind == NOTE:
        return writer.sentences(rng.randint(80, 600))
    if kind == AUTO_REPLY:
        return writer.sentences(rng.randint(150, 400), language)
    if kind == BOUNCE:
        return (
            "This is the mail system at host mx1.example.org.\n\nI'm sorry to have to inform you "
            f"that your message could not be delivered to {case['_email']}.\n\n"
            + writer.sentences(rng.randint(200, 500))
        )
    body = writer.sentences(rng.randint(300, 1500), "en" if kind == STAFF_REPLY else language)
    if kind == STAFF_REPLY:
        return f"Dear {case['requester_name'] or 'requester'},\n\n{body}\n\n{staff['name']}\nTrust and Safety"
    if kind == MAIL_REPLY and rng.random() < 0.5:
        quoted = "\n".join("> " + line for line in writer.sentences(200).splitlines())
        body += f"\n\nOn {case['created_at']:%a, %d %b %Y}, Trust and Safety wrote:\n{quoted}"
    if rng.random() < 0.15:
        body += f"\n\nSee also User:{writer.username()}"
    return body


def message_rows(job: tuple[int, int, int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Rows ``start`` to ``stop`` of the schedule: runs in the worker process."""
    seed, start, stop, staff = job
    rng = Random(seed * 1_000_003 + start)
    writer = Writer(rng)
    entries, uids = SCHEDULE["entries"], SCHEDULE["uids"]
    kinds_by_case, cases = SCHEDULE["kinds"], SCHEDULE["cases"]
    rows: list[dict[str, Any]] = []
    for index in range(start, stop):
        moment, case_id, seq, kind = entries[index]
        case = cases[case_id - 1]
        team = Team(case["team"])
        email = case["_email"]
        domain = email.rsplit("@", 1)[1]
        sent_at = datetime.fromtimestamp(moment, UTC)
        member = staff[rng.randrange(len(staff))]
        inbound = kind in INBOUND_KINDS
        mail = kind not in (WEB_REQUEST, NOTE)
        message_id = _message_id(case_id, seq, kind, domain) if mail else None
        in_reply_to = None
        if mail and seq > 0:
            previous = kinds_by_case[case_id][seq - 1]
            in_reply_to = _message_id(case_id, seq - 1, previous, domain)
        mailbox = TEAM_MAILBOX[team] if inbound else None
        if kind == NOTE:
            sender, sender_name = member["email"], member["name"]
        elif kind in (ACK, STAFF_REPLY):
            sender, sender_name = TEAM_ADDRESS[team], None
        elif kind == BOUNCE:
            sender, sender_name = "MAILER-DAEMON@mx1.example.org", "Mail Delivery System"
        else:
            sender, sender_name = email, case["requester_name"]
        subject = _subject(case, kind, writer)
        body = _body(case, kind, writer, member)
        digest = hashlib.sha256(f"{case_id}.{seq}".encode()).hexdigest() if inbound else None
        rows.append(
            {
                "case_id": case_id,
                "direction": "inbound"
                if kind in (WEB_REQUEST, *INBOUND_KINDS)
                else ("note" if kind == NOTE else "outbound"),
                "channel": "mail" if mail else "web",
                "message_id": message_id,
                "in_reply_to": in_reply_to,
                "references": in_reply_to,
                "sender": sender,
                "sender_name": sender_name,
                "recipients": [TEAM_ADDRESS[team]] if inbound else ([email] if mail else []),
                "subject": subject or None,
                "body_text": body,
                "body_html": None,
                "sent_at": sent_at,
                "created_at": sent_at,
                "raw_sha256": digest,
                "content_sha256": digest,
                "raw_size": len(body) + 1200 if inbound else None,
                "mailbox": mailbox,
                "uidvalidity": UIDVALIDITY[mailbox] if mailbox else None,
                "uid": uids[index] if mailbox else None,
                "dedup_key": message_id if mailbox else None,
                "auth_results": {"spf": "pass", "dkim": rng.choice(("pass", "pass", "none"))}
                if inbound
                else {},
                "auto_submitted": kind in (ACK, AUTO_REPLY, BOUNCE),
                "bounce": kind == BOUNCE,
                "quarantined": False,
                "flag_reason": None,
                "author_staff_id": member["id"] if kind in (NOTE, STAFF_REPLY) else None,
            }
        )
    return rows


# --- inserting -----------------------------------------------------------------------------------


def chunks(rows: Sequence[dict[str, Any]], size: int = CHUNK) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def insert_all(conn: Connection, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    for part in chunks(rows):
        conn.execute(insert(table), list(part))


def audit_rows(cases: list[dict[str, Any]], head: tuple[int, str | None]) -> list[dict[str, Any]]:
    """case.opened for every case and case.decided for decided ones, chained like record()."""
    events: list[tuple[datetime, int, str, str, dict[str, Any]]] = []
    for case in cases:
        events.append(
            (
                case["created_at"],
                case["id"],
                "public" if case["kind"] != CaseKind.INQUIRY else "mailbridge",
                "case.opened",
                {"reference": case["reference"], "team": case["team"]},
            )
        )
        if case["decision"]:
            events.append(
                (
                    case["decided_at"],
                    case["id"],
                    f"staff:{case['decided_by_id']}",
                    "case.decided",
                    {"decision": case["decision"], "status": case["status"]},
                )
            )
    events.sort(key=lambda event: (event[0], event[1]))
    rows = []
    seq, prev_hash = head
    key = chain_key()
    for created_at, case_id, actor, action, details in events:
        created_at = created_at.replace(microsecond=0)
        seq += 1
        row_hash = audit_digest(
            key,
            prev_hash,
            seq=seq,
            case_id=case_id,
            actor=actor,
            action=action,
            details=details,
            created_at=created_at,
        )
        rows.append(
            {
                "seq": seq,
                "case_id": case_id,
                "actor": actor,
                "action": action,
                "details": details,
                "created_at": created_at,
                "prev_hash": prev_hash,
                "row_hash": row_hash,
            }
        )
        prev_hash = row_hash
    return rows


def check_search_triggers(conn: Connection) -> None:
    """The FTS5 triggers must be there, or the messages would go in unindexed. The migrations
    keep them (0004 adds its columns in place, 0007 restored them where an earlier 0004 had
    dropped them; tests/test_migrations.py checks it): a miss here is a bug, not a repair job."""
    present = set(conn.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).all())
    missing = sorted({"messages_search_ai", "messages_search_ad", "messages_search_au"} - present)
    if missing:
        raise RuntimeError(f"the migrations left messages without {', '.join(missing)}")


def file_size(path: Path) -> int:
    return sum(
        candidate.stat().st_size
        for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
        if candidate.exists()
    )


def log(message: str, started: float) -> None:
    print(f"[{time.perf_counter() - started:7.1f}s] {message}", flush=True)


def seed(
    path: Path, *, cases: int, messages: int, reporters: int, seed_value: int, workers: int
) -> dict[str, Any]:
    started = time.perf_counter()
    phases: dict[str, float] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        stale.unlink(missing_ok=True)
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path.resolve()}",
            "SECRET_KEY": SECRET_KEY,
            "TESTING": True,
            "OUTBOX_DIR": str(path.parent / "outbox"),
            "BLOB_DIR": str(path.parent / "blobs"),
            "LOG_LEVEL": "WARNING",
        }
    )
    rng = Random(seed_value)
    with app.app_context():
        mark = time.perf_counter()
        # "heads": the staff and mail bridge revisions are two branches off the initial one.
        flask_migrate.upgrade(revision="heads")
        phases["migrations"] = time.perf_counter() - mark
        log("schema migrated", started)
        check_search_triggers(db.session.connection())
        db.session.commit()

        staff_logins = []
        for email, roles, name in STAFF:
            created = staff_service.create_staff(
                db.session, email=email, roles=roles, password=STAFF_PASSWORD, name=name
            )
            staff_logins.append(
                {
                    "id": created.user.id,
                    "email": email,
                    "name": name,
                    "roles": roles,
                    "totp_secret": created.user.totp_secret,
                }
            )
        db.session.commit()
        staff_ids = [member["id"] for member in staff_logins]

        mark = time.perf_counter()
        reporter_rows = make_reporters(reporters, rng)
        case_rows = make_cases(cases, reporter_rows, staff_ids, rng)
        make_schedule(case_rows, messages, rng)
        phases["generate_cases_and_schedule"] = time.perf_counter() - mark
        log(f"planned {len(case_rows):,} cases and {messages:,} messages", started)

        engine = db.engine
        with engine.connect() as conn:
            # A larger page cache for the bulk load only (this connection); it changes no
            # durability guarantee. synchronous stays at its default (FULL).
            conn.exec_driver_sql("PRAGMA cache_size=-1048576")  # 1 GiB
            mark = time.perf_counter()
            insert_all(conn, Reporter.__table__, reporter_rows)
            insert_all(
                conn,
                Case.__table__,
                [{k: v for k, v in row.items() if k in CASE_COLUMNS} for row in case_rows],
            )
            insert_all(
                conn,
                CaseParty.__table__,
                [
                    {
                        "case_id": row["id"],
                        "address": canonical_address(row["_email"]),
                        "role": "requester",
                        "added_by": None,
                        "details": {},
                    }
                    for row in case_rows
                ],
            )
            head = conn.execute(
                text("SELECT seq, row_hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            ).first()
            insert_all(
                conn,
                AuditEvent.__table__,
                audit_rows(case_rows, (head[0], head[1]) if head else (0, None)),
            )
            conn.commit()
            phases["insert_reporters_cases_parties_audit"] = time.perf_counter() - mark
            log("reporters, cases, parties and audit trail inserted", started)

            mark = time.perf_counter()
            staff_for_rows = [
                {"id": m["id"], "email": m["email"], "name": m["name"]} for m in staff_logins
            ]
            jobs = [
                (seed_value, start, min(start + CHUNK, messages), staff_for_rows)
                for start in range(0, messages, CHUNK)
            ]
            context = multiprocessing.get_context("fork")
            inserted = 0
            with context.Pool(workers) as pool:
                # A bounded pipeline: the workers stay a few chunks ahead of the inserts.
                queue = iter(jobs)
                pending = collections.deque(
                    pool.apply_async(message_rows, (job,))
                    for job in itertools.islice(queue, 2 * workers)
                )
                number = 0
                while pending:
                    rows = pending.popleft().get()
                    job = next(queue, None)
                    if job is not None:
                        pending.append(pool.apply_async(message_rows, (job,)))
                    conn.execute(insert(Message.__table__), rows)
                    number += 1
                    inserted += len(rows)
                    if number % CHUNKS_PER_COMMIT == 0:
                        conn.commit()
                        elapsed = time.perf_counter() - mark
                        log(
                            f"{inserted:,} messages ({inserted / elapsed:,.0f}/s, indexed by FTS5)",
                            started,
                        )
            conn.commit()
            phases["insert_messages_with_fts"] = time.perf_counter() - mark

            mark = time.perf_counter()
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            phases["checkpoint"] = time.perf_counter() - mark
        engine.dispose()

    total = time.perf_counter() - started
    size = file_size(path)
    log(f"done: {size / 2**20:,.0f} MiB", started)
    meta = {
        "database": str(path),
        "seed": seed_value,
        "counts": {
            "reporters": len(reporter_rows),
            "cases": len(case_rows),
            "messages": messages,
            "open_cases": sum(1 for c in case_rows if c["status"] in OPEN_STATUSES),
        },
        "seconds": {name: round(value, 1) for name, value in phases.items()},
        "seconds_total": round(total, 1),
        "db_bytes": size,
        "workers": workers,
        "now": NOW.isoformat(),
        "password": STAFF_PASSWORD,
        "secret_key": SECRET_KEY,
        "staff": staff_logins,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    Path(f"{path}.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return meta


def upgrade(path: Path) -> dict[str, Any]:
    """Bring a seeded database to the current migrations without seeding it again."""
    meta_path = Path(f"{path}.json")
    meta = json.loads(meta_path.read_text())
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path.resolve()}",
            "SECRET_KEY": SECRET_KEY,
            "TESTING": True,
            "LOG_LEVEL": "WARNING",
        }
    )
    started = time.perf_counter()
    with app.app_context():
        flask_migrate.upgrade(revision="heads")
        check_search_triggers(db.session.connection())
        db.session.commit()
        db.session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        revisions = db.session.scalars(text("SELECT version_num FROM alembic_version")).all()
        db.session.remove()
        db.engine.dispose()
    meta["upgrades"] = [
        *meta.get("upgrades", []),
        {
            "revisions": revisions,
            "seconds": round(time.perf_counter() - started, 1),
        },
    ]
    meta["db_bytes"] = file_size(path)
    meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return meta


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--reporters", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1), help="text generators"
    )
    parser.add_argument(
        "--upgrade-only",
        action="store_true",
        help="run new migrations on an already seeded PATH instead of seeding it again",
    )
    args = parser.parse_args(argv)
    if args.upgrade_only:
        print(json.dumps(upgrade(args.path)["upgrades"][-1]))
        return 0
    meta = seed(
        args.path,
        cases=args.cases,
        messages=args.messages,
        reporters=args.reporters,
        seed_value=args.seed,
        workers=args.workers,
    )
    print(json.dumps({k: meta[k] for k in ("counts", "seconds", "seconds_total", "db_bytes")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
