"""Files from the outside world, for staff: attachments, raw messages, full message texts.

They are only ever downloaded, never shown inline (a sandboxing CSP, no sniffing), and each is
served only to someone who may see its case (``portal.access``). Quarantined mail is read on
the quarantine page, never downloaded; mail on no case is no one's download.
"""

from __future__ import annotations

import io
from pathlib import Path

from flask import abort, send_file
from flask_login import current_user
from werkzeug.wrappers import Response

from portal.access import get_visible_case
from portal.config import get_settings
from portal.extensions import db
from portal.models import Attachment, Message
from portal.staff import bp
from portal.storage import BlobStore


@bp.get("/attachments/<int:attachment_id>")
def attachment(attachment_id: int) -> Response:
    item = db.session.get(Attachment, attachment_id)
    if item is None:
        abort(404)
    _visible_or_404(item.message)
    return _download(_blob_or_404(item.sha256), item.filename or f"attachment-{item.id}")


@bp.get("/messages/<int:message_id>/raw")
def raw_message(message_id: int) -> Response:
    """The message byte for byte, as the mail server delivered it: evidence, and the only
    way to read one too large to parse."""
    message = _visible_or_404(db.session.get(Message, message_id))
    if not message.raw_sha256:
        abort(404)
    return _download(_blob_or_404(message.raw_sha256), f"message-{message.id}.eml")


@bp.get("/messages/<int:message_id>/text")
def message_text(message_id: int) -> Response:
    """The whole body, when the case page shows only part of it (``portal.display``)."""
    message = _visible_or_404(db.session.get(Message, message_id))
    if message.body_text is None and message.body_html is not None:
        data, name, kind = message.body_html, f"message-{message.id}.html", "text/html"
    else:
        data, name, kind = message.body_text or "", f"message-{message.id}.txt", "text/plain"
    return _download(io.BytesIO(data.encode()), name, mimetype=f"{kind}; charset=utf-8")


def _visible_or_404(message: Message | None) -> Message:
    if message is None or message.case_id is None or message.quarantined:
        abort(404)
    if get_visible_case(db.session, current_user, message.case_id) is None:
        abort(404)
    return message


def _blob_or_404(sha256: str) -> Path:
    path = BlobStore(get_settings().blob_dir).path_for(sha256)
    if not path.exists():
        abort(404)
    return path


def _download(
    source: Path | io.BytesIO, name: str, *, mimetype: str = "application/octet-stream"
) -> Response:
    response = send_file(
        source, mimetype=mimetype, as_attachment=True, download_name=name, max_age=0
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response
