"""Shared cleaning rules, the same for every format."""

from __future__ import annotations

from marinade.corpus.cleaning import clean, dedup_key, html_to_text, scrub_pii
from marinade.corpus.document import Document, ImportOptions, format_dialog

DEFAULTS = ImportOptions()


def doc(text: str, **flags) -> Document:
    return Document(text=text, created_at=None, source="test:file", **flags)


def test_reposts_dropped_unless_kept():
    assert clean(doc("RT @a: hi", is_repost=True), DEFAULTS) == (None, "repost")
    kept, reason = clean(doc("RT @a: hi", is_repost=True), ImportOptions(keep_reposts=True))
    assert reason is None and kept.text == "RT @a: hi"


def test_replies_lose_leading_mentions_or_are_dropped():
    kept, _ = clean(doc("@alice @bob.example, thanks for this!", is_reply=True), DEFAULTS)
    assert kept.text == "thanks for this!"
    kept, _ = clean(doc("@alice@mastodon.social I agree with @carol", is_reply=True), DEFAULTS)
    assert kept.text == "I agree with @carol"  # only the leading mentions go
    assert clean(doc("@a hi", is_reply=True), ImportOptions(drop_replies=True)) == (None, "reply")


def test_links_removed_or_expanded():
    tweet = doc(
        "Read this https://t.co/abc and www.example.org/x now",
        link_targets={"https://t.co/abc": "https://example.com/article"},
    )
    assert clean(tweet, DEFAULTS)[0].text == "Read this and now"
    kept = clean(tweet, ImportOptions(keep_links=True))[0]
    assert kept.text == "Read this https://example.com/article and www.example.org/x now"


def test_links_leave_the_sentence_punctuation_without_a_space_before_it():
    assert clean(doc("See https://x.org/lamps. Then www.y.com/a, ok"), DEFAULTS)[0].text == (
        "See. Then, ok"
    )
    post = "Mix the leaves with dry compost https://example.org/compost-guide. It works!"
    assert clean(doc(post), DEFAULTS)[0].text == "Mix the leaves with dry compost. It works!"
    assert clean(doc("Is it https://x.org/a? Yes (https://x.org/b)."), DEFAULTS)[0].text == (
        "Is it? Yes."
    )


def test_links_in_angle_brackets_or_parentheses_leave_no_empty_brackets():
    mail = "The notes are at <https://example.org/notes>, and the map\n<http://example.org/map>"
    assert clean(doc(mail), DEFAULTS)[0].text == "The notes are at, and the map"
    html = "<p>Read &lt;https://example.org/a&gt; and (www.example.org/b) today.</p>"
    assert clean(doc(html, is_html=True), DEFAULTS)[0].text == "Read and today."
    kept = clean(doc("Read <https://example.org/a>."), ImportOptions(keep_links=True))[0]
    assert kept.text == "Read <https://example.org/a>."


def test_html_to_plain_text_with_paragraphs_and_entities():
    html = "<p>First &amp; best.</p><p>Second<br>line&nbsp;here</p><script>x()</script>"
    kept = clean(doc(html, is_html=True), DEFAULTS)[0]
    assert kept.text == "First & best.\n\nSecond\nline here"
    assert clean(doc("fish &amp; chips &lt;3"), DEFAULTS)[0].text == "fish & chips <3"
    assert "\n\n" in html_to_text("<div>a</div><div>b</div>")


def test_posts_that_are_not_public_are_dropped():
    assert clean(doc("secret", visibility="private"), DEFAULTS) == (None, "not public")
    assert clean(doc("secret", visibility="direct"), DEFAULTS) == (None, "not public")
    assert clean(doc("quiet", visibility="unlisted"), DEFAULTS)[0].text == "quiet"


def test_pii_replaced_by_placeholders_unless_kept():
    text = (
        "Mail me at jo.doe+x@example.co.uk or call +33 6 12 34 56 78 / (555) 123-4567"
        " on 2023-02-18."
    )
    assert scrub_pii(text) == "Mail me at <email> or call <phone> / <phone> on 2023-02-18."
    assert clean(doc(text), ImportOptions(keep_pii=True))[0].text == text


def test_real_phone_numbers_are_scrubbed_in_their_usual_shapes():
    numbers = [
        "+1 (555) 123-4567",
        "555-123-4567",
        "555.123.4567",
        "1-800-555-1234",
        "+44 (0)20 7946 0958",
        "020 7946 0958",
        "06 12 34 56 78",
        "0171 1234567",
        "030/1234567",
        "+4930123456",
        "612 34 56 78",
    ]
    for number in numbers:
        assert scrub_pii(f"Call {number}, please.") == "Call <phone>, please.", number
    assert scrub_pii("at 10:30 call 555 123 4567") == "at 10:30 call <phone>"


def test_zip_codes_and_short_digit_groups_are_not_phone_numbers():
    kept = [
        "Send it to 1600 Pennsylvania Ave NW, Washington, DC 20500-0005.",
        "Portland, OR 97201 1234 is the old way to write ZIP+4.",
        "My numbers are 4 8 15 16 23 42 and they never win.",
        "Scores: 12 14 9 11 15 10 all week.",
        "The train left on 01.02.2023 10.30 and came back on 2023-02-18.",
        "Pi is 3.14159265358 and that is enough digits.",
        "Boxes 12 34 56 78 90 are in the attic.",
    ]
    for text in kept:
        assert scrub_pii(text) == text
    assert scrub_pii("Portland, OR 97201 (503) 555-0123") == "Portland, OR 97201 <phone>"


def test_empty_after_cleaning_is_skipped():
    assert clean(doc("https://t.co/xyz"), DEFAULTS) == (None, "empty")
    assert clean(doc("<p> </p>", is_html=True), DEFAULTS) == (None, "empty")


def test_dedup_key_ignores_whitespace_and_case():
    assert dedup_key("Hello   World\n") == dedup_key("hello world")
    assert dedup_key("hello world") != dedup_key("hello, world")


def test_dialog_format():
    assert format_dialog([(False, "how are\nyou?"), (True, "fine"), (True, "  ")]) == (
        "> how are you?\n- fine"
    )
