"""extract_page on the real DW pages in tests/data/dw-samples/html (both layouts) and on Chinese 2023-layout pages."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from archiver.dw.page import DW_OPTIONS, ExtractError, PageText, extract_page
from archiver.dw.script import chinese_script
from archiver.dw.textmatch import agreement, feed_article_text
from archiver.timefmt import normalize_iso

DATA = Path(__file__).parent / "data"
SAMPLES = DATA / "dw-samples" / "html"
DUMPS = DATA / "feed-dumps"

# What must never reach the text: share lists, permalinks, cookie/consent and newsletter notices,
# picture credits, ads, related teasers, feedback boxes, meta lists of the old layout.
NEVER = (
    "WhatsApp", "Facebook", "Telegram", "p.dw.com/p/", "Cookie", "Datenschutz", "Bild:", "Anzeige",
    "Feedback", "Mehr zum Thema", "Die Redaktion empfiehlt", "Read more", "Sign up for the newsletter",
    "DW recommends", "Autorin/Autor", "Schlagwörter", "Permalink", "To view this video",
)  # fmt: skip


def page(name: str) -> PageText:
    path = SAMPLES / name
    canonical = re.search(rb'<link rel="canonical" href="([^"]+)"', path.read_bytes())
    return extract_page(path.read_bytes(), canonical.group(1).decode() if canonical else "https://www.dw.com/")


def assert_in_order(text: str, parts: list[str]) -> None:
    positions = [text.index(p) for p in parts]
    assert positions == sorted(positions), parts


def assert_clean(p: PageText) -> None:
    for word in NEVER:
        assert word not in p.text, word
    lines = p.text.split("\n")
    assert len(lines) == len(set(lines)), "a block is repeated"
    for heading in p.subheadings:
        assert heading in lines, heading  # a subheading is a block of its own


@pytest.mark.parametrize(
    ("name", "title", "lead", "subheadings", "authors", "published", "first", "last"),
    [
        (
            "de_a-65106525_old-layout_2023-03.html",
            "Libanon: (Wirtschafts-)Krise ohne Ende",
            "Der Libanon ist pleite, Zahlungen aus dem Ausland",
            [
                '"Eine der weltweit schlimmsten Krisen seit Mitte des 19. Jahrhunderts"',
                "US-Dollar sind überall erwünscht",
                "Korruption und Misswirtschaft der libanesischen Politiker",
                "Verschiedene Wechselkurse im Umlauf",
                "Sorge um den sozialen Frieden",
                "Kurzfristige Hilfen aus dem Ausland reichen nicht",
            ],
            ["Diana Hodali"],
            "2023-03-25T00:00:00Z",
            "Früher standen die Telefone von Pure Taxi in Beirut nicht still.",
            '"Wir kümmern uns um uns selbst."',
        ),
        (
            "de_a-65464327_old-layout_2023-04-28.html",
            "Ukrainische Gegenoffensive: Ziele, Chancen, Risiken",
            "Die Ukraine bereitet sich auf eine womöglich entscheidende Gegenoffensive vor",
            [
                "Kämpfe um Bachmut, um Zeit zu gewinnen",
                "Darum wartet Kiew ab",
                "Krim als strategische Stoßrichtung",
                "Gegenoffensive dürfte den Krieg nicht beenden",
            ],
            ["Roman Goncharenko"],
            "2023-04-28T00:00:00Z",
            "Eine Autobahn in Polen nahe der Grenze zur Ukraine.",
            "Er hofft deshalb auf weitere Konvois mit schwerem Kriegsgerät aus dem Westen.",
        ),
        (
            "de_a-65897191_new-layout_2023-06-13.html",
            "Post-Vac-Syndrom nach COVID-19-Impfung: Was wissen wir?",
            "Müdigkeit und Muskelschmerzen: Jede Impfung kann Nebenwirkungen haben",
            [
                "Was ist das Post-Vac-Syndrom und wie viele Menschen leiden darunter?",
                "Wie diagnostizieren Mediziner das Post-Vac-Syndrom?",
                "Was passiert im Körper eines Post-Vac-Patienten?",
            ],
            ["Julia Vergin", "Clare Roth"],
            "2023-06-13T12:15:32.158Z",
            "Mehr als 13 Milliarden Impfdosen sind während der Corona-Pandemie weltweit verabreicht worden.",
            "Falk sagt, das sei in den seltensten Fällen möglich.",
        ),
        (
            "de_a-68117411_new-layout_2024-01-30.html",
            "Russland-Wahl: Nadeschdin setzt auf ein Ende der Putin-Ära",
            "Tausende standen für ihn stundenlang in der Kälte",
            [
                "Wer ist Boris Nadeschdin?",
                "Vor allem junge Menschen unterstützen Nadeschdin",
                "Unterstützung durch die Opposition",
                "Wie realistisch ist ein Sieg Nadeschdins?",
            ],
            ["Jennifer Pahlke"],
            "2024-01-30T14:13:12.269Z",
            "Die erste Hürde hat er gemeistert: Boris Nadeschdin darf 100.000 Unterschriften sammeln.",
            "würde sichtbare Kratzer bekommen.",
        ),
        (
            "en_a-52060881_old-layout_2020-01.html",
            "Berlin confronts Germany's colonial past with new initiative",
            "The German capital has launched a five-year project",
            ["Freedom fighters replace colonial leaders", "Right-wing resistance"],
            ["Ben Knight"],
            "2020-01-19T00:00:00Z",
            "Berlin's relationship with its colonial history is being reconsidered",
            "which opened the gates to a period of intense imperialist activity.",
        ),
        (
            "en_a-16863843_old-layout_2019.html",
            "Uncork the mystery of Germany's Frühburgunder",
            "One of Germany's smallest wine regions",
            ["Heard it through the grape vine", "Reaping the harvest"],
            ["Julian Tompkin"],
            "2013-06-10T00:00:00Z",
            "Climbing out of Ahrweiler, a charming medieval village just south of Bonn",
            '"So you\'ve discovered our little secret?" I most certainly have.',
        ),
    ],
)
def test_article_pages(name, title, lead, subheadings, authors, published, first, last):
    p = page(name)
    assert p.title == title
    assert p.teaser.startswith(lead)
    assert p.subheadings == subheadings
    assert p.authors == authors
    assert p.published == published
    lines = p.text.split("\n")
    assert lines[0] == p.teaser  # the lead comes first
    assert lines[1].startswith(first)  # then the body, from its first paragraph
    assert lines[-1].endswith(last)  # to its last
    assert p.body == "\n".join(lines[1:])
    assert_in_order(p.text, [p.teaser, *subheadings, last])
    assert_clean(p)
    assert p.canonical_url.endswith(re.search(r"a-\d+", name).group(0))


def test_new_layout_metadata_comes_from_json_ld():
    p = page("de_a-65897191_new-layout_2023-06-13.html")
    assert p.layout == "2023"
    assert p.modified == "2023-06-13T14:11:01.412Z"
    assert p.category == "Wissenschaft"
    assert (p.language, p.page_language) == (None, "de")
    # the headings of the video embeds are not subheadings of the article
    assert "Wie häufig sind Impfschäden?" not in p.text


def test_old_layout_drops_inline_related_teasers_and_promos():
    p = page("en_a-52060881_old-layout_2020-01.html")
    assert p.layout == "old"
    assert "Recognizing Germany colonial crimes" not in p.text  # "Read more: <a>…</a>"
    assert "newsletter" not in p.text
    assert "Tahir Della helped organize" not in p.text  # picture caption
    assert "Racist, ruthless, cruel" not in p.text  # picture gallery inside the body
    assert "Namibians want Germany to remove monuments" not in p.text  # video box


def test_short_old_page_keeps_its_only_paragraphs():
    p = page("fr_a-6533123_old-layout_2022.html")
    assert p.text.split("\n") == [p.teaser, "Auteur : Kossivi Tiassou", "Edition : M-A. Pioerron"]
    assert p.published == "2011-05-23T00:00:00Z"
    assert_clean(p)


def test_unknown_layout_falls_back_to_the_whole_page_without_boilerplate():
    p = page("de_av-42986168_old-layout-video_2018.html")
    assert p.layout == "unknown"
    assert p.title == "Global 3000 - Das Globalisierungsmagazin"
    assert p.text.startswith("Manipulation von Videos, was ist noch echt?")
    assert p.text.count("Manipulation von Videos") == 1
    assert_clean(p)


def test_bytes_and_str_give_the_same_result():
    raw = (SAMPLES / "de_a-68117411_new-layout_2024-01-30.html").read_bytes()
    url = "https://www.dw.com/de/x/a-68117411"
    assert extract_page(raw, url) == extract_page(raw.decode("utf-8"), url)


@pytest.mark.parametrize("doc", [b"", "", b"\x00\x01\x02", "   "])
def test_not_html_is_an_extract_error(doc):
    with pytest.raises(ExtractError) as caught:
        extract_page(doc, "https://www.dw.com/zh/x/a-1")
    assert caught.value.url == "https://www.dw.com/zh/x/a-1"
    assert caught.value.reason == "not an HTML document"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2023-06-13T12:15:32.158Z", "2023-06-13T12:15:32.158Z"),
        ("2023-06-13T14:15:32+02:00", "2023-06-13T12:15:32Z"),
        ("2023-06-13T12:15:32", "2023-06-13T12:15:32Z"),
        ("25.03.2023", "2023-03-25T00:00:00Z"),
        ("31.02.2023", None),
        ("yesterday", None),
        (None, None),
        (20230613, None),
    ],
)
def test_iso_utc(value, expected):
    assert normalize_iso(value) == expected


# --- Chinese pages in the 2023 layout -----------------------------------------------------------------------
# No real /zh/ page survives (dw-samples/SOURCE.md), so these wrap the body of a real feed dump in the 2023
# layout as DESIGN §3 describes it, with the boilerplate of the real German pages around and inside it.


def dump_body(path: Path) -> tuple[str, str]:
    """(title, body HTML) of a duty-machine feed dump."""
    text = path.read_text("utf-8")
    title = re.search(r"^\[(.*?)\]\(", text, re.MULTILINE | re.DOTALL).group(1)
    return title, text.split("------", 1)[1].strip()


def chinese_page(title: str, body: str, lead: str, lang: str = "zh") -> str:
    """A 2023-layout page: JSON-LD, header h1, p.teaser-text, share list, figure, div.rich-text, cookie layer."""
    article = body.split("<hr>", 1)[0]
    article = re.sub(r"<div><i>.*?</i></div>", "", article)
    article = re.sub(
        r"<img [^>]*><div><small[^>]*>(.*?)</small></div>", r"<figure><figcaption>\1</figcaption></figure>", article
    )
    article = re.sub(r"<p><strong>([^<]*)</strong></p>", r"<h2>\1</h2>", article)
    ld = {
        "@context": "https://schema.org", "@type": "NewsArticle", "headline": title,
        "author": [{"@type": "Person", "name": "王 诚"}], "datePublished": "2025-02-15T08:03:55.243Z",
        "dateModified": "2025-02-15T09:00:00.000Z",
    }  # fmt: skip
    return f"""<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{html.escape(title)} – DW</title>
<script type="application/ld+json">{json.dumps(ld, ensure_ascii=False)}</script></head><body>
<div id="cookie-consent"><p>我们使用Cookies，以便改进我们的服务。更多信息请参阅我们的数据保护声明。</p>
<button>好的</button></div>
<nav><a href="/zh/">首页</a><a href="/zh/在线报导/s-9058">在线报导</a></nav><main><article><div class="content-area">
<header><div class="kicker"><span>政治</span><span><a href="/zh/乌克兰/t-17452263">乌克兰</a></span></div>
<h1>{html.escape(title)}</h1><div class="author-details"><span class="author">王 诚</span></div>
<p class="teaser-text">{html.escape(lead)}</p></header>
<section class="in-line"><a class="facebook">Facebook</a><a class="x-twitter">X</a>
<div class="more"><a class="whatsapp">WhatsApp</a></div>
<div class="copy-button-wrapper"><span>https://p.dw.com/p/4qTfV</span></div></section>
<figure><img src="https://static.dw.com/image/71588384_804.jpg">
<figcaption>图片说明<small class="copyright">图像: Xinhua</small></figcaption></figure>
<div class="advertisement"><span class="label-top">广告</span></div>
<div class="rich-text">{article}<span class="rich-text-ad"></span></div>
<footer><div class="feedback">请给我们反馈！</div></footer></div></article>
<section><h2>更多相关内容</h2>
<div class="teaser"><h3>德国大选：谁将成为下一任总理？</h3><p>德国将于2月23日举行联邦议院选举。</p></div></section>
</main><footer><p>© 2025 德国之声</p><a href="/zh/隐私声明/a-123">数据保护</a></footer></body></html>"""


def test_chinese_page_keeps_lead_subheadings_body_and_drops_boilerplate():
    path = DUMPS / "duty-machine-news-transcribed" / "articles" / "dw" / "1022765.md"
    title, body = dump_body(path)
    lead = "美国总统特朗普与俄罗斯总统普京通话后，外界对乌克兰和平计划的猜测越来越多。"
    doc = chinese_page(title, body, lead)
    p = extract_page(doc.encode("utf-8"), "https://www.dw.com/zh/特朗普的乌克兰和平计划/a-71591012")
    assert (p.title, p.teaser, p.authors, p.category) == (title, lead, ["王 诚"], "政治")
    assert (p.published, p.modified, p.language) == ("2025-02-15T08:03:55.243Z", "2025-02-15T09:00:00Z", "zh-Hans")
    assert p.subheadings[:2] == ["大规模向俄罗斯割让领土", "乌克兰作为欧洲缓冲区存在，不加入北约"]
    lines = p.text.split("\n")
    assert lines[0] == lead
    assert lines[1].startswith("（德国之声中文网）美国总统特朗普与俄罗斯总统普京通了一个半小时的电话。")
    assert lines[-1].startswith("乌克兰和平协议若选择在这一天公布")
    for boilerplate in (
        "Cookies",
        "WhatsApp",
        "p.dw.com",
        "Instagram",
        "版权声明",
        "更多相关内容",
        "广告",
        "反馈",
        "图片说明",
    ):
        assert boilerplate not in p.text, boilerplate
    # the page says what the feed says: the body agrees with the feed body (boilerplate excluded on both sides)
    assert agreement(p.body, body) > 0.99


def test_traditional_chinese_page_is_zh_hant():
    path = DUMPS / "duty-machine-news-transcribed" / "articles" / "dw" / "1032000.md"
    title, body = dump_body(path)
    doc = chinese_page(title, body, "美國在北美上空擊落多個不明飛行物。", lang="zh-hant")
    p = extract_page(doc, "https://www.dw.com/zh-hant/x/a-64675520")
    assert p.language == "zh-Hant"
    assert "美戰機在阿拉斯加、加拿大擊落不明飛行物" in p.subheadings
    assert agreement(p.body, body) > 0.99


def test_the_script_of_the_text_decides_the_language_of_a_zh_page():
    """DW serves the same id under /zh/ and /zh-hant/; a /zh/ page in traditional characters is zh-Hant."""
    path = DUMPS / "duty-machine-news-transcribed" / "articles" / "dw" / "1032000.md"
    title, body = dump_body(path)
    doc = chinese_page(title, body, "美國在北美上空擊落多個不明飛行物。", lang="zh-Hans")
    assert extract_page(doc, "https://www.dw.com/zh/x/a-64675520").language == "zh-Hant"
    title, body = dump_body(DUMPS / "duty-machine-news-transcribed" / "articles" / "dw" / "1022765.md")
    simplified = chinese_page(title, body, "导语。")
    assert extract_page(simplified, "https://www.dw.com/zh-hant/x/a-71591012").language == "zh-Hans"


def test_related_reading_paragraphs_are_dropped():
    ref = '<a href="https://api.dw.com/api/detail/article/{}" rel="ArticleRef">{}</a>'
    body = (
        "<p>正文第一段，讲述事情的经过。</p>"
        f"<p>{ref.format(55187148, '更多阅读：全球10个最领先的新冠疫苗项目')}</p>"
        f"<p>延伸阅读: {ref.format(54013355, '印度禁抖音微信')}</p>"
        f"<p>正文第二段，引用了{ref.format(1, '一篇报道')}的内容。</p>"
    )
    p = extract_page(chinese_page("标题", body, "导语。"), "https://www.dw.com/zh/x/a-1")
    assert p.body.split("\n") == ["正文第一段，讲述事情的经过。", "正文第二段，引用了一篇报道的内容。"]


def test_options_object_gathers_the_trafilatura_settings():
    extractor = DW_OPTIONS.extractor()
    assert (extractor.fast, extractor.comments, extractor.links, extractor.images) == (True, False, False, False)
    assert DW_OPTIONS.extractor(whole_page=True).focus == "precision"


# --- the Chinese pages the stand-in serves (archiver.standin), one per DW article of the bundled dumps ----------


@pytest.fixture(scope="module")
def standin_pages():
    from archiver.dw.dumps import iter_dumps
    from archiver.standin.content import render_page
    from archiver.standin.corpus import Corpus

    entries = [r.entry for r in iter_dumps([DUMPS]) if r.entry is not None and r.entry.is_dw]
    corpus = Corpus.from_entries(entries)
    first = {}
    for entry in entries:
        first.setdefault(entry.article_id, entry)
    return [(entry, corpus.get(i), render_page(corpus.get(i), corpus.get)) for i, entry in first.items()]


STANDIN_BOILERPLATE = (
    "我们使用cookies", "请给我们反馈", "订阅德国之声中文新闻", "每天为您精选", "相关主题", "外部链接", "p.dw.com",
    "DW中文有Instagram", "版权声明", "获取更多RSS", "更多阅读", "延伸阅读", "相关图集", "欢迎订阅德国之声",
)  # fmt: skip


def test_standin_pages(standin_pages):
    scores, languages = [], set()
    for entry, article, page_html in standin_pages:
        p = extract_page(page_html.encode("utf-8"), article.page_url)
        assert (p.layout, p.title) == ("2023", article.title)
        languages.add(p.language)
        # the script of the text, whatever the URL says (all stand-in URLs are /zh/)
        assert p.language == (chinese_script(entry.title + feed_article_text(entry.body_html)) or "zh-Hans")
        assert p.teaser == (article.teaser or None)
        assert p.authors == ([article.author] if article.author else [])
        assert p.published.startswith(f"{article.published:%Y-%m-%dT%H:%M:%S}")
        for word in STANDIN_BOILERPLATE:
            assert word not in p.text, (entry.path, word)
        if feed_article_text(entry.body_html):  # all but the one empty dump
            score = agreement(p.body, entry.body_html)
            assert score > 0.97, (entry.path, score)
            scores.append(score)
    assert len(scores) >= 190
    assert languages == {"zh-Hans", "zh-Hant"}
    assert sum(scores) / len(scores) > 0.99
