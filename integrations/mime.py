"""Reading RFC 5322 messages as they arrive, not as the RFCs wish they did.

``parse_email`` turns raw bytes into a ``ParsedEmail``: decoded headers, the message's
HTML and text bodies, its attachments (winmail.dat unpacked), and the delivery report of
a bounce. Nothing here raises on bad input: broken encoded-words, unknown or wrong
charsets, raw 8-bit headers, missing boundaries and bad base64 all decode to *something*
(declared charset, then UTF-8, then detection, then UTF-8 with replacement characters).

The standard library's ``compat32`` policy is used on purpose: it never raises while
reading a header, and header values keep their raw bytes (as surrogate escapes), so this
module decides how each one is decoded.

Also here: the Message-IDs of the mail we send (``make_message_id``), so the inbound
pipeline can recognise its own messages coming back.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import contextlib
import mimetypes
import re
import struct
import time
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser, HeaderParser
from email.utils import getaddresses, parsedate_to_datetime

from django.conf import settings

# Deep nesting and part bombs: a message is walked to this depth and this many parts.
MAX_DEPTH = 25
MAX_PARTS = 500
# Of an oversized message only this much is parsed, for its text; attachments are skipped.
OVERSIZED_PREVIEW_BYTES = 512 * 1024
# charset_normalizer is slow on big inputs; it sees at most this much of a body.
DETECTION_SAMPLE = 64 * 1024

_TNEF_TYPES = ("application/ms-tnef", "application/vnd.ms-tnef")


# --- Message-IDs ----------------------------------------------------------------------------


def make_message_id() -> str:
    """A new Message-ID for mail we send, in header form: ``<hex.time@EMAIL_MESSAGE_ID_DOMAIN>``.

    The domain marks it as ours, so a copy that comes back (a loop, a misrouted reply-all)
    is recognised by ``is_own_message_id`` and dropped.
    """
    return f"<{uuid.uuid4().hex}.{int(time.time())}@{settings.EMAIL_MESSAGE_ID_DOMAIN}>"


def is_own_message_id(message_id: str) -> bool:
    domain = settings.EMAIL_MESSAGE_ID_DOMAIN.lower()
    return bool(domain) and normalise_message_id(message_id).lower().endswith("@" + domain)


_MSGID_RE = re.compile(r"<([^<>\s]+)>")


def normalise_message_id(value: str | None) -> str:
    """``<abc@host>`` → ``abc@host``; a bare id is kept; at most 998 characters."""
    if not value:
        return ""
    value = decode_header(value)
    match = _MSGID_RE.search(value)
    if match:
        return match.group(1)[:998]
    return value.strip().strip("<>").split()[0][:998] if value.strip().strip("<>") else ""


def message_id_list(value: str | None) -> list[str]:
    """The ids of an In-Reply-To or References header, in order, without duplicates."""
    if not value:
        return []
    value = decode_header(value)
    ids = _MSGID_RE.findall(value) or [v.strip("<>,;") for v in value.split()]
    return list(dict.fromkeys(i[:998] for i in ids if i and "@" in i))


# --- Charsets -------------------------------------------------------------------------------

# Labels that mean "no idea": detection decides.
_UNKNOWN_CHARSETS = {"unknown-8bit", "x-unknown", "unknown", "default", "x-user-defined", "8bit"}
# What mail clients mean by a label, where Python's codec is narrower (WHATWG Encoding):
# latin-1 and ASCII labels are decoded as windows-1252; legacy CJK labels as their
# Microsoft supersets, which every sender actually uses.
_CHARSET_ALIASES = {
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "ansi_x3.4-1968": "cp1252",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "windows-874": "cp874",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
    "iso-2022-jp": "iso2022_jp_ext",
}
# Single-byte codecs that decode any bytes: UTF-8 mislabelled as one of them is common
# (and a valid multi-byte UTF-8 sequence is vanishingly rare in real Latin-1 text).
_PERMISSIVE = {"cp1252", "latin_1", "iso8859_15", "ascii"}


def _codec(charset: str | None) -> str | None:
    """Python's codec name for a MIME charset label, or None when unknown."""
    if not charset:
        return None
    label = charset.strip().strip("\"'").lower()
    # RFC 2231 language suffix inside encoded-words: "utf-8*en".
    label = label.split("*", 1)[0]
    if not label or label in _UNKNOWN_CHARSETS:
        return None
    label = _CHARSET_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except (LookupError, ValueError):  # ValueError: a NUL inside the label
        return None


def _looks_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# The charsets detection chooses among: those mail is actually written in. Left to itself
# charset_normalizer also weighs UTF-16 and Mac code pages, and picks them for short text.
# Korean (cp949) is left out: unlabelled, it is mistaken for Chinese text too often, and
# Korean mail is labelled in practice.
_DETECTABLE = [
    "cp1252",
    "cp1250",
    "cp1251",
    "koi8_r",
    "cp1253",
    "cp1254",
    "cp1255",
    "cp1256",
    "cp1257",
    "cp874",
    "cp932",
    "euc_jp",
    "iso2022_jp",
    "gb18030",
    "big5",
]


# Non-ASCII symbols at home in ordinary text; any other symbol is a sign of a wrong charset.
_PLAIN_SYMBOLS = set("€«»©®°§±÷¿¡£·\u00d7") | {chr(c) for c in range(0x2010, 0x2070)}


def _script(ch: str) -> str:
    try:
        return unicodedata.name(ch).split(" ", 1)[0]
    except ValueError:
        return ""


def _mess(text: str) -> int:
    """How much a decoding looks like mojibake: stray symbols, words that mix scripts
    ("cafй"), capitals inside words ("ÄãºÃ"), and runs of accented Latin letters
    ("Çäðàâñòâó": Cyrillic read as Western)."""
    score = 0
    previous = " "
    accented_run = 0
    for ch in text:
        if ch.isascii():
            previous = ch
            accented_run = 0
            continue
        if ch.isalpha():
            mixed = _script(previous) != _script(ch) or (previous.islower() and ch.isupper())
            if previous.isalpha() and mixed:
                score += 1
            accented_run = accented_run + 1 if _script(ch) == "LATIN" else 0
            if accented_run >= 3:
                score += 1
        else:
            accented_run = 0
            if not ch.isspace() and ch not in _PLAIN_SYMBOLS:
                score += 1
        previous = ch
    return score


def _detect_and_decode(data: bytes) -> str | None:
    """Decode bytes of unknown charset by detection, checked against windows-1252 (the
    most common undeclared charset, and the winner of ties): the reading that looks less
    like mojibake is taken."""
    from charset_normalizer import from_bytes

    sample = data[:DETECTION_SAMPLE]
    best = from_bytes(sample, cp_isolation=_DETECTABLE).best()
    readings = []
    with contextlib.suppress(UnicodeDecodeError):
        readings.append(data.decode("cp1252"))
    if best is not None and best.encoding != "cp1252":
        readings.append(data.decode(best.encoding, errors="replace"))
    if not readings:
        return None
    return min(readings, key=lambda text: _mess(text[:DETECTION_SAMPLE]))


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Text from bytes in any declared (or mis-declared, or undeclared) charset. Never raises.

    Order: the declared charset (a permissive single-byte label is tried as UTF-8 first,
    since UTF-8 mislabelled as Latin-1 is common), UTF-8, detection, then UTF-8 with
    replacement characters.
    """
    if not data:
        return ""
    codec = _codec(charset)
    if codec in _PERMISSIVE and not data.isascii() and _looks_utf8(data):
        return data.decode("utf-8")
    if codec:
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            pass
    if _looks_utf8(data):
        return data.decode("utf-8")
    detected = _detect_and_decode(data)
    if detected is not None:
        return detected
    return data.decode("utf-8", errors="replace")


# --- Headers --------------------------------------------------------------------------------

_FOLD_RE = re.compile(r"\r?\n(?=[ \t])")
_ENCODED_WORD_RE = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?]*?)\?=")


def _unescape_8bit(value: str) -> bytes | None:
    """The raw bytes of a header read with surrogate escapes, if it held any 8-bit byte."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return None
    return value.encode("utf-8", "surrogateescape")


def _decode_word(encoding: str, payload: str) -> bytes:
    if encoding in "Bb":
        cleaned = re.sub(r"[^A-Za-z0-9+/]", "", payload)
        cleaned += "=" * (-len(cleaned) % 4)
        try:
            return base64.b64decode(cleaned)
        except (binascii.Error, ValueError):
            return payload.encode("ascii", "replace")
    return binascii.a2b_qp(payload.encode("ascii", "replace"), header=True)


def decode_header(value: str | None) -> str:
    """A header's text: folding removed, RFC 2047 encoded-words decoded (adjacent words of
    one charset joined before decoding, so a character split between them survives), raw
    8-bit bytes decoded as UTF-8 or detected; never raises."""
    if value is None:
        return ""
    value = str(value)
    value = _FOLD_RE.sub("", value)
    raw = _unescape_8bit(value)
    if raw is not None:
        value = decode_bytes(raw)
    if "=?" not in value:
        return value.strip()
    # Segments: (text, None) for literal text, (bytes, charset) for encoded words.
    segments: list[tuple[str | bytes, str | None]] = []
    pos = 0
    for match in _ENCODED_WORD_RE.finditer(value):
        between = value[pos : match.start()]
        follows_word = bool(segments) and segments[-1][1] is not None
        if between and not (follows_word and not between.strip()):
            segments.append((between, None))
        charset, encoding, payload = match.groups()
        data = _decode_word(encoding, payload)
        if segments and segments[-1][1] is not None and segments[-1][1] == charset.lower():
            segments[-1] = (segments[-1][0] + data, charset.lower())  # type: ignore[operator]
        else:
            segments.append((data, charset.lower()))
        pos = match.end()
    segments.append((value[pos:], None))
    parts = []
    for chunk, charset in segments:
        parts.append(chunk if charset is None else decode_bytes(chunk, charset))  # type: ignore[arg-type]
    return "".join(parts).strip()


def _raw_headers(msg: Message, name: str) -> list[str]:
    name = name.lower()
    return [str(v) for k, v in msg.raw_items() if k.lower() == name]


def header(msg: Message, name: str) -> str:
    """The first ``name`` header, decoded ("" when absent)."""
    values = _raw_headers(msg, name)
    return decode_header(values[0]) if values else ""


_ADDRESS_RE = re.compile(r"[\w.+'=-]+@[\w-]+(?:\.[\w-]+)+")


def parse_address_list(value: str | None) -> list[tuple[str, str]]:
    """``[(display name, address)]`` of an address header, names decoded, addresses
    lowercased; entries without an ``@`` are dropped."""
    if not value:
        return []
    value = _FOLD_RE.sub("", str(value))
    raw = _unescape_8bit(value)
    if raw is not None:
        value = decode_bytes(raw)
    result = []
    # Encoded-words are atoms, so the list splits correctly before they are decoded.
    for name, address in getaddresses([value]):
        address = address.strip().strip("<>").lower()
        if "@" not in address or " " in address:
            continue
        result.append((" ".join(decode_header(name).split()).strip("\"' "), address[:254]))
    if not result:
        # getaddresses gives up on some malformed lists; an address in them still counts.
        result = [("", m.lower()[:254]) for m in _ADDRESS_RE.findall(value)]
    return result


# --- Parsed message -------------------------------------------------------------------------


@dataclass
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes
    content_id: str = ""
    # Sent as a body part (Content-Disposition: inline, or inside multipart/related).
    inline: bool = False


@dataclass
class DeliveryFailure:
    recipient: str
    action: str
    status: str
    diagnostic: str


@dataclass
class DeliveryReport:
    """A bounce (RFC 3464): who failed, and the ids of the message that bounced."""

    failures: list[DeliveryFailure] = field(default_factory=list)
    original_message_id: str = ""
    original_in_reply_to: list[str] = field(default_factory=list)
    original_references: list[str] = field(default_factory=list)

    @property
    def original_ids(self) -> list[str]:
        ids = [self.original_message_id, *self.original_in_reply_to]
        ids += reversed(self.original_references)
        return list(dict.fromkeys(i for i in ids if i))


@dataclass
class ParsedEmail:
    message_id: str = ""
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    subject: str = ""
    from_name: str = ""
    from_address: str = ""
    sender_address: str = ""
    reply_to: list[tuple[str, str]] = field(default_factory=list)
    to: list[tuple[str, str]] = field(default_factory=list)
    cc: list[tuple[str, str]] = field(default_factory=list)
    date: datetime | None = None
    return_path: str | None = None
    # Every header, decoded, by lowercased name (the classifier reads these).
    headers: dict[str, list[str]] = field(default_factory=dict)
    html: str | None = None
    text: str | None = None
    attachments: list[ParsedAttachment] = field(default_factory=list)
    # (name, address) of each message/rfc822 part's sender: a forward sent as attachment.
    attached_senders: list[tuple[str, str]] = field(default_factory=list)
    report: DeliveryReport | None = None
    report_type: str = ""
    # The message was over the size limit: only its start was read, no attachments.
    truncated: bool = False
    size: int = 0

    def first(self, name: str) -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else ""

    def has(self, name: str) -> bool:
        return name.lower() in self.headers

    @property
    def reply_to_header(self) -> str:
        return ", ".join(f"{n} <{a}>" if n else a for n, a in self.reply_to)


@dataclass
class HeaderSummary:
    """What ingestion stores before processing: read from the header block alone."""

    message_id: str
    from_address: str
    subject: str
    reply_to: str


_HEADER_END_RE = re.compile(rb"\r?\n\r?\n")


def read_header_summary(raw: bytes) -> HeaderSummary:
    """Message-ID, sender and subject from the header block only (cheap; never raises)."""
    end = _HEADER_END_RE.search(raw)
    head = raw[: end.start()] if end else raw[:65536]
    msg = BytesHeaderParser(policy=policy.compat32).parsebytes(head)
    from_list = parse_address_list(", ".join(_raw_headers(msg, "from")))
    reply_to = parse_address_list(", ".join(_raw_headers(msg, "reply-to")))
    return HeaderSummary(
        message_id=normalise_message_id(", ".join(_raw_headers(msg, "message-id"))),
        from_address=from_list[0][1] if from_list else "",
        subject=" ".join(header(msg, "subject").split())[:998],
        reply_to=", ".join(a for _, a in reply_to)[:998],
    )


def parse_email(raw: bytes, *, max_size: int | None = None) -> ParsedEmail:
    """Everything the pipeline needs from a message. Over ``max_size`` bytes, only the
    first ``OVERSIZED_PREVIEW_BYTES`` are read for the text and attachments are skipped."""
    truncated = max_size is not None and len(raw) > max_size
    source = raw[:OVERSIZED_PREVIEW_BYTES] if truncated else raw
    msg = BytesParser(policy=policy.compat32).parsebytes(source)
    parsed = ParsedEmail(truncated=truncated, size=len(raw))
    _read_headers(msg, parsed)
    walker = _Walker(parsed, keep_attachments=not truncated)
    html, text = walker.walk(msg, 0)
    if html is None and text is None and walker.tnef_body:
        html, text = walker.tnef_body
    parsed.html = html
    parsed.text = text
    return parsed


def _read_headers(msg: Message, parsed: ParsedEmail) -> None:
    for key, value in msg.raw_items():
        parsed.headers.setdefault(key.lower(), []).append(decode_header(value))
    parsed.message_id = normalise_message_id(", ".join(_raw_headers(msg, "message-id")))
    parsed.in_reply_to = message_id_list(" ".join(_raw_headers(msg, "in-reply-to")))
    parsed.references = message_id_list(" ".join(_raw_headers(msg, "references")))
    parsed.subject = " ".join(header(msg, "subject").split())
    senders = parse_address_list(", ".join(_raw_headers(msg, "from")))
    if senders:
        parsed.from_name, parsed.from_address = senders[0]
    sender = parse_address_list(", ".join(_raw_headers(msg, "sender")))
    parsed.sender_address = sender[0][1] if sender else ""
    parsed.reply_to = parse_address_list(", ".join(_raw_headers(msg, "reply-to")))
    parsed.to = parse_address_list(", ".join(_raw_headers(msg, "to")))
    parsed.cc = parse_address_list(", ".join(_raw_headers(msg, "cc")))
    return_paths = _raw_headers(msg, "return-path")
    if return_paths:
        parsed.return_path = decode_header(return_paths[-1]).strip().strip("<>").strip().lower()
    date = header(msg, "date")
    if date:
        try:
            parsed.date = parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError):
            parsed.date = None
    content_type = msg.get_content_type()
    if content_type == "multipart/report":
        parsed.report_type = (_param(msg, "report-type") or "").lower()


def _param(part: Message, name: str, header_name: str = "content-type") -> str | None:
    """A MIME parameter, RFC 2231 continuations and charsets applied, encoded-words
    decoded (Outlook puts RFC 2047 in filenames)."""
    try:
        value = part.get_param(name, header=header_name)
    except (ValueError, IndexError, LookupError):
        return None
    if value is None:
        return None
    if isinstance(value, tuple):
        charset, _language, text = value
        # The stdlib has joined the continuations and undone the %-escapes, one character
        # per byte: back to bytes, then decoded in the declared charset.
        raw = text.encode("latin-1", "surrogateescape") if isinstance(text, str) else text
        return decode_header(decode_bytes(raw, charset or "utf-8"))
    return decode_header(str(value))


def _filename(part: Message) -> str:
    return (_param(part, "filename", "content-disposition") or _param(part, "name") or "").strip()


def _disposition(part: Message) -> str:
    values = _raw_headers(part, "content-disposition")
    if not values:
        return ""
    return decode_header(values[0]).split(";", 1)[0].strip().lower()


def _payload_bytes(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, TypeError, LookupError, binascii.Error):
        payload = None
    if payload is None:
        raw = part.get_payload()
        if isinstance(raw, str):
            return raw.encode("utf-8", "surrogateescape")
        return b""
    return payload


_META_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.I)


def _part_charset(part: Message, data: bytes, content_type: str) -> str | None:
    charset = _param(part, "charset")
    if not charset and content_type == "text/html":
        match = _META_CHARSET_RE.search(data[:4096])
        if match:
            charset = match.group(1).decode("ascii")
    return charset


_BODY_RE = re.compile(r"<body\b[^>]*>(.*?)(?:</body\s*>|\Z)", re.I | re.S)
_HEAD_RE = re.compile(r"<head\b.*?</head\s*>", re.I | re.S)


def html_fragment(html: str) -> str:
    """The inside of ``<body>`` (or the document without ``<head>``), for display and for
    joining several HTML parts into one."""
    match = _BODY_RE.search(html)
    if match:
        return match.group(1).strip()
    return _HEAD_RE.sub("", html).strip()


def _text_to_html(text: str) -> str:
    from tickets.services import text_to_html

    return text_to_html(text)


def _html_to_text(html: str) -> str:
    from tickets.services import html_to_text, sanitize_html

    return html_to_text(sanitize_html(html))


class _Walker:
    """Walks the MIME tree once: bodies out, attachments and reports aside."""

    def __init__(self, parsed: ParsedEmail, *, keep_attachments: bool) -> None:
        self.parsed = parsed
        self.keep_attachments = keep_attachments
        self.parts_seen = 0
        self.tnef_body: tuple[str | None, str | None] | None = None

    def attach(self, part: Message, data: bytes, content_type: str, *, inline: bool) -> None:
        if not self.keep_attachments:
            return
        is_tnef = content_type in _TNEF_TYPES or _filename(part).lower() == "winmail.dat"
        if is_tnef and self._unpack_tnef(data):
            return
        filename = _filename(part) or _default_filename(content_type, len(self.parsed.attachments))
        content_id = normalise_message_id(", ".join(_raw_headers(part, "content-id")))
        self.parsed.attachments.append(
            ParsedAttachment(
                filename=filename,
                content_type=content_type,
                data=data,
                content_id=content_id,
                inline=inline or _disposition(part) == "inline",
            )
        )

    def _unpack_tnef(self, data: bytes) -> bool:
        attachments, html, text = unpack_tnef(data)
        if attachments is None:
            return False
        self.parsed.attachments.extend(attachments)
        if (html or text) and self.tnef_body is None:
            self.tnef_body = (html, text)
        return True

    def walk(self, part: Message, depth: int) -> tuple[str | None, str | None]:
        self.parts_seen += 1
        if depth > MAX_DEPTH or self.parts_seen > MAX_PARTS:
            return None, None
        content_type = part.get_content_type()
        if part.is_multipart():
            return self._multipart(part, content_type, depth)
        if content_type == "message/delivery-status":
            self._delivery_status(part)
            return None, None
        if content_type == "text/rfc822-headers":
            self._original_headers(HeaderParser(policy=policy.compat32).parsestr(_text(part)))
            return None, None
        data = _payload_bytes(part)
        disposition = _disposition(part)
        if content_type.startswith("multipart/"):
            # A multipart without its boundary: its body is all there is; read it as text.
            return None, _newlines(decode_bytes(data, _param(part, "charset")))
        is_body_text = content_type in ("text/plain", "text/html") and not _filename(part)
        if is_body_text and disposition != "attachment":
            text = _newlines(decode_bytes(data, _part_charset(part, data, content_type)))
            if content_type == "text/html":
                return text, None
            return None, text
        self.attach(part, data, content_type, inline=False)
        return None, None

    def _multipart(
        self, part: Message, content_type: str, depth: int
    ) -> tuple[str | None, str | None]:
        children = part.get_payload()
        if not isinstance(children, list):
            children = []
        if content_type == "message/rfc822" or content_type.startswith("message/"):
            return self._attached_message(part, children, content_type, depth)
        if content_type == "multipart/alternative":
            html = text = None
            for child in children:
                child_html, child_text = self.walk(child, depth + 1)
                html = child_html if child_html is not None else html
                text = child_text if child_text is not None else text
            return html, text
        if content_type == "multipart/related" and children:
            start = normalise_message_id(_param(part, "start") or "")
            root = next(
                (
                    c
                    for c in children
                    if start and normalise_message_id(c.get("content-id", "")) == start
                ),
                children[0],
            )
            html, text = self.walk(root, depth + 1)
            for child in children:
                if child is root:
                    continue
                if child.is_multipart():
                    self.walk(child, depth + 1)
                else:
                    self.parts_seen += 1
                    child_type = child.get_content_type()
                    self.attach(child, _payload_bytes(child), child_type, inline=True)
            return html, text
        if content_type == "multipart/report":
            html, text = self.walk(children[0], depth + 1) if children else (None, None)
            for child in children[1:]:
                if child.get_content_type() == "message/rfc822":
                    inner = child.get_payload()
                    if isinstance(inner, list) and inner:
                        self._original_headers(inner[0])
                    continue
                self.walk(child, depth + 1)
            return html, text
        # multipart/mixed and anything unknown: every body part, in order.
        pieces: list[tuple[str | None, str | None]] = []
        for child in children:
            child_html, child_text = self.walk(child, depth + 1)
            if child_html is not None or child_text is not None:
                pieces.append((child_html, child_text))
        if not pieces:
            return None, None
        if len(pieces) == 1:
            return pieces[0]
        html = None
        if any(h is not None for h, _ in pieces):
            html = "".join(
                html_fragment(h) if h is not None else _text_to_html(t or "") for h, t in pieces
            )
        text = "\n\n".join(t if t is not None else _html_to_text(h or "") for h, t in pieces)
        return html, text

    def _attached_message(
        self, part: Message, children: list, content_type: str, depth: int
    ) -> tuple[None, None]:
        if content_type == "message/delivery-status":
            self._delivery_status(part)
            return None, None
        inner = children[0] if children else None
        if inner is not None:
            senders = parse_address_list(", ".join(_raw_headers(inner, "from")))
            if senders:
                self.parsed.attached_senders.append(senders[0])
        if not self.keep_attachments:
            return None, None
        try:
            data = inner.as_bytes(policy=policy.compat32) if inner is not None else b""
        except (TypeError, ValueError, LookupError, UnicodeError):
            data = inner.as_string().encode("utf-8", "surrogateescape") if inner else b""
        name = _filename(part)
        if not name:
            subject = header(inner, "subject") if inner is not None else ""
            name = (subject[:100] or "forwarded message") + ".eml"
        self.parsed.attachments.append(
            ParsedAttachment(filename=name, content_type="message/rfc822", data=data)
        )
        return None, None

    def _report(self) -> DeliveryReport:
        if self.parsed.report is None:
            self.parsed.report = DeliveryReport()
        return self.parsed.report

    def _delivery_status(self, part: Message) -> None:
        report = self._report()
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else []
        if not blocks and isinstance(payload, str):
            blocks = [
                HeaderParser(policy=policy.compat32).parsestr(chunk)
                for chunk in re.split(r"\r?\n\r?\n", payload)
                if chunk.strip()
            ]
        for block in blocks:
            recipient = header(block, "final-recipient") or header(block, "original-recipient")
            if not recipient:
                continue
            address = recipient.split(";", 1)[-1].strip().strip("<>").lower()
            report.failures.append(
                DeliveryFailure(
                    recipient=address[:254],
                    action=header(block, "action").lower(),
                    status=header(block, "status"),
                    diagnostic=" ".join(header(block, "diagnostic-code").split())[:500],
                )
            )

    def _original_headers(self, original: Message) -> None:
        report = self._report()
        report.original_message_id = normalise_message_id(
            ", ".join(_raw_headers(original, "message-id"))
        )
        report.original_in_reply_to = message_id_list(
            " ".join(_raw_headers(original, "in-reply-to"))
        )
        report.original_references = message_id_list(" ".join(_raw_headers(original, "references")))


def _newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _text(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):
        return "\n".join(_text(p) for p in payload)
    data = _payload_bytes(part)
    return decode_bytes(data, _param(part, "charset"))


def _default_filename(content_type: str, index: int) -> str:
    extension = mimetypes.guess_extension(content_type) or ".bin"
    stem = "image" if content_type.startswith("image/") else "attachment"
    return f"{stem}{index + 1}{extension}"


# --- winmail.dat ----------------------------------------------------------------------------


def unpack_tnef(
    data: bytes,
) -> tuple[list[ParsedAttachment] | None, str | None, str | None]:
    """The files (and body) inside an Outlook winmail.dat; ``(None, ...)`` when the data is
    not TNEF at all, so the caller keeps it as a plain attachment."""
    from tnefparse.tnef import TNEF

    try:
        tnef = TNEF(data, do_checksum=True)
    except (ValueError, IndexError, KeyError, TypeError, UnicodeError, struct.error):
        return None, None, None
    attachments = []
    for index, item in enumerate(tnef.attachments):
        try:
            name = item.long_filename()
        except (UnicodeError, AttributeError, TypeError):
            name = ""
        if isinstance(name, bytes):
            name = decode_bytes(name.rstrip(b"\x00"))
        content = item.data if isinstance(item.data, bytes) else b""
        attachments.append(
            ParsedAttachment(
                filename=(name or f"attachment{index + 1}.bin").strip("\x00"),
                content_type="application/octet-stream",
                data=content,
            )
        )
    html = _tnef_text(getattr(tnef, "htmlbody", None))
    text = _tnef_text(getattr(tnef, "body", None))
    return attachments, html, text


def _tnef_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return _newlines(decode_bytes(value.rstrip(b"\x00"))) or None
    return _newlines(str(value).rstrip("\x00")) or None
