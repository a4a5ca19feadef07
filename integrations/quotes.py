"""Quoted history and forwarded blocks in received mail.

A reply carries the whole conversation below the new text. Agents read the new part; the
full message stays available (``TicketBody`` for a ticket's first message, the raw
``InboundEmail`` for every message). The separators recognised:

- Gmail: ``<div class="gmail_quote">`` / ``<blockquote class="gmail_quote">``; in text an
  "On <date>, <name> wrote:" line (possibly wrapped) above ``>`` lines;
- Outlook: ``<div id="divRplyFwdMsg">`` (with the ``<hr>`` before it), the desktop
  client's bordered "From: … Sent: …" block, "-----Original Message-----";
- Apple Mail: ``<blockquote type="cite">`` and the attribution line above it;
- Thunderbird: ``<div class="moz-cite-prefix">`` before ``<blockquote type="cite">``;
- Yahoo: ``<div class="yahoo_quoted">``.

Stripping is conservative: when the cut would leave nothing, or new text follows the
quote (an interleaved or bottom-posted reply), the message is shown whole.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# "On Mon, 3 Jun 2024 at 10:00, Carol <carol@x.test> wrote:" and its translations.
_ATTRIBUTION_RE = re.compile(
    r"^\s*(on|le|am|el|il|op|den|em|w dniu)\b.{0,300}?"
    r"(wrote|a écrit|écrit|schrieb|escribió|ha scritto|scritto|schreef|skrev|escreveu|napisał)"
    r"\s*:?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_ORIGINAL_MESSAGE_RE = re.compile(
    r"^\s*-{2,}\s*(original message|ursprüngliche nachricht|message d'origine|"
    r"mensaje original)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_UNDERSCORES_RE = re.compile(r"^\s*_{10,}\s*$")
_HEADER_LINE_RE = re.compile(r"^\s*\*?(from|von|de|van)\s*:\*?\s", re.IGNORECASE)
_SENT_LINE_RE = re.compile(
    r"^\s*\*?(sent|date|gesendet|envoyé|enviado|datum)\s*:\*?\s", re.IGNORECASE
)
_FORWARD_MARKER_RE = re.compile(
    r"^\s*(-{2,}\s*(forwarded message|original message|weitergeleitete nachricht|"
    r"message transféré|mensaje reenviado)\s*-{2,}|begin forwarded message:?)\s*$",
    re.IGNORECASE,
)
_FORWARD_SUBJECT_RE = re.compile(r"^\s*((fwd?|fw|wg|tr|rv|enc)\s*:\s*)+", re.IGNORECASE)
_EMAIL_RE = re.compile(r"[\w.+'=-]+@[\w-]+(?:\.[\w-]+)+")


def is_forward_subject(subject: str) -> bool:
    return bool(_FORWARD_SUBJECT_RE.match(subject or ""))


def strip_forward_prefix(subject: str) -> str:
    return _FORWARD_SUBJECT_RE.sub("", subject or "").strip()


# --- Plain text -----------------------------------------------------------------------------


def strip_quoted_text(text: str) -> str:
    """The new part of a plain-text message (the whole text when no quote is found)."""
    if not text:
        return text
    lines = text.splitlines()
    cut = _text_cut(lines)
    if cut is None:
        return text
    head = "\n".join(lines[:cut]).rstrip()
    return head if head.strip() else text


def _next_nonblank(lines: list[str], start: int, limit: int = 4) -> list[str]:
    found = []
    for line in lines[start:]:
        if line.strip():
            found.append(line)
            if len(found) >= limit:
                break
    return found


def _text_cut(lines: list[str]) -> int | None:
    # quotes_only[i]: every line from i on is blank or quoted. Computed once, backwards, so
    # a long interleaved reply costs one pass, not one pass per quoted line.
    quotes_only = [True] * (len(lines) + 1)
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i].lstrip()
        quotes_only[i] = quotes_only[i + 1] and (not line or line.startswith(">"))

    def _only_quotes_after(_lines: list[str], start: int) -> bool:
        return quotes_only[min(start, len(lines))]

    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        # Outlook: everything below these is history (it always top-posts).
        if _ORIGINAL_MESSAGE_RE.match(stripped):
            return i
        if _UNDERSCORES_RE.match(stripped):
            following = _next_nonblank(lines, i + 1, 1)
            if following and _HEADER_LINE_RE.match(following[0]):
                return i
        if _HEADER_LINE_RE.match(stripped):
            following = _next_nonblank(lines, i + 1, 3)
            if any(_SENT_LINE_RE.match(f) for f in following):
                return i
        # "On … wrote:" (on one line, or wrapped onto a second) above ">" lines only.
        for span in (1, 2):
            candidate = " ".join(s.strip() for s in lines[i : i + span])
            if _ATTRIBUTION_RE.match(candidate):
                rest = i + span
                if _next_nonblank(lines, rest, 1) and _only_quotes_after(lines, rest):
                    return i
        if stripped.startswith(">") and _only_quotes_after(lines, i):
            return i
    return None


# --- HTML -----------------------------------------------------------------------------------

_BLOCK_TAGS = {"div", "p", "hr", "table", "blockquote", "section", "pre", "ul", "ol", "h1"}
_BLOCK_TAGS |= {f"h{n}" for n in range(2, 7)}


class _QuoteFinder(HTMLParser):
    """Finds the offset where quoted history starts, and whether new text follows it."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.line_starts = [0]
        for match in re.finditer("\n", html):
            self.line_starts.append(match.end())
        self.cut: int | None = None
        # The quote is an element (blockquote, div): track where it ends, so text after it
        # (a bottom-posted or interleaved reply) cancels the cut.
        self.cut_tag: str | None = None
        self.cut_depth = 0
        self.cut_closed = False
        self.text_after = False
        self.last_block: tuple[str, int] | None = None
        self.text_since_block = ""
        self.text_since_hr = False
        self.last_hr: int | None = None
        self.attribution_at: int | None = None
        self.from_at: int | None = None
        self.from_text = ""

    def _position(self) -> int:
        line, column = self.getpos()
        return self.line_starts[line - 1] + column

    def _cut_here(self, offset: int, tag: str | None) -> None:
        if self.last_hr is not None and not self.text_since_hr:
            offset = min(offset, self.last_hr)
        self.cut = offset
        self.cut_tag = tag
        self.cut_depth = 1 if tag else 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.cut is not None:
            if self.cut_tag == tag and not self.cut_closed:
                self.cut_depth += 1
            return
        attributes = {k.lower(): (v or "") for k, v in attrs}
        classes = attributes.get("class", "").lower().split()
        element_id = attributes.get("id", "").lower()
        offset = self._position()
        if tag in ("div", "blockquote") and (
            "gmail_quote" in classes or "gmail_quote_container" in classes
        ):
            self._cut_here(offset, tag)
        elif tag == "div" and element_id in ("divrplyfwdmsg", "appendonsend"):
            self._cut_here(offset, None)
        elif tag == "div" and ("moz-cite-prefix" in classes or "yahoo_quoted" in classes):
            self._cut_here(offset, None if "moz-cite-prefix" in classes else tag)
        elif tag == "blockquote" and attributes.get("type", "").lower() == "cite":
            start = self.attribution_at if self.attribution_at is not None else offset
            self._cut_here(start, tag)
        elif (
            tag == "div"
            and "border-top" in attributes.get("style", "").lower()
            and (
                "#e1e1e1" in attributes.get("style", "").lower()
                or "#b5c4df" in attributes.get("style", "").lower()
            )
        ):
            # Outlook desktop's reply header box.
            self._cut_here(offset, None)
        if self.cut is not None:
            return
        if tag == "hr":
            self.last_hr = offset
            self.text_since_hr = False
        if tag in _BLOCK_TAGS:
            self.last_block = (tag, offset)
            self.text_since_block = ""

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.cut is None and tag == "hr":
            self.last_hr = self._position()
            self.text_since_hr = False
            self.last_block = (tag, self.last_hr)
            self.text_since_block = ""

    def handle_endtag(self, tag: str) -> None:
        if self.cut is not None and self.cut_tag == tag and not self.cut_closed:
            self.cut_depth -= 1
            if self.cut_depth <= 0:
                self.cut_closed = True

    def handle_data(self, data: str) -> None:
        text = " ".join(data.split())
        if not text:
            return
        if self.cut is not None:
            if self.cut_tag and self.cut_closed and re.search(r"\w", text):
                self.text_after = True
            return
        self.text_since_hr = True
        block_start = self.last_block[1] if self.last_block else 0
        if len(self.text_since_block) < 1000:  # an attribution line is short
            self.text_since_block = (self.text_since_block + " " + text).strip()
        if _ORIGINAL_MESSAGE_RE.match(text):
            self._cut_here(block_start, None)
            return
        if self.from_at is not None:
            self.from_text += " " + text
            if re.search(r"\b(sent|date|gesendet|envoyé|enviado)\s*:", self.from_text, re.I):
                self._cut_here(self.from_at, None)
                return
            if len(self.from_text) > 400:
                self.from_at = None
        if re.match(r"^(from|von|de)\s*:", text, re.IGNORECASE) and self.from_at is None:
            self.from_at = block_start
            self.from_text = text
        if len(self.text_since_block) <= 400 and _ATTRIBUTION_RE.match(self.text_since_block):
            self.attribution_at = block_start
        elif self.attribution_at is not None and self.attribution_at != block_start:
            self.attribution_at = None


def strip_quoted_html(html: str) -> str:
    """The new part of an HTML message (the whole HTML when no quote is found, when the
    cut would leave no text, or when new text follows the quote)."""
    if not html:
        return html
    finder = _QuoteFinder(html)
    try:
        finder.feed(html)
        finder.close()
    except (AssertionError, ValueError, IndexError):
        return html
    if finder.cut is None or finder.text_after:
        return html
    head = html[: finder.cut]
    without_head = re.sub(r"<(style|head)\b.*?</\1>", "", head, flags=re.S | re.I)
    visible = re.sub(r"<[^>]*>|&nbsp;|\s", "", without_head)
    if not visible:
        return html
    return head


# --- Forwards -------------------------------------------------------------------------------


def find_forwarded_sender(text: str) -> tuple[str, str] | None:
    """``(name, address)`` from the first forwarded-message block's "From:" line (Gmail,
    Outlook, Apple Mail, Thunderbird), or None when the text forwards nothing."""
    if not text:
        return None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        marker = _FORWARD_MARKER_RE.match(stripped) or _UNDERSCORES_RE.match(stripped)
        outlook_header = _HEADER_LINE_RE.match(stripped) and any(
            _SENT_LINE_RE.match(f) for f in _next_nonblank(lines, i + 1, 3)
        )
        if not marker and not outlook_header:
            continue
        window = lines[i : i + 12] if outlook_header else lines[i + 1 : i + 12]
        for candidate in window:
            if _HEADER_LINE_RE.match(candidate):
                sender = _sender_from_line(candidate)
                if sender:
                    return sender
    return None


def _sender_from_line(line: str) -> tuple[str, str] | None:
    value = _HEADER_LINE_RE.sub("", line, count=1).replace("&lt;", "<").replace("&gt;", ">")
    match = _EMAIL_RE.search(value)
    if not match:
        return None
    address = match.group(0).lower().rstrip(".")
    name = value[: match.start()]
    name = re.sub(r"\[?mailto:\s*$", "", name.strip(), flags=re.IGNORECASE)
    name = name.strip().strip("<[(\"'* \t").strip()
    return " ".join(name.split()), address
