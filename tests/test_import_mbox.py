"""mbox mailboxes: the owner's own words, quotes and signatures removed, threads as dialogs."""

from __future__ import annotations

import mailbox
import zipfile
from collections import Counter
from email.message import EmailMessage
from pathlib import Path

import pytest

from marinade.corpus.archive import Archive
from marinade.corpus.cleaning import clean
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers.mbox import IMPORTER

ALICE = "Alice Smith <alice@example.com>"
BOB = "Bob Jones <bob@example.org>"
TAKEOUT_MEMBER = "Takeout/Mail/All mail Including Spam and Trash.mbox"


def mail(
    sender: str,
    body: str,
    date: str,
    ident: str,
    subject: str = "Lunch on Friday?",
    replying_to: list[str] | None = None,
    html: str | None = None,
    labels: str | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = BOB if sender == ALICE else ALICE
    message["Subject"] = subject
    message["Date"] = date
    message["Message-ID"] = f"<{ident}>"
    if replying_to:
        message["In-Reply-To"] = f"<{replying_to[-1]}>"
        message["References"] = " ".join(f"<{r}>" for r in replying_to)
    if labels:
        message["X-Gmail-Labels"] = labels
    if body:
        message.set_content(body)
        if html:
            message.add_alternative(html, subtype="html")
    elif html:
        message.set_content(html, subtype="html")
    return message


TOP_POSTED = (
    "Friday works. Shall we try the new noodle place?\n"
    "\n"
    "-- \n"
    "Alice Smith\n"
    "https://alice.example\n"
    "\n"
    "On Mon, Jan 2, 2023 at 10:00 AM Bob Jones <bob@example.org>\n"
    "wrote:\n"
    "> Lunch on Friday?\n"
    "> Bob\n"
)
INTERLEAVED = (
    "On Tue, Jan 3, 2023, Bob Jones wrote:\n"
    "> Noodles or dumplings?\n"
    "Noodles, obviously.\n"
    "\n"
    "> And the time?\n"
    "Noon is fine.\n"
    "\n"
    "Sent from my iPhone\n"
)
HTML_ONLY = (
    '<div dir="ltr"><p>The <b>slides</b> are attached.</p>'
    '<div class="gmail_signature">Alice Smith | Example Ltd</div>'
    '<div class="gmail_quote"><div class="gmail_attr">On Wed, Jan 4, 2023 Bob wrote:</div>'
    "<blockquote>Could you send the slides?</blockquote></div></div>"
)
OUTLOOK = (
    "Thanks, received.\n"
    "\n"
    "-----Original Message-----\n"
    "From: Bob Jones\n"
    "Sent: Thursday, January 5, 2023 9:00 AM\n"
    "Subject: invoice\n"
    "\n"
    "Please confirm you got the invoice.\n"
)


def everyday_messages() -> list[EmailMessage]:
    attachment_only = mail(ALICE, "", "Sat, 07 Jan 2023 09:00:00 +0000", "a9@example.com")
    attachment_only.add_attachment(b"\x89PNG", maintype="image", subtype="png", filename="c.png")
    return [
        mail(BOB, "Lunch on Friday?\nBob", "Mon, 02 Jan 2023 10:00:00 +0000", "b1@example.org"),
        mail(
            ALICE,
            TOP_POSTED,
            "Mon, 02 Jan 2023 11:30:00 +0100",
            "a2@example.com",
            "Re: Lunch on Friday?",
            ["b1@example.org"],
        ),
        mail(
            ALICE,
            INTERLEAVED,
            "Tue, 03 Jan 2023 12:00:00 +0000",
            "a3@example.com",
            html="<p>Noodles, obviously.</p>",
        ),
        mail(ALICE, "", "Wed, 04 Jan 2023 12:00:00 +0000", "a4@example.com", html=HTML_ONLY),
        mail(ALICE, OUTLOOK, "Thu, 05 Jan 2023 12:00:00 +0000", "a5@example.com"),
        mail(
            ALICE,
            "Café at nine \u2615\nFrom here it is a short walk.\n",
            "Fri, 06 Jan 2023 08:00:00 -0500",
            "a6@example.com",
        ),
        mail(
            ALICE,
            "On Fri, Jan 6, 2023 at 9:00 AM Bob Jones wrote:\n> just quoting\n",
            "Fri, 06 Jan 2023 18:00:00 +0000",
            "a7@example.com",
        ),
        mail(BOB, "See you then.", "Fri, 06 Jan 2023 19:00:00 +0000", "b8@example.org"),
        attachment_only,
    ]


def write_mbox(path: Path, messages: list[EmailMessage]) -> Path:
    """A real mbox, written by the standard library (it escapes body "From " lines)."""
    box = mailbox.mbox(path)
    for message in messages:
        box.add(message)
    box.close()
    return path


def takeout_bytes(messages: list[EmailMessage]) -> bytes:
    """Google Takeout's layout: a Gmail postmark line before each message."""
    parts = []
    for number, message in enumerate(messages):
        parts.append(b"From 17800000000000%05d@xxx Mon Jan 02 10:00:00 +0000 2023\n" % number)
        parts.append(message.as_bytes().replace(b"\nFrom ", b"\n>From ") + b"\n")
    return b"".join(parts)


def import_all(path: Path, options: ImportOptions) -> tuple[list[Document], list[Skipped]]:
    records = list(IMPORTER.read(Archive(path), options))
    cleaned = [clean(r, options)[0] for r in records if isinstance(r, Document)]
    return [d for d in cleaned if d], [r for r in records if isinstance(r, Skipped)]


def test_own_words_without_quotes_or_signatures(tmp_path: Path) -> None:
    path = write_mbox(tmp_path / "Inbox.mbox", everyday_messages())
    assert IMPORTER.detect(Archive(path))
    documents, skipped = import_all(path, ImportOptions())  # owner: most frequent sender
    assert [d.text for d in documents] == [
        "Friday works. Shall we try the new noodle place?",
        "Noodles, obviously.\n\nNoon is fine.",  # text/plain preferred over the HTML part
        "The slides are attached.",
        "Thanks, received.",
        "Café at nine \u2615\nFrom here it is a short walk.",
    ]
    first = documents[0]
    assert first.created_at == "2023-01-02T10:30:00+00:00"
    assert first.record_id == "a2@example.com"
    assert first.is_reply and not documents[1].is_reply
    assert first.source == "mbox:Inbox.mbox"
    assert documents[4].created_at == "2023-01-06T13:00:00+00:00"
    assert Counter(s.reason for s in skipped) == {
        "someone else's message": 2,
        "only quoted text": 1,
        "no text part": 1,
    }


def test_html_only_body_is_marked_html(tmp_path: Path) -> None:
    path = write_mbox(tmp_path / "Inbox.mbox", everyday_messages())
    records = list(IMPORTER.read(Archive(path), ImportOptions(me="alice@example.com")))
    html = [r for r in records if isinstance(r, Document) and r.is_html]
    assert [d.record_id for d in html] == ["a4@example.com"]
    assert "Could you send" not in html[0].text and "gmail_signature" not in html[0].text


def test_takeout_zip_finds_the_owner_from_sent_labels(tmp_path: Path) -> None:
    newsletters = [
        mail(
            "Shop <news@shop.example>",
            f"Sale number {n}!",
            "Mon, 02 Jan 2023 08:00:00 +0000",
            f"n{n}@shop.example",
            labels="Inbox,Category Promotions",
        )
        for n in range(4)
    ]
    mine = [
        mail(ALICE, "First sent note.", "Mon, 02 Jan 2023 09:00:00 +0000", "s1@x", labels="Sent"),
        mail(ALICE, "Second sent note.", "Mon, 02 Jan 2023 09:30:00 +0000", "s2@x", labels="Sent"),
        mail(ALICE, "Half a thought", "Mon, 02 Jan 2023 09:45:00 +0000", "d1@x", labels="Drafts"),
    ]
    path = tmp_path / "takeout-20230110T000000Z-001.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Takeout/archive_browser.html", "<html></html>")
        archive.writestr(TAKEOUT_MEMBER, takeout_bytes(newsletters + mine))
    assert IMPORTER.detect(Archive(path))
    documents, skipped = import_all(path, ImportOptions())
    assert [d.text for d in documents] == ["First sent note.", "Second sent note."]
    assert documents[0].source == f"mbox:{TAKEOUT_MEMBER}"
    assert Counter(s.reason for s in skipped) == {"someone else's message": 4, "draft": 1}
    by_name, _ = import_all(path, ImportOptions(me="alice smith"))
    assert [d.text for d in by_name] == ["First sent note.", "Second sent note."]
    with pytest.raises(CorpusFormatError, match="sent none of these messages.*news@shop"):
        list(IMPORTER.read(Archive(path), ImportOptions(me="nobody@example.net")))


def test_dialog_makes_one_document_per_thread(tmp_path: Path) -> None:
    messages = [
        mail(BOB, "Lunch on Friday?", "Mon, 02 Jan 2023 10:00:00 +0000", "b1@example.org"),
        mail(
            ALICE,
            TOP_POSTED,
            "Mon, 02 Jan 2023 11:30:00 +0000",
            "a2@example.com",
            "Re: Lunch on Friday?",
            ["b1@example.org"],
        ),
        # No References: joined to the thread by its subject.
        mail(
            "Carol <carol@example.net>",
            "Count me in too.",
            "Mon, 02 Jan 2023 11:00:00 +0000",
            "c1@example.net",
            "RE: Lunch on Friday?",
        ),
        mail(
            BOB,
            "Great, see you there.\n\nOn Mon, Alice Smith wrote:\n> Friday works.\n",
            "Mon, 02 Jan 2023 12:00:00 +0000",
            "b3@example.org",
            "Re: Lunch on Friday?",
            ["b1@example.org", "a2@example.com"],
        ),
        mail(BOB, "Unrelated news.", "Tue, 03 Jan 2023 10:00:00 +0000", "b4@x", "News"),
        mail(ALICE, "A note to self.", "Tue, 03 Jan 2023 11:00:00 +0000", "a5@x", "Note"),
    ]
    path = write_mbox(tmp_path / "mail.mbox", messages)
    documents, skipped = import_all(path, ImportOptions(me="alice@example.com", dialog=True))
    assert [(d.text, d.created_at, d.record_id) for d in documents] == [
        (
            "> Lunch on Friday?\n"
            "> Count me in too.\n"
            "- Friday works. Shall we try the new noodle place?\n"
            "> Great, see you there.",
            "2023-01-02T10:00:00+00:00",
            "b1@example.org",
        ),
        ("- A note to self.", "2023-01-03T11:00:00+00:00", "a5@x"),
    ]
    assert [s.reason for s in skipped] == ["thread without the owner's messages"]


def test_invalid_date_of_an_own_message_names_it(tmp_path: Path) -> None:
    path = write_mbox(tmp_path / "Inbox.mbox", everyday_messages()[:3])
    data = path.read_bytes()
    # Someone else's broken Date is tolerated; the owner's stops the import.
    data = data.replace(b"Date: Mon, 02 Jan 2023 10:00:00 +0000", b"Date: sometime last week")
    data = data.replace(b"Date: Tue, 03 Jan 2023 12:00:00 +0000", b"Date: Tuesday-ish")
    path.write_bytes(data)
    with pytest.raises(CorpusFormatError) as error:
        list(IMPORTER.read(Archive(path), ImportOptions(me="alice@example.com")))
    message = str(error.value)
    assert str(path) in message and "#3 <a3@example.com>" in message and "Tuesday-ish" in message


def test_truncated_mailbox_names_the_message(tmp_path: Path) -> None:
    data = takeout_bytes(everyday_messages()[:3])
    cut = data.index(b"Subject:", data.index(b"a3@example.com") - 400)
    path = tmp_path / "cut.mbox"
    path.write_bytes(data[:cut])
    with pytest.raises(CorpusFormatError) as error:
        list(IMPORTER.read(Archive(path), ImportOptions(me="alice@example.com")))
    assert str(path) in str(error.value) and "#3" in str(error.value)
    assert "truncated" in str(error.value)


def test_garbage_after_a_postmark_is_corrupt(tmp_path: Path) -> None:
    data = takeout_bytes(everyday_messages()[:1])
    data += b"From 1 Mon Jan 02 10:00:00 +0000 2023\n\x00\x13\x88binary junk\n\nmore\n"
    path = tmp_path / "junk.mbox"
    path.write_bytes(data)
    with pytest.raises(CorpusFormatError, match=r"junk.mbox, record #2: not a mail header"):
        list(IMPORTER.read(Archive(path), ImportOptions(me="alice@example.com")))


def test_a_hundred_thousand_messages_stream(tmp_path: Path) -> None:
    path = tmp_path / "big.mbox"
    with path.open("wb") as handle:
        for number in range(100_000):
            sender = ALICE if number % 10 == 0 else f"Friend <friend{number % 97}@example.org>"
            handle.write(
                f"From x Mon Jan  2 10:00:00 2023\n"
                f"From: {sender}\n"
                f"Subject: note {number}\n"
                f"Date: Mon, 2 Jan 2023 10:{number % 60:02d}:00 +0000\n"
                f"Message-ID: <m{number}@example.com>\n"
                f"\n"
                f"This is message number {number}.\n"
                f"\n".encode()
            )
    documents = skipped = 0
    # --me saves the pass that finds the most frequent sender; no timing is asserted.
    for record in IMPORTER.read(Archive(path), ImportOptions(me="alice@example.com")):
        if isinstance(record, Document):
            documents += 1
            assert record.text == f"This is message number {(documents - 1) * 10}."
        else:
            skipped += 1
    assert (documents, skipped) == (10_000, 90_000)


def test_detect_is_false_for_other_formats(tmp_path: Path) -> None:
    letter = tmp_path / "letter.txt"
    letter.write_text("From the desk of Alice Smith, 10:00 on a Monday.\nDear Bob,\n")
    telegram = tmp_path / "result.json"
    telegram.write_text('{"personal_information": {"user_id": 1}, "chats": {"list": []}}')
    whatsapp = tmp_path / "WhatsApp Chat with Bob.txt"
    whatsapp.write_text("12/31/23, 9:41 PM - Bob: hi\n")
    discord = tmp_path / "package.zip"
    with zipfile.ZipFile(discord, "w") as archive:
        archive.writestr("messages/c1/messages.csv", "ID,Timestamp,Contents,Attachments\n")
    for path in (letter, telegram, whatsapp, discord):
        assert not IMPORTER.detect(Archive(path)), path
