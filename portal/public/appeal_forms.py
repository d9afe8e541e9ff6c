"""The public appeal form. Field names are a contract with integrators: do not rename them.

Only the form's own errors are shown (a missing reason, a malformed reference or address,
a file of the wrong type): they say nothing about whether a case exists. Everything that
depends on the case is answered by mail (portal.services.appeals).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath

from flask_wtf.file import MultipleFileField
from werkzeug.datastructures import FileStorage
from wtforms import EmailField, RadioField, SelectChoice, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from portal.forms import CleanForm, must_be_empty, normalized_email
from portal.models.case import DETAILS_MAX_CHARS
from portal.policy.appeals import AppellantRole
from portal.policy.references import REFERENCE_PATTERN
from portal.services.appeals import AppealFiling, UploadedFile

ATTACHMENTS_MAX = 5
ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
FILENAME_MAX = 255

# What we accept, recognised by the file's first bytes rather than by what the browser
# claims, each with the extensions that may carry it. Plain text must be UTF-8.
_SIGNATURES: tuple[tuple[bytes, str, frozenset[str]], ...] = (
    (b"%PDF-", "application/pdf", frozenset({".pdf"})),
    (b"\x89PNG\r\n\x1a\n", "image/png", frozenset({".png"})),
    (b"\xff\xd8\xff", "image/jpeg", frozenset({".jpg", ".jpeg"})),
)
_TEXT_EXTENSIONS = frozenset({".txt"})
ROLE_CHOICES = [
    SelectChoice(AppellantRole.REQUESTER.value, "I asked for the office action (the requester)"),
    SelectChoice(AppellantRole.SUBJECT.value, "The case is about me (the person investigated)"),
]


def sniff_type(filename: str, data: bytes) -> str | None:
    """The content type of an accepted file, or None: content and extension must agree."""
    extension = PurePosixPath(filename.lower()).suffix
    for magic, content_type, extensions in _SIGNATURES:
        if data.startswith(magic):
            return content_type if extension in extensions else None
    if extension in _TEXT_EXTENSIONS and b"\0" not in data:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return "text/plain"
    return None


def clean_filename(name: str) -> str:
    """The last path component, without control characters, at most 255 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    return base[-FILENAME_MAX:] or "attachment"


class AppealForm(CleanForm):
    case_reference = StringField(
        "Reference of the case (for example OA-2026-000123)",
        filters=[lambda value: (value or "").strip().upper()],
        validators=[DataRequired("Give the reference of the case you appeal."), Length(max=20)],
    )
    appellant_email = EmailField(
        "Your e-mail address",
        validators=[
            DataRequired("Give the e-mail address you used in this case."),
            Length(max=254),
            normalized_email,
        ],
    )
    appellant_role = RadioField(
        "Who are you in this case?",
        choices=ROLE_CHOICES,
        validators=[InputRequired("Say whether you asked for the action or it concerns you.")],
    )
    reasons = TextAreaField(
        "Why was the decision inappropriate?",
        validators=[
            DataRequired("Say why you think the decision was inappropriate."),
            Length(max=DETAILS_MAX_CHARS),
        ],
    )
    details = TextAreaField(
        "Further details (optional)", validators=[Optional(), Length(max=DETAILS_MAX_CHARS)]
    )
    attachments = MultipleFileField("Documents (optional)")
    # Honeypot: hidden from people and from assistive technology, see appeal_form.html.
    website = StringField("Leave this field empty", validators=[must_be_empty])

    uploads: list[UploadedFile]

    def validate_case_reference(self, field: StringField) -> None:
        if not REFERENCE_PATTERN.fullmatch(field.data or ""):
            raise ValidationError("A reference looks like OA-2026-000123.")

    def validate_attachments(self, field: MultipleFileField) -> None:
        files: list[FileStorage] = [f for f in field.data or [] if isinstance(f, FileStorage) and f]
        if len(files) > ATTACHMENTS_MAX:
            raise ValidationError(f"Attach at most {ATTACHMENTS_MAX} files.")
        self.uploads = []
        for item in files:
            name = clean_filename(item.filename or "")
            data = item.stream.read(ATTACHMENT_MAX_BYTES + 1)
            if len(data) > ATTACHMENT_MAX_BYTES:
                raise ValidationError(f"{name} is larger than 10 MB.")
            content_type = sniff_type(name, data)
            if content_type is None:
                raise ValidationError(f"{name} is not a PDF, PNG, JPEG or plain text (.txt) file.")
            self.uploads.append(UploadedFile(name, content_type, data))

    def to_filing(self) -> AppealFiling:
        return AppealFiling(
            case_reference=self.case_reference.data or "",
            appellant_email=self.appellant_email.data or "",
            role=AppellantRole(self.appellant_role.data),
            reasons=(self.reasons.data or "").strip(),
            details=(self.details.data or "").strip() or None,
            attachments=list(getattr(self, "uploads", [])),
        )


class ConfirmAppealForm(CleanForm):
    """Only a CSRF token: the link itself is the proof. A button (a POST) rather than the GET
    of the link confirms, because mail scanners open links in mail on their own."""
