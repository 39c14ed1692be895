"""What WhatsApp writes into an exported chat in place of a message's words.

An export is written in the language of the phone that made it, so the same
placeholder comes in many spellings; these are the ones of the languages listed
below, in the forms they take on Android and on iOS:

- Android, exported "without media", writes one placeholder for any media:
  "<Media omitted>", "<Medien ausgeschlossen>", "<Médias omis>" ...
- iOS writes one per kind, after a U+200E mark: "image omitted", "sticker
  omitted", "document omitted" ... A document's line starts with its name and
  page count, with the mark before the placeholder inside the line:
  "name.pdf • 2 pages \u200edocument omitted".
- Exported "with media", a message names its file: Android
  "IMG-20240312-WA0001.jpg (file attached)", iOS
  "<attached: 00000012-PHOTO-2023-12-31-21-43-00.jpg>" (iOS numbers its files
  with eight digits, which the label's translations do not change).
- A deleted message leaves a notice ("This message was deleted", "You deleted
  this message"), and an edited one ends with a mark ("<This message was
  edited>") after its words.

The strings come from real exports quoted in other open-source chat parsers and
from lists those parsers drew from WhatsApp's own string files (Android
strings.xml, iOS Localizable.strings); the app's versions differ in case, in a
final full stop and in invisible marks, so every comparison goes through
`normalise`. Languages: English, German, French, Spanish, Italian, Portuguese
(Brazil and Portugal), Dutch, Russian, Turkish and Indonesian.
"""

from __future__ import annotations

import re

# Direction marks and the BOM: WhatsApp sprinkles them around names and placeholders.
MARKS = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
_NO_MARKS = dict.fromkeys(map(ord, MARKS))

# Android, "without media": one placeholder for any kind of media.
MEDIA_OMITTED = {
    "<media omitted>",  # en
    "<medien ausgeschlossen>",  # de
    "<medien weggelassen>",  # de, older
    "<médias omis>",  # fr
    "<fichier omis>",  # fr, older
    "<multimedia omitido>",  # es
    "<archivo omitido>",  # es, older
    "<media omessi>",  # it
    "<media omesso>",  # it, older
    "<mídia oculta>",  # pt-BR
    "<mídia omitida>",  # pt-BR, older
    "<ficheiro não revelado>",  # pt-PT
    "<media weggelaten>",  # nl
    "<без медиафайлов>",  # ru
    "<файл пропущен>",  # ru, older
    "<medya dahil edilmedi>",  # tr
    "<medya atlanmış>",  # tr, older
    "<media tidak disertakan>",  # id
}

# iOS: one placeholder per kind of media, by language (en, de, fr, es, it, pt, nl, ru, tr, id).
OMITTED = {
    # image
    "image omitted",
    "bild weggelassen",
    "image absente",
    "imagen omitida",
    "immagine omessa",
    "imagem ocultada",
    "imagem não revelada",
    "afbeelding weggelaten",
    "изображение отсутствует",
    "görüntü dahil edilmedi",
    "gambar tidak disertakan",
    # video
    "video omitted",
    "video weggelassen",
    "vidéo absente",
    "video omitido",
    "video omesso",
    "vídeo omitido",
    "vídeo não revelado",
    "video weggelaten",
    "видео отсутствует",
    "video dahil edilmedi",
    "video tidak disertakan",
    # audio
    "audio omitted",
    "audio weggelassen",
    "audio omis",
    "audio omitido",
    "audio omesso",
    "áudio ocultado",
    "ficheiro de áudio não revelado",
    "audio weggelaten",
    "аудиофайл отсутствует",
    "ses dahil edilmedi",
    "audio tidak disertakan",
    # sticker
    "sticker omitted",
    "sticker weggelassen",
    "sticker omis",
    "sticker omitido",
    "sticker non incluso",
    "figurinha omitida",
    "sticker não revelado",
    "sticker weggelaten",
    "стикер не добавлен",
    "çıkartma dahil edilmedi",
    "stiker tidak disertakan",
    # GIF
    "gif omitted",
    "gif weggelassen",
    "gif retiré",
    "gif omitido",
    "gif esclusa",
    "gif não revelada",
    "gif weggelaten",
    "gif отсутствует",
    "gif dahil edilmedi",
    "gif tidak disertakan",
    # document
    "document omitted",
    "dokument weggelassen",
    "document manquant",
    "document omis",
    "documento omitido",
    "documento omesso",
    "documento não revelado",
    "document weggelaten",
    "документ отсутствует",
    "belge dahil edilmedi",
    "dokumen tidak disertakan",
    # contact card
    "contact card omitted",
    "kontaktkarte ausgelassen",
    "fiche contact manquante",
    "tarjeta de contacto omitida",
    "scheda contatto omessa",
    "cartão do contato omitido",
    "contacto não revelado",
    "visitekaartje weggelaten",
    "карточка контакта отсутствует",
    "kişi kartı dahil edilmedi",
    "kartu kontak tidak disertakan",
    # video note
    "video note omitted",
    "videonotitie weggelaten",
    "видеозаметка опущена",
}

# Android, "with media": "<file name> (file attached)".
FILE_ATTACHED = re.compile(
    r"^\S.* \((?:file attached|datei angehängt|fichier joint|archivo adjunto|file allegato"
    r"|arquivo anexado|ficheiro anexado|bestand bijgevoegd|файл добавлен|dosya ekli"
    r"|file terlampir)\)$"
)
# iOS, "with media": "<attached: 00000012-PHOTO-....jpg>", the label translated.
IOS_ATTACHED = re.compile(r"^<[^<>:]{1,30} ?: \d{8}-[^<>]+>$")

DELETED = {
    "this message was deleted",  # en
    "you deleted this message",
    "diese nachricht wurde gelöscht",  # de
    "du hast diese nachricht gelöscht",
    "ce message a été supprimé",  # fr
    "vous avez supprimé ce message",
    "se eliminó este mensaje",  # es
    "este mensaje fue eliminado",
    "eliminaste este mensaje",
    "questo messaggio è stato eliminato",  # it
    "hai eliminato questo messaggio",
    "esta mensagem foi apagada",  # pt
    "mensagem apagada",
    "você apagou esta mensagem",
    "apagou esta mensagem",
    "dit bericht is verwijderd",  # nl
    "u hebt dit bericht verwijderd",
    "je hebt dit bericht verwijderd",
    "данное сообщение удалено",  # ru
    "вы удалили данное сообщение",
    "вы удалили это сообщение",
    "bu mesaj silindi",  # tr
    "bu mesajı sildiniz",
    "pesan ini dihapus",  # id
    "pesan ini telah dihapus",
    "anda menghapus pesan ini",
    "anda telah menghapus pesan ini",
}

# The mark at the end of an edited message, after its words.
EDITED = {
    "<this message was edited>",  # en
    "<diese nachricht wurde bearbeitet>",  # de
    "<ce message a été modifié>",  # fr
    "<se editó este mensaje>",  # es
    "<questo messaggio è stato modificato>",  # it
    "<mensagem editada>",  # pt
    "<dit bericht is bewerkt>",  # nl
    "<сообщение изменено>",  # ru
    "<bu mesaj düzenlendi>",  # tr
    "<pesan ini diedit>",  # id
}


def normalise(text: str) -> str:
    """Without marks, with single spaces, case-folded, without a final full stop
    (inside the brackets too: "<Diese Nachricht wurde bearbeitet.>")."""
    text = " ".join(text.translate(_NO_MARKS).split()).casefold()
    if text.startswith("<") and text.endswith(">"):
        return "<" + text[1:-1].strip(" .") + ">"
    return text.rstrip(" .")


def _is_placeholder(text: str) -> bool:
    text = normalise(text)
    return (
        text in MEDIA_OMITTED
        or text in OMITTED
        or text.strip("<>") in OMITTED  # some versions bracket the iOS ones
        or text == "null"  # Android's view-once media
        or bool(FILE_ATTACHED.match(text) or IOS_ATTACHED.match(text))
    )


def is_media(line: str) -> bool:
    """Whether a message's first line stands for media rather than words: the whole line,
    or what follows the last U+200E mark in it ("name.pdf • 2 pages \u200edocument omitted")."""
    after_mark = line.rsplit("\u200e", 1)[-1]
    return _is_placeholder(line) or ("\u200e" in line and _is_placeholder(after_mark))


def is_deleted(text: str) -> bool:
    return normalise(text) in DELETED


def without_edit_mark(text: str) -> str:
    """The message without the "<This message was edited>" mark at its end, if it has one."""
    start = text.rfind("<")
    if start == -1 or normalise(text[start:]) not in EDITED:
        return text
    return text[:start].rstrip(" \t" + MARKS)
