"""Item assembly: status, errors and captures from the outcome of each exchange."""

from datetime import UTC, datetime

import jsonschema
from itemadapter import ItemAdapter

from archiver.dw.dumps import FeedEntry, Image, Reference
from archiver.items.model import item_schema
from archiver.run.assemble import ArticleParts, Fetched, article_item, item_status, language_of
from archiver.run.jobs import ArticleJob, feed_ref, job_from_entry
from archiver.timefmt import iso_utc

PAGE = "https://www.dw.com/zh/%E6%A0%87%E9%A2%98/a-54243544"
API = "https://api.dw.com/api/detail/article/54243544"
IMG = "https://static.dw.com/image/54243303_303.jpg"
CAPTURE = {
    "warc_file": "archiver-20261127033000000-00000-host-1.warc.gz",
    "offset": 1234,
    "length": 5678,
    "record_id": "<urn:uuid:0b7f2d3a-9c7e-4a51-8a43-2b1d0d7f4e10>",
    "payload_digest": "sha1:ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
    "record_type": "response",
    "fetched_at": "2026-11-27T03:30:00.123Z",
}


def entry(**kw) -> FeedEntry:
    base = dict(
        path="dumps/a.md",
        feed_time=datetime(2020, 7, 20, 13, 54, 12, tzinfo=UTC),
        title="全球新冠疫苗研发或已入冲刺阶段",
        link=PAGE,
        article_id=54243544,
        page_url=PAGE,
        published=datetime(2020, 7, 20, 13, 24, 12, 498000, tzinfo=UTC),
        author="ARD",
        kind="article",
        body_html="<p>正文</p>",
        references=(Reference(53841211, "ArticleRef"), Reference(54243544, "ArticleRef")),
        images=(Image(IMG, "图片说明"),),
    )
    base.update(kw)
    return FeedEntry(**base)


def parts(page: Fetched, api: Fetched, images: list[Fetched]) -> ArticleParts:
    job = job_from_entry(entry())
    job.feed.append(feed_ref(entry(path="dumps/b.md", title="另一标题")))
    return ArticleParts(job=job, page=page, api=api, images=images)


def validate(item) -> dict:
    data = ItemAdapter(item).asdict()
    jsonschema.Draft202012Validator(item_schema()).validate(data)
    return data


def test_all_parts_ok_make_a_complete_item_with_every_capture():
    item = article_item(
        parts(
            Fetched(PAGE, "page", 200, b"<html>", capture=CAPTURE),
            Fetched(API, "api", 200, b"{}", capture=CAPTURE),
            [Fetched(IMG, "image", 200, b"\xff\xd8", capture=CAPTURE)],
        ),
        run_id="run-1",
    )
    data = validate(item)
    assert data["status"] == "complete"
    assert data["errors"] == []
    assert [c["role"] for c in data["captures"]] == ["page", "api", "image"]
    assert data["captures"][0]["record_id"] == CAPTURE["record_id"]
    assert data["feed"][1] == {
        "file": "dumps/b.md",
        "feed_time": "2020-07-20T13:54:12Z",
        "title": "另一标题",
        "link": PAGE,
    }
    assert data["references"] == [53841211]  # the article itself is not its own reference
    assert data["published"] == "2020-07-20T13:24:12.498Z"
    assert data["authors"] == ["ARD"]
    assert data["images"] == [{"url": IMG, "caption": "图片说明"}]
    assert data["language"] == "zh-Hans"


def test_failed_image_makes_partial_and_names_the_url():
    item = article_item(
        parts(
            Fetched(PAGE, "page", 200, b"x"),
            Fetched(API, "api", 200, b"{}"),
            [Fetched(IMG, "image", 404, b"not found")],
        )
    )
    data = validate(item)
    assert data["status"] == "partial"
    assert data["errors"] == [{"url": IMG, "reason": "HTTP 404"}]
    assert data["captures"][-1]["status"] == 404  # archived as what happened


def test_block_page_is_never_content_and_no_response_is_no_capture():
    item = article_item(
        parts(
            Fetched(PAGE, "page", 429, b"<html>rate limited</html>"),
            Fetched(API, "api", error="TimeoutError: took longer than 30 seconds"),
            [],
        )
    )
    data = validate(item)
    assert data["status"] == "failed"
    assert [e["reason"] for e in data["errors"]] == ["HTTP 429", "TimeoutError: took longer than 30 seconds"]
    assert [c["role"] for c in data["captures"]] == ["page"]
    assert data["text"] is None


def test_item_status_rules():
    ok = Fetched("u", "page", 200)
    bad = Fetched("u", "page", 500)
    assert Fetched("u", "page", 304).ok and not Fetched("u", "page", 304).has_body
    assert item_status([ok, ok], []) == "complete"
    assert item_status([ok, bad], []) == "partial"
    assert item_status([bad, bad], [ok]) == "failed"
    assert item_status([ok], [bad]) == "partial"


def test_iso_and_language_helpers():
    assert iso_utc(datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2020-01-02T03:04:05Z"
    assert iso_utc(None) is None
    assert language_of("https://www.dw.com/zh-hant/x/a-1") == "zh-Hant"
    assert language_of("https://www.dw.com/zh/x/a-1") == "zh-Hans"


def test_job_round_trips_through_json():
    job = job_from_entry(entry())
    again = ArticleJob.from_json(job.to_json())
    assert again == job
    assert again.references == [53841211]
    assert "\\u" not in job.to_json()  # Unicode kept as is


def test_only_a_full_response_is_new_content():
    from archiver.items.model import Capture
    from archiver.run.plan import content_changed

    def item(*captures):
        it = article_item(parts(Fetched(PAGE, "page", 200), Fetched(API, "api", 200), []))
        it.captures = list(captures)
        return it

    full = Capture(PAGE, "page", 200, "2026-11-27T03:30:00Z", record_type="response")
    same = Capture(API, "api", 200, "2026-11-27T03:30:00Z", record_type="revisit")
    not_modified = Capture(PAGE, "page", 304, "2026-11-27T03:30:00Z", record_type="revisit")
    image = Capture(IMG, "image", 200, "2026-11-27T03:30:00Z", record_type="response")
    assert content_changed(item(full, same))
    assert not content_changed(item(not_modified, same, image))
    assert not content_changed(item())
