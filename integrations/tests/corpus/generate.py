"""Writes the inbound-mail corpus: ``NNN-name.eml`` files and ``manifest.json``.

    python integrations/tests/corpus/generate.py [OUTPUT_DIR]

Each message is built here, next to what the pipeline must make of it, so the files and
their expectations cannot drift apart (``test_inbound_corpus`` also regenerates the
corpus and compares it byte for byte with the committed files). Well-formed messages are
built with the standard library's ``email`` package; the broken ones (raw 8-bit headers,
wrong charset labels, broken encoded-words, missing boundaries, bad base64, garbage) are
written as bytes by hand. Everything is deterministic: fixed dates, ids and boundaries.

The messages are ingested in file order into the mailbox ``support@acme.test`` of a fresh
workspace ("Acme Support", with agents Alice and Bob and the company Initech owning the
domain ``initech.test``), so replies can thread onto the tickets that earlier files open,
and a ``[#N]`` subject token can name a ticket by the number it will get.

Manifest keys, per message (all but ``file`` and ``status`` optional):

- ``status``: processed / ignored / failed; ``reason``: the start of InboundEmail.reason;
- ``ticket``: "new" (this message opens a ticket) or the file whose ticket it lands on;
- ``customer`` / ``customer_name`` / ``company``: who the ticket (or the comment) is from;
- ``subject``: the decoded subject; ``ticket_subject``: the subject of the new ticket;
- ``attachments`` / ``inline`` / ``filenames``: the attachments saved from the message;
- ``body_contains`` / ``body_excludes``: the displayed text (quoted history stripped);
- ``html_contains`` / ``html_excludes``: the displayed, sanitised HTML;
- ``original_contains``: the full first message kept in TicketBody;
- ``note_contains``: an internal note the message caused on its ticket;
- ``ticket_status``; ``auto_reply``; ``bounced``: an address now flagged as bouncing;
- ``duplicate_of``: the file whose row this message turned out to be;
- ``before``: actions the test performs first: ["resolve"|"close", file] or
  ["merge", file, into_file].
"""

from __future__ import annotations

import base64
import json
import quopri
import struct
import sys
import zlib
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

MAILBOX = "support@acme.test"
SETTINGS = {
    # Small limits, so the "huge message" and "oversized attachment" cases stay small files.
    "MAX_INBOUND_EMAIL_SIZE": 128 * 1024,
    "MAX_ATTACHMENT_SIZE": 32 * 1024,
}
START = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)


# --- Small files ---------------------------------------------------------------------------


def _png(width: int = 2, height: int = 2, colour: bytes = b"\xff\x00\x00") -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + colour * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


PNG = _png()
LOGO = _png(3, 1, b"\x00\x80\xff")
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
DOCX = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"word/document.xml" + b"\x00" * 16
CSV = b"date,level,message\n2024-06-03,ERROR,disk full\n2024-06-03,WARN,retrying\n"


def tnef(files: list[tuple[str, bytes]], body: bytes = b"") -> bytes:
    """A minimal winmail.dat (MS-TNEF): version, code page, message class, body, files."""

    def attribute(level: int, attribute_id: int, data: bytes) -> bytes:
        checksum = sum(data) & 0xFFFF
        head = struct.pack("<BHHI", level, attribute_id & 0xFFFF, attribute_id >> 16, len(data))
        return head + data + struct.pack("<H", checksum)

    out = struct.pack("<IH", 0x223E9F78, 0x0001)
    out += attribute(1, 0x00089006, struct.pack("<I", 0x00010000))  # attTnefVersion
    out += attribute(1, 0x00069007, struct.pack("<II", 1252, 0))  # attOemCodepage
    out += attribute(1, 0x00078008, b"IPM.Microsoft Mail.Note\x00")  # attMessageClass
    if body:
        out += attribute(1, 0x0002800C, body)  # attBody
    for name, data in files:
        out += attribute(2, 0x00069002, b"\x01\x00\xff\xff\xff\xff" + b"\x00" * 8)  # RendData
        out += attribute(2, 0x00018010, name.encode("cp1252") + b"\x00")  # attAttachTitle
        out += attribute(2, 0x0006800F, data)  # attAttachData
    return out


# --- Building messages --------------------------------------------------------------------


class Corpus:
    def __init__(self) -> None:
        self.entries: list[tuple[str, bytes, dict[str, Any]]] = []
        self.ids: dict[str, str] = {}
        self.numbers: dict[str, int] = {}
        self.files: dict[str, str] = {}
        self.next_number = 1

    def date(self) -> str:
        return format_datetime(START + timedelta(minutes=7 * len(self.entries)))

    def msgid(self, slug: str) -> str:
        """The Message-ID (without brackets) of the file named by its number ("001")."""
        return self.ids[slug]

    def number(self, slug: str) -> int:
        return self.numbers[slug]

    def add(self, name: str, raw: bytes, **expect: Any) -> None:
        slug = name[:3]
        assert slug == f"{len(self.entries) + 1:03d}", name
        if expect.get("ticket") == "new":
            self.numbers[slug] = self.next_number
            self.next_number += 1
        elif expect.get("ticket"):
            # "004" → "004-alternative.eml": the file whose ticket this message lands on.
            expect["ticket"] = self.files[expect["ticket"]]
        self.files[slug] = f"{name}.eml"
        self.entries.append((f"{name}.eml", raw, {"file": f"{name}.eml", **expect}))

    def message(
        self,
        slug: str,
        *,
        sender: str,
        subject: str | None,
        text: str | None = None,
        html: str | None = None,
        message_id: str | None = "",
        in_reply_to: str | None = None,
        references: list[str] | None = None,
        headers: list[tuple[str, str]] = (),
        to: str = MAILBOX,
    ) -> EmailMessage:
        msg = EmailMessage(policy=policy.SMTP)
        msg["From"] = sender
        msg["To"] = to
        if subject is not None:
            msg["Subject"] = subject
        msg["Date"] = self.date()
        if message_id is not None:
            domain = sender.rsplit("@", 1)[-1].strip(">")
            mid = message_id or f"{slug}.corpus@mail.{domain}"
            self.ids[slug] = mid
            msg["Message-ID"] = f"<{mid}>"
        if in_reply_to:
            msg["In-Reply-To"] = f"<{in_reply_to}>"
        if references:
            msg["References"] = " ".join(f"<{r}>" for r in references)
        for key, value in headers:
            msg[key] = value
        msg["MIME-Version"] = "1.0"
        if text is not None:
            msg.set_content(text)
        if html is not None:
            if text is None:
                msg.set_content(html, subtype="html")
            else:
                msg.add_alternative(html, subtype="html")
        return msg


def finish(msg: EmailMessage, slug: str) -> bytes:
    """Fixed boundaries (the email package picks random ones), CRLF line ends."""
    for index, part in enumerate(msg.walk()):
        if part.is_multipart():
            part.set_boundary(f"----=_Part_{slug}_{index}")
    return msg.as_bytes(policy=policy.SMTP)


def raw_message(headers: list[tuple[str, str | bytes]], body: bytes, *, crlf: bool = True) -> bytes:
    newline = b"\r\n" if crlf else b"\n"
    lines = []
    for key, value in headers:
        value = value if isinstance(value, bytes) else value.encode("ascii")
        lines.append(key.encode("ascii") + b": " + value)
    if crlf:
        body = body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return newline.join(lines) + newline + newline + body


def b64(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b"\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76)) + b"\n"


def encoded_word(text: str, charset: str = "utf-8") -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode('ascii')}?="


CAROL = "Carol Customer <carol@initech.test>"
ERIN = "Erin Engineer <erin@initech.test>"
DAN = "Dan Driver <dan@globex.test>"
HELENE = "=?utf-8?Q?H=C3=A9l=C3=A8ne_Martin?= <helene@example.fr>"
IVAN = "Ivan Ivanov <ivan@example.ru>"
JOSE = "=?utf-8?Q?Jos=C3=A9_P=C3=A9rez?= <jose@example.es>"
BOB = "Bob Agent <bob@a.test>"
ALICE = "Alice Admin <alice@a.test>"


def build() -> Corpus:
    c = Corpus()

    # --- Plain, HTML, alternatives, and replies from every common client ------------------
    msg = c.message(
        "001",
        sender=CAROL,
        subject="Printer on fire",
        text="Hello,\n\nOur printer is on fire again. Please help.\n\nCarol\n",
    )
    c.add(
        "001-plain-ascii",
        finish(msg, "001"),
        status="processed",
        reason="new_ticket",
        ticket="new",
        customer="carol@initech.test",
        customer_name="Carol Customer",
        company="Initech",
        subject="Printer on fire",
        ticket_subject="Printer on fire",
        attachments=0,
        body_contains=["Our printer is on fire again."],
        original_contains=["Our printer is on fire again."],
    )

    quoted_text = (
        "Also the scanner makes a strange noise.\n\n"
        "On Mon, 3 Jun 2024 at 09:00, Carol Customer <carol@initech.test>\nwrote:\n\n"
        "> Hello,\n>\n> Our printer is on fire again. Please help.\n>\n> Carol\n"
    )
    quoted_html = (
        '<div dir="ltr">Also the scanner makes a strange noise.</div><br>'
        '<div class="gmail_quote gmail_quote_container"><div dir="ltr" class="gmail_attr">'
        "On Mon, 3 Jun 2024 at 09:00, Carol Customer &lt;carol@initech.test&gt; wrote:<br>"
        '</div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex">'
        "Hello,<br><br>Our printer is on fire again. Please help.<br><br>Carol</blockquote></div>"
    )
    msg = c.message(
        "002",
        sender=CAROL,
        subject="Re: Printer on fire",
        text=quoted_text,
        html=quoted_html,
        in_reply_to=c.msgid("001"),
        references=[c.msgid("001")],
    )
    c.add(
        "002-gmail-reply",
        finish(msg, "002"),
        status="processed",
        reason="reply",
        ticket="001",
        customer="carol@initech.test",
        body_contains=["Also the scanner makes a strange noise."],
        body_excludes=["Our printer is on fire", "wrote:"],
    )

    msg = c.message(
        "003",
        sender=DAN,
        subject="Website shows a blank page",
        html=(
            "<html><head><title>ignored title</title><style>p {color: red}</style></head>"
            '<body><p onclick="steal()">Since this morning the <b>website</b> is blank.</p>'
            "<script>alert('xss')</script><p>Dan</p></body></html>"
        ),
    )
    c.add(
        "003-html-only",
        finish(msg, "003"),
        status="processed",
        reason="new_ticket",
        ticket="new",
        customer="dan@globex.test",
        customer_name="Dan Driver",
        company=None,
        body_contains=["Since this morning the website is blank."],
        body_excludes=["alert", "ignored title", "color: red"],
        html_contains=["<b>website</b>"],
        html_excludes=["onclick", "<script", "<style"],
    )

    msg = c.message(
        "004",
        sender=HELENE,
        subject="Problème de facture",
        text="Bonjour,\n\nLa facture de mai est fausse.\n\nHélène\n",
        html="<p>Bonjour,</p><p>La facture de <strong>mai</strong> est fausse.</p><p>Hélène</p>",
    )
    c.add(
        "004-alternative",
        finish(msg, "004"),
        status="processed",
        reason="new_ticket",
        ticket="new",
        customer="helene@example.fr",
        customer_name="Hélène Martin",
        subject="Problème de facture",
        ticket_subject="Problème de facture",
        body_contains=["La facture de mai est fausse."],
        html_contains=["<strong>mai</strong>"],
    )

    msg = c.message(
        "005",
        sender=HELENE,
        subject="RE: Problème de facture",
        text="Voici le numéro : F-2024-05.\n\n________________________________\n"
        "From: Hélène Martin <helene@example.fr>\nSent: Monday, June 3, 2024 9:21 AM\n"
        "To: support@acme.test\nSubject: Problème de facture\n\nLa facture de mai est fausse.\n",
        html=(
            '<html><body><div dir="ltr">Voici le numéro : F-2024-05.</div>'
            '<hr style="display:inline-block;width:98%" tabindex="-1">'
            '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri"><b>From:</b> Hélène Martin'
            " &lt;helene@example.fr&gt;<br><b>Sent:</b> Monday, June 3, 2024 9:21 AM<br>"
            "<b>Subject:</b> Problème de facture</font><div>&nbsp;</div></div>"
            "<div><p>La facture de mai est fausse.</p></div></body></html>"
        ),
        in_reply_to=c.msgid("004"),
        references=[c.msgid("004")],
    )
    c.add(
        "005-outlook-web-reply",
        finish(msg, "005"),
        status="processed",
        reason="reply",
        ticket="004",
        body_contains=["Voici le numéro : F-2024-05."],
        body_excludes=["La facture de mai est fausse", "Sent:"],
        html_excludes=["<hr"],
    )

    msg = c.message(
        "006",
        sender=HELENE,
        subject="RE: Problème de facture",
        text="Et le montant devrait être 120 EUR.\n\n-----Original Message-----\n"
        "From: Hélène Martin\nSent: Monday, June 3, 2024 9:28 AM\n\nVoici le numéro.\n",
        html=(
            '<html><head><style>p.MsoNormal {margin:0}</style></head><body lang="FR">'
            '<div class="WordSection1"><p class="MsoNormal">Et le montant devrait être 120 EUR.'
            '</p><p class="MsoNormal">&nbsp;</p><div><div style="border:none;border-top:solid '
            '#E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm"><p class="MsoNormal"><b>From:</b> '
            "Hélène Martin<br><b>Sent:</b> Monday, June 3, 2024 9:28 AM<br><b>To:</b> "
            'support@acme.test</p></div></div><p class="MsoNormal">Voici le numéro.</p>'
            "</div></body></html>"
        ),
        references=[c.msgid("004"), c.msgid("005")],
    )
    c.add(
        "006-outlook-desktop-references-only",
        finish(msg, "006"),
        status="processed",
        reason="reply",
        ticket="004",
        body_contains=["Et le montant devrait être 120 EUR."],
        body_excludes=["Voici le numéro", "Sent:"],
    )

    msg = c.message(
        "007",
        sender=DAN,
        subject="Re: Website shows a blank page",
        html=(
            '<html><body dir="auto">It is back now, thanks!<br><div><br>'
            "<div>On 3 Jun 2024, at 09:14, Dan Driver &lt;dan@globex.test&gt; wrote:</div>"
            '<br class="Apple-interchange-newline"><blockquote type="cite"><div>'
            "Since this morning the website is blank.</div></blockquote></div></body></html>"
        ),
        in_reply_to=c.msgid("003"),
        references=[c.msgid("003")],
    )
    c.add(
        "007-apple-mail-reply",
        finish(msg, "007"),
        status="processed",
        reason="reply",
        ticket="003",
        body_contains=["It is back now, thanks!"],
        body_excludes=["Since this morning", "wrote:"],
    )

    msg = c.message(
        "008",
        sender=ERIN,
        subject="Re: Printer on fire",
        text="I can confirm, the scanner too.\n\nOn 03/06/2024 09:07, Carol Customer wrote:\n"
        "> Also the scanner makes a strange noise.\n",
        html=(
            "<html><body><p>I can confirm, the scanner too.</p>"
            '<div class="moz-cite-prefix">On 03/06/2024 09:07, Carol Customer wrote:<br></div>'
            '<blockquote type="cite" cite="mid:002">Also the scanner makes a strange noise.'
            "</blockquote></body></html>"
        ),
        in_reply_to=c.msgid("002"),
        references=[c.msgid("001"), c.msgid("002")],
        headers=[("User-Agent", "Mozilla Thunderbird")],
    )
    c.add(
        "008-thunderbird-reply-colleague",
        finish(msg, "008"),
        status="processed",
        reason="reply",
        ticket="001",
        customer="erin@initech.test",
        customer_name="Erin Engineer",
        company="Initech",
        body_contains=["I can confirm, the scanner too."],
        body_excludes=["strange noise"],
    )

    # --- Structure: nesting, attachments, inline images -----------------------------------
    msg = c.message(
        "009",
        sender=IVAN,
        subject="Error screen after login",
        text="See the screenshot below.\n",
        html='<p>See the screenshot below.</p><p><img src="cid:shot1@corpus" alt="shot"></p>',
    )
    msg.get_payload()[1].add_related(PNG, "image", "png", cid="<shot1@corpus>", filename="s.png")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="error-log.pdf")
    c.add(
        "009-nested-multipart",
        finish(msg, "009"),
        status="processed",
        reason="new_ticket",
        ticket="new",
        customer="ivan@example.ru",
        attachments=2,
        inline=1,
        filenames=["error-log.pdf", "s.png"],
        html_contains=['src="/v1/attachments/'],
        html_excludes=["cid:"],
    )

    msg = c.message("010", sender=DAN, subject="Logs attached", text="Three files attached.\n")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="report.pdf")
    msg.add_attachment(PNG, maintype="image", subtype="png", filename="graph.png")
    msg.add_attachment(CSV, maintype="text", subtype="csv", filename="events.csv")
    c.add(
        "010-three-attachments",
        finish(msg, "010"),
        status="processed",
        reason="new_ticket",
        ticket="new",
        customer="dan@globex.test",
        attachments=3,
        inline=0,
        filenames=["events.csv", "graph.png", "report.pdf"],
        body_contains=["Three files attached."],
    )

    msg = c.message(
        "011",
        sender=JOSE,
        subject="Logo roto",
        html='<p>El logo se ve así:</p><img src="cid:logo.jpg@01DA0001">',
    )
    msg.add_related(JPEG, "image", "jpeg", cid="<logo.jpg@01DA0001>")
    c.add(
        "011-inline-image-only",
        finish(msg, "011"),
        status="processed",
        reason="new_ticket",
        ticket="new",
        customer="jose@example.es",
        customer_name="José Pérez",
        attachments=1,
        inline=1,
        body_contains=["El logo se ve así:"],
        html_contains=['src="/v1/attachments/'],
    )

    # --- Transfer encodings and charsets --------------------------------------------------
    c.ids["012"] = "012.corpus@mail.example.de"
    c.add(
        "012-8bit-utf8",
        raw_message(
            [
                ("From", "Greta Gruber <greta@example.de>"),
                ("To", MAILBOX),
                ("Subject", "Umlaute im Text"),
                ("Date", c.date()),
                ("Message-ID", "<012.corpus@mail.example.de>"),
                ("MIME-Version", "1.0"),
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Transfer-Encoding", "8bit"),
            ],
            "Grüße aus München — ça va? 😀\nDie Straße ist gesperrt.\n".encode(),
        ),
        status="processed",
        ticket="new",
        customer="greta@example.de",
        body_contains=["Grüße aus München — ça va? 😀", "Die Straße ist gesperrt."],
    )

    long_line = "Dies ist eine sehr lange Zeile, " * 6 + "die über mehrere Zeilen umbrochen wird."
    qp_body = long_line.encode("utf-8")
    c.ids["013"] = "013.corpus@mail.example.de"
    c.add(
        "013-quoted-printable",
        raw_message(
            [
                ("From", "Greta Gruber <greta@example.de>"),
                ("To", MAILBOX),
                ("Subject", "Lange Zeilen"),
                ("Date", c.date()),
                ("Message-ID", "<013.corpus@mail.example.de>"),
                ("MIME-Version", "1.0"),
                ("Content-Type", "text/plain; charset=UTF-8"),
                ("Content-Transfer-Encoding", "quoted-printable"),
            ],
            quopri.encodestring(qp_body) + b"\n",
        ),
        status="processed",
        ticket="new",
        body_contains=[long_line],
    )

    c.ids["014"] = "014.corpus@mail.example.fr"
    c.add(
        "014-iso-8859-1",
        raw_message(
            [
                ("From", "=?iso-8859-1?q?Fran=E7ois_Dupont?= <francois@example.fr>"),
                ("To", MAILBOX),
                ("Subject", "=?ISO-8859-1?Q?Probl=E8me_de_connexion?="),
                ("Date", c.date()),
                ("Message-ID", "<014.corpus@mail.example.fr>"),
                ("MIME-Version", "1.0"),
                ("Content-Type", 'text/plain; charset="ISO-8859-1"'),
                ("Content-Transfer-Encoding", "quoted-printable"),
            ],
            quopri.encodestring(
                "Je n'arrive pas à me connecter depuis hier.\nMerci d'avance,\nFrançois\n".encode(
                    "latin-1"
                )
            ),
        ),
        status="processed",
        ticket="new",
        customer="francois@example.fr",
        customer_name="François Dupont",
        subject="Problème de connexion",
        ticket_subject="Problème de connexion",
        body_contains=["Je n'arrive pas à me connecter depuis hier.", "François"],
    )

    c.ids["015"] = "015.corpus@mail.example.com"
    c.add(
        "015-windows-1252",
        raw_message(
            [
                ("From", "Wendy Walsh <wendy@example.com>"),
                ("To", MAILBOX),
                ("Subject", "Smart quotes"),
                ("Date", c.date()),
                ("Message-ID", "<015.corpus@mail.example.com>"),
                ("MIME-Version", "1.0"),
                ("Content-Type", "text/plain; charset=windows-1252"),
                ("Content-Transfer-Encoding", "8bit"),
            ],
            "The “premium” plan costs 49 € — isn’t that too much?\n".encode("cp1252"),  # noqa: RUF001
        ),
        status="processed",
        ticket="new",
        body_contains=["The “premium” plan costs 49 € — isn’t that too much?"],  # noqa: RUF001
    )

    japanese = "プリンターが動きません。助けてください。"
    c.ids["016"] = "016.corpus@mail.example.jp"
    c.add(
        "016-shift-jis",
        raw_message(
            [
                ("From", f"{encoded_word('山田太郎', 'shift_jis')} <yamada@example.jp>"),
                ("To", MAILBOX),
                ("Subject", encoded_word("印刷できません", "iso-2022-jp")),
                ("Date", c.date()),
                ("Message-ID", "<016.corpus@mail.example.jp>"),
                ("MIME-Version", "1.0"),
                ("Content-Type", "text/plain; charset=Shift_JIS"),
                ("Content-Transfer-Encoding", "base64"),
            ],
            b64((japanese + "\n山田").encode("shift_jis")),
        ),
        status="processed",
        ticket="new",
        customer="yamada@example.jp",
        customer_name="山田太郎",
        subject="印刷できません",
        body_contains=[japanese],
    )

    russian = "Здравствуйте! Принтер в офисе не работает."
    c.ids["017"] = "017.corpus@mail.example.ru"
    c.add(
        "017-koi8-r",
        raw_message(
            [
                ("From", f"{encoded_word('Пётр Петров', 'koi8-r')} <petr@example.ru>"),
                ("To", MAILBOX),
                ("Subject", encoded_word("Принтер сломан", "koi8-r")),
                ("Date", c.date()),
                ("Message-ID", "<017.corpus@mail.example.ru>"),
                ("MIME-Version", "1.0"),
                ("Content-Type", "text/plain; charset=koi8-r"),
                ("Content-Transfer-Encoding", "8bit"),
            ],
            (russian + "\n").encode("koi8-r"),
        ),
        status="processed",
        ticket="new",
        customer_name="Пётр Петров",
        subject="Принтер сломан",
        body_contains=[russian],
    )

    msg = c.message(
        "018",
        sender="Zoë Ωmega <zoe@example.gr>",
        subject="🔥 Server down 🔥",
        text="Everything is down since 09:00 UTC. 🙏\n",
    )
    c.add(
        "018-utf8-emoji-headers",
        finish(msg, "018"),
        status="processed",
        ticket="new",
        customer_name="Zoë Ωmega",
        subject="🔥 Server down 🔥",
        body_contains=["Everything is down since 09:00 UTC. 🙏"],
    )

    def charset_case(slug: str, name: str, subject: str, content_type: str, body: bytes, **kw):
        c.ids[slug] = f"{slug}.corpus@mail.example.net"
        c.add(
            name,
            raw_message(
                [
                    ("From", f"Charset Tester {slug} <charset{slug}@example.net>"),
                    ("To", MAILBOX),
                    ("Subject", subject),
                    ("Date", c.date()),
                    ("Message-ID", f"<{slug}.corpus@mail.example.net>"),
                    ("MIME-Version", "1.0"),
                    ("Content-Type", content_type),
                    ("Content-Transfer-Encoding", "8bit"),
                ],
                body,
            ),
            status="processed",
            ticket="new",
            **kw,
        )

    charset_case(
        "019",
        "019-mislabelled-latin1-is-utf8",
        "Mislabelled as Latin-1",
        "text/plain; charset=iso-8859-1",
        "Überweisung für Bestellung №42 – danke\n".encode(),  # noqa: RUF001
        body_contains=["Überweisung für Bestellung №42 – danke"],  # noqa: RUF001
    )
    charset_case(
        "020",
        "020-mislabelled-utf8-is-cp1252",
        "Mislabelled as UTF-8",
        "text/plain; charset=utf-8",
        "Le café coûte 5 € — merci beaucoup.\n".encode("cp1252"),
        body_contains=["Le café coûte 5 € — merci beaucoup."],
    )
    charset_case(
        "021",
        "021-8bit-no-charset",
        "No charset at all",
        "text/plain",
        "Die Straße ist nass.\n".encode(),
        body_contains=["Die Straße ist nass."],
    )
    charset_case(
        "022",
        "022-unknown-charset",
        "Unknown charset label",
        'text/plain; charset="x-unknown-charset"',
        "Une question naïve sur le café.\n".encode(),
        body_contains=["Une question naïve sur le café."],
    )

    c.ids["023"] = "023.corpus@mail.example.es"
    c.add(
        "023-raw-8bit-headers",
        raw_message(
            [
                ("From", "Zoë Martín <zoe.martin@example.es>".encode()),
                ("To", MAILBOX),
                ("Subject", "Réservation annulée".encode()),
                ("Date", c.date()),
                ("Message-ID", "<023.corpus@mail.example.es>"),
                ("MIME-Version", "1.0"),
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Transfer-Encoding", "8bit"),
            ],
            "Ma réservation a été annulée.\n".encode(),
        ),
        status="processed",
        ticket="new",
        customer="zoe.martin@example.es",
        customer_name="Zoë Martín",
        subject="Réservation annulée",
        body_contains=["Ma réservation a été annulée."],
    )

    c.ids["024"] = "024.corpus@mail.example.net"
    c.add(
        "024-broken-encoded-words",
        raw_message(
            [
                ("From", "=?utf-8?B?QnJva2Vu?= Words <words@example.net>"),
                ("To", MAILBOX),
                # A base64 word without padding; one UTF-8 character split across two
                # Q-words; a word in a charset nobody knows (its bytes are windows-1252).
                (
                    "Subject",
                    "=?utf-8?B?Q2Fmw6kg?= =?UTF-8?Q?cr=C3?=\r\n =?UTF-8?Q?=A8me_?= "
                    "=?x-bogus?Q?br=FBl=E9e?=",
                ),
                ("Date", c.date()),
                ("Message-ID", "<024.corpus@mail.example.net>"),
                ("Content-Type", "text/plain; charset=utf-8"),
            ],
            b"Dessert order.\n",
        ),
        status="processed",
        ticket="new",
        customer_name="Broken Words",
        subject="Café crème brûlée",
    )

    # --- Filenames ------------------------------------------------------------------------
    c.ids["025"] = "025.corpus@mail.example.de"
    c.add(
        "025-rfc2231-filenames",
        raw_message(
            [
                ("From", "Greta Gruber <greta@example.de>"),
                ("To", MAILBOX),
                ("Subject", "Rechnungen"),
                ("Date", c.date()),
                ("Message-ID", "<025.corpus@mail.example.de>"),
                ("MIME-Version", "1.0"),
                ("Content-Type", 'multipart/mixed; boundary="b025"'),
            ],
            b"--b025\nContent-Type: text/plain; charset=utf-8\n\nZwei Dateien.\n"
            b"--b025\nContent-Type: application/pdf\n"
            b"Content-Disposition: attachment;\n"
            b" filename*=UTF-8''%E2%82%AC%20Rechnung%20M%C3%A4rz.pdf\n"
            b"Content-Transfer-Encoding: base64\n\n" + b64(PDF) + b"--b025\n"
            b"Content-Type: application/vnd.openxmlformats-officedocument.wordprocessingml."
            b"document\nContent-Disposition: attachment;\n"
            b" filename*0*=utf-8''R%C3%A9sum%C3%A9%20tr%C3%A8s%20long;\n"
            b' filename*1="nom de fichier.docx"\n'
            b"Content-Transfer-Encoding: base64\n\n" + b64(DOCX) + b"--b025--\n",
        ),
        status="processed",
        ticket="new",
        attachments=2,
        filenames=["Résumé très longnom de fichier.docx", "€ Rechnung März.pdf"],
    )

    c.ids["026"] = "026.corpus@mail.example.de"
    c.add(
        "026-rfc2047-filename",
        raw_message(
            [
                ("From", "Greta Gruber <greta@example.de>"),
                ("To", MAILBOX),
                ("Subject", "Beleg"),
                ("Date", c.date()),
                ("Message-ID", "<026.corpus@mail.example.de>"),
                ("MIME-Version", "1.0"),
                ("Content-Type", 'multipart/mixed; boundary="b026"'),
            ],
            b"--b026\nContent-Type: text/plain; charset=utf-8\n\nAnbei der Beleg.\n"
            b"--b026\nContent-Type: application/octet-stream;\n"
            b' name="=?utf-8?B?w5xiZXJ3ZWlzdW5nc2JlbGVnLnBkZg==?="\n'
            b"Content-Disposition: attachment;\n"
            b' filename="=?utf-8?B?w5xiZXJ3ZWlzdW5nc2JlbGVnLnBkZg==?="\n'
            b"Content-Transfer-Encoding: base64\n\n" + b64(PDF) + b"--b026--\n",
        ),
        status="processed",
        ticket="new",
        attachments=1,
        filenames=["Überweisungsbeleg.pdf"],
    )

    msg = c.message("027", sender=DAN, subject="Odd file names", text="Two odd names.\n")
    msg.add_attachment(CSV, maintype="text", subtype="plain", filename="../../etc/passwd")
    msg.add_attachment(b"<p>hi</p>", maintype="text", subtype="html", filename="<script>.html")
    c.add(
        "027-unsafe-filenames",
        finish(msg, "027"),
        status="processed",
        ticket="new",
        attachments=2,
        filenames=["_script_.html", "passwd"],
    )

    c.ids["028"] = "028.corpus@mail.example.com"
    c.add(
        "028-winmail-dat",
        raw_message(
            [
                ("From", "Otto Outlook <otto@example.com>"),
                ("To", MAILBOX),
                ("Subject", "Quarterly figures"),
                ("Date", c.date()),
                ("Message-ID", "<028.corpus@mail.example.com>"),
                ("MIME-Version", "1.0"),
                ("Content-Type", 'multipart/mixed; boundary="b028"'),
                ("X-MS-Has-Attach", "yes"),
                ("X-MS-TNEF-Correlator", "<00000000@example.com>"),
            ],
            b"--b028\nContent-Type: text/plain; charset=us-ascii\n\n"
            b"Please find the figures attached.\n"
            b'--b028\nContent-Type: application/ms-tnef; name="winmail.dat"\n'
            b'Content-Disposition: attachment; filename="winmail.dat"\n'
            b"Content-Transfer-Encoding: base64\n\n"
            + b64(tnef([("figures.csv", CSV), ("chart.png", PNG)], b"Please find..."))
            + b"--b028--\n",
        ),
        status="processed",
        ticket="new",
        attachments=2,
        filenames=["chart.png", "figures.csv"],
        body_contains=["Please find the figures attached."],
    )

    # --- Automatic mail -------------------------------------------------------------------
    msg = c.message(
        "029",
        sender=CAROL,
        subject="Automatic reply: Printer on fire",
        text="I am out of the office until Monday.\n",
        in_reply_to=c.msgid("001"),
        references=[c.msgid("001")],
        headers=[("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All")],
    )
    c.add(
        "029-out-of-office-auto-submitted",
        finish(msg, "029"),
        before=[["resolve", "001-plain-ascii.eml"]],
        status="processed",
        reason="auto_reply",
        ticket="001",
        auto_reply=True,
        ticket_status="resolved",
        body_contains=["I am out of the office until Monday."],
    )

    msg = c.message(
        "030",
        sender=DAN,
        subject="Out of Office: Logs attached",
        text="I'm away. For urgent matters call the hotline.\n",
        references=[c.msgid("010")],
        headers=[("X-Autoreply", "yes")],
    )
    c.add(
        "030-out-of-office-x-autoreply",
        finish(msg, "030"),
        status="processed",
        reason="auto_reply",
        ticket="010",
        auto_reply=True,
    )

    msg = c.message(
        "031",
        sender="Fiona Away <fiona@away.test>",
        subject="Away",
        text="I am on holiday.\n",
        headers=[("X-Autorespond", "yes")],
    )
    c.add(
        "031-auto-reply-unthreaded",
        finish(msg, "031"),
        status="ignored",
        reason="auto_reply_unthreaded",
    )

    for slug, name, headers, reason in [
        (
            "032",
            "032-auto-generated",
            [("Auto-Submitted", "auto-generated")],
            "auto_submitted:auto-generated",
        ),
        ("033", "033-precedence-bulk", [("Precedence", "bulk")], "precedence:bulk"),
        ("034", "034-precedence-junk", [("Precedence", "junk")], "precedence:junk"),
        (
            "035",
            "035-list-id",
            [("List-Id", "Users <users.lists.example.org>")],
            "mailing_list:list-id",
        ),
        (
            "036",
            "036-list-unsubscribe",
            [("List-Unsubscribe", "<mailto:unsubscribe@news.example.org>")],
            "mailing_list:list-unsubscribe",
        ),
        (
            "037",
            "037-auto-response-suppress",
            [("X-Auto-Response-Suppress", "All")],
            "auto_response_suppress:all",
        ),
        ("038", "038-null-return-path", [("Return-Path", "<>")], "null_return_path"),
    ]:
        msg = c.message(
            slug,
            sender=f"Robot {slug} <robot{slug}@robots.test>",
            subject=f"Automatic message {slug}",
            text="Beep.\n",
            headers=headers,
        )
        c.add(name, finish(msg, slug), status="ignored", reason=reason)

    msg = c.message(
        "039",
        sender="Mail Delivery Subsystem <MAILER-DAEMON@mx.example.net>",
        subject="Undeliverable: hello",
        text="Your message could not be delivered.\n",
    )
    c.add(
        "039-mailer-daemon-plain",
        finish(msg, "039"),
        status="ignored",
        reason="automated_sender:mailer-daemon@mx.example.net",
    )
    msg = c.message(
        "040",
        sender="Shop <no-reply@notifications.example.com>",
        subject="Your order shipped",
        text="Tracking: 123.\n",
    )
    c.add("040-no-reply-sender", finish(msg, "040"), status="ignored", reason="automated_sender")
    msg = c.message(
        "041",
        sender=CAROL,
        subject="Re: Printer on fire",
        text="A copy of our own message came back.\n",
        message_id="5f3c2a.1717405200@enque.local",
    )
    c.add("041-own-message-id", finish(msg, "041"), status="ignored", reason="own_message")

    # --- Bounces --------------------------------------------------------------------------
    def bounce(slug: str, name: str, recipient: str, original: bytes, kind: str, **kw):
        c.ids[slug] = f"{slug}.bounce@mx.example.net"
        body = (
            (
                f"--b{slug}\nContent-Type: text/plain; charset=us-ascii\n\n"
                f"This is the mail system at host mx.example.net.\n"
                f"I'm sorry to have to inform you that your message could not be delivered.\n"
                f"--b{slug}\nContent-Type: message/delivery-status\n\n"
                f"Reporting-MTA: dns; mx.example.net\nArrival-Date: {c.date()}\n\n"
                f"Final-Recipient: rfc822; {recipient}\nOriginal-Recipient: rfc822;{recipient}\n"
                f"Action: failed\nStatus: 5.1.1\n"
                f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected\n\n"
                f"--b{slug}\nContent-Type: {kind}\n\n"
            ).encode()
            + original
            + f"\n--b{slug}--\n".encode()
        )
        c.add(
            name,
            raw_message(
                [
                    ("Return-Path", "<>"),
                    ("From", "MAILER-DAEMON@mx.example.net (Mail Delivery System)"),
                    ("To", MAILBOX),
                    ("Subject", "Undelivered Mail Returned to Sender"),
                    ("Date", c.date()),
                    ("Message-ID", f"<{slug}.bounce@mx.example.net>"),
                    ("Auto-Submitted", "auto-replied"),
                    ("MIME-Version", "1.0"),
                    (
                        "Content-Type",
                        f'multipart/report; report-type=delivery-status; boundary="b{slug}"',
                    ),
                ],
                body,
            ),
            **kw,
        )

    bounce(
        "042",
        "042-bounce-dsn",
        "helene@example.fr",
        (
            "From: Acme Support <support@acme.test>\nTo: helene@example.fr\n"
            "Subject: Re: Problème de facture\nMessage-ID: <a1b2c3.1717405999@enque.local>\n"
            f"In-Reply-To: <{c.msgid('004')}>\nContent-Type: text/plain\n\nWe are on it.\n"
        ).encode(),
        "message/rfc822",
        status="processed",
        reason="bounce",
        ticket="004",
        bounced="helene@example.fr",
        note_contains=["Delivery to helene@example.fr failed: 5.1.1", "flagged as bouncing"],
    )
    bounce(
        "043",
        "043-bounce-headers-only",
        "dan@globex.test",
        (
            "From: Acme Support <support@acme.test>\nTo: dan@globex.test\n"
            "Subject: Re: Logs attached\nMessage-ID: <d4e5f6.1717406000@enque.local>\n"
            f"References: <{c.msgid('010')}>\n"
        ).encode(),
        "text/rfc822-headers",
        status="processed",
        reason="bounce",
        ticket="010",
        bounced="dan@globex.test",
        note_contains=["Delivery to dan@globex.test failed"],
    )
    bounce(
        "044",
        "044-bounce-unmatched",
        "nobody@nowhere.test",
        b"From: someone@acme.test\nMessage-ID: <unknown@elsewhere.test>\n\nHi\n",
        "message/rfc822",
        status="ignored",
        reason="bounce_unmatched",
    )

    # --- Forwards -------------------------------------------------------------------------
    msg = c.message(
        "045",
        sender=BOB,
        subject="Fwd: Broken invoice link",
        text=(
            "Forwarding this one from Gina.\n\n"
            "---------- Forwarded message ---------\n"
            "From: Gina Green <gina@greenhouse.test>\n"
            "Date: Mon, 3 Jun 2024 at 08:15\nSubject: Broken invoice link\nTo: <bob@a.test>\n\n"
            "Hi, the link in your invoice email gives a 404.\n"
        ),
    )
    c.add(
        "045-agent-forward-gmail",
        finish(msg, "045"),
        status="processed",
        reason="forwarded",
        ticket="new",
        customer="gina@greenhouse.test",
        customer_name="Gina Green",
        ticket_subject="Broken invoice link",
        body_contains=["the link in your invoice email gives a 404"],
        note_contains=["Forwarded into support@acme.test by Bob Agent <bob@a.test>"],
    )

    msg = c.message(
        "046",
        sender=ALICE,
        subject="FW: Order 1234 missing",
        text=(
            "Can someone look at this?\n\n________________________________\n"
            "From: Harry Hill [mailto:harry@hill.test]\nSent: Monday, June 3, 2024 8:00 AM\n"
            "To: Alice Admin\nSubject: Order 1234 missing\n\nMy order never arrived.\n"
        ),
        html=(
            "<div>Can someone look at this?</div>"
            '<hr style="display:inline-block;width:98%" tabindex="-1">'
            '<div id="divRplyFwdMsg" dir="ltr"><b>From:</b> Harry Hill &lt;harry@hill.test&gt;'
            "<br><b>Sent:</b> Monday, June 3, 2024 8:00 AM<br><b>Subject:</b> Order 1234 "
            "missing</div><div>My order never arrived.</div>"
        ),
    )
    c.add(
        "046-agent-forward-outlook",
        finish(msg, "046"),
        status="processed",
        reason="forwarded",
        ticket="new",
        customer="harry@hill.test",
        customer_name="Harry Hill",
        ticket_subject="Order 1234 missing",
        body_contains=["My order never arrived."],
    )

    msg = c.message(
        "047",
        sender=CAROL,
        subject="Fwd: Quote from our vendor",
        text=(
            "Is this price right?\n\n---------- Forwarded message ---------\n"
            "From: Vendor Sales <sales@vendor.test>\nDate: Fri, 31 May 2024\n"
            "Subject: Quote\n\nThe price is 1,000 EUR.\n"
        ),
    )
    c.add(
        "047-customer-forward",
        finish(msg, "047"),
        status="processed",
        reason="new_ticket",
        ticket="new",
        customer="carol@initech.test",
        ticket_subject="Fwd: Quote from our vendor",
        body_contains=["Is this price right?", "The price is 1,000 EUR."],
    )

    # --- Subject tokens -------------------------------------------------------------------
    msg = c.message(
        "048",
        sender=CAROL,
        subject=f"Re: [#{c.number('001')}] Printer on fire",
        text="Still burning, please call me.\n",
    )
    c.add(
        "048-subject-token-customer",
        finish(msg, "048"),
        status="processed",
        reason="reply",
        ticket="001",
        ticket_status="open",
    )
    msg = c.message(
        "049",
        sender="Sam Stranger <sam@stranger.test>",
        subject=f"[#{c.number('001')}] please give me access",
        text="I want to see this ticket.\n",
    )
    c.add(
        "049-subject-token-stranger",
        finish(msg, "049"),
        status="processed",
        reason="new_ticket",
        ticket="new",
        customer="sam@stranger.test",
    )
    msg = c.message(
        "050",
        sender=ERIN,
        subject=f"[#{c.number('001')}] one more thing",
        text="The fax machine as well.\n",
    )
    c.add(
        "050-subject-token-participant",
        finish(msg, "050"),
        status="processed",
        reason="reply",
        ticket="001",
        customer="erin@initech.test",
    )

    # --- Missing and broken parts ---------------------------------------------------------
    c.add(
        "051-no-message-id",
        raw_message(
            [
                ("From", "Nora None <nora@example.org>"),
                ("To", MAILBOX),
                ("Subject", "No Message-ID here"),
                ("Date", c.date()),
            ],
            b"My mailer forgot the Message-ID.\n",
        ),
        status="processed",
        ticket="new",
        customer="nora@example.org",
        message_id_prefix="sha256-",
    )
    c.ids["052"] = "052.corpus@mail.example.org"
    c.add(
        "052-no-subject",
        raw_message(
            [
                ("From", "Nora None <nora@example.org>"),
                ("To", MAILBOX),
                ("Date", c.date()),
                ("Message-ID", "<052.corpus@mail.example.org>"),
            ],
            b"I forgot the subject.\n",
        ),
        status="processed",
        ticket="new",
        subject="",
        ticket_subject="(no subject)",
    )
    msg = c.message("053", sender=DAN, subject="Only an attachment", text=None)
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="only.pdf")
    c.add(
        "053-attachment-only",
        finish(msg, "053"),
        status="processed",
        ticket="new",
        attachments=1,
        filenames=["only.pdf"],
    )

    msg = c.message("054", sender=DAN, subject="Huge message", text="A very big video.\n")
    msg.add_attachment(b"ENQUE-" * 30000, maintype="video", subtype="mp4", filename="big.mp4")
    c.add(
        "054-huge-message",
        finish(msg, "054"),
        status="processed",
        ticket="new",
        attachments=0,
        body_contains=["A very big video."],
        note_contains=["over the 128.0 KB limit", "imported without its attachments"],
    )

    msg = c.message("055", sender=DAN, subject="Big attachment", text="One big, one small.\n")
    msg.add_attachment(b"ZIP!" * 10000, maintype="application", subtype="zip", filename="dump.zip")
    msg.add_attachment(CSV, maintype="text", subtype="csv", filename="small.csv")
    c.add(
        "055-oversized-attachment",
        finish(msg, "055"),
        status="processed",
        ticket="new",
        attachments=1,
        filenames=["small.csv"],
        note_contains=["Not imported, over the 32.0 KB attachment limit", "dump.zip (39.1 KB)"],
    )

    c.add(
        "056-garbage",
        bytes(range(256)) * 4 + b"\x00\xff not an email at all \xfe\n",
        status="failed",
        reason="no_sender",
    )

    c.ids["057"] = "057.corpus@mail.example.org"
    c.add(
        "057-missing-boundary",
        raw_message(
            [
                ("From", "Bruno Broken <bruno@broken.test>"),
                ("To", MAILBOX),
                ("Subject", "Multipart without a boundary"),
                ("Date", c.date()),
                ("Message-ID", "<057.corpus@mail.example.org>"),
                ("MIME-Version", "1.0"),
                ("Content-Type", "multipart/mixed"),
            ],
            b"My mail program wrote this without a boundary.\n",
        ),
        status="processed",
        ticket="new",
        body_contains=["without a boundary"],
    )
    c.ids["058"] = "058.corpus@mail.example.org"
    c.add(
        "058-unclosed-boundary-bad-base64",
        raw_message(
            [
                ("From", "Bruno Broken <bruno@broken.test>"),
                ("To", MAILBOX),
                ("Subject", "Broken base64"),
                ("Date", c.date()),
                ("Message-ID", "<058.corpus@mail.example.org>"),
                ("MIME-Version", "1.0"),
                ("Content-Type", 'multipart/alternative; boundary="b058"'),
            ],
            b"--b058\nContent-Type: text/plain; charset=utf-8\n"
            b"Content-Transfer-Encoding: base64\n\n"
            b"SGVsbG8gZnJvbSBh!!IGJyb2tlbiBtYWlsZXI\n",
        ),
        status="processed",
        ticket="new",
        body_contains=["Hello from a broken mailer"],
    )

    inner = c.message(
        "000", sender="Original Author <author@elsewhere.test>", subject="Original problem"
    )
    inner.set_content("This is the message being forwarded as an attachment.\n")
    del c.ids["000"]
    msg = c.message("059", sender=IVAN, subject="See attached mail", text="Forwarded below.\n")
    msg.add_attachment(inner)
    c.add(
        "059-forward-as-attachment",
        finish(msg, "059"),
        status="processed",
        reason="new_ticket",
        ticket="new",
        customer="ivan@example.ru",
        attachments=1,
        filenames=["Original problem.eml"],
    )

    msg = c.message(
        "060",
        sender="Kim Kimura <kim@kimco.test>",
        subject="Reply to my assistant please",
        text="Please answer my assistant.\n",
        headers=[("Reply-To", "Kim's Assistant <assistant@kimco.test>")],
    )
    c.add(
        "060-reply-to-differs",
        finish(msg, "060"),
        status="processed",
        ticket="new",
        customer="kim@kimco.test",
        reply_to="assistant@kimco.test",
    )

    duplicate = finish(
        c.message(
            "061",
            sender=CAROL,
            subject="Printer on fire",
            text="Hello,\n\nOur printer is on fire again. Please help.\n\nCarol\n",
            message_id=c.msgid("001"),
        ),
        "061",
    )
    c.add(
        "061-duplicate-message-id",
        b"Received: from relay2.initech.test by mx.acme.test; "
        + c.date().encode()
        + b"\r\n"
        + duplicate,
        status="processed",
        duplicate_of="001-plain-ascii.eml",
    )

    # --- Threading across state changes ---------------------------------------------------
    msg = c.message(
        "062",
        sender=DAN,
        subject="Re: Logs attached",
        text="The logs problem is back.\n",
        in_reply_to=c.msgid("010"),
        references=[c.msgid("010")],
    )
    c.add(
        "062-reply-to-closed-ticket",
        finish(msg, "062"),
        before=[["close", "010-three-attachments.eml"]],
        status="processed",
        reason="follow_up",
        ticket="new",
        customer="dan@globex.test",
        note_contains=[f"Follow-up to ticket #{c.number('010')}"],
    )
    msg = c.message(
        "063",
        sender=JOSE,
        subject="Re: Logo roto",
        text="¿Alguna novedad?\n",
        in_reply_to=c.msgid("011"),
        references=[c.msgid("011")],
    )
    c.add(
        "063-reply-to-merged-ticket",
        finish(msg, "063"),
        before=[["merge", "011-inline-image-only.eml", "009-nested-multipart.eml"]],
        status="processed",
        reason="reply",
        ticket="009",
        customer="jose@example.es",
    )

    msg = c.message(
        "064",
        sender="Greta Gruber <greta@example.de>",
        subject="Re: Umlaute im Text",
        text=(
            "Danke, alles gut jetzt.\n\n"
            "> On 3 Jun 2024, at 10:17, Greta Gruber <greta@example.de> wrote:\n>\n"
            "> Grüße aus München\n"
        ),
        in_reply_to=c.msgid("012"),
    )
    c.add(
        "064-apple-plain-text-reply",
        finish(msg, "064"),
        status="processed",
        reason="reply",
        ticket="012",
        body_contains=["Danke, alles gut jetzt."],
        body_excludes=["Grüße aus München"],
    )
    msg = c.message(
        "065",
        sender="Greta Gruber <greta@example.de>",
        subject="Re: Lange Zeilen",
        text=(
            "On Mon, 3 Jun 2024, Support wrote:\n> Which browser?\n\nFirefox 126.\n\n"
            "> Which system?\n\nWindows 11.\n"
        ),
        in_reply_to=c.msgid("013"),
    )
    c.add(
        "065-interleaved-reply",
        finish(msg, "065"),
        status="processed",
        reason="reply",
        ticket="013",
        body_contains=["Firefox 126.", "Windows 11.", "Which browser?"],
    )
    msg = c.message(
        "066",
        sender=BOB,
        subject="Re: Website shows a blank page",
        text="Looks like the CDN again; I'll check.\n",
        in_reply_to=c.msgid("003"),
    )
    c.add(
        "066-agent-email-reply",
        finish(msg, "066"),
        status="processed",
        reason="agent_note",
        ticket="003",
        internal=True,
    )
    msg = c.message(
        "067", sender=f"Acme Support <{MAILBOX}>", subject="Loop", text="From ourselves.\n"
    )
    c.add("067-from-own-mailbox", finish(msg, "067"), status="ignored", reason="from_own_mailbox")

    c.ids["068"] = "068.corpus@mail.example.ru"
    c.add(
        "068-html-meta-charset",
        raw_message(
            [
                ("From", "Olga Orlova <olga@example.ru>"),
                ("To", MAILBOX),
                ("Subject", "Meta charset"),
                ("Date", c.date()),
                ("Message-ID", "<068.corpus@mail.example.ru>"),
                ("MIME-Version", "1.0"),
                ("Content-Type", "text/html"),
                ("Content-Transfer-Encoding", "8bit"),
            ],
            (
                '<html><head><meta http-equiv="Content-Type" content="text/html; '
                'charset=windows-1251"></head><body><p>Добрый день! Счёт не пришёл.</p>'
                "</body></html>\n"
            ).encode("cp1251"),
        ),
        status="processed",
        ticket="new",
        body_contains=["Добрый день! Счёт не пришёл."],
    )
    msg = c.message(
        "069",
        sender="=?iso-8859-1?q?Fran=E7ois_Dupont?= <francois@example.fr>",
        subject="RE: Problème de connexion",
        text=(
            "C'est réglé, merci.\n\nFrom: Acme Support <support@acme.test>\n"
            "Sent: Monday, June 3, 2024 10:40 AM\nTo: François Dupont\n"
            "Subject: RE: Problème de connexion\n\nPouvez-vous réessayer ?\n"
        ),
        in_reply_to="7d8e9f.1717407000@enque.local",
        references=[c.msgid("014"), "7d8e9f.1717407000@enque.local"],
    )
    c.add(
        "069-outlook-plain-text-reply",
        finish(msg, "069"),
        status="processed",
        reason="reply",
        ticket="014",
        body_contains=["C'est réglé, merci."],
        body_excludes=["Pouvez-vous réessayer"],
    )
    msg = c.message("070", sender=IVAN, subject="Deeply nested", text=None)
    msg.make_mixed()
    alternative = EmailMessage(policy=policy.SMTP)
    alternative.set_content("Deep inside.\n")
    alternative.add_alternative("<p>Deep <i>inside</i>.</p>", subtype="html")
    level2 = EmailMessage(policy=policy.SMTP)
    level2.make_mixed()
    level2.attach(alternative)
    level1 = EmailMessage(policy=policy.SMTP)
    level1.make_mixed()
    level1.attach(level2)
    level1.add_attachment(CSV, maintype="text", subtype="csv", filename="deep.csv")
    msg.attach(level1)
    c.add(
        "070-deeply-nested",
        finish(msg, "070"),
        status="processed",
        ticket="new",
        attachments=1,
        filenames=["deep.csv"],
        body_contains=["Deep inside."],
    )
    msg = c.message(
        "071",
        sender="Paula Person <paula@person.test>",
        subject="Out of office hours: website down",
        text="Your website is down outside office hours every night.\n",
    )
    c.add(
        "071-ooo-like-subject-from-a-person",
        finish(msg, "071"),
        status="processed",
        reason="new_ticket",
        ticket="new",
        customer="paula@person.test",
    )
    return c


def write(directory: Path) -> list[Path]:
    corpus = build()
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, raw, _expect in corpus.entries:
        path = directory / name
        path.write_bytes(raw)
        written.append(path)
    manifest = {
        "mailbox": MAILBOX,
        "settings": SETTINGS,
        "messages": [expect for _name, _raw, expect in corpus.entries],
    }
    path = directory / "manifest.json"
    path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    files = write(target)
    print(f"Wrote {len(files) - 1} messages and manifest.json to {target}")
