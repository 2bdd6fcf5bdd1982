"""agreement / feed_article_text on the real feed dumps in tests/data/feed-dumps."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archiver.dw.textmatch import agreement, feed_article_text, normalize, overlap

DUMPS = Path(__file__).parent / "data" / "feed-dumps"
TRANSCRIBED = DUMPS / "duty-machine-news-transcribed" / "articles" / "dw"
NODEBE4 = DUMPS / "nodebe4-news-beyond-wall" / "articles" / "德国之声"


def body_of(path: Path) -> str:
    return path.read_text("utf-8").split("------", 1)[1].strip()


def one(folder: Path, prefix: str) -> Path:
    return next(folder.glob(f"{prefix}*.md"))


def test_feed_boilerplate_is_excluded():
    body = body_of(TRANSCRIBED / "1022765.md")
    text = feed_article_text(body)
    lines = text.split("\n")
    assert lines[0].startswith("（德国之声中文网）美国总统特朗普与俄罗斯总统普京通了一个半小时的电话。")
    assert lines[-1].startswith("乌克兰和平协议若选择在这一天公布")
    assert "大规模向俄罗斯割让领土" in lines  # subheadings stay, as their own block
    for boilerplate in (
        "Thomas Latschan",  # the author/date line
        "2025-02-15T08:03",
        "特朗普已分别与俄乌总统通电话",  # the image caption
        "Instagram",  # the promo
        "版权声明",  # the copyright line
        "feedx",  # the footer
        "获取更多RSS",
        "<",
    ):
        assert boilerplate not in text, boilerplate
    assert "一个半小时的电话" in text  # link text is article text


@pytest.mark.parametrize(
    ("path", "label"),
    [
        (NODEBE4 / "1048018_德国不愿大声谴责中国 为什么?.md", "延伸阅读"),  # <a>延伸阅读:…</a><span></span>
        (DUMPS / "duty-machine-news" / "articles" / "dw" / "1046202.md", "更多阅读"),
        (DUMPS / "duty-machine-news" / "articles" / "dw" / "1044567.md", "延伸阅读"),
    ],
)
def test_inline_related_teasers_are_excluded(path, label):
    body = body_of(path)
    assert label in body
    text = feed_article_text(body)
    assert label not in text
    assert len(text) > 500


def test_plain_text_is_taken_as_it_is():
    assert feed_article_text("第一段。\n\n  第二段  有空格。 ") == "第一段。\n第二段 有空格。"


def test_normalize_ignores_whitespace_punctuation_width_and_case():
    assert normalize("“你好，World!”\u00a0（ＤＷ） ２０２５") == "你好worlddw2025"


def test_the_feed_article_agrees_with_itself_however_formatted():
    body = body_of(TRANSCRIBED / "1022765.md")
    text = feed_article_text(body)
    assert agreement(text, body) == 1.0
    reformatted = text.replace("\n", " ").replace("，", ",").replace("“", '"').replace("。", ". ")
    assert agreement(reformatted, body) == 1.0


def test_missing_and_extra_text_lower_the_score():
    body = body_of(TRANSCRIBED / "1022765.md")
    text = feed_article_text(body)
    half = text[: len(text) // 2]
    precision, recall = overlap(half, text)
    assert precision == 1.0 and 0.45 < recall < 0.55
    assert 0.6 < agreement(half, body) < 0.7
    noisy = text + "\n" + "我们使用Cookies，以便改进我们的服务。分享到Facebook、WhatsApp、Telegram。" * 20
    precision, recall = overlap(noisy, text)
    assert recall == 1.0 and precision < 0.85
    assert agreement(noisy, body) < agreement(text, body)


@pytest.mark.parametrize(
    ("a", "b"),
    [(TRANSCRIBED / "1022765.md", TRANSCRIBED / "1032000.md"), (one(NODEBE4, "1047941"), one(NODEBE4, "1047798"))],
)
def test_different_articles_score_low(a, b):
    assert agreement(feed_article_text(body_of(a)), body_of(b)) < 0.3


def test_same_article_in_two_dumps_agrees():
    """1043347 (duty-machine) and its Jekyll-wrapped copy from another archive."""
    first = body_of(DUMPS / "duty-machine-news" / "articles" / "dw" / "1043347.md")
    article_id = re.search(r"/a-(\d+)\)", (DUMPS / "duty-machine-news" / "articles" / "dw" / "1043347.md").read_text())
    for copy in (DUMPS / "nodebe4-news-beyond-wall-jekyll").rglob("*.md"):
        if f"/a-{article_id.group(1)})" in copy.read_text("utf-8"):
            jekyll_body = copy.read_text("utf-8").split("------", 1)[1]
            assert agreement(feed_article_text(first), jekyll_body) > 0.99
            break
    else:
        pytest.fail("no Jekyll copy of 1043347")


def test_empty_texts_score_zero():
    assert agreement("", "<p>正文</p>") == 0.0
    assert (
        agreement("正文", '<br><hr><div>获取更多RSS：<br><a href="https://feedx.net">https://feedx.net</a></div>')
        == 0.0
    )


@given(st.text(max_size=200), st.text(max_size=200))
def test_agreement_is_between_0_and_1(a, b):
    assert 0.0 <= agreement(a, b) <= 1.0


@given(st.text(alphabet=st.characters(categories=("Lo", "Nd", "Ll")), min_size=2, max_size=200))
def test_a_text_agrees_with_itself(text):
    assert agreement(text, text) == 1.0


def test_extract_and_compare_scores_the_body_against_the_feed():
    from archiver.dw.page import PageText
    from archiver.dw.textmatch import extract_and_compare

    feed = body_of(TRANSCRIBED / "1022765.md")
    same = feed_article_text(feed)

    def extract(html, url):
        return PageText(url=url, text=f"lead\n{html}", body=html)

    page = extract_and_compare(extract, same, "https://www.dw.com/zh/x/a-1", feed)
    assert page.agreement == round(agreement(same, feed), 4) > 0.99
    assert extract_and_compare(extract, "其他文章的内容完全不同", "u", feed).agreement < 0.2
    assert extract_and_compare(extract, same, "u", None).agreement is None  # nothing to compare with
    assert extract_and_compare(extract, "", "u", feed).agreement is None  # no body, no score
