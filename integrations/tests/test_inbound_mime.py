"""Decoding, quoted-history stripping and forwarded blocks, piece by piece — and a fuzz run
showing that no mangled message makes the parser raise."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from integrations.inbound.automatic import Kind, classify
from integrations.mime import (
    decode_bytes,
    decode_header,
    message_id_list,
    normalise_message_id,
    parse_address_list,
    parse_email,
    read_header_summary,
    unpack_tnef,
)
from integrations.quotes import (
    find_forwarded_sender,
    strip_quoted_html,
    strip_quoted_text,
)

CORPUS = Path(__file__).parent / "corpus"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("=?utf-8?B?8J+Y?= =?utf-8?B?gA==?= hi", "😀 hi"),  # a character split across words
        ("=?ISO-8859-1?Q?a?=\r\n =?ISO-8859-1?Q?_b?=", "a b"),  # folded, joined words
        ("=?utf-8?Q?caf=C3=A9?= au lait", "café au lait"),
        ("=?utf-8*en?Q?hello?=", "hello"),  # RFC 2231 language in an encoded-word
        ("=?utf-8?B?Y2Fmw6k?=", "café"),  # missing padding
        ("=?x-nobody-knows?Q?caf=E9?=", "café"),  # unknown charset: detected
        ("=?utf-8?Q?unterminated", "=?utf-8?Q?unterminated"),
        ("Caf\udcc3\udca9 raw 8-bit", "Café raw 8-bit"),  # as the parser hands it over
        ("", ""),
    ],
)
def test_decode_header(raw: str, expected: str) -> None:
    assert decode_header(raw) == expected


@pytest.mark.parametrize(
    ("data", "charset", "expected"),
    [
        ("naïve".encode(), "iso-8859-1", "naïve"),  # UTF-8 labelled Latin-1
        ("naïve €".encode("cp1252"), "utf-8", "naïve €"),  # windows-1252 labelled UTF-8
        ("naïve".encode("latin-1"), "us-ascii", "naïve"),
        ("Grüße".encode(), None, "Grüße"),
        ("Привет, как дела? Всё хорошо.".encode("koi8-r"), None, "Привет, как дела? Всё хорошо."),
        ("こんにちは、元気ですか".encode("shift_jis"), "x-sjis", "こんにちは、元気ですか"),
        (b"\xff\xfe\x00garbage\x81", "utf-8", None),  # anything, but no exception
    ],
)
def test_decode_bytes(data: bytes, charset: str | None, expected: str | None) -> None:
    decoded = decode_bytes(data, charset)
    assert isinstance(decoded, str)
    if expected is not None:
        assert decoded == expected


def test_message_ids_and_addresses() -> None:
    assert normalise_message_id(" <abc@x.test> (comment)") == "abc@x.test"
    assert normalise_message_id("bare@x.test") == "bare@x.test"
    assert message_id_list("<a@x> <b@x>\r\n <a@x> junk") == ["a@x", "b@x"]
    assert parse_address_list('"Doe, Jane" <JANE@X.TEST>, =?utf-8?Q?Jos=C3=A9?= <j@x.test>') == [
        ("Doe, Jane", "jane@x.test"),
        ("José", "j@x.test"),
    ]
    assert parse_address_list("undisclosed-recipients:;") == []


def test_the_header_summary_reads_only_the_header_block() -> None:
    raw = b"From: a@x.test\r\nSubject: =?utf-8?Q?=C3=A9t=C3=A9?=\r\n\r\nFrom: b@y.test\r\n"
    summary = read_header_summary(raw)
    assert (summary.from_address, summary.subject, summary.message_id) == ("a@x.test", "été", "")


# --- Quoted history --------------------------------------------------------------------------


def test_text_quotes_are_stripped_only_when_nothing_new_follows_them() -> None:
    top_posted = "Fine now.\n\nOn Tue, 4 Jun 2024, Support <s@acme.test> wrote:\n> How is it?\n"
    interleaved = "On Tue, Support wrote:\n> Which browser?\nFirefox.\n> Which OS?\nLinux.\n"
    outlook = "Yes.\n\n-----Original Message-----\nFrom: Support\nSent: today\n\nOld text\n"
    only_quote = "> everything quoted\n> nothing new\n"

    assert strip_quoted_text(top_posted) == "Fine now."
    assert strip_quoted_text(interleaved) == interleaved
    assert strip_quoted_text(outlook) == "Yes."
    assert strip_quoted_text(only_quote) == only_quote


def test_html_quotes_are_stripped_only_when_nothing_new_follows_them() -> None:
    gmail = '<div>New</div><div class="gmail_quote"><blockquote>Old</blockquote></div>'
    bottom_posted = '<blockquote type="cite">Old question</blockquote><p>My answer below.</p>'
    yahoo = '<div>New</div><div class="yahoo_quoted"><div>Old</div></div>'
    quote_only = '<div class="gmail_quote">Only old text</div>'

    assert strip_quoted_html(gmail) == "<div>New</div>"
    assert strip_quoted_html(bottom_posted) == bottom_posted
    assert strip_quoted_html(yahoo) == "<div>New</div>"
    assert strip_quoted_html(quote_only) == quote_only


@pytest.mark.parametrize(
    ("text", "sender"),
    [
        (
            "fyi\n---------- Forwarded message ---------\nFrom: Gina G <gina@g.test>\nDate: x\n",
            ("Gina G", "gina@g.test"),
        ),
        (
            'Begin forwarded message:\n\nFrom: "Hill, Harry" <harry@hill.test>\nSubject: x\n',
            ("Hill, Harry", "harry@hill.test"),
        ),
        (
            "-------- Forwarded Message --------\nSubject: x\nFrom:\tTom <tom@t.test>\n",
            ("Tom", "tom@t.test"),
        ),
        (
            "see below\nFrom: Olga [mailto:olga@o.test]\nSent: Monday\nTo: me\n",
            ("Olga", "olga@o.test"),
        ),
        ("no forward here\nFrom: the desk of the CEO\n", None),
    ],
)
def test_find_forwarded_sender(text: str, sender: tuple[str, str] | None) -> None:
    assert find_forwarded_sender(text) == sender


def test_data_that_is_not_tnef_stays_an_ordinary_attachment() -> None:
    assert unpack_tnef(b"not a winmail.dat")[0] is None


# --- Robustness --------------------------------------------------------------------------------


def test_no_mangled_message_makes_the_parser_raise() -> None:
    """Truncations, flipped bytes and spliced-in header garbage of every corpus message."""
    rng = random.Random(20240603)
    originals = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]
    poison = [b"=?", b"?=", b"\r\n--", b";", b"\x00", b"\xff", b"boundary=", b"*0*=", b"\r\n\r\n"]
    for raw in originals:
        for _ in range(10):
            data = bytearray(raw[: rng.randrange(1, len(raw) + 1)])
            for _ in range(rng.randrange(1, 12)):
                position = rng.randrange(0, len(data) + 1)
                data[position:position] = rng.choice(poison)
            parsed = parse_email(bytes(data), max_size=64 * 1024)
            verdict = classify(parsed, ignore_lists=True)
            assert verdict.kind in set(Kind)
            strip_quoted_html(parsed.html or "")
            strip_quoted_text(parsed.text or "")
            read_header_summary(bytes(data))
