"""The item files' JSON Lines exporter writes exactly what Scrapy's writes."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
from scrapy.exporters import JsonLinesItemExporter as ScrapyExporter

from archiver.items.exporter import JsonLinesItemExporter
from archiver.items.model import ArticleItem, Capture, FeedRef, ImageRef, ItemError

ITEM = ArticleItem(
    article_id=71234567,
    kind="article",
    url="https://www.dw.com/zh/标题/a-71234567",
    api_url="https://api.dw.com/api/detail/article/71234567",
    title='德国之声 "引号" \n 换行',
    text="正文\u2028" * 50,
    authors=["作者"],
    images=[ImageRef("https://static.dw.com/image/1_7.jpg", "图注"), ImageRef("https://static.dw.com/image/2_7.jpg")],
    references=[1, 2],
    feed=[FeedRef("dumps/a\n?.md", "2023-01-01T00:00:00Z", "标题", "https://www.dw.com/zh/x/a-71234567")],
    captures=[Capture("https://www.dw.com/zh/x/a-1", "page", 200, "2023-01-01T00:00:00Z", "f.warc.gz", 10, 20)],
    errors=[ItemError("https://api.dw.com/image/3.jpg", "timeout: TimeoutError")],
    text_agreement=0.98,
)


@dataclasses.dataclass
class Serialized:
    name: str = dataclasses.field(default="x", metadata={"serializer": str.upper})


def lines(exporter_class: type, item: object, **kwargs: object) -> bytes:
    out = io.BytesIO()
    exporter = exporter_class(out, **kwargs)
    exporter.start_exporting()
    exporter.export_item(item)
    exporter.finish_exporting()
    return out.getvalue()


@pytest.mark.parametrize("encoding", ["utf-8", None])
@pytest.mark.parametrize(
    "item",
    [ITEM, {"article_id": 1, "captures": [dataclasses.asdict(ITEM.captures[0])]}, Serialized()],
    ids=["dataclass item", "dict item", "field serializer"],
)
def test_lines_are_scrapys(item: object, encoding: str | None) -> None:
    ours = lines(JsonLinesItemExporter, item, encoding=encoding)
    assert ours == lines(ScrapyExporter, item, encoding=encoding)
    assert ours.endswith(b"\n") and ours.count(b"\n") == 1
    assert json.loads(ours)


def test_fields_to_export_are_respected() -> None:
    ours = lines(JsonLinesItemExporter, ITEM, encoding="utf-8", fields_to_export=["article_id", "captures"])
    assert json.loads(ours) == {"article_id": ITEM.article_id, "captures": [dataclasses.asdict(ITEM.captures[0])]}
