"""The one HTML policy for mail from outside, applied before anything is stored or shown.

Staff read mail from strangers, some of whom want to track or attack them. So the stored HTML
has no scripts, styles, forms, frames or event handlers, and no images at all: a remote image
is a read receipt (and leaks the reader's IP address), and ``cid:``/``data:`` images would need
a careful serving path that we do not have. Attachments, inline images included, stay
available as downloads. Links are kept because they are often the evidence, but they open in a
new tab, send no referrer and are marked ``class="external"`` so the page can style them as
leaving the portal.
"""

from __future__ import annotations

import html
import re

import nh3

_DROPPED_TAGS = frozenset({"img", "area", "map"})
ALLOWED_TAGS = frozenset(nh3.ALLOWED_TAGS) - _DROPPED_TAGS
ALLOWED_ATTRIBUTES = {
    tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items() if tag not in _DROPPED_TAGS
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer nofollow"
LINK_ATTRIBUTES = {"a": {"target": "_blank", "class": "external"}}
# Removed with everything inside them, not just unwrapped.
CONTENT_DROPPED = frozenset({"script", "style", "title", "head", "template", "noscript"})

_BLOCK_END = re.compile(r"(?i)<\s*(br|/p|/div|/li|/tr|/h[1-6]|/blockquote|/pre|/table)\b[^>]*>")
_BLANK_LINES = re.compile(r"\n{3,}")


def sanitize_html(markup: str) -> str:
    """Markup that is safe to embed in a staff page (see the module docstring for the policy)."""
    return nh3.clean(
        markup,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(CONTENT_DROPPED),
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        set_tag_attribute_values=LINK_ATTRIBUTES,
        strip_comments=True,
    )


def html_to_text(markup: str) -> str:
    """A plain-text reading of HTML-only mail, for search, previews and the export.

    Block ends become line breaks before the tags are stripped, so paragraphs stay apart.
    """
    with_breaks = _BLOCK_END.sub(lambda match: match.group(0) + "\n", markup)
    stripped = nh3.clean(with_breaks, tags=set(), clean_content_tags=set(CONTENT_DROPPED))
    text = html.unescape(stripped)
    lines = [line.rstrip() for line in text.splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
