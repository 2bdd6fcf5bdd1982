"""The items file's exporter: the same JSON line with and without ARCHIVER_EXPORT_ASDICT, and a write that fails is
reported, not raised into the crawl."""

from __future__ import annotations

import io
import json

from scrapy.utils.test import get_crawler

from archiver import signals
from archiver.items.exporter import JsonLinesItemExporter
from archiver.items.model import ArticleItem, Capture, Change, FeedRef, ImageRef, ItemError, TextRecord


def article() -> ArticleItem:
    """An item with every kind of nested part, and text that JSON escapes (quotes, CJK, a newline)."""
    return ArticleItem(
        article_id=65000001,
        kind="article",
        url="https://www.dw.com/zh/德国/a-65000001",
        api_url="https://api.dw.com/api/detail/article/65000001",
        title='德国 "Ampel" 政府',
        text="第一段。\n第二段，引用。",
        authors=["Name One", "名字"],
        images=[ImageRef("https://static.dw.com/image/1_6.jpg", caption="图片")],
        references=[65000002],
        feed=[FeedRef("dumps/a.md", "2023-05-01T00:00:00Z", "标题", "https://www.dw.com/zh/x/a-65000001")],
        captures=[
            Capture(
                url="https://www.dw.com/zh/x/a-65000001",
                role="page",
                status=200,
                fetched_at="2026-12-06T00:00:00Z",
                warc_file="archiver-1.warc.gz",
                offset=0,
                length=100,
                record_id="<urn:uuid:1>",
                conversion=TextRecord("archiver-1.warc.wet.gz", 10, 20, "<urn:uuid:2>"),
            )
        ],
        errors=[ItemError("https://static.dw.com/image/2_6.jpg", "HTTP 404")],
        change=Change("edited", ["title"]),
        previous_captures=["<urn:uuid:0>"],
    )


def exported(as_dict: bool, items: list) -> bytes:
    crawler = get_crawler(settings_dict={"ARCHIVER_EXPORT_ASDICT": as_dict})
    out = io.BytesIO()
    exporter = JsonLinesItemExporter.from_crawler(crawler, out, encoding="utf-8")
    assert exporter.as_dict is as_dict
    exporter.start_exporting()
    for item in items:
        exporter.export_item(item)
    exporter.finish_exporting()
    return out.getvalue()


def test_the_asdict_path_writes_the_same_lines_as_scrapys_exporter() -> None:
    items = [article(), ArticleItem(article_id=2, kind="reference", url=None, api_url="https://api.dw.com/x/2")]
    fast, plain = exported(True, items), exported(False, items)
    assert fast == plain
    lines = fast.decode("utf-8").splitlines()
    assert [json.loads(line)["article_id"] for line in lines] == [65000001, 2]
    first = json.loads(lines[0])
    assert first["captures"][0]["conversion"]["record_id"] == "<urn:uuid:2>"
    assert first["change"] == {"kind": "edited", "fields": ["title"], "moved_to": None}
    assert "名字" in lines[0]  # written as UTF-8, not escaped


def test_a_line_the_file_refuses_is_reported_as_not_written() -> None:
    class FullDisk(io.BytesIO):
        def write(self, data: bytes) -> int:
            raise OSError(28, "No space left on device")

    crawler = get_crawler(settings_dict={"ARCHIVER_EXPORT_ASDICT": True})
    seen: list[tuple[int, str]] = []

    def not_written(item: ArticleItem, error: OSError) -> None:
        seen.append((item.article_id, error.strerror))

    crawler.signals.connect(not_written, signal=signals.item_not_written)
    JsonLinesItemExporter.from_crawler(crawler, FullDisk()).export_item(article())
    assert seen == [(65000001, "No space left on device")]
