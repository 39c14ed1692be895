"""WhatsApp "Export chat" text files: Android and iOS line styles, dates, owner, dialogs."""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path

import pytest

from marinade.corpus.archive import Archive
from marinade.corpus.cleaning import clean
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers.whatsapp import IMPORTER

# Android, US locale: month first, 12-hour clock (newer exports put U+202F before PM).
ANDROID = (
    "12/31/23, 11:41\u202fPM - Messages and calls are end-to-end encrypted. No one outside of "
    "this chat, not even WhatsApp, can read or listen to them. Tap to learn more.\n"
    "12/31/23, 11:41\u202fPM - Bob: Happy new year soon!\n"
    "12/31/23, 11:42\u202fPM - Alice: Thanks! Here's my plan:\n"
    "first, sleep\n"
    "then, pancakes\n"
    "12/31/23, 11:43\u202fPM - Alice: <Media omitted>\n"
    "12/31/23, 11:44\u202fPM - Bob: This message was deleted\n"
    "1/1/24, 12:05\u202fAM - Alice: It's midnight <This message was edited>\n"
    "1/1/24, 12:06\u202fAM - Bob: Happy new year!\n"
    "1/1/24, 9:30\u202fAM - Bob: Still asleep?\n"
    "1/1/24, 9:31\u202fAM - Bob: Pancakes are ready\n"
)

# iOS, day first, 24-hour clock; system and media lines carry U+200E.
IOS = (
    "[31/12/2023, 21:41:05] Bob: \u200eMessages and calls are end-to-end encrypted. No one "
    "outside of this chat, not even WhatsApp, can read or listen to them.\n"
    "[31/12/2023, 21:41:05] Bob: Happy new year soon!\n"
    "[31/12/2023, 21:42:10] Alice: Thanks!\n"
    "\u200e[31/12/2023, 21:43:00] Alice: \u200eimage omitted\n"
    "[01/01/2024, 00:05:00] Alice: Midnight!\n"
)


def write_zip(tmp_path: Path, member: str, text: str) -> Path:
    path = tmp_path / "WhatsApp Chat - Bob.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, text.encode("utf-8"))
        archive.writestr("00000012-PHOTO-2023-12-31-21-43-00.jpg", b"\xff\xd8")
    return path


def write_text(tmp_path: Path, text: str | bytes, name: str = "WhatsApp Chat with Bob.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def import_all(path: Path, options: ImportOptions) -> tuple[list[Document], list[Skipped]]:
    records = list(IMPORTER.read(Archive(path), options))
    cleaned = [clean(r, options)[0] for r in records if isinstance(r, Document)]
    return [d for d in cleaned if d], [r for r in records if isinstance(r, Skipped)]


def test_android_chat_owner_messages(tmp_path: Path) -> None:
    path = write_zip(tmp_path, "WhatsApp Chat with Bob.txt", ANDROID)
    assert IMPORTER.detect(Archive(path))
    documents, skipped = import_all(path, ImportOptions(me="Alice"))
    assert [d.text for d in documents] == [
        "Thanks! Here's my plan:\nfirst, sleep\nthen, pancakes",
        "It's midnight",
    ]
    # Month first (31 is a day), PM/AM resolved, the local time stored as UTC.
    assert documents[0].created_at == "2023-12-31T23:42:00+00:00"
    assert documents[1].created_at == "2024-01-01T00:05:00+00:00"
    assert documents[0].source == "whatsapp:WhatsApp Chat with Bob.txt"
    assert Counter(s.reason for s in skipped) == {
        "system message": 1,
        "media omitted": 1,
        "deleted message": 1,
        "someone else's message": 4,
    }


def test_ios_chat_in_a_zip(tmp_path: Path) -> None:
    path = write_zip(tmp_path, "_chat.txt", IOS)
    assert IMPORTER.detect(Archive(path))
    documents, skipped = import_all(path, ImportOptions(me="alice"))
    assert [(d.text, d.created_at) for d in documents] == [
        ("Thanks!", "2023-12-31T21:42:10+00:00"),
        ("Midnight!", "2024-01-01T00:05:00+00:00"),
    ]
    assert {"system message", "media omitted"} <= {s.reason for s in skipped}


def test_dialog_keeps_both_sides_and_splits_at_silences(tmp_path: Path) -> None:
    path = write_text(tmp_path, ANDROID)
    documents, _ = import_all(path, ImportOptions(me="Alice", dialog=True))
    assert [d.text for d in documents] == [
        "> Happy new year soon!\n"
        # Consecutive messages of one sender make one turn (Bob's deleted one is skipped).
        "- Thanks! Here's my plan: first, sleep then, pancakes It's midnight\n"
        "> Happy new year!",
    ]
    # The morning messages (more than an hour later) are Bob's alone: no document.
    assert documents[0].created_at == "2023-12-31T23:41:00+00:00"


def test_ambiguous_dates_follow_the_clock_style(tmp_path: Path) -> None:
    day_first = write_text(tmp_path, "[05/01/2024, 10:00:00] Alice: hello\n", "a_chat.txt")
    month_first = write_text(tmp_path, "05/01/24, 10:00 AM - Alice: hello\n", "b_chat.txt")
    (first,), _ = import_all(day_first, ImportOptions(me="Alice"))
    (second,), _ = import_all(month_first, ImportOptions(me="Alice"))
    assert first.created_at == "2024-01-05T10:00:00+00:00"
    assert second.created_at == "2024-05-01T10:00:00+00:00"


def test_a_day_above_12_anywhere_decides_day_first(tmp_path: Path) -> None:
    text = "02/01/2024, 10:00 - Alice: early\n25/01/2024, 10:00 - Alice: late\n"
    documents, _ = import_all(write_text(tmp_path, text), ImportOptions(me="Alice"))
    assert [d.created_at for d in documents] == [
        "2024-01-02T10:00:00+00:00",
        "2024-01-25T10:00:00+00:00",
    ]


def test_owner_must_be_named(tmp_path: Path) -> None:
    path = write_text(tmp_path, ANDROID)
    for options in (ImportOptions(), ImportOptions(dialog=True)):
        with pytest.raises(CorpusFormatError) as error:
            list(IMPORTER.read(Archive(path), options))
        assert "--me NAME" in str(error.value) and "Alice, Bob" in str(error.value)
    with pytest.raises(CorpusFormatError, match="'Carol' is not in this chat"):
        list(IMPORTER.read(Archive(path), ImportOptions(me="Carol")))


def test_invalid_date_names_the_line(tmp_path: Path) -> None:
    text = "[31/12/2023, 21:41:05] Bob: hi\n[13/13/2024, 10:00:00] Alice: when?\n"
    path = write_text(tmp_path, text)
    with pytest.raises(CorpusFormatError) as error:
        list(IMPORTER.read(Archive(path), ImportOptions(me="Alice")))
    assert str(path) in str(error.value) and "line 2" in str(error.value)
    assert "invalid date" in str(error.value)


def test_corrupt_bytes_name_the_line(tmp_path: Path) -> None:
    data = IOS.encode("utf-8") + b"[01/01/2024, 00:06:00] Alice: \xff\xfe broken\n"
    path = write_text(tmp_path, data)
    with pytest.raises(CorpusFormatError) as error:
        list(IMPORTER.read(Archive(path), ImportOptions(me="Alice")))
    assert str(path) in str(error.value) and "line 6" in str(error.value)


def test_a_file_that_is_not_a_chat_fails_on_its_first_line(tmp_path: Path) -> None:
    path = write_text(tmp_path, "Dear diary,\n12/31/23, 9:41 PM - Alice: hi\n", "notes.txt")
    assert not IMPORTER.detect(Archive(path))
    with pytest.raises(CorpusFormatError, match="line 1: not a WhatsApp chat line"):
        list(IMPORTER.read(Archive(path), ImportOptions(me="Alice")))


def test_detect_is_false_for_other_formats(tmp_path: Path) -> None:
    notes = write_text(tmp_path, "Some notes.\nMore notes.\n", "chat notes.txt")
    telegram = write_text(tmp_path, '{"personal_information": {"user_id": 1}}', "result.json")
    mbox = write_text(
        tmp_path, "From a@b Mon Jan  2 10:00:00 2023\nFrom: a@b\n\nhello\n", "mail.mbox"
    )
    discord = tmp_path / "package.zip"
    with zipfile.ZipFile(discord, "w") as archive:
        archive.writestr("messages/c123/messages.csv", "ID,Timestamp,Contents,Attachments\n")
    for path in (notes, telegram, mbox, discord):
        assert not IMPORTER.detect(Archive(path)), path


# Each language as its phone writes an export: the file name, the date style, and the
# placeholders for media (Android's one, iOS's image and sticker), a document's page count,
# the deleted notices (someone else's, mine) and the edit mark.
LANGUAGES = {
    "en": dict(
        name="WhatsApp Chat with Bob",
        android="12/31/23, 11:4{m}\u202fPM - ",
        ios="[12/31/23, 11:4{m}:00\u202fPM] ",
        media="<Media omitted>",
        image="image omitted",
        sticker="sticker omitted",
        document="2 pages \u200edocument omitted",
        deleted="This message was deleted",
        mine_deleted="You deleted this message",
        edited="<This message was edited>",
    ),
    "de": dict(
        name="WhatsApp Chat mit Bob",
        android="31.12.23, 23:4{m} - ",
        ios="[31.12.23, 23:4{m}:00] ",
        media="<Medien ausgeschlossen>",
        image="Bild weggelassen",
        sticker="Sticker weggelassen",
        document="2 Seiten \u200eDokument weggelassen",
        deleted="Diese Nachricht wurde gelöscht.",
        mine_deleted="Du hast diese Nachricht gelöscht.",
        edited="<Diese Nachricht wurde bearbeitet.>",
    ),
    "fr": dict(
        name="Discussion WhatsApp avec Bob",
        android="31/12/2023 à 23:4{m} - ",
        ios="[31/12/2023 23:4{m}:00] ",
        media="<Médias omis>",
        image="image absente",
        sticker="sticker omis",
        document="2 pages \u200edocument manquant",
        deleted="Ce message a été supprimé",
        mine_deleted="Vous avez supprimé ce message",
        edited="<Ce message a été modifié>",
    ),
    "es": dict(
        name="Chat de WhatsApp con Bob",
        android="31/12/23, 23:4{m} - ",
        ios="[31/12/23, 23:4{m}:00] ",
        media="<Multimedia omitido>",
        image="imagen omitida",
        sticker="sticker omitido",
        document="2 páginas \u200edocumento omitido",
        deleted="Se eliminó este mensaje.",
        mine_deleted="Eliminaste este mensaje.",
        edited="<Se editó este mensaje.>",
    ),
    "it": dict(
        name="Chat WhatsApp con Bob",
        android="31/12/23, 23:4{m} - ",
        ios="[31/12/23, 23:4{m}:00] ",
        media="<Media omessi>",
        image="immagine omessa",
        sticker="sticker non incluso",
        document="2 pagine \u200edocumento omesso",
        deleted="Questo messaggio è stato eliminato",
        mine_deleted="Hai eliminato questo messaggio",
        edited="<Questo messaggio è stato modificato>",
    ),
    "pt": dict(
        name="Conversa do WhatsApp com Bob",
        android="31/12/2023 23:4{m} - ",
        ios="[31/12/2023, 23:4{m}:00] ",
        media="<Mídia oculta>",
        image="imagem ocultada",
        sticker="figurinha omitida",
        document="2 páginas \u200edocumento omitido",
        deleted="Mensagem apagada",
        mine_deleted="Você apagou esta mensagem",
        edited="<Mensagem editada>",
    ),
    "nl": dict(
        name="WhatsApp-chat met Bob",
        android="31-12-2023 23:4{m} - ",
        ios="[31-12-2023 23:4{m}:00] ",
        media="<Media weggelaten>",
        image="afbeelding weggelaten",
        sticker="sticker weggelaten",
        document="2 pagina's \u200edocument weggelaten",
        deleted="Dit bericht is verwijderd",
        mine_deleted="Je hebt dit bericht verwijderd",
        edited="<Dit bericht is bewerkt>",
    ),
    "ru": dict(
        name="Чат WhatsApp с Bob",
        android="31.12.2023, 23:4{m} - ",
        ios="[31.12.2023, 23:4{m}:00] ",
        media="<Без медиафайлов>",
        image="изображение отсутствует",
        sticker="стикер не добавлен",
        document="2 стр. \u200eдокумент отсутствует",
        deleted="Данное сообщение удалено",
        mine_deleted="Вы удалили данное сообщение",
        edited="<Сообщение изменено>",
    ),
    "tr": dict(
        name="WhatsApp Sohbeti - Bob",
        android="31.12.2023 23:4{m} - ",
        ios="[31.12.2023 23:4{m}:00] ",
        media="<Medya dahil edilmedi>",
        image="görüntü dahil edilmedi",
        sticker="Çıkartma dahil edilmedi",
        document="2 sayfa \u200ebelge dahil edilmedi",
        deleted="Bu mesaj silindi",
        mine_deleted="Bu mesajı sildiniz",
        edited="<Bu mesaj düzenlendi>",
    ),
    "id": dict(
        name="Chat WhatsApp dengan Bob",
        android="31/12/23 23.4{m} - ",
        ios="[31/12/23 23.4{m}.00] ",
        media="<Media tidak disertakan>",
        image="gambar tidak disertakan",
        sticker="stiker tidak disertakan",
        document="2 halaman \u200edokumen tidak disertakan",
        deleted="Pesan ini telah dihapus",
        mine_deleted="Anda menghapus pesan ini",
        edited="<Pesan ini diedit>",
    ),
}


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_android_placeholders_in_the_phones_language(tmp_path: Path, language: str) -> None:
    words = LANGUAGES[language]
    line = words["android"].format
    chat = (
        f"{line(m=0)}Alice: Tea at five?\n"
        f"{line(m=1)}Alice: {words['media']}\n"
        f"{line(m=2)}Bob: {words['deleted']}\n"
        f"{line(m=3)}Alice: {words['mine_deleted']}\n"
        f"{line(m=4)}Alice: At six, then {words['edited']}\n"
        f"{line(m=5)}Bob: Fine\n"
    )
    path = write_zip(tmp_path, f"{words['name']}.txt", chat)
    assert IMPORTER.detect(Archive(path))
    documents, skipped = import_all(path, ImportOptions(me="Alice"))
    assert [d.text for d in documents] == ["Tea at five?", "At six, then"]
    assert Counter(s.reason for s in skipped) == {
        "media omitted": 1,
        "deleted message": 2,
        "someone else's message": 1,
    }


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_ios_placeholders_in_the_phones_language(tmp_path: Path, language: str) -> None:
    words = LANGUAGES[language]
    line = words["ios"].format
    chat = (
        f"{line(m=0)}Bob: \u200eMessages and calls are end-to-end encrypted.\n"
        f"{line(m=0)}Alice: Tea at five?\n"
        f"\u200e{line(m=1)}Alice: \u200e{words['image']}\n"
        f"\u200e{line(m=2)}Alice: \u200e{words['sticker']}\n"
        f"\u200e{line(m=3)}Alice: \u200equay-timetable.pdf • {words['document']}\n"
        f"\u200e{line(m=4)}Bob: \u200e{words['deleted']}\n"
        f"\u200e{line(m=5)}Alice: \u200e{words['mine_deleted']}\n"
        f"{line(m=6)}Alice: At six, then \u200e{words['edited']}\n"
    )
    path = write_zip(tmp_path, "_chat.txt", chat)
    assert IMPORTER.detect(Archive(path))
    documents, skipped = import_all(path, ImportOptions(me="Alice"))
    assert [d.text for d in documents] == ["Tea at five?", "At six, then"]
    assert Counter(s.reason for s in skipped) == {
        "system message": 1,
        "media omitted": 3,
        "deleted message": 2,
    }


def test_media_exported_with_the_chat_is_skipped_and_its_caption_kept(tmp_path: Path) -> None:
    android = (
        "31.12.23, 23:40 - Alice: IMG-20231231-WA0001.jpg (Datei angehängt)\n"
        "Der Baum am Kai\n"
        "31.12.23, 23:41 - Alice: Fahrplan.pdf (Datei angehängt)\n"
        "31.12.23, 23:42 - Alice: null\n"
    )
    documents, skipped = import_all(write_text(tmp_path, android), ImportOptions(me="Alice"))
    assert [d.text for d in documents] == ["Der Baum am Kai"]
    assert [s.reason for s in skipped] == ["media omitted", "media omitted"]
    ios = (
        "[31/12/2023, 23:40:00] Alice: \u200e<attached: 00000012-PHOTO-2023-12-31-23-40-00.jpg>\n"
        "[31/12/2023, 23:41:00] Alice: timetable.pdf • 2 pages "
        "\u200e<attached: 00000013-timetable.pdf>\n"
        "[31/12/2023, 23:42:00] Alice: \u200e<angehängt: 00000014-AUDIO-2023-12-31-23-42-00.opus>\n"
        "[31/12/2023, 23:43:00] Alice: My <attached: notes> are not an attachment\n"
    )
    documents, skipped = import_all(
        write_text(tmp_path, ios, "_chat.txt"), ImportOptions(me="Alice")
    )
    assert [d.text for d in documents] == ["My <attached: notes> are not an attachment"]
    assert [s.reason for s in skipped] == ["media omitted"] * 3


def test_words_that_only_resemble_placeholders_are_kept(tmp_path: Path) -> None:
    text = (
        "[31/12/2023, 23:40:00] Alice: The image omitted from the report was mine\n"
        "[31/12/2023, 23:41:00] Alice: This message was deleted, or so they say\n"
        "[31/12/2023, 23:42:00] Alice: <Media omitted> is what WhatsApp writes\n"
    )
    documents, skipped = import_all(write_text(tmp_path, text), ImportOptions(me="Alice"))
    assert len(documents) == 3 and skipped == []
