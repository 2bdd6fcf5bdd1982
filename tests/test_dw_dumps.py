"""The feed-dump reader on the real corpus (tests/data/feed-dumps), on broken files, and on arbitrary bytes."""

from __future__ import annotations

import csv
import dataclasses
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scrapy import Request

from archiver.dw.dumps import (
    DumpError,
    FeedEntry,
    Image,
    Reference,
    YouTube,
    clean_author,
    dw_article,
    iso_utc,
    iter_dumps,
    original_image_url,
    parse_date,
    parse_dump,
    read_dump,
    requote_path,
)

DATA = Path(__file__).parent / "data" / "feed-dumps"
DW_DIR = "nodebe4-news-beyond-wall/articles/德国之声"
DM_DIR = "duty-machine-news/articles/dw"
DMT_DIR = "duty-machine-news-transcribed/articles/dw"
JEKYLL_DIR = "nodebe4-news-beyond-wall-jekyll/archived"


def find(folder: str, prefix: str) -> Path:
    """The one file in `folder` whose name starts with `prefix` (names hold newlines, NBSP, `?`, `:`)."""
    matches = [p for p in (DATA / folder).iterdir() if p.name.startswith(prefix)]
    assert len(matches) == 1, (folder, prefix, matches)
    return matches[0]


def jekyll(date: str) -> Path:
    (path,) = (DATA / JEKYLL_DIR / date).iterdir()
    return path


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def manifest() -> list[dict[str, str]]:
    with open(DATA / "MANIFEST.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    for row in rows:
        row["path"] = row["path"].replace("\\n", "\n")  # MANIFEST writes newlines in names as `\n`
    return rows


ROWS = manifest()
ENTRIES = {row["path"]: read_dump(DATA / row["path"]) for row in ROWS}


# --- the whole corpus ---


def test_manifest_names_every_dump_and_each_parses_with_its_dw_flag():
    assert len(ROWS) == 208
    on_disk = {
        str(Path(root, name).relative_to(DATA))
        for root, _, names in os.walk(DATA)
        for name in names
        if Path(root) != DATA
    }
    assert on_disk == {row["path"] for row in ROWS}
    for row in ROWS:
        entry = ENTRIES[row["path"]]
        assert entry.is_dw == (row["is_dw"] == "DW"), row["path"]
        assert entry.path == str(DATA / row["path"])
        assert entry.kind in ("article", "gallery", "video", "empty")
    assert sum(e.is_dw for e in ENTRIES.values()) == 198


def _count(lo: int, hi: int):
    # `src=""` images are skipped, and repeats (other outlets' zoom icons) kept once: both may lower the count.
    def check(e: FeedEntry) -> bool:
        low = lo - e.body_html.count('src=""') if e.is_dw else min(lo, 1)
        return low <= len(e.images) <= hi

    return check


def _refs(n: int, at_least: bool = False):
    def check(e: FeedEntry) -> bool:
        count = sum(r.rel == "ArticleRef" for r in e.references)
        return count >= n if at_least else count == n

    return check


def _no_feedx(e: FeedEntry) -> bool:
    return "获取更多RSS" not in e.body_html and "feedx" not in e.body_html and e.body_html == e.body_html.strip()


def _image_suffix(pattern: str):
    return lambda e: any(re.search(pattern, i.url) for i in e.images)


def _dw_path_keeps(needle: str):
    return lambda e: needle in e.link and needle in e.page_url


TRADITIONAL = set("國這們為說與對臺灣會權聲")

# What each MANIFEST variant tag promises about the parsed entry of every file that carries it.
TAG_CHECKS = {
    "aref_0": _refs(0),
    "aref_1": _refs(1),
    "aref_2": _refs(2),
    "aref_3": _refs(3),
    "aref_4": _refs(4),
    "aref_5": _refs(5, at_least=True),
    "CommentRef": lambda e: any(r.rel == "CommentRef" for r in e.references),
    "ExternalRef": lambda e: e.external_links and all("api.dw.com/api" not in u for u in e.external_links),
    "auto_topic_span": lambda e: len(e.topics) >= 1,
    "date_author": lambda e: e.author is not None and not e.author.startswith(" ") and e.kind == "article",
    "date_plain": lambda e: e.author is None and e.published is not None and e.kind == "article",
    "date_null_author": lambda e: e.author is not None and "null" not in e.author and "  " not in e.author,
    "nodate_p": lambda e: e.author is None and e.body_html.startswith("<p>"),
    "nodate_divimg": lambda e: e.kind == "gallery" and e.published is None and e.author is None,
    "nodate_other": lambda e: e.author is None,
    "empty_body_footer_only": lambda e: e.kind == "empty" and e.body_html == "" and not e.images,
    "feedx_footer": _no_feedx,
    "feedx_top": _no_feedx,
    "feedx_site": _no_feedx,
    "video": lambda e: e.kind == "video" and all(v.endswith((".mp4", ".m3u8")) for v in e.videos) and e.videos,
    "video_hls": lambda e: any(v.endswith(".m3u8") for v in e.videos),
    "iframe": lambda e: len(e.youtube) == 1,
    "h3": lambda e: "<h3>" in e.body_html,
    "img_weserv_api": lambda e: (
        any(i.url.startswith("https://api.dw.com/image/") for i in e.images)
        and not any("weserv" in i.url for i in e.images)
    ),
    "img_weserv_static": lambda e: (
        any(i.url.startswith("https://static.dw.com/image/") for i in e.images)
        and not any("weserv" in i.url for i in e.images)
    ),
    "img_direct_static": lambda e: any(i.url.startswith("https://static.dw.com/image/") for i in e.images),
    "img_empty_src": lambda e: 'src=""' in e.body_html and all(i.url for i in e.images),
    "img_ext_jpeg": _image_suffix(r"\.jpeg$"),
    "img_ext_png": _image_suffix(r"\.png$"),
    "img_ext_gif": _image_suffix(r"\.gif$"),
    "img_suffix_4": _image_suffix(r"_4\.\w+$"),
    "img_suffix_7": _image_suffix(r"_7\.\w+$"),
    "img_suffix_404": _image_suffix(r"_404\.\w+$"),
    "imgs_0": _count(0, 0),
    "imgs_1": _count(1, 1),
    "imgs_2-3": _count(2, 3),
    "imgs_4-9": _count(4, 9),
    "imgs_10+": _count(10, 10_000),
    "url_qmark": lambda e: "?" in e.link and (not e.is_dw or ("%3F" in e.page_url and "?" not in e.page_url)),
    "url_hash": lambda e: "#" in e.link and "%23" in e.page_url and "#" not in e.page_url,
    # On other outlets' files the tag marks no `#` at all: there it only means "no DW id".
    "url_hash_fragment": lambda e: ("#" in e.link and "#" not in e.page_url) if e.is_dw else e.page_url is None,
    "url_raw_colon": lambda e: e.link.count(":") >= 2 and e.page_url.count(":") == e.link.count(":"),
    "url_nbsp": _dw_path_keeps("%C2%A0"),
    "url_double_space": _dw_path_keeps("%20%20"),
    "title_newline": lambda e: "\n" not in e.title and e.title == e.title.strip(),
    "title_ws_edge": lambda e: e.title == e.title.strip(),
    "fname_newline": lambda e: "\n" in Path(e.path).name,
    "fname_qmark": lambda e: "?" in Path(e.path).name,
    "fname_colon": lambda e: ":" in Path(e.path).name,
    "fname_trailing_space": lambda e: Path(e.path).name.endswith(" .md"),
    "traditional": lambda e: len(TRADITIONAL & set(e.body_html)) >= 3,
    "copyright": lambda e: "版权声明" in e.body_html or "版權聲明" in e.body_html,
    "no_copyright": lambda e: "版权声明" not in e.body_html and "版權聲明" not in e.body_html,
    "link_www_dw": lambda e: any(u.startswith("https://www.dw.com/en/") for u in e.external_links),
    "link_cms_dw": lambda e: "http://cms.dw.com/cma/" in e.external_links,
    "lone_CR": lambda e: "\r" not in e.body_html and b"\r" in Path(e.path).read_bytes(),
    "unparsed": lambda e: e.feed_time is None and e.article_id is None,
}
# Size classes describe the raw file, not a parsed field.
UNCHECKED_TAGS = {"short<1k", "long>6k"}


def test_every_manifest_tag_has_a_check():
    tags = {t for row in ROWS for t in row["variant_tags"].split(",")}
    assert tags == set(TAG_CHECKS) | UNCHECKED_TAGS


@pytest.mark.parametrize("tag", sorted(TAG_CHECKS))
def test_variant_tag_holds_for_every_file_that_has_it(tag):
    rows = [row for row in ROWS if tag in row["variant_tags"].split(",")]
    assert rows
    for row in rows:
        assert TAG_CHECKS[tag](ENTRIES[row["path"]]), row["path"]


# --- concrete files ---


def test_article_with_author_images_captions_and_malformed_youtube():
    e = read_dump(DATA / DM_DIR / "1041458.md")
    assert e.feed_time == utc(2021, 7, 11, 19, 47, 5)
    assert e.title == "新冠疫苗：混合接种不单是权宜之计？"
    assert e.article_id == 58215200
    assert e.page_url == e.link
    assert e.api_url == "https://api.dw.com/api/detail/article/58215200"
    assert e.published == utc(2021, 7, 11, 7, 33, 21, 396000)
    assert e.author == "Carla Bleiker"
    assert e.kind == "article"
    assert e.images == (
        Image("https://static.dw.com/image/57826635_303.jpg", "英国研究显示，混合接种比仅接种阿斯利康疫苗好"),
        Image("https://static.dw.com/image/56186423_303.jpg", "西班牙只有不到四分之一的人完全接种了疫苗"),
    )
    assert e.youtube == (YouTube("=ja-4bu960G4", valid=False),)
    assert e.references == () and e.videos == () and e.topics == ()
    assert e.body_html.startswith("<div><i>Carla Bleiker <br>2021-07-11T07:33:21.396Z</i></div>")
    assert e.body_html.endswith("并受到刑事追究</p>")  # feedx footer (.top) gone


def test_title_spanning_lines_and_newline_in_file_name():
    path = find(DW_DIR, "1048198_")
    assert path.name == "1048198_德语媒体：北京的快速回应\n\n.md"
    assert "[德语媒体：北京的快速回应\n\n](" in path.read_text("utf-8")
    e = read_dump(path)
    assert e.title == "德语媒体：北京的快速回应"
    assert e.article_id == 53985946
    assert e.author == "任琛（摘编）"
    assert e.published == utc(2020, 6, 29, 14, 58, 6, 315000)
    assert e.images == (
        Image("https://api.dw.com/image/53882155_303.jpg", "资料图片：双手比出5，代表“五大诉求”的香港示威民众"),
    )


def test_null_author_prefix_is_dropped():
    e = read_dump(find(DW_DIR, "1047815_"))
    assert "<i>null 张筠青（综合报道）<br>" in e.body_html
    assert e.author == "张筠青（综合报道）"
    assert e.published == utc(2020, 7, 19, 12, 56, 10, 338000)
    # the first image has an empty <small>: no caption
    assert e.images[0] == Image("https://api.dw.com/image/54231952_303.jpg", None)
    assert e.images[1].caption == "会议第三日，米歇尔、马克龙、默克尔及冯德莱恩举行会谈"


def test_padded_and_doubled_space_authors():
    authors = {e.author for e in ENTRIES.values()}
    assert {"Nina Haase", "William Yang", "达扬（综合报道）", "采访记者： William Yang"} <= authors
    assert not any(a and (a != a.strip() or "  " in a or a.startswith("null")) for a in authors)


def test_raw_question_marks_in_the_slug():
    path = find(DW_DIR, "1047847_")
    e = read_dump(path)
    assert e.link.endswith("%E6%A3%8B%E5%AD%90?%E7%89%BA%E7%89%B2%E5%93%81?%E8%A2%AB" + e.link.split("%E8%A2%AB", 1)[1])
    assert urlsplit(e.link).query  # a URL parser would put the id in the query
    assert e.article_id == 54220201
    assert e.page_url == e.link.replace("?", "%3F")
    assert e.title == "棋子?牺牲品?被驱逐的前驻华记者吐露心声"


def test_raw_hash_in_the_slug_jekyll():
    e = read_dump(jekyll("2020-10-24"))
    assert e.link.startswith("https://www.dw.com/zh/#%E6%95%99")
    assert e.article_id == 55384004
    assert e.page_url == e.link.replace("/zh/#", "/zh/%23")
    assert e.title == "#教育不是旅游：国际学生苦等德国签证预约"
    assert e.author == "Alexander Matthews"
    assert [i.url for i in e.images][:2] == [
        "https://api.dw.com/image/55363434_303.jpg",
        "https://api.dw.com/image/55364205_404.jpg",
    ]


def test_lone_percent_in_the_slug_is_escaped_once():
    e = read_dump(find(DW_DIR, "1047798_"))
    assert "80%%20" in e.link
    assert "80%25%20" in e.page_url
    assert unquote(e.page_url) == unquote(e.link.replace("80%%", "80%25%"))


def test_raw_colon_in_the_slug_and_file_name():
    e = read_dump(find("duty-machine-news/articles/德国之声", "1046205_"))
    assert Path(e.path).name == "1046205_路透: 美国会已收到对台军售3项通知.md"
    assert e.title == "路透: 美国会已收到对台军售3项通知"
    assert e.article_id == 55251468
    assert "/zh/%E8%B7%AF%E9%80%8F:%20" in e.page_url and e.page_url == e.link
    assert e.author is None
    assert e.published == utc(2020, 10, 13, 1, 25, 20, 737000)


def test_nbsp_in_title_link_and_file_name():
    e = read_dump(DATA / DM_DIR / "1043347.md")
    assert "%C2%A0" in e.link and e.page_url == e.link
    assert e.title == "涉元朗事件调查报导 港台编导虚假陈述案开庭"  # NBSP normalized to a space
    assert e.author == "Phoebe Kong"
    assert e.images == ()  # its only image has src=""
    assert e.youtube == (YouTube("or4B7NpHwbY", valid=True),)
    names = [n for n in os.listdir(DATA / DW_DIR) if "\xa0" in n]
    assert any(n.startswith("1048137_") for n in names)


def test_references_are_ordered_and_unique():
    e = read_dump(find(DW_DIR, "1048139_"))
    assert e.references == tuple(Reference(i, "ArticleRef") for i in (53976357, 53992064, 54006455, 54013355))
    e = read_dump(find(DW_DIR, "1047809_"))
    assert [r.article_id for r in e.references] == [54184216, 54168677, 54145490, 54087197, 54065910]


def test_comment_ref():
    e = read_dump(jekyll("2021-04-30"))
    assert e.references == (Reference(56900725, "CommentRef"),)
    assert e.author == "长平"
    assert e.images[0] == Image("https://static.dw.com/image/57335267_303.jpg", None)


def test_external_refs_auto_topics_and_many_article_refs():
    e = read_dump(DATA / DMT_DIR / "1022765.md")
    assert e.external_links == ("https://www.instagram.com/dw.chinese/",)
    assert e.topics == (69234616, 40351655, 17452347, 17452263, 40370431, 60868685)
    assert e.references[0] == Reference(71590287, "ArticleRef")
    assert len(e.references) == 7
    assert e.feed_time == utc(2025, 2, 15, 8, 17, 4)
    assert e.author == "Thomas Latschan"


def test_external_ref_and_direct_static_image():
    e = read_dump(jekyll("2020-11-01"))
    assert e.external_links == (
        "https://www.nbcnews.com/tech/security/how-fake-persona-laid-groundwork-hunter-biden-conspiracy-deluge-n1245387",
    )
    assert e.images == (Image("https://static.dw.com/image/50691826_303.jpg", "小拜登被指同中国有生意往来"),)
    assert e.title == "虚构作者攻击拜登 黎智英高级助理辞职"
    assert e.author == "德国之声中文网"


def test_links_to_www_and_cms_dw_are_external_links():
    assert read_dump(jekyll("2020-12-04")).external_links == (
        "https://www.dw.com/en/greta-thunberg-named-time-person-of-the-year/a-51622872",
    )
    assert read_dump(find(DW_DIR, "1048054_")).external_links == ("http://cms.dw.com/cma/",)


def test_gallery():
    e = read_dump(DATA / DM_DIR / "1043887.md")
    assert e.kind == "gallery"
    assert e.published is None and e.author is None
    assert len(e.images) == 9
    assert e.images[0] == Image("https://static.dw.com/image/56102116_303.jpg", None)


def test_video_mp4_and_hls():
    e = read_dump(DATA / DM_DIR / "1042308.md")
    assert e.kind == "video"
    assert len(e.videos) == 1 and e.videos[0].endswith(".mp4")
    e = read_dump(DATA / DMT_DIR / "1041310.md")
    assert e.kind == "video"
    assert e.videos == (
        "https://dwhlsondemand-vh.akamaihd.net/i/dwtv_video/flv/vdt_zh/2021/"
        "bchi210719_001_4e42bwomenspace_,sd_sor,sd_avc,.mp4.csmil/master.m3u8",
    )


def test_empty_body_footer_only():
    e = read_dump(jekyll("2020-07-27"))
    assert e.kind == "empty"
    assert e.body_html == ""
    assert e.article_id == 52798287
    assert e.feed_time == utc(2020, 7, 27, 8, 54, 2)


JEKYLL_PAIRS = [
    (DATA / DM_DIR / "1043347.md", "2021-03-24"),
    (DATA / DM_DIR / "1043887.md", "2021-02-15"),
    (find(DW_DIR, "1047809_"), "2020-07-20"),
]


@pytest.mark.parametrize(("plain", "date"), JEKYLL_PAIRS)
def test_jekyll_copy_parses_to_the_same_entry(plain, date):
    wrapped = jekyll(date)
    assert wrapped.read_text("utf-8").startswith("---\nlayout: post\n")
    a, b = read_dump(plain), read_dump(wrapped)
    assert b.path != a.path
    assert dataclasses.replace(b, path=a.path) == a


def test_retitled_duplicates_share_the_article_id():
    a, b = read_dump(find(DW_DIR, "1047809_")), read_dump(find(DW_DIR, "1047813_"))
    assert a.article_id == b.article_id == 54237399
    assert a.title == "获释后首发声 许章润：极权必败" and b.title == "获释后首发声 许章润:极权必败"
    assert a.feed_time != b.feed_time


def test_other_outlet_is_not_a_dw_article():
    e = read_dump(find("nodebe4-news-beyond-wall/articles/BBC", "1048108_"))
    assert e.link == "http://www.bbc.com/zhongwen/simp/chinese-news-53349211"
    assert e.article_id is None and e.page_url is None and e.api_url is None and not e.is_dw
    assert e.feed_time == utc(2020, 7, 10, 1, 46, 48)
    # a reprint of a DW article by another outlet is still not a DW link
    e = read_dump(find("nodebe4-news-beyond-wall/articles/中国数字时代", "398087_"))
    assert e.title.startswith("德国之声｜") and e.article_id is None


def test_file_without_timestamp_line():
    e = read_dump(find("nodebe4-news-beyond-wall/articles/中国数字时代", "400093_"))
    assert e.feed_time is None
    assert e.title == "质化研究 | 社会性别视角下的农村留守女性生命史"
    assert e.link.startswith("https://chinadigitaltimes.net/chinese/2020/06/")
    assert e.published == utc(2020, 6, 27, 13, 30, 55)  # from its `日期：` line
    assert e.body_html.startswith("日期：Sat, 27 Jun 2020 13:30:55 +0000\n\n<div")


def test_lone_cr_file():
    path = find("nodebe4-news-beyond-wall/articles/自由亚洲电台", "1048349_")
    assert path.read_bytes().count(b"\r") == 12 and b"\r\n" not in path.read_bytes()
    e = read_dump(path)
    assert "\r" not in e.body_html
    assert e.body_html.count("\n") >= 12
    assert e.title == "“不愿台湾成西藏” 达赖喇嘛派驻台湾首位佛法博士强巴加措圆寂"
    assert e.feed_time == utc(2020, 7, 17, 16, 36, 21)


def test_other_outlets_images_resolve_and_naive_dates_are_dropped():
    e = read_dump(find("nodebe4-news-beyond-wall/articles/路透", "1048015_"))
    assert e.images[0].url.startswith("https://s4.reutersmedia.net/resources/r/?m=02&d=")  # `&amp;` decoded
    e = read_dump(find("nodebe4-news-beyond-wall/articles/纽约时报", "1048136_"))
    assert e.author == "MIRIAM JORDAN,MIRIAM JORDAN"
    assert e.published is None  # `2020-07-09 11:42:40` names no zone
    assert e.images[0].url.startswith("https://static01.nyt.com/images/2020/07/08/")


# --- line endings, BOM and broken files ---

SAMPLE = DATA / DM_DIR / "1046202.md"


def test_bom_crlf_and_lone_cr_parse_like_lf():
    data = SAMPLE.read_bytes()
    base = parse_dump(data, "x")
    assert parse_dump(b"\xef\xbb\xbf" + data, "x") == base
    assert parse_dump(data.replace(b"\n", b"\r\n"), "x") == base
    assert parse_dump(data.replace(b"\n", b"\r"), "x") == base


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


GOOD = SAMPLE.read_bytes()
HEADER_END = GOOD.index(b"\n------\n")

BAD_INPUTS = [
    ("empty.md", b"", "empty file"),
    ("blank.md", b" \n\n\t\n", "empty file"),
    ("bom-only.md", b"\xef\xbb\xbf\n", "empty file"),
    ("junk.md", bytes(range(256)) * 4, "binary content"),
    ("png.md", b"\x89PNG\r\n\x1a\n" + bytes([0x80, 0x01, 0x02, 0x03] * 200), "binary content"),
    ("gbk.md", GOOD.decode("utf-8").encode("gb18030"), "not UTF-8"),
    ("utf16.md", GOOD.decode("utf-8").encode("utf-16"), "not UTF-8"),
    ("cut-header.md", GOOD[:HEADER_END], "truncated header"),
    ("cut-ts.md", b"<!--16025828", "truncated header"),
    ("ts-only.md", b"<!--1602582828000-->\n", "truncated header"),
    ("no-link.md", b"<!--1602582828000-->\n------\n\n<p>x</p>\n", "missing link"),
    ("no-link-2.md", b"<!--1602582828000-->\nsome title\n------\n\n<p>x</p>\n", "missing link"),
    ("empty-url.md", b"<!--1602582828000-->\n[title]()\n------\n\n<p>x</p>\n", "missing link"),
    ("bad-ts.md", b"<!--yesterday-->\n[t](https://www.dw.com/zh/t/a-1)\n------\n\nx", "bad timestamp"),
    ("huge-ts.md", b"<!--99999999999999999999-->\n[t](https://www.dw.com/zh/t/a-1)\n------\n\nx", "bad timestamp"),
    ("readme.md", b"# A README\n\nNot a dump.\n", "not a feed dump"),
    ("front-matter-open.md", b"---\nlayout: post\ntitle: x\n", "truncated header"),
]


@pytest.mark.parametrize(("name", "data", "reason"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_raises_dump_error_naming_file_and_reason(tmp_path, name, data, reason):
    path = write(tmp_path, name, data)
    with pytest.raises(DumpError) as info:
        read_dump(path)
    assert info.value.reason == reason
    assert info.value.path == str(path)
    assert str(path) in str(info.value) and reason in str(info.value)


def test_too_large_not_found_and_not_a_regular_file(tmp_path):
    path = write(tmp_path, "a.md", GOOD)
    assert read_dump(path, max_bytes=len(GOOD)).article_id == 55253484
    with pytest.raises(DumpError, match="too large") as info:
        read_dump(path, max_bytes=len(GOOD) - 1)
    assert info.value.reason == "too large"
    with pytest.raises(DumpError) as info:
        read_dump(tmp_path / "missing.md")
    assert info.value.reason == "not found"
    with pytest.raises(DumpError) as info:
        read_dump(tmp_path)
    assert info.value.reason == "unreadable"
    fifo = tmp_path / "fifo.md"
    os.mkfifo(fifo)
    with pytest.raises(DumpError) as info:
        read_dump(fifo)  # must not block waiting for a writer
    assert (info.value.reason, info.value.detail) == ("unreadable", "not a regular file")


# --- pure helpers ---


def test_clean_author():
    assert clean_author("null 张筠青（综合报道）") == "张筠青（综合报道）"
    assert clean_author("     叶宣（综合报道）") == "叶宣（综合报道）"
    assert clean_author("Nina  Haase") == "Nina Haase"
    assert clean_author("  ") is None
    assert clean_author("null") is None
    assert clean_author("Carla Bleiker ") == "Carla Bleiker"


def test_parse_date_is_utc_and_needs_a_zone():
    assert parse_date("2021-07-11T07:33:21.396Z") == utc(2021, 7, 11, 7, 33, 21, 396000)
    assert parse_date("Fri, 17 Jul 2020 19:47:09 GMT") == utc(2020, 7, 17, 19, 47, 9)
    assert parse_date("2020-07-09T11:42:40+08:00") == utc(2020, 7, 9, 3, 42, 40)
    assert parse_date("2020-07-09 11:42:40") is None
    assert parse_date("2020年 7月 10日") is None
    assert iso_utc(utc(2021, 7, 11, 7, 33, 21, 396000)) == "2021-07-11T07:33:21.396Z"
    assert iso_utc(utc(2021, 7, 11, 19, 47, 5)) == "2021-07-11T19:47:05Z"
    assert iso_utc(parse_date("2021-07-11T09:33:21.123456+02:00")) == "2021-07-11T07:33:21.123456Z"
    assert iso_utc(None) is None


def test_requote_path_and_dw_article():
    assert requote_path("/zh/a?b#c d%zz%20:+é/") == "/zh/a%3Fb%23c%20d%25zz%20:+%C3%A9/"
    assert dw_article("http://dw.com/zh/x y/a-12") == (12, "https://www.dw.com/zh/x%20y/a-12")
    assert dw_article("https://www.dw.com/zh/x/a-12/") == (None, None)
    assert dw_article("https://www.voachinese.com/a/x/a-12") == (None, None)


def test_original_image_url_unwraps_weserv():
    assert original_image_url("https://images.weserv.nl/?url=static.dw.com/image/1_303.jpg") == (
        "https://static.dw.com/image/1_303.jpg"
    )
    assert original_image_url("https://images.weserv.nl/?url=api.dw.com/image/1_4.png") == (
        "https://api.dw.com/image/1_4.png"
    )
    assert original_image_url("https://images.weserv.nl?url=ssl:static.dw.com/image/2.jpg&w=300") == (
        "https://static.dw.com/image/2.jpg"
    )
    assert original_image_url("https://images.weserv.nl/?url=static.dw.com%2Fimage%2F3.jpg") == (
        "https://static.dw.com/image/3.jpg"
    )
    assert original_image_url("") is None
    assert original_image_url("/a.png", "https://www.rfa.org/x/y.html") == "https://www.rfa.org/a.png"


# --- URLs Scrapy requests unchanged ---


def test_every_page_url_is_requested_unchanged():
    urls = [e for e in ENTRIES.values() if e.page_url]
    assert len(urls) == 198
    for e in urls:
        assert Request(e.page_url).url == e.page_url
        parts = urlsplit(e.page_url)
        assert (parts.scheme, parts.netloc, parts.query, parts.fragment) == ("https", "www.dw.com", "", "")
        assert parts.path.startswith("/zh/") and parts.path.endswith(f"/a-{e.article_id}")


@given(st.text(max_size=40), st.integers(min_value=0, max_value=10**12))
def test_page_url_of_any_slug_is_safe_and_keeps_the_slug(slug, article_id):
    link = f"https://www.dw.com/zh/{slug}/a-{article_id}"
    got_id, url = dw_article(link)
    assert got_id == article_id
    assert Request(url).url == url
    parts = urlsplit(url)
    assert parts.query == "" and parts.fragment == ""
    assert parts.path == f"/zh/{requote_path(slug)}/a-{article_id}"
    assert requote_path(requote_path(slug)) == requote_path(slug)
    if "%" not in slug:
        assert unquote(parts.path) == f"/zh/{slug}/a-{article_id}"


# --- properties: nothing but an entry or a DumpError ---

REAL = [
    (DATA / DM_DIR / "1041458.md").read_bytes(),
    jekyll("2020-10-24").read_bytes(),
    find(DW_DIR, "1048198_").read_bytes(),
    find("nodebe4-news-beyond-wall/articles/中国数字时代", "400093_").read_bytes(),
    find("nodebe4-news-beyond-wall/articles/自由亚洲电台", "1048349_").read_bytes(),
    GOOD,
]


def entry_or_error(data: bytes) -> FeedEntry | DumpError:
    try:
        return parse_dump(data, "prop.md")
    except DumpError as exc:
        assert exc.path == "prop.md" and exc.reason
        return exc


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_give_an_entry_or_a_dump_error(data):
    entry_or_error(data)


@given(st.text(alphabet=st.sampled_from("<!-[]()#?:/a-1 \n\r\t\ufeff---0123456789é中"), max_size=200))
def test_header_like_text_gives_an_entry_or_a_dump_error(text):
    entry_or_error(text.encode("utf-8"))


@given(st.sampled_from(REAL), st.data())
def test_truncated_real_dumps_keep_their_header_or_fail_cleanly(data, draw):
    cut = draw.draw(st.integers(min_value=0, max_value=len(data)))
    full = parse_dump(data, "prop.md")
    got = entry_or_error(data[:cut])
    if isinstance(got, FeedEntry):
        # a cut in the body keeps the header fields
        assert (got.title, got.link, got.article_id, got.feed_time) == (
            full.title,
            full.link,
            full.article_id,
            full.feed_time,
        )
    elif cut > data.index(b"\n------\n") + 8 and data[:cut].decode("utf-8", "ignore").strip():
        assert got.reason == "not UTF-8"  # only a cut inside a multi-byte character fails


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(REAL), st.data())
def test_corrupted_real_dumps_give_an_entry_or_a_dump_error(data, draw):
    pos = draw.draw(st.integers(min_value=0, max_value=len(data)))
    junk = draw.draw(st.binary(min_size=1, max_size=16))
    entry_or_error(data[:pos] + junk + data[pos + len(junk) :])


PIECES = ["](", ")", "[", "\n", "\r", "------", "---\n", "<!--", "-->", "<div><i>", "<br>", "</i></div>", '"', "&",
          "%", "?", "#", "/a-", "9" * 30, "\ufeff", "\xa0", "日期：", '<img src="https://images.weserv.nl/?url=',
          '<a rel="ArticleRef" href="', '<span data-type="AUTO_TOPIC" data-id="', "null ", "获取更多RSS"]  # fmt: skip


@given(st.sampled_from(REAL), st.lists(st.tuples(st.floats(0, 1), st.sampled_from(PIECES)), max_size=6))
def test_real_dumps_with_markup_spliced_in_give_an_entry_or_a_dump_error(data, edits):
    text = data.decode("utf-8")
    for where, piece in edits:
        pos = int(where * len(text))
        text = text[:pos] + piece + text[pos:]
    entry_or_error(text.encode("utf-8"))


@given(st.binary(max_size=512))
def test_read_dump_on_arbitrary_files(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("prop") / "x.md"
    path.write_bytes(data)
    try:
        read_dump(path, max_bytes=256)
    except DumpError as exc:
        assert exc.path == str(path)
        if len(data) > 256:
            assert exc.reason == "too large"


# --- many files ---


def test_iter_dumps_accounts_for_every_file_of_the_corpus_in_sorted_order():
    results = list(iter_dumps([DATA]))
    assert len(results) == 210
    by_status = {s: [r for r in results if r.status == s] for s in ("parsed", "skipped", "failed")}
    assert len(by_status["parsed"]) == 208 and by_status["failed"] == []
    assert {(Path(r.path).name, r.error.reason) for r in by_status["skipped"]} == {
        ("MANIFEST.tsv", "not a .md file"),
        ("SOURCE.md", "not a feed dump"),
    }
    paths = [r.path for r in results]
    assert paths == [r.path for r in iter_dumps([str(DATA)])]  # deterministic
    assert {str(DATA / row["path"]) for row in ROWS} == {r.path for r in by_status["parsed"]}
    top = [p for p in paths if Path(p).parent == DATA]
    assert [Path(p).name for p in top] == ["MANIFEST.tsv", "SOURCE.md"]
    assert paths.index(str(DATA / DM_DIR / "1041458.md")) < paths.index(str(DATA / DM_DIR / "1041676.md"))


def test_iter_dumps_globs_and_missing_paths():
    results = list(iter_dumps([f"{DATA}/*/**/*.md", DATA / "nope.md", f"{DATA}/*.nothing"]))
    assert [r.status for r in results[:208]] == ["parsed"] * 208
    assert [(r.path, r.error.reason, r.error.detail) for r in results[208:]] == [
        (str(DATA / "nope.md"), "not found", "no such file or folder"),
        (f"{DATA}/*.nothing", "not found", "no file matches the pattern"),
    ]


def test_iter_dumps_named_non_dump_fails_but_walked_one_is_skipped(tmp_path):
    readme = write(tmp_path, "README.md", b"# notes\n")
    write(tmp_path, "notes.txt", b"hello")
    write(tmp_path, ".hidden.md", GOOD)
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "a.md", GOOD)
    write(tmp_path / "sub", "b.md", b"")
    (tmp_path / "link").symlink_to(tmp_path / "sub")
    walked = [(Path(r.path).name, r.status, r.error.reason if r.error else None) for r in iter_dumps([tmp_path])]
    assert walked == [
        (".hidden.md", "skipped", "hidden"),
        ("README.md", "skipped", "not a feed dump"),
        ("link", "skipped", "symlinked folder"),
        ("notes.txt", "skipped", "not a .md file"),
        ("a.md", "parsed", None),
        ("b.md", "failed", "empty file"),
    ]
    (named,) = iter_dumps(readme)  # one path alone is taken as one path, not as characters
    assert (named.status, named.error.reason) == ("failed", "not a feed dump")


def test_iter_dumps_reads_lazily(tmp_path):
    for name in ("a.md", "b.md", "c.md"):
        write(tmp_path, name, GOOD)
    results = iter_dumps([tmp_path])
    assert next(results).status == "parsed"
    (tmp_path / "c.md").unlink()  # removed after the listing, before it is read
    rest = list(results)
    assert [(Path(r.path).name, r.status) for r in rest] == [("b.md", "parsed"), ("c.md", "failed")]
    assert rest[1].error.reason == "not found"
