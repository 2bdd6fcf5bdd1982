"""The stand-in's content, built from the real feed dumps: page, API JSON, images, faults plan (no network)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import lxml.html
import pytest
from dw_facts import API_KEYS

from archiver.dw.dumps import iter_dumps
from archiver.standin import jackson
from archiver.standin.content import api_document, render_api, render_page
from archiver.standin.corpus import MAX_GENERATED_DEPTH, Corpus, Figure, Heading, parse_body, permalink
from archiver.standin.faults import FaultPlan, FaultSpecError
from archiver.standin.images import image_bytes

DATA = Path(__file__).parent / "data"
DUMPS = DATA / "feed-dumps"
SAMPLE_ID = 71613509  # has a byline, subheadings, an image with caption and seven ArticleRef links


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus.from_paths([DUMPS])


@pytest.fixture(scope="module")
def entries() -> dict:
    return {r.entry.article_id: r.entry for r in iter_dumps([DUMPS]) if r.entry and r.entry.is_dw}


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_every_dump_article_is_served(corpus: Corpus, entries: dict) -> None:
    assert set(corpus.dump_ids()) == set(entries)
    assert len(corpus.dump_ids()) > 150


@pytest.mark.parametrize("name", ["video-59567960.json", "video-59567962.json", "video-63725621.json"])
def test_jackson_printer_matches_real_api_bytes(name: str) -> None:
    raw = (DATA / "dw-samples" / "api" / name).read_text(encoding="utf-8")
    assert jackson.dumps(json.loads(raw)) == raw


def test_api_head_matches_real_head_layout(corpus: Corpus) -> None:
    real = (DATA / "dw-samples" / "api" / "74265441.head.txt").read_text(encoding="utf-8")
    ours = render_api(corpus.get(SAMPLE_ID), corpus.get)
    # Same lines up to the values: keys, indentation and `"key" : ` spacing.
    shape = [re.sub(r'" : .*', '" :', line) for line in real.splitlines()[:45]]
    assert [re.sub(r'" : .*', '" :', line) for line in ours.splitlines()[:45]] == shape


def test_permalink_is_base62_of_id() -> None:
    assert permalink(68117411) == "https://p.dw.com/p/4boRv"  # the real short link of de_a-68117411


def test_page_text_is_the_dump_text(corpus: Corpus, entries: dict) -> None:
    article = corpus.get(SAMPLE_ID)
    html = render_page(article, corpus.get)
    doc = lxml.html.fromstring(html)
    assert doc.xpath("string(//header//h1)") == entries[SAMPLE_ID].title
    teaser = doc.xpath("string(//p[contains(@class, 'teaser-text')])")
    assert teaser == "美国总统特朗普与俄罗斯总统普京通了一个半小时的电话。"
    rich = doc.xpath("//div[contains(@class, 'rich-text')]")[0]
    # Paragraphs and subheadings in order are the dump's paragraphs (its <p><strong> lines become h2).
    shown = [_norm(el.text_content()) for el in rich.xpath("./p | ./h2")]
    dump = lxml.html.fragment_fromstring(entries[SAMPLE_ID].body_html, create_parent="div")
    assert shown == [_norm(p.text_content()) for p in dump.xpath("./p") if _norm(p.text_content())]
    assert [h.text_content() for h in rich.xpath("./h2")][:2] == [
        "大规模向俄罗斯割让领土",
        "乌克兰作为欧洲缓冲区存在，不加入北约",
    ]
    # ArticleRef links become page links of the cited article; no api.dw.com link is left in the page body.
    hrefs = rich.xpath(".//a/@href")
    assert "api.dw.com" not in " ".join(hrefs)
    assert corpus.get(71590287).path in hrefs


def test_page_shape_and_size(corpus: Corpus) -> None:
    article = corpus.get(SAMPLE_ID)
    html = render_page(article, corpus.get)
    assert 190_000 <= len(html.encode()) <= 330_000
    doc = lxml.html.fromstring(html)
    assert doc.xpath("//link[@rel='canonical']/@href") == [article.page_url]
    assert article.page_url.startswith("https://www.dw.com/zh/%E7%89%B9")
    ld = json.loads(doc.xpath("//script[@type='application/ld+json']/text()")[0])
    assert ld["@type"] == "NewsArticle"
    assert ld["headline"] == article.title
    assert ld["author"] == [{"@type": "Person", "name": "Thomas Latschan"}]
    assert ld["datePublished"] == "2025-02-15T08:03:55.243Z"
    assert ld["dateModified"] > ld["datePublished"]
    for section in ("related-topics",):
        assert doc.xpath(f"//section[@id='{section}']//a")
    assert doc.xpath("//section[contains(@class, 'more-on-topic')]//h3/a")
    assert doc.xpath("//footer[@id='footer']") and doc.xpath("//nav")
    assert doc.xpath("//div[contains(@class, 'cookie-notice')]")
    assert "window.__APOLLO_STATE__=" in html
    assert not doc.xpath("//link[@hreflang]")


def test_every_page_and_api_document_renders(corpus: Corpus) -> None:
    for article_id in corpus.dump_ids():
        article = corpus.get(article_id)
        size = len(render_page(article, corpus.get).encode())
        assert 190_000 <= size <= 330_000, article_id
        doc = api_document(article, corpus.get)
        assert list(doc) == API_KEYS
        assert doc["languageId"] == 4 and doc["name"] == article.title


def test_api_body_carries_article_refs(corpus: Corpus, entries: dict) -> None:
    doc = json.loads(render_api(corpus.get(SAMPLE_ID), corpus.get))
    assert list(doc) == API_KEYS
    assert [s["url"] for s in doc["mainContent"]["sizes"]] == [
        f"https://static.dw.com/image/71588384_{f}.jpg" for f in (301, 302, 303, 304)
    ]
    body_html = " ".join(e["text"] for e in doc["body"] if e["type"] == "Paragraph")
    linked = [int(i) for i in re.findall(r'api\.dw\.com/api/detail/article/(\d+)" rel="ArticleRef"', body_html)]
    assert linked == [r.article_id for r in entries[SAMPLE_ID].references if r.rel == "ArticleRef"]
    assert doc["permaLink"] == permalink(SAMPLE_ID)
    assert doc["displayDate"] == "2025-02-15T08:03:55.243Z"
    assert "<" not in doc["text"] and "乌克兰作为欧洲缓冲区存在" in doc["text"]


def test_cited_ids_resolve_to_generated_articles_with_bounded_depth(corpus: Corpus) -> None:
    ref = corpus.get(71590287)  # cited by SAMPLE_ID, in no dump
    assert ref is not None and ref.generated
    assert corpus.get(71590287) is ref
    assert Corpus.from_paths([DUMPS]).get(71590287) == ref  # deterministic
    assert re.search(r"[\u4e00-\u9fff]{4}", ref.title)
    assert all(corpus.get(i) is not None for i in ref.references)
    assert max(corpus.depths.values()) == MAX_GENERATED_DEPTH
    deepest = next(i for i, d in corpus.depths.items() if d == MAX_GENERATED_DEPTH)
    assert corpus.get(deepest).references == ()
    assert corpus.get(12345) is None  # cited by nothing: 404


def test_parse_body_drops_date_line_and_feedx_footer() -> None:
    body = (
        '<div><i>乐然<br>2020-07-20T14:53:17.152Z</i></div><img src="https://images.weserv.nl/?url=api.dw.com/'
        'image/41850343_303.jpg" width="100%"><div><small style="color: #999;">图片说明</small></div>'
        "<p>第一段。</p><p><strong>小标题</strong></p><p> </p><p>第二段。</p><br><hr><div>获取更多RSS：<br>"
        '<a href="https://feedx.net">https://feedx.net</a></div>'
    )
    blocks = parse_body(body)
    assert blocks[0] == Figure("https://api.dw.com/image/41850343_303.jpg", 41850343, "图片说明")
    assert blocks[2] == Heading("小标题")
    assert [getattr(b, "text", None) for b in blocks[1:]] == ["第一段。", "小标题", "第二段。"]


def test_images_are_real_files() -> None:
    jpg = image_bytes(71588384, "303", "jpg")
    assert jpg[:3] == b"\xff\xd8\xff" and jpg[-2:] == b"\xff\xd9"
    sof = jpg.index(b"\xff\xc0")
    assert jpg[sof + 5 : sof + 9] == bytes([394 >> 8, 394 & 255, 700 >> 8, 700 & 255])  # height, width
    assert image_bytes(1, "303", "jpg") != jpg
    assert image_bytes(1, "303", "png").startswith(b"\x89PNG\r\n\x1a\n")
    assert image_bytes(1, "303", "gif").startswith(b"GIF89a")


def test_fault_plan_rules_and_schedule() -> None:
    plan = FaultPlan.parse("54243544:404,1048137@api:reset,*@image:503x1")
    assert plan.fault_for("page", 54243544) == "404"
    assert plan.fault_for("api", 54243544) == "404"
    assert plan.fault_for("api", 1048137) == "reset"
    assert plan.fault_for("page", 1048137) is None
    assert plan.fault_for("image", 5, visit=1) == "503"
    assert plan.fault_for("image", 5, visit=2) is None
    with pytest.raises(FaultSpecError):
        FaultPlan.parse("1:teapot")
    scheduled = FaultPlan.parse("", rate=0.3, seed=7)
    picks = [scheduled.fault_for("page", i) for i in range(1000)]
    assert 200 < sum(p is not None for p in picks) < 400
    assert picks == [FaultPlan.parse("", rate=0.3, seed=7).fault_for("page", i) for i in range(1000)]
    assert picks != [FaultPlan.parse("", rate=0.3, seed=8).fault_for("page", i) for i in range(1000)]


def test_parse_body_galleries_media_and_wrapped_copies() -> None:
    gallery = '<h3>相关图集：标题</h3><div><img src="https://images.weserv.nl/?url=static.dw.com/image/1_303.jpg"><b>标题</b>：说明</div>'
    assert parse_body(gallery) == [
        Heading("相关图集：标题"),
        Figure("https://static.dw.com/image/1_303.jpg", 1, "标题：说明"),
    ]
    video = '<p>视频说明</p><video src="https://tvdownloaddw-a.akamaihd.net/x.mp4" controls style="width:100%"></video>'
    assert [type(b).__name__ for b in parse_body(video)] == ["Paragraph", "Media"]
    wrapped = "<div>\n<div><i>作者<br>2020-01-01T00:00:00.000Z</i></div><p>一。</p><p><strong>二</strong></p>\n</div>"
    assert [getattr(b, "text", None) for b in parse_body(wrapped)] == ["一。", "二"]
