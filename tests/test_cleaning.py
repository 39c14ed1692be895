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


def test_links_leave_the_sentence_punctuation():
    assert clean(doc("See https://x.org/lamps. Then www.y.com/a, ok"), DEFAULTS)[0].text == (
        "See . Then , ok"
    )


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
