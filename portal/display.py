"""How much of a message body a page shows: enough to read, never enough to stall a browser.

A mail body can be tens of megabytes (a pasted log, a forwarded archive). The case page shows
at most ``BODY_DISPLAY_MAX_BYTES`` of it, says so, and offers the full text as a download.
"""

from __future__ import annotations

from dataclasses import dataclass

BODY_DISPLAY_MAX_BYTES = 1_000_000  # of UTF-8
BODY_DISPLAY_LABEL = "1 MB"  # the same, as the page says it


@dataclass(frozen=True)
class ShownBody:
    """What a page shows of a body: sanitized HTML or plain text, and whether it was cut."""

    text: str | None
    html: str | None
    cut: bool


def body_to_show(
    body_text: str | None, body_html: str | None, *, limit: int = BODY_DISPLAY_MAX_BYTES
) -> ShownBody:
    """The HTML when it fits, else the plain text (cut HTML is cut markup), cut to ``limit``
    bytes; HTML is cut only when there is no text at all (the page sanitizes it again)."""
    if body_html and _fits(body_html, limit):
        return ShownBody(None, body_html, cut=False)
    if body_text or not body_html:
        text, cut = _cut(body_text or "", limit)
        return ShownBody(text, None, cut=cut or bool(body_html))
    html, _ = _cut(body_html, limit)
    return ShownBody(None, html, cut=True)


def _fits(text: str, limit: int) -> bool:
    # A character is at most 4 bytes in UTF-8: most bodies are settled without encoding them.
    return len(text) * 4 <= limit or len(text.encode()) <= limit


def _cut(text: str, limit: int) -> tuple[str, bool]:
    """``text`` within ``limit`` UTF-8 bytes, never cut inside a character."""
    if _fits(text, limit):
        return text, False
    return text.encode()[:limit].decode(errors="ignore"), True
